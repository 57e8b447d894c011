//! The result tree (SPEC §3): pair folders that appear only complete, markers, the
//! per-pair record, `results.csv`, the run's `metrics.csv`, `run.json` and `latest`.
//!
//! Every pair folder holds a `pair.json` record; the run-level CSV files are rebuilt from
//! those records, so a tree is always its own source of truth.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Columns of results.csv, in order (never reordered; later columns are appended).
pub const RESULTS_COLUMNS: [&str; 15] = [
    "tag",
    "group",
    "local_test",
    "remote_test",
    "pair",
    "status",
    "reason",
    "local_exit",
    "remote_exit",
    "remote_ended",
    "started_at",
    "duration_s",
    "remote_host",
    "attempt",
    "flaky",
];

/// Columns of the run's metrics.csv.
pub const METRICS_COLUMNS: [&str; 8] = [
    "tag", "group", "pair", "side", "name", "value", "unit", "attempt",
];

/// The outcome of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Success,
    Failed,
    Error,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Success, Status::Failed, Status::Error];

    /// The marker file name.
    pub fn marker(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Failed => "FAILED",
            Status::Error => "ERROR",
        }
    }

    pub fn from_marker(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.marker() == s)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.marker())
    }
}

/// How the remote test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ended {
    /// Exited on its own.
    #[serde(rename = "self")]
    OnItsOwn,
    /// Terminated by pairbench (after the local test ended, or by kill_remote).
    Terminated,
}

impl Ended {
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::OnItsOwn => "self",
            Ended::Terminated => "terminated",
        }
    }
}

/// Everything known about one run of a pair: `pair.json`, and a row of results.csv.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairRecord {
    pub tag: String,
    pub group: String,
    pub local_test: String,
    pub remote_test: String,
    pub pair: String,
    pub status: Status,
    pub reason: String,
    pub local_exit: Option<i32>,
    pub remote_exit: Option<i32>,
    pub remote_ended: Option<Ended>,
    pub started_at: String,
    pub duration_s: f64,
    pub remote_host: String,
    pub attempt: u32,
    /// Content hash of the local and remote scripts when the result was made.
    #[serde(default)]
    pub scripts_hash: String,
    /// Passed after an earlier attempt failed (`--retries`).
    #[serde(default)]
    pub flaky: bool,
    /// The run's folder below the pair folder (`""`, or e.g. `SIZE=1k/rep-2`).
    #[serde(default)]
    pub variant: String,
    /// Parameter values of this run (`--param`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Repetition number (`--repeat`, `--warmup`), when there are several.
    #[serde(default)]
    pub repetition: Option<u32>,
    /// A warm-up run (left out of statistics).
    #[serde(default)]
    pub warmup: bool,
}

/// The header of results.csv: the SPEC §3 columns, `flaky`, `repetition`, `warmup`, then
/// one `param_<NAME>` column per parameter.
pub fn results_header(param_names: &[String]) -> Vec<String> {
    RESULTS_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(["repetition".to_string(), "warmup".to_string()])
        .chain(param_names.iter().map(|n| format!("param_{n}")))
        .collect()
}

/// Parameter names used by any of `records`, sorted.
pub fn param_names(records: &[PairRecord]) -> Vec<String> {
    let set: std::collections::BTreeSet<&String> =
        records.iter().flat_map(|r| r.params.keys()).collect();
    set.into_iter().cloned().collect()
}

impl PairRecord {
    fn csv_row(&self, param_names: &[String]) -> Vec<String> {
        let opt = |v: Option<i32>| v.map(|c| c.to_string()).unwrap_or_default();
        [
            self.tag.clone(),
            self.group.clone(),
            self.local_test.clone(),
            self.remote_test.clone(),
            self.pair.clone(),
            self.status.marker().to_string(),
            self.reason.clone(),
            opt(self.local_exit),
            opt(self.remote_exit),
            self.remote_ended
                .map(|e| e.as_str().to_string())
                .unwrap_or_default(),
            self.started_at.clone(),
            format!("{:.3}", self.duration_s),
            self.remote_host.clone(),
            self.attempt.to_string(),
            self.flaky.to_string(),
            self.repetition.map(|r| r.to_string()).unwrap_or_default(),
            self.warmup.to_string(),
        ]
        .into_iter()
        .chain(
            param_names
                .iter()
                .map(|n| self.params.get(n).cloned().unwrap_or_default()),
        )
        .collect()
    }

