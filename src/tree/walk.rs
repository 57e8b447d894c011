//! The one walker of a result tree: every run folder below a tag folder (a pair folder,
//! or a variant folder below it, in group folders of any depth), its record, its earlier
//! attempts and its metric values, read without following links. A damaged tree (a
//! missing or garbled `pair.json`, a missing marker, two markers, a deleted `local/`, a
//! link where pairbench's files belong) is read as far as it can be, with one problem
//! line per thing wrong; the run, the report, stats, compare and make-style planning all
//! read through it. See the README, "The result tree".

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use super::layout::{EXIT_FILE, RESERVED, SIDES, Tree};
use super::nofollow::{self, Kind};
use super::record::{Counts, MetricRow, MetricRun, PairRecord, Status};
use super::tables::{self, RunKey, run_key};

/// One run folder found, with its record.
#[derive(Debug, Clone)]
pub struct Found {
    pub dir: PathBuf,
    pub rec: PairRecord,
    /// Rebuilt from results.csv or the marker: its `pair.json` is missing or damaged.
    pub recovered: bool,
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walked {
    /// The latest attempt of every run, sorted by group, pair and variant.
    pub runs: Vec<Found>,
    /// Earlier attempts (`attempts/<n>/`).
    pub attempts: Vec<Found>,
    /// One line per problem found.
    pub problems: Vec<String>,
    /// Run folders (or results.csv rows) that could not be read at all, so are not shown.
    pub left_out: usize,
    /// Their metric values, once read (a walk's runs are not changed after it).
    metrics: OnceLock<Metrics>,
}

/// The metric values of a walk's runs and the problems found reading them.
#[derive(Debug, Default)]
struct Metrics {
    /// The latest attempts' values, then the earlier attempts'.
    rows: Vec<MetricRow>,
    problems: Vec<String>,
    /// How many rows and problems are of the latest attempts.
    of_latest: (usize, usize),
}

impl Walked {
    /// Every record, earlier attempts included, sorted by group, pair, variant, attempt:
    /// the rows of results.csv.
    pub fn all_records(&self) -> Vec<&PairRecord> {
        let mut v: Vec<&PairRecord> = self
            .runs
            .iter()
            .chain(self.attempts.iter())
            .map(|f| &f.rec)
            .collect();
        v.sort_by(|a, b| {
            (&a.group, &a.pair, &a.variant, a.attempt)
                .cmp(&(&b.group, &b.pair, &b.variant, b.attempt))
        });
        v
    }

    /// The latest attempt of each run.
    pub fn latest(&self) -> impl Iterator<Item = &PairRecord> {
        self.runs.iter().map(|f| &f.rec)
    }

    pub fn counts(&self) -> Counts {
        Counts::of(self.latest())
    }

    /// The metric values of the latest attempts (`with_attempts`: of every attempt), and
    /// one problem line per side file with lines that are not metrics. Read once (every
    /// side's metrics.csv), then kept: a run's tables and its report share them.
    pub fn metrics(&self, with_attempts: bool) -> (&[MetricRow], &[String]) {
        let m = self.metrics.get_or_init(|| self.read_metrics());
        if with_attempts {
            (&m.rows, &m.problems)
        } else {
            (&m.rows[..m.of_latest.0], &m.problems[..m.of_latest.1])
        }
    }

    /// The metric values of the latest attempts and their problems, as [`Walked::metrics`],
    /// taken out of the walk (not copied).
    pub fn take_metrics(&mut self) -> (Vec<MetricRow>, Vec<String>) {
        self.metrics(false);
        let mut m = self.metrics.take().unwrap_or_default();
        m.rows.truncate(m.of_latest.0);
        m.problems.truncate(m.of_latest.1);
        (m.rows, m.problems)
    }

