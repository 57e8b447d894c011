//! A stored run read back from its tree alone: `run.json`, each run folder's `pair.json`
//! and marker (falling back on `results.csv` where a record is missing or damaged), and
//! every side's `metrics.csv`. A run folder is a pair folder, or, with `--param` and
//! `--repeat`, a variant folder below it (`<pair>/SIZE=1k/rep-2`); earlier attempts
//! (`attempts/<n>/`) are left out: a report shows the latest attempt of each run.
//! Damage is reported as one warning per problem, never a panic; whatever can be read
//! is kept.

use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// The pairs the run planned, per group (absent in runs of older versions).
    pub plan: Vec<crate::plan::GroupPlan>,
}

/// One group of a stored run.
#[derive(Debug, Default)]
pub struct GroupRun {
    pub name: String,
    /// Local and remote test names, sorted.
    pub locals: Vec<String>,
    pub remotes: Vec<String>,
    /// Its runs (the latest attempt of each pair and variant), sorted by pair, variant.
    pub runs: Vec<PairRecord>,
    /// The metric values of those runs.
    pub metrics: Vec<MetricRow>,
    cells: HashMap<(String, String), Vec<usize>>,
    /// The pairs the run planned (`None`: not recorded, so every local × remote pair).
    planned: Option<HashSet<(String, String)>>,
}

/// What a matrix cell shows: the runs of one pair, summed up.
pub struct Cell<'a> {
    pub pair: &'a str,
    pub runs: Vec<&'a PairRecord>,
    /// The worst status of its runs (ERROR over FAILED over SUCCESS).
    pub status: Status,
    /// Mean duration of its measured runs (warm-ups only when there is nothing else).
    pub mean_s: f64,
    pub successes: usize,
    pub flaky: bool,
}

impl GroupRun {
    /// The runs of local test `l` with remote test `r`, if the pair has any.
    pub fn cell(&self, l: &str, r: &str) -> Option<Cell<'_>> {
        let idx = self.cells.get(&(l.to_string(), r.to_string()))?;
        let runs: Vec<&PairRecord> = idx.iter().map(|&i| &self.runs[i]).collect();
        let first = runs.first()?;
        let measured: Vec<f64> = runs
            .iter()
            .filter(|r| !r.warmup)
            .map(|r| r.duration_s)
            .collect();
        let durations = if measured.is_empty() {
            runs.iter().map(|r| r.duration_s).collect()
        } else {
            measured
        };
        Some(Cell {
            pair: &first.pair,
            status: runs.iter().map(|r| r.status).max().unwrap_or(Status::Error),
            mean_s: durations.iter().sum::<f64>() / durations.len().max(1) as f64,
            successes: runs.iter().filter(|r| r.status == Status::Success).count(),
            flaky: runs.iter().any(|r| r.flaky),
            runs,
        })
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for p in &self.runs {
            c.add(p.status);
        }
        c
    }

    /// Was the pair of `l` and `r` planned? A planned pair without a result never ran
    /// (an interrupted run); one that was not planned was not selected (`-f`, a shard).
    pub fn planned(&self, l: &str, r: &str) -> bool {
        self.planned
            .as_ref()
            .is_none_or(|p| p.contains(&(l.to_string(), r.to_string())))
    }

    /// Planned pairs that have no result.
    pub fn not_run(&self) -> usize {
        let mut n = 0;
        for l in &self.locals {
            for r in &self.remotes {
                if self.planned(l, r) && !self.cells.contains_key(&(l.clone(), r.clone())) {
                    n += 1;
                }
            }
        }
        n
    }

    /// Sum of the runs' durations.
    pub fn time(&self) -> f64 {
        self.runs.iter().map(|p| p.duration_s).sum()
    }
}

/// The folder of a run, below the tag folder.
pub fn run_dir(tag_dir: &Path, r: &PairRecord) -> PathBuf {
    let d = tag_dir.join(&r.group).join(&r.pair);
    if r.variant.is_empty() {
        d
    } else {
        d.join(&r.variant)
    }
}

