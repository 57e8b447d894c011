//! A stored run read back from its tree alone: `run.json`, each pair folder's `pair.json`
//! and marker (falling back on `results.csv` where a record is missing or damaged), and
//! every side's `metrics.csv`. Damage is reported as one warning per problem, never a
//! panic; whatever can be read is kept.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;

use crate::hostinfo::HostInfo;
use crate::results::{self, MetricRow, PairRecord, Status};
use crate::runner::progress::Counts;

/// What `run.json` says (every field optional, so older or damaged manifests still load).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Manifest {
    pub pairbench_version: String,
    pub command_line: Vec<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub hosts: Vec<HostInfo>,
    pub interrupted: bool,
    pub options: serde_json::Value,
}

/// One group of a stored run.
#[derive(Debug, Default)]
pub struct GroupRun {
    pub name: String,
    /// Local and remote test names, sorted.
    pub locals: Vec<String>,
    pub remotes: Vec<String>,
    /// Its pairs, sorted by pair name.
    pub pairs: Vec<PairRecord>,
    pub metrics: Vec<MetricRow>,
    cells: HashMap<(String, String), usize>,
}

impl GroupRun {
    /// The pair of local test `l` and remote test `r`, if it has a result.
    pub fn cell(&self, l: &str, r: &str) -> Option<&PairRecord> {
        self.cells
            .get(&(l.to_string(), r.to_string()))
            .map(|&i| &self.pairs[i])
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for p in &self.pairs {
            c.add(p.status);
        }
        c
    }

    /// Sum of the pairs' durations.
    pub fn time(&self) -> f64 {
        self.pairs.iter().map(|p| p.duration_s).sum()
    }
}

/// A stored run.
#[derive(Debug, Default)]
pub struct Run {
    pub tag: String,
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub groups: Vec<GroupRun>,
    /// One line per problem found in the tree.
    pub warnings: Vec<String>,
    /// Pair folders that could not be read at all (so are not drawn).
    pub unreadable: usize,
}

impl Run {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for g in &self.groups {
            for p in &g.pairs {
                c.add(p.status);
            }
        }
        c
    }

    pub fn records(&self) -> impl Iterator<Item = &PairRecord> {
        self.groups.iter().flat_map(|g| g.pairs.iter())
    }

    pub fn metrics(&self) -> impl Iterator<Item = &MetricRow> {
        self.groups.iter().flat_map(|g| g.metrics.iter())
    }
}

/// Read the run stored in `tag_dir`.
pub fn load(tag_dir: &Path) -> Run {
    let tag = tag_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut run = Run {
        tag,
        dir: tag_dir.to_path_buf(),
        ..Run::default()
    };
    run.manifest = read_manifest(tag_dir, &mut run.warnings);
    let mut csv_rows = read_results_csv(tag_dir, &run.tag, &mut run.warnings);

    let mut records = Vec::new();
    find_pairs(tag_dir, &mut csv_rows, &mut records, &mut run);
    let mut leftover: Vec<_> = csv_rows.into_keys().collect();
    leftover.sort();
    for (group, pair) in leftover {
        run.warnings.push(format!(
            "results.csv lists {group}/{pair} but its pair folder is missing; left out"
        ));
        run.unreadable += 1;
    }

    let mut by_group: BTreeMap<String, GroupRun> = BTreeMap::new();
    for rec in records {
        let g = by_group.entry(rec.group.clone()).or_default();
        g.pairs.push(rec);
    }
    for (name, mut g) in by_group {
        g.name = name;
        g.pairs.sort_by(|a, b| a.pair.cmp(&b.pair));
        g.pairs.dedup_by(|a, b| a.pair == b.pair);
        let mut locals: Vec<String> = g.pairs.iter().map(|p| p.local_test.clone()).collect();
        let mut remotes: Vec<String> = g.pairs.iter().map(|p| p.remote_test.clone()).collect();
        locals.sort();
        locals.dedup();
        remotes.sort();
        remotes.dedup();
        g.locals = locals;
        g.remotes = remotes;
        for (i, p) in g.pairs.iter().enumerate() {
            g.cells
                .insert((p.local_test.clone(), p.remote_test.clone()), i);
        }
        g.metrics = read_metrics(tag_dir, &g.pairs, &mut run.warnings);
        run.groups.push(g);
    }
    if run.groups.is_empty() && run.unreadable == 0 {
        run.warnings.push(format!(
            "no pair results in '{}': the run has not finished any pair",
            tag_dir.display()
        ));
    }
    run
}

fn read_manifest(tag_dir: &Path, warnings: &mut Vec<String>) -> Manifest {
    let path = tag_dir.join("run.json");
    match fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(m) => m,
            Err(e) => {
                warnings.push(format!(
                    "run.json is damaged ({e}); the report leaves out the run's command line, times and hosts"
                ));
                Manifest::default()
            }
        },
        Err(_) => {
            warnings.push(
                "run.json is missing; the report leaves out the run's command line, times and hosts"
                    .to_string(),
            );
            Manifest::default()
        }
    }
}