    /// `<group>/<pair>[/<variant>]`: one run of a pair.
    pub fn id(&self) -> String {
        if self.variant.is_empty() {
            format!("{}/{}", self.group, self.pair)
        } else {
            format!("{}/{}/{}", self.group, self.pair, self.variant)
        }
    }
}

/// The folder name of a pair: `<L>_x_<R>`, or, when that is too long for a file name,
/// its first 180 bytes and a hash of the whole.
pub fn pair_name(local: &str, remote: &str) -> String {
    let name = format!("{local}_x_{remote}");
    if name.len() <= 200 {
        return name;
    }
    let mut cut = 180;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{:016x}", &name[..cut], crate::plan::stable_hash(&name))
}

/// Paths of one run's tree.
#[derive(Debug, Clone)]
pub struct Tree {
    pub root: PathBuf,
    pub tag: String,
}

impl Tree {
    pub fn new(results_dir: &Path, tag: &str) -> Tree {
        Tree {
            root: results_dir.join(tag),
            tag: tag.to_string(),
        }
    }
    pub fn group(&self, group: &str) -> PathBuf {
        self.root.join(group)
    }
    pub fn pair(&self, group: &str, pair: &str) -> PathBuf {
        self.group(group).join(pair)
    }
    /// Where the run folder `dest` is written before it is complete.
    pub fn staging(dest: &Path) -> PathBuf {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        dest.with_file_name(format!(".{name}.partial"))
    }
    pub fn hook(&self, group: &str, hook: &str) -> PathBuf {
        self.group(group).join("hooks").join(hook)
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(".pairbench.lock")
    }
}

/// Write `contents` to `path` atomically (temporary file, then rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents)?;
    }
    fs::rename(&tmp, path)
}