/// The parts of a run's path below the tag folder (for links).
pub fn run_parts(r: &PairRecord) -> Vec<&str> {
    [r.group.as_str(), r.pair.as_str(), r.variant.as_str()]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect()
}

/// `pair`, or `pair [variant]` for one of several runs of a pair.
pub fn run_label(r: &PairRecord) -> String {
    if r.variant.is_empty() {
        r.pair.clone()
    } else {
        format!("{} [{}]", r.pair, r.variant)
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
    /// Run folders that could not be read at all (so are not drawn).
    pub unreadable: usize,
    /// Those of them that exist (a folder without a marker), to leave out of the tables.
    pub left_out: Vec<PathBuf>,
    /// Runs whose `pair.json` is missing or damaged, rebuilt from results.csv or the marker.
    pub recovered: Vec<PairRecord>,
}

impl Run {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for g in &self.groups {
            for p in &g.runs {
                c.add(p.status);
            }
        }
        c
    }

    pub fn records(&self) -> impl Iterator<Item = &PairRecord> {
        self.groups.iter().flat_map(|g| g.runs.iter())
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
    find_runs(tag_dir, &mut csv_rows, &mut records, &mut run);
    let mut leftover: Vec<_> = csv_rows.into_iter().collect();
    leftover.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, rec) in leftover {
        run.warnings.push(format!(
            "results.csv lists {} but its folder is missing; left out",
            rec.id()
        ));
        run.unreadable += 1;
    }

    let mut by_group: BTreeMap<String, GroupRun> = BTreeMap::new();
    for rec in records {
        let g = by_group.entry(rec.group.clone()).or_default();
        g.runs.push(rec);
    }
    // Planned groups with no finished pair are shown too (all not run).
    for plan in &run.manifest.plan {
        by_group.entry(plan.group.clone()).or_default();
    }
    for (name, mut g) in by_group {
        g.planned = planned_pairs(&run.manifest.plan, &name);
        g.name = name;
        g.runs.sort_by(run_order);
        g.runs
            .dedup_by(|a, b| a.pair == b.pair && a.variant == b.variant);
        let mut locals: Vec<String> = g.runs.iter().map(|p| p.local_test.clone()).collect();
        let mut remotes: Vec<String> = g.runs.iter().map(|p| p.remote_test.clone()).collect();
        if let Some(plan) = run.manifest.plan.iter().find(|p| p.group == g.name) {
            locals.extend(plan.local.iter().cloned());
            remotes.extend(plan.remote.iter().cloned());
        }
        locals.sort();
        locals.dedup();
        remotes.sort();
        remotes.dedup();
        g.locals = locals;
        g.remotes = remotes;
        for (i, p) in g.runs.iter().enumerate() {
            g.cells
                .entry((p.local_test.clone(), p.remote_test.clone()))
                .or_default()
                .push(i);
        }
        g.metrics = read_metrics(tag_dir, &g.runs, &mut run.warnings);
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

/// The pairs `plan` lists for `group`, if it has an entry for it.
fn planned_pairs(
    plan: &[crate::plan::GroupPlan],
    group: &str,
) -> Option<HashSet<(String, String)>> {
    let p = plan.iter().find(|p| p.group == group)?;
    let name = |names: &[String], i: u32| names.get(i as usize).cloned();
    Some(match &p.pairs {
        None => p
            .local
            .iter()
            .flat_map(|l| p.remote.iter().map(move |r| (l.clone(), r.clone())))
            .collect(),
        Some(pairs) => pairs
            .iter()
            .filter_map(|&(l, r)| Some((name(&p.local, l)?, name(&p.remote, r)?)))
            .collect(),
    })
}

/// The order runs are shown in: by pair, then parameter values (numbers by value), the
/// warm-ups before the measured runs, then by repetition number.
fn run_order(a: &PairRecord, b: &PairRecord) -> std::cmp::Ordering {
    a.pair
        .cmp(&b.pair)
        .then_with(|| {
            let mut pa = a.params.iter();
            let mut pb = b.params.iter();
            loop {
                match (pa.next(), pb.next()) {
                    (None, None) => return std::cmp::Ordering::Equal,
                    (None, Some(_)) => return std::cmp::Ordering::Less,
                    (Some(_), None) => return std::cmp::Ordering::Greater,
                    (Some((ka, va)), Some((kb, vb))) => {
                        let o = ka.cmp(kb).then_with(|| natural(va, vb));
                        if o.is_ne() {
                            return o;
                        }
                    }
                }
            }
        })
        .then_with(|| b.warmup.cmp(&a.warmup))
        .then_with(|| a.repetition.cmp(&b.repetition))
        .then_with(|| a.variant.cmp(&b.variant))
}

/// Numbers by value, anything else as text.
fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y).then_with(|| a.cmp(b)),
        _ => a.cmp(b),
    }
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