type CsvRows = HashMap<(String, String), PairRecord>;

/// The rows of results.csv by (group, pair); used only where a pair's own record is
/// missing or damaged.
fn read_results_csv(tag_dir: &Path, tag: &str, warnings: &mut Vec<String>) -> CsvRows {
    let mut rows = HashMap::new();
    let path = tag_dir.join("results.csv");
    let mut rdr = match csv::ReaderBuilder::new().flexible(true).from_path(&path) {
        Ok(r) => r,
        Err(_) => {
            warnings.push("results.csv is missing; it is rebuilt from the pair folders".into());
            return rows;
        }
    };
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            warnings.push(format!(
                "results.csv is damaged ({e}); it is rebuilt from the pair folders"
            ));
            return rows;
        }
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(group_i), Some(pair_i), Some(status_i)) = (col("group"), col("pair"), col("status"))
    else {
        warnings.push(
            "results.csv has no group/pair/status columns (damaged); it is rebuilt from the pair folders"
                .into(),
        );
        return rows;
    };
    let mut damaged_lines = Vec::new();
    for (n, rec) in rdr.records().enumerate() {
        let line = n + 2;
        let Ok(rec) = rec else {
            damaged_lines.push(line);
            continue;
        };
        let get = |name: &str| col(name).and_then(|i| rec.get(i)).unwrap_or("").to_string();
        let (Some(group), Some(pair), Some(status)) = (
            rec.get(group_i),
            rec.get(pair_i),
            rec.get(status_i).and_then(Status::from_marker),
        ) else {
            damaged_lines.push(line);
            continue;
        };
        let (l, r) = split_pair(pair);
        let local_test = Some(get("local_test"))
            .filter(|s| !s.is_empty())
            .unwrap_or(l);
        let remote_test = Some(get("remote_test"))
            .filter(|s| !s.is_empty())
            .unwrap_or(r);
        let record = PairRecord {
            tag: Some(get("tag"))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| tag.to_string()),
            group: group.to_string(),
            local_test,
            remote_test,
            pair: pair.to_string(),
            status,
            reason: get("reason"),
            local_exit: get("local_exit").parse().ok(),
            remote_exit: get("remote_exit").parse().ok(),
            remote_ended: match get("remote_ended").as_str() {
                "self" => Some(results::Ended::OnItsOwn),
                "terminated" => Some(results::Ended::Terminated),
                _ => None,
            },
            started_at: get("started_at"),
            duration_s: get("duration_s").parse().unwrap_or(0.0),
            remote_host: get("remote_host"),
            attempt: get("attempt").parse().unwrap_or(1),
            scripts_hash: String::new(),
        };
        rows.insert((group.to_string(), pair.to_string()), record);
    }
    if !damaged_lines.is_empty() {
        let shown: Vec<String> = damaged_lines
            .iter()
            .take(5)
            .map(|l| l.to_string())
            .collect();
        warnings.push(format!(
            "results.csv is damaged (line{} {}{}); it is rebuilt from the pair folders",
            if damaged_lines.len() > 1 { "s" } else { "" },
            shown.join(", "),
            if damaged_lines.len() > 5 { ", ..." } else { "" }
        ));
    }
    rows
}

/// `L_x_R` split at its first `_x_` (only used when nothing better is known).
fn split_pair(pair: &str) -> (String, String) {
    match pair.split_once("_x_") {
        Some((l, r)) => (l.to_string(), r.to_string()),
        None => (pair.to_string(), String::new()),
    }
}

fn marker_of(dir: &Path) -> Option<Status> {
    Status::ALL
        .into_iter()
        .find(|s| dir.join(s.marker()).is_file())
}

/// A folder that is, or should be, a pair folder.
struct Candidate {
    dir: PathBuf,
    group: String,
    name: String,
    has_json: bool,
    marker: Option<Status>,
}