/// The record of a finished pair folder, if it has one.
pub fn read_record(pair_dir: &Path) -> Option<PairRecord> {
    let text = fs::read(pair_dir.join("pair.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Finish a pair: write its record and marker into `staging`, then move it to `dest`.
/// An earlier result there is replaced, or, for a retry (`rec.attempt > 1`), kept as
/// `attempts/<n>/` inside the new folder.
pub fn commit_pair(staging: &Path, dest: &Path, rec: &PairRecord) -> std::io::Result<()> {
    if rec.attempt > 1 && dest.join("pair.json").exists() {
        let attempts = staging.join("attempts");
        fs::create_dir_all(&attempts)?;
        if dest.join("attempts").is_dir() {
            for e in fs::read_dir(dest.join("attempts"))?.flatten() {
                fs::rename(e.path(), attempts.join(e.file_name()))?;
            }
            fs::remove_dir(dest.join("attempts"))?;
        }
        let earlier = read_record(dest).map_or(rec.attempt - 1, |r| r.attempt);
        fs::rename(dest, attempts.join(earlier.to_string()))?;
    }
    let json = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
    fs::write(staging.join("pair.json"), json)?;
    let now = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let reason = rec.reason.replace(['\n', '\r'], " ");
    fs::write(
        staging.join(rec.status.marker()),
        format!("{now} {reason}\n"),
    )?;
    if dest.exists() {
        let old = dest.with_file_name(format!(
            ".{}.old",
            dest.file_name().unwrap_or_default().to_string_lossy()
        ));
        let _ = fs::remove_dir_all(&old);
        fs::rename(dest, &old)?;
        fs::rename(staging, dest)?;
        let _ = fs::remove_dir_all(&old);
    } else {
        fs::rename(staging, dest)?;
    }
    Ok(())
}

/// Every pair record below a tag folder, sorted by group, pair and attempt.
pub fn collect_records(tag_dir: &Path) -> Vec<PairRecord> {
    collect_records_with_dirs(tag_dir)
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

/// Every pair record with the folder it was read from (earlier attempts included).
pub fn collect_records_with_dirs(tag_dir: &Path) -> Vec<(PathBuf, PairRecord)> {
    let mut out = Vec::new();
    let mut walker = walkdir::WalkDir::new(tag_dir)
        .min_depth(1)
        .max_depth(10)
        .sort_by_file_name()
        .into_iter();
    while let Some(Ok(entry)) = walker.next() {
        if !entry.file_type().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if name.starts_with('.') || name == "hooks" || name == "plots" {
            walker.skip_current_dir();
            continue;
        }
        if let Some(rec) = read_record(entry.path()) {
            if let Ok(rd) = fs::read_dir(entry.path().join("attempts")) {
                for e in rd.flatten() {
                    if let Some(earlier) = read_record(&e.path()) {
                        out.push((e.path(), earlier));
                    }
                }
            }
            out.push((entry.path().to_path_buf(), rec));
            walker.skip_current_dir();
        }
    }
    out.sort_by(|(_, a), (_, b)| {
        (&a.group, &a.pair, a.attempt).cmp(&(&b.group, &b.pair, b.attempt))
    });
    out
}

/// An appender of results.csv rows, so no finished pair is lost if the run dies.
pub struct CsvAppender {
    file: fs::File,
    params: Vec<String>,
}

impl CsvAppender {
    pub fn open(path: &Path, params: Vec<String>) -> std::io::Result<CsvAppender> {
        let exists = path.metadata().is_ok_and(|m| m.len() > 0);
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        if !exists {
            file.write_all(csv_line(&results_header(&params))?.as_bytes())?;
        }
        Ok(CsvAppender { file, params })
    }
    pub fn append(&mut self, rec: &PairRecord) -> std::io::Result<()> {
        self.file
            .write_all(csv_line(&rec.csv_row(&self.params))?.as_bytes())
    }
}

fn csv_line(fields: &[String]) -> std::io::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields).map_err(std::io::Error::other)?;
    let bytes = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    String::from_utf8(bytes).map_err(std::io::Error::other)
}

/// Rewrite results.csv from the records of the tree.
pub fn write_results_csv(path: &Path, records: &[PairRecord]) -> std::io::Result<()> {
    let params = param_names(records);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(results_header(&params))
        .map_err(std::io::Error::other)?;
    for r in records {
        w.write_record(r.csv_row(&params))
            .map_err(std::io::Error::other)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    write_atomic(path, &bytes)
}

/// One metric value, as in the run's metrics.csv.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRow {
    pub tag: String,
    pub group: String,
    pub pair: String,
    pub side: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub attempt: u32,
    pub repetition: Option<u32>,
    pub warmup: bool,
    pub params: BTreeMap<String, String>,
    /// The run's folder below the pair folder.
    pub variant: String,
}

impl MetricRow {
    /// A value that side `side` of the run `r` reported.
    pub fn of(r: &PairRecord, side: &str, name: String, value: f64, unit: String) -> MetricRow {
        MetricRow {
            tag: r.tag.clone(),
            group: r.group.clone(),
            pair: r.pair.clone(),
            side: side.to_string(),
            name,
            value,
            unit,
            attempt: r.attempt,
            repetition: r.repetition,
            warmup: r.warmup,
            params: r.params.clone(),
            variant: r.variant.clone(),
        }
    }
}

/// The `name,value[,unit]` rows of a side's metrics.csv; rows whose value is not a
/// number are skipped (a header, say) and counted.
pub fn read_side_metrics(path: &Path) -> (Vec<(String, f64, String)>, usize) {
    let mut rows = Vec::new();
    let mut bad = 0;
    let Ok(mut rdr) = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
    else {
        return (rows, 0);
    };
    for rec in rdr.records() {
        let Ok(rec) = rec else {
            bad += 1;
            continue;
        };
        let name = rec.get(0).unwrap_or("").trim();
        let value = rec
            .get(1)
            .map(str::trim)
            .and_then(|v| v.parse::<f64>().ok());
        match value {
            Some(v) if !name.is_empty() && v.is_finite() => rows.push((
                name.to_string(),
                v,
                rec.get(2).unwrap_or("").trim().to_string(),
            )),
            _ => {
                if !(name == "name" && rec.get(1).map(str::trim) == Some("value")) {
                    bad += 1;
                }
            }
        }
    }
    (rows, bad)
}

/// All metric rows of the tree's pairs (every attempt).
pub fn collect_metrics(tag_dir: &Path) -> Vec<MetricRow> {
    let mut out = Vec::new();
    for (dir, r) in collect_records_with_dirs(tag_dir) {
        for side in ["local", "remote"] {
            let (rows, _) = read_side_metrics(&dir.join(side).join("metrics.csv"));
            out.extend(
                rows.into_iter()
                    .map(|(name, value, unit)| MetricRow::of(&r, side, name, value, unit)),
            );
        }
    }
    out
}

/// Write the run's metrics.csv: the §5 columns, then `repetition`, `warmup` and one
/// `param_<NAME>` column per parameter.
pub fn write_metrics_csv(path: &Path, rows: &[MetricRow]) -> std::io::Result<()> {
    let params: Vec<String> = rows
        .iter()
        .flat_map(|r| r.params.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .cloned()
        .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = METRICS_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(["repetition".to_string(), "warmup".to_string()])
        .chain(params.iter().map(|n| format!("param_{n}")));
    w.write_record(header).map_err(std::io::Error::other)?;
    for m in rows {
        let fixed = [
            m.tag.clone(),
            m.group.clone(),
            m.pair.clone(),
            m.side.clone(),
            m.name.clone(),
            m.value.to_string(),
            m.unit.clone(),
            m.attempt.to_string(),
            m.repetition.map(|r| r.to_string()).unwrap_or_default(),
            m.warmup.to_string(),
        ];
        let row = fixed.into_iter().chain(
            params
                .iter()
                .map(|n| m.params.get(n).cloned().unwrap_or_default()),
        );
        w.write_record(row).map_err(std::io::Error::other)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    write_atomic(path, &bytes)
}

/// Point `results/latest` at `tag` (atomically replaced).
pub fn link_latest(results_dir: &Path, tag: &str) -> std::io::Result<()> {
    let link = results_dir.join("latest");
    let tmp = results_dir.join(format!(".latest.tmp{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(tag, &tmp)?;
    fs::rename(&tmp, &link)
}

/// Resolve `latest` (or a tag) to a tag folder.
pub fn resolve_tag(results_dir: &Path, tag: &str) -> Result<(String, PathBuf), String> {
    let tag = if tag == "latest" {
        let link = results_dir.join("latest");
        fs::read_link(&link)
            .map_err(|_| {
                format!(
                    "no 'latest' run in '{}': run `pairbench run` first, or name a tag",
                    results_dir.display()
                )
            })?
            .to_string_lossy()
            .into_owned()
    } else {
        tag.to_string()
    };
    let dir = results_dir.join(&tag);
    if tag.contains('/') || tag.starts_with('.') || !dir.is_dir() {
        return Err(format!(
            "no run tagged '{tag}' in '{}': see the folders there, or use 'latest'",
            results_dir.display()
        ));
    }
    Ok((tag, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::from_marker(s.marker()), Some(s));
        }
        assert_eq!(Status::from_marker("DONE"), None);
    }

    #[test]
    fn long_pair_names_fit_in_a_file_name() {
        let l = "é".repeat(100);
        let r = "x".repeat(200);
        let n = pair_name(&l, &r);
        assert!(n.len() <= 200, "{}", n.len());
        assert_ne!(n, pair_name(&l, &"y".repeat(200)));
        assert_eq!(pair_name("a", "b"), "a_x_b");
    }

    #[test]
    fn csv_quotes_odd_names() {
        let line = csv_line(&["a,b".into(), "c\"d".into(), "e".into()]).unwrap();
        assert_eq!(line, "\"a,b\",\"c\"\"d\",e\n");
    }
}