/// Which run a row or folder is: group, pair and the variant with its parameters sorted
/// (results.csv lists parameters by name, folders in the order they were given).
type RunKey = (String, String, String);

fn run_key(group: &str, pair: &str, variant: &str) -> RunKey {
    let norm: Vec<String> = variant
        .split('/')
        .map(|part| {
            if part.contains('=') {
                let mut kv: Vec<&str> = part.split(',').collect();
                kv.sort_unstable();
                kv.join(",")
            } else {
                part.to_string()
            }
        })
        .collect();
    (group.to_string(), pair.to_string(), norm.join("/"))
}

type CsvRows = HashMap<RunKey, PairRecord>;

/// The latest attempt of each run in results.csv; used only where a run's own record is
/// missing or damaged.
fn read_results_csv(tag_dir: &Path, tag: &str, warnings: &mut Vec<String>) -> CsvRows {
    let mut rows: CsvRows = HashMap::new();
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
    let param_cols: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.strip_prefix("param_").map(|n| (i, n.to_string())))
        .collect();
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
        let params: BTreeMap<String, String> = param_cols
            .iter()
            .filter_map(|(i, name)| {
                rec.get(*i)
                    .filter(|v| !v.is_empty())
                    .map(|v| (name.clone(), v.to_string()))
            })
            .collect();
        let repetition = get("repetition").parse().ok();
        let warmup = get("warmup") == "true";
        let variant = crate::plan::Variant {
            params: params.clone().into_iter().collect(),
            repetition,
            warmup,
        }
        .rel();
        let non_empty = |v: String, or: String| if v.is_empty() { or } else { v };
        let record = PairRecord {
            tag: non_empty(get("tag"), tag.to_string()),
            group: group.to_string(),
            local_test: non_empty(get("local_test"), l),
            remote_test: non_empty(get("remote_test"), r),
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
            flaky: get("flaky") == "true",
            variant: variant.clone(),
            params,
            repetition,
            warmup,
        };
        let key = run_key(group, pair, &variant);
        // Earlier attempts are rows too: keep the latest.
        if rows
            .get(&key)
            .is_none_or(|old| old.attempt <= record.attempt)
        {
            rows.insert(key, record);
        }
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