/// Walk the tag folder for pair folders (a folder with `pair.json` or a marker, or a
/// `*_x_*` folder with a `local/` inside), below group folders of any depth. Pair folders
/// are not entered, so the walk costs a few file checks per pair; their records are then
/// read in parallel.
fn find_pairs(tag_dir: &Path, csv_rows: &mut CsvRows, out: &mut Vec<PairRecord>, run: &mut Run) {
    let mut found = Vec::new();
    let mut walker = walkdir::WalkDir::new(tag_dir)
        .min_depth(1)
        .max_depth(32)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walker.next() {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden folders are unfinished pairs and temporary files. `plots/` and `hooks/`
        // hold files only (so nothing in them looks like a pair) and are walked through:
        // a group may be named `plots` or `hooks` too.
        if name.starts_with('.') {
            walker.skip_current_dir();
            continue;
        }
        let dir = entry.path();
        let has_json = dir.join("pair.json").is_file();
        let marker = marker_of(dir);
        let looks_like_pair =
            || has_json || marker.is_some() || (name.contains("_x_") && dir.join("local").is_dir());
        if !looks_like_pair() {
            continue;
        }
        walker.skip_current_dir();
        let Some(group) = dir
            .parent()
            .and_then(|p| p.strip_prefix(tag_dir).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|g| !g.is_empty())
        else {
            continue;
        };
        found.push(Candidate {
            dir: dir.to_path_buf(),
            group,
            name,
            has_json,
            marker,
        });
    }
    let records: Vec<Option<PairRecord>> = found
        .par_iter()
        .map(|c| c.has_json.then(|| results::read_record(&c.dir)).flatten())
        .collect();
    for (c, record) in found.into_iter().zip(records) {
        if let Some(rec) = settle(c, record, csv_rows, run) {
            out.push(rec);
        }
    }
}

/// The record of a candidate pair folder, with a warning for each thing wrong with it.
fn settle(
    c: Candidate,
    record: Option<PairRecord>,
    csv_rows: &mut CsvRows,
    run: &mut Run,
) -> Option<PairRecord> {
    let Candidate {
        dir,
        group,
        name,
        has_json,
        marker,
    } = c;
    let id = format!("{group}/{name}");
    let from_csv = csv_rows.remove(&(group.clone(), name.clone()));
    let Some(status) = marker else {
        run.warnings.push(format!(
            "{id}: pair folder has no SUCCESS, FAILED or ERROR marker (damaged); left out"
        ));
        run.unreadable += 1;
        return None;
    };
    let damaged = if has_json { "damaged" } else { "missing" };
    let mut rec = match (record, from_csv) {
        (Some(r), _) => r,
        (None, Some(r)) => {
            run.warnings.push(format!(
                "{id}: pair.json is {damaged}; its row in results.csv is used"
            ));
            r
        }
        (None, None) => {
            run.warnings.push(format!(
                "{id}: pair.json is {damaged} and results.csv has no row for it; shown from its marker"
            ));
            let marker_text = fs::read_to_string(dir.join(status.marker())).unwrap_or_default();
            let (l, r) = split_pair(&name);
            PairRecord {
                tag: run.tag.clone(),
                group: group.clone(),
                local_test: l,
                remote_test: r,
                pair: name.clone(),
                status,
                reason: marker_text
                    .trim()
                    .split_once(' ')
                    .map(|(_, r)| r.to_string())
                    .unwrap_or_default(),
                local_exit: read_exit(&dir.join("local")),
                remote_exit: read_exit(&dir.join("remote")),
                remote_ended: None,
                started_at: String::new(),
                duration_s: 0.0,
                remote_host: String::new(),
                attempt: 1,
                scripts_hash: String::new(),
            }
        }
    };
    // The folder is the truth: it is where links point and where the marker is.
    rec.group = group;
    rec.pair = name;
    if rec.status != status {
        run.warnings.push(format!(
            "{id}: its marker says {status} but pair.json says {}; the marker wins",
            rec.status
        ));
        rec.status = status;
    }
    if !rec.duration_s.is_finite() || rec.duration_s < 0.0 {
        rec.duration_s = 0.0;
    }
    Some(rec)
}

fn read_exit(side: &Path) -> Option<i32> {
    fs::read_to_string(side.join("exit_code"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn read_metrics(
    tag_dir: &Path,
    pairs: &[PairRecord],
    warnings: &mut Vec<String>,
) -> Vec<MetricRow> {
    let per_pair: Vec<(Vec<MetricRow>, Vec<String>)> = pairs
        .par_iter()
        .map(|r| {
            let dir = tag_dir.join(&r.group).join(&r.pair);
            let mut rows = Vec::new();
            let mut problems = Vec::new();
            for side in ["local", "remote"] {
                let (found, bad) = results::read_side_metrics(&dir.join(side).join("metrics.csv"));
                if bad > 0 {
                    problems.push(format!(
                        "{}/{}: {side}/metrics.csv: {bad} line{} not `name,value[,unit]` with a number; skipped",
                        r.group,
                        r.pair,
                        if bad == 1 { " is" } else { "s are" }
                    ));
                }
                rows.extend(found.into_iter().map(|(name, value, unit)| MetricRow {
                    tag: r.tag.clone(),
                    group: r.group.clone(),
                    pair: r.pair.clone(),
                    side: side.to_string(),
                    name,
                    value,
                    unit,
                    attempt: r.attempt,
                }));
            }
            (rows, problems)
        })
        .collect();
    let mut out = Vec::new();
    for (rows, problems) in per_pair {
        out.extend(rows);
        warnings.extend(problems);
    }
    out
}