    /// Read every run's values: the latest attempts' first, then the earlier attempts'.
    fn read_metrics(&self) -> Metrics {
        let found: Vec<&Found> = self.runs.iter().chain(self.attempts.iter()).collect();
        let per_run: Vec<(Vec<MetricRow>, Vec<String>)> = found
            .par_iter()
            .map(|f| {
                let run = Arc::new(MetricRun::of(&f.rec));
                let mut rows = MetricRow::own_of(&f.rec, &run);
                let mut problems = Vec::new();
                for side in SIDES {
                    let rel = Path::new(side).join("metrics.csv");
                    let Ok(bytes) = nofollow::read_beneath(&f.dir, &rel) else {
                        continue;
                    };
                    let (found, bad) = tables::parse_side_metrics(&bytes);
                    if bad > 0 {
                        problems.push(format!(
                            "{}: {side}/metrics.csv: {bad} line{} not `name,value[,unit]` with a number; skipped",
                            f.rec.id(),
                            if bad == 1 { " is" } else { "s are" }
                        ));
                    }
                    let own = f.rec.resources.get(side);
                    let mut taken = 0;
                    for (name, value, unit) in found {
                        // pairbench's own names are its own measurements.
                        if own.is_some_and(|o| o.contains_key(&name)) {
                            taken += 1;
                            continue;
                        }
                        rows.push(MetricRow::of(&run, side, name, value, unit));
                    }
                    if taken > 0 {
                        problems.push(format!(
                            "{}: {side}/metrics.csv: {taken} value{} under the name of pairbench's own measurements skipped (docs/resources.md)",
                            f.rec.id(),
                            if taken == 1 { "" } else { "s" }
                        ));
                    }
                }
                (rows, problems)
            })
            .collect();
        let mut m = Metrics {
            rows: Vec::with_capacity(per_run.iter().map(|(rows, _)| rows.len()).sum()),
            ..Metrics::default()
        };
        for (i, (rows, p)) in per_run.into_iter().enumerate() {
            if i == self.runs.len() {
                m.of_latest = (m.rows.len(), m.problems.len());
            }
            m.rows.extend(rows);
            m.problems.extend(p);
        }
        if self.attempts.is_empty() {
            m.of_latest = (m.rows.len(), m.problems.len());
        }
        m
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

/// Parameters, repetition and warm-up flag of a variant folder path (`A=1,B=x%2Fy/rep-2`).
pub fn parse_variant(variant: &str) -> (BTreeMap<String, String>, Option<u32>, bool) {
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

/// A folder that is, or should be, a run folder.
struct Candidate {
    dir: PathBuf,
    /// Below the tag folder.
    rel: PathBuf,
    json: Kind,
    /// Marker files (regular files), and markers that are something else (a link).
    markers: Vec<Status>,
    odd_markers: Vec<Status>,
    sides: [Kind; 2],
}

fn candidate(dir: &Path, rel: &Path) -> Candidate {
    let mut markers = Vec::new();
    let mut odd_markers = Vec::new();
    for s in Status::ALL {
        match nofollow::kind(&dir.join(s.marker())) {
            Kind::File => markers.push(s),
            Kind::Missing => {}
            _ => odd_markers.push(s),
        }
    }
    Candidate {
        dir: dir.to_path_buf(),
        rel: rel.to_path_buf(),
        json: nofollow::kind(&dir.join("pair.json")),
        markers,
        odd_markers,
        sides: SIDES.map(|s| nofollow::kind(&dir.join(s))),
    }
}

/// The record in `dir/pair.json`, never read through a link.
pub fn read_record(dir: &Path) -> Option<PairRecord> {
    let bytes = nofollow::read_beneath(dir, Path::new("pair.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Walk the tag folder `tag_dir`.
pub fn walk(tag_dir: &Path) -> Walked {
    let tree = Tree::at(tag_dir);
    let mut out = Walked::default();
    let (mut csv_rows, csv_problems) = tables::read_results(tag_dir, &tree.tag);
    let csv_missing = !csv_problems.is_empty();
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
        // Hidden folders are unfinished runs and temporary files; the tag level's own
        // folders (plots/) hold no group: group names cannot start with them.
        if name.starts_with('.') || (entry.depth() == 1 && RESERVED.contains(&name.as_str())) {
            walker.skip_current_dir();
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(tag_dir) else {
            continue;
        };
        let c = candidate(entry.path(), rel);
        let side_dir = c.sides.contains(&Kind::Dir);
        let looks_like_run = c.json != Kind::Missing
            || !c.markers.is_empty()
            || !c.odd_markers.is_empty()
            || ((name.contains("_x_") || is_variant_part(&name)) && side_dir);
        if !looks_like_run {
            continue;
        }
        walker.skip_current_dir();
        found.push(c);
    }
    let records: Vec<(Option<PairRecord>, Vec<Found>)> = found
        .par_iter()
        .map(|c| {
            let rec = (c.json == Kind::File)
                .then(|| read_record(&c.dir))
                .flatten();
            (rec, read_attempts(&c.dir))
        })
        .collect();
    out.runs.reserve_exact(found.len());
    for (c, (record, attempts)) in found.into_iter().zip(records) {
        if let Some(f) = settle(c, record, &mut csv_rows, &tree.tag, &mut out) {
            out.runs.push(f);
            out.attempts.extend(attempts);
        }
    }
    let mut leftover: Vec<_> = csv_rows.into_iter().collect();
    leftover.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, rec) in leftover {
        out.problems.push(format!(
            "results.csv lists {} but its folder is missing; left out",
            rec.id()
        ));
        out.left_out += 1;
    }
    // A missing results.csv is only worth a word when there are runs it should list.
    if !(csv_missing && out.runs.is_empty()) {
        out.problems.splice(0..0, csv_problems);
    }
    out.runs.sort_by(|a, b| {
        (&a.rec.group, &a.rec.pair, &a.rec.variant).cmp(&(
            &b.rec.group,
            &b.rec.pair,
            &b.rec.variant,
        ))
    });
    out
}

/// The earlier attempts kept in a run folder.
fn read_attempts(dir: &Path) -> Vec<Found> {
    let adir = Tree::attempts(dir);
    if nofollow::kind(&adir) != Kind::Dir {
        return Vec::new();
    }
    let Ok(rd) = std::fs::read_dir(&adir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            read_record(&e.path()).map(|rec| Found {
                dir: e.path(),
                rec,
                recovered: false,
            })
        })
        .collect()
}

fn read_exit(dir: &Path, side: &str) -> Option<i32> {
    let bytes = nofollow::read_beneath(dir, &Path::new(side).join(EXIT_FILE)).ok()?;
    String::from_utf8_lossy(&bytes).trim().parse().ok()
}

/// The record of a candidate run folder, with a problem line for each thing wrong.
fn settle(
    c: Candidate,
    record: Option<PairRecord>,
    csv_rows: &mut HashMap<RunKey, PairRecord>,
    tag: &str,
    out: &mut Walked,
) -> Option<Found> {
    let id = c.rel.to_string_lossy().into_owned();
    // Where the folder is, unless its record says the same with certainty.
    let at = |r: &PairRecord| c.rel == Path::new(&r.group).join(&r.pair).join(&r.variant);
    let (group, pair, variant) = match &record {
        Some(r) if at(r) => (r.group.clone(), r.pair.clone(), r.variant.clone()),
        _ => match split_location(&c.rel) {
            Some(loc) => loc,
            None => {
                out.problems.push(format!(
                    "{id}: a pair folder directly in the tag folder, outside any group; left out"
                ));
                out.left_out += 1;
                return None;
            }
        },
    };
    let from_csv = csv_rows.remove(&run_key(&group, &pair, &variant));
    for s in &c.odd_markers {
        out.problems.push(format!(
            "{id}: its {s} marker is a link or not a file (not followed); ignored"
        ));
    }
    let status = match (c.markers.as_slice(), &record) {
        ([], _) => {
            out.problems.push(format!(
                "{id}: pair folder has no SUCCESS, FAILED or ERROR marker (damaged); left out"
            ));
            out.left_out += 1;
            return None;
        }
        ([one], _) => *one,
        (many, rec) => {
            let names: Vec<&str> = many.iter().map(|s| s.marker()).collect();
            // pair.json says which one pairbench wrote; otherwise the worst.
            let pick = rec
                .as_ref()
                .map(|r| r.status)
                .filter(|s| many.contains(s))
                .unwrap_or_else(|| many.iter().copied().max().unwrap_or(Status::Error));
            out.problems.push(format!(
                "{id}: pair folder has {} markers ({}), one was planted; shown as {pick}",
                many.len(),
                names.join(", ")
            ));
            pick
        }
    };
    for (side, k) in SIDES.iter().zip(c.sides) {
        match k {
            Kind::Dir => {}
            Kind::Missing => out
                .problems
                .push(format!("{id}: its {side}/ folder is missing (deleted?)")),
            _ => out.problems.push(format!(
                "{id}: its {side}/ is a link or a file, not a folder (not followed)"
            )),
        }
    }
    let damaged = match c.json {
        Kind::Missing => "missing",
        Kind::File => "damaged",
        _ => "a link (not followed)",
    };
    let recovered = record.is_none();
    let mut rec = match (record, from_csv) {
        (Some(r), _) => r,
        (None, Some(r)) => {
            out.problems.push(format!(
                "{id}: pair.json is {damaged}; its row in results.csv is used"
            ));
            r
        }
        (None, None) => {
            out.problems.push(format!(
                "{id}: pair.json is {damaged} and results.csv has no row for it; shown from its marker"
            ));
            let marker_text = nofollow::read_beneath(&c.dir, Path::new(status.marker()))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let mut r = PairRecord::known_only_by_place(tag, &group, &pair, &variant, status);
            r.reason = marker_text
                .trim()
                .split_once(' ')
                .map(|(_, r)| r.to_string())
                .unwrap_or_default();
            r.local_exit = read_exit(&c.dir, "local");
            r.remote_exit = read_exit(&c.dir, "remote");
            r
        }
    };
    // The folder is the truth: it is where links point and where the marker is.
    rec.group = group;
    rec.pair = pair;
    rec.variant = variant;
    if rec.status != status && c.markers.len() == 1 {
        out.problems.push(format!(
            "{id}: its marker says {status} but pair.json says {}; the marker wins",
            rec.status
        ));
    }
    rec.status = status;
    if !rec.duration_s.is_finite() || rec.duration_s < 0.0 {
        rec.duration_s = 0.0;
    }
    Some(Found {
        dir: c.dir,
        rec,
        recovered,
    })
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
        let (params, rep, warm) = parse_variant("N=1,M=x%2Fy/warmup-3");
        assert_eq!(params["M"], "x/y");
        assert_eq!((rep, warm), (Some(3), true));
    }
}