/// A folder name that is a level of a variant: `rep-2`, `warmup-1`, `SIZE=1k,CONNS=4`.
fn is_variant_part(name: &str) -> bool {
    let numbered = |p: &str| {
        name.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    numbered("rep-") || numbered("warmup-") || name.contains('=')
}

/// Group, pair and variant of a run folder from where it is (`rel` below the tag folder).
fn split_location(rel: &Path) -> Option<(String, String, String)> {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let mut variant = Vec::new();
    while variant.len() < 2 && parts.len() > 2 && parts.last().is_some_and(|p| is_variant_part(p)) {
        variant.insert(0, parts.pop()?);
    }
    let pair = parts.pop()?;
    if parts.is_empty() {
        return None;
    }
    Some((parts.join("/"), pair, variant.join("/")))
}

fn marker_of(dir: &Path) -> Option<Status> {
    Status::ALL
        .into_iter()
        .find(|s| dir.join(s.marker()).is_file())
}

/// A folder that is, or should be, a run folder.
struct Candidate {
    dir: PathBuf,
    /// Below the tag folder.
    rel: PathBuf,
    has_json: bool,
    marker: Option<Status>,
}

/// Walk the tag folder for run folders (a folder with `pair.json` or a marker, or a
/// `*_x_*` or variant folder with a `local/` inside), below group folders of any depth.
/// Run folders are not entered (so neither are their earlier attempts), so the walk
/// costs a few file checks per run; the records are then read in parallel.
fn find_runs(tag_dir: &Path, csv_rows: &mut CsvRows, out: &mut Vec<PairRecord>, run: &mut Run) {
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
        // Hidden folders are unfinished runs and temporary files. `plots/` and `hooks/`
        // hold nothing that looks like a run and are walked through: a group may be
        // named `plots` or `hooks` too.
        if name.starts_with('.') {
            walker.skip_current_dir();
            continue;
        }
        let dir = entry.path();
        let has_json = dir.join("pair.json").is_file();
        let marker = marker_of(dir);
        let looks_like_run = || {
            has_json
                || marker.is_some()
                || ((name.contains("_x_") || is_variant_part(&name)) && dir.join("local").is_dir())
        };
        if !looks_like_run() {
            continue;
        }
        walker.skip_current_dir();
        let Ok(rel) = dir.strip_prefix(tag_dir) else {
            continue;
        };
        found.push(Candidate {
            dir: dir.to_path_buf(),
            rel: rel.to_path_buf(),
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

/// The record of a candidate run folder, with a warning for each thing wrong with it.
fn settle(
    c: Candidate,
    record: Option<PairRecord>,
    csv_rows: &mut CsvRows,
    run: &mut Run,
) -> Option<PairRecord> {
    let id = c.rel.to_string_lossy().into_owned();
    // Where the folder is, unless its record says the same with certainty.
    let at = |r: &PairRecord| c.rel == Path::new(&r.group).join(&r.pair).join(&r.variant);
    let (group, pair, variant) = match &record {
        Some(r) if at(r) => (r.group.clone(), r.pair.clone(), r.variant.clone()),
        _ => match split_location(&c.rel) {
            Some(loc) => loc,
            None => {
                run.warnings.push(format!(
                    "{id}: a pair folder directly in the tag folder, outside any group; left out"
                ));
                run.unreadable += 1;
                return None;
            }
        },
    };
    let from_csv = csv_rows.remove(&run_key(&group, &pair, &variant));
    let Some(status) = c.marker else {
        run.warnings.push(format!(
            "{id}: pair folder has no SUCCESS, FAILED or ERROR marker (damaged); left out"
        ));
        run.unreadable += 1;
        run.left_out.push(c.dir);
        return None;
    };
    let damaged = if c.has_json { "damaged" } else { "missing" };
    let recovered = record.is_none();
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
            let marker_text = fs::read_to_string(c.dir.join(status.marker())).unwrap_or_default();
            let (l, r) = split_pair(&pair);
            let (params, repetition, warmup) = parse_variant(&variant);
            PairRecord {
                tag: run.tag.clone(),
                group: group.clone(),
                local_test: l,
                remote_test: r,
                pair: pair.clone(),
                status,
                reason: marker_text
                    .trim()
                    .split_once(' ')
                    .map(|(_, r)| r.to_string())
                    .unwrap_or_default(),
                local_exit: read_exit(&c.dir.join("local")),
                remote_exit: read_exit(&c.dir.join("remote")),
                remote_ended: None,
                started_at: String::new(),
                duration_s: 0.0,
                remote_host: String::new(),
                attempt: 1,
                scripts_hash: String::new(),
                flaky: false,
                variant: variant.clone(),
                params,
                repetition,
                warmup,
            }
        }
    };
    // The folder is the truth: it is where links point and where the marker is.
    rec.group = group;
    rec.pair = pair;
    rec.variant = variant;
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
    if recovered {
        run.recovered.push(rec.clone());
    }
    Some(rec)
}

/// Parameters, repetition and warm-up flag of a variant folder path (`A=1,B=x%2Fy/rep-2`).
fn parse_variant(variant: &str) -> (BTreeMap<String, String>, Option<u32>, bool) {
    let mut params = BTreeMap::new();
    let (mut repetition, mut warmup) = (None, false);
    for part in variant.split('/').filter(|p| !p.is_empty()) {
        if let Some(n) = part.strip_prefix("rep-").and_then(|n| n.parse().ok()) {
            repetition = Some(n);
        } else if let Some(n) = part.strip_prefix("warmup-").and_then(|n| n.parse().ok()) {
            repetition = Some(n);
            warmup = true;
        } else {
            for kv in part.split(',') {
                if let Some((k, v)) = kv.split_once('=') {
                    params.insert(k.to_string(), v.replace("%2F", "/").replace("%25", "%"));
                }
            }
        }
    }
    (params, repetition, warmup)
}

fn read_exit(side: &Path) -> Option<i32> {
    fs::read_to_string(side.join("exit_code"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn read_metrics(tag_dir: &Path, runs: &[PairRecord], warnings: &mut Vec<String>) -> Vec<MetricRow> {
    let per_run: Vec<(Vec<MetricRow>, Vec<String>)> = runs
        .par_iter()
        .map(|r| {
            let dir = run_dir(tag_dir, r);
            let mut rows = Vec::new();
            let mut problems = Vec::new();
            for side in ["local", "remote"] {
                let (found, bad) = results::read_side_metrics(&dir.join(side).join("metrics.csv"));
                if bad > 0 {
                    problems.push(format!(
                        "{}: {side}/metrics.csv: {bad} line{} not `name,value[,unit]` with a number; skipped",
                        r.id(),
                        if bad == 1 { " is" } else { "s are" }
                    ));
                }
                rows.extend(
                    found
                        .into_iter()
                        .map(|(name, value, unit)| MetricRow::of(r, side, name, value, unit)),
                );
            }
            (rows, problems)
        })
        .collect();
    let mut out = Vec::new();
    for (rows, problems) in per_run {
        out.extend(rows);
        warnings.extend(problems);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_split_into_group_pair_and_variant() {
        let s = |p: &str| split_location(Path::new(p));
        let t = |g: &str, p: &str, v: &str| Some((g.to_string(), p.to_string(), v.to_string()));
        assert_eq!(s("g/a_x_b"), t("g", "a_x_b", ""));
        assert_eq!(s("g/sub/a_x_b"), t("g/sub", "a_x_b", ""));
        assert_eq!(s("g/a_x_b/rep-2"), t("g", "a_x_b", "rep-2"));
        assert_eq!(
            s("g/a_x_b/N=1,M=x%2Fy/warmup-1"),
            t("g", "a_x_b", "N=1,M=x%2Fy/warmup-1")
        );
        assert_eq!(s("a_x_b"), None);
        assert_eq!(
            run_key("g", "p", "B=2,A=1/rep-1"),
            run_key("g", "p", "A=1,B=2/rep-1")
        );
        let rec = |variant: &str| {
            let (params, repetition, warmup) = parse_variant(variant);
            PairRecord {
                tag: String::new(),
                group: "g".into(),
                local_test: "a".into(),
                remote_test: "b".into(),
                pair: "a_x_b".into(),
                status: Status::Success,
                reason: String::new(),
                local_exit: None,
                remote_exit: None,
                remote_ended: None,
                started_at: String::new(),
                duration_s: 0.0,
                remote_host: String::new(),
                attempt: 1,
                scripts_hash: String::new(),
                flaky: false,
                variant: variant.into(),
                params,
                repetition,
                warmup,
            }
        };
        let mut runs: Vec<PairRecord> = ["N=10/rep-1", "N=5/rep-10", "N=5/rep-2", "N=5/warmup-1"]
            .into_iter()
            .map(rec)
            .collect();
        runs.sort_by(run_order);
        let order: Vec<&str> = runs.iter().map(|r| r.variant.as_str()).collect();
        assert_eq!(
            order,
            ["N=5/warmup-1", "N=5/rep-2", "N=5/rep-10", "N=10/rep-1"]
        );
        let (params, rep, warm) = parse_variant("N=1,M=x%2Fy/warmup-3");
        assert_eq!(params["M"], "x/y");
        assert_eq!((rep, warm), (Some(3), true));
    }
}
