//! The run's tables, written by one table writer: `results.csv` (one row per run of a
//! pair, every attempt), `metrics.csv` (one row per metric value) and `stats.csv`; the
//! appender that adds a results.csv row as soon as a pair is committed; and the readers
//! of results.csv (the walker's fallback for a damaged record) and of a side's
//! `metrics.csv`. See the README, "The result tree".

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::layout::variant_rel;
use super::record::{Ended, MetricRow, PairRecord, Status};

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

/// Encode a table (a header and its rows) as CSV.
pub fn encode<H, R, F>(header: H, rows: R) -> std::io::Result<Vec<u8>>
where
    H: IntoIterator,
    H::Item: AsRef<[u8]>,
    R: IntoIterator<Item = F>,
    F: IntoIterator,
    F::Item: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(std::io::Error::other)?;
    for r in rows {
        w.write_record(r).map_err(std::io::Error::other)?;
    }
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Write a table atomically, streamed row by row to its file.
pub fn write_table<H, R, F>(path: &Path, header: H, rows: R) -> std::io::Result<()>
where
    H: IntoIterator,
    H::Item: AsRef<[u8]>,
    R: IntoIterator<Item = F>,
    F: IntoIterator,
    F::Item: AsRef<[u8]>,
{
    // The CSV writer buffers what it writes to the file.
    super::nofollow::write_atomic_with(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(header).map_err(std::io::Error::other)?;
        for r in rows {
            w.write_record(r).map_err(std::io::Error::other)?;
        }
        w.flush()
    })
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
pub fn param_names<'a>(records: impl IntoIterator<Item = &'a PairRecord>) -> Vec<String> {
    let set: BTreeSet<&String> = records.into_iter().flat_map(|r| r.params.keys()).collect();
    set.into_iter().cloned().collect()
}

/// The columns both tables end with: `repetition`, `warmup`, then each parameter.
fn variant_columns<'a>(
    repetition: Option<u32>,
    warmup: bool,
    params: &'a BTreeMap<String, String>,
    names: &'a [String],
) -> impl Iterator<Item = String> + 'a {
    [
        repetition.map(|r| r.to_string()).unwrap_or_default(),
        warmup.to_string(),
    ]
    .into_iter()
    .chain(
        names
            .iter()
            .map(|n| params.get(n).cloned().unwrap_or_default()),
    )
}

fn results_row(r: &PairRecord, param_names: &[String]) -> Vec<String> {
    let opt = |v: Option<i32>| v.map(|c| c.to_string()).unwrap_or_default();
    [
        r.tag.clone(),
        r.group.clone(),
        r.local_test.clone(),
        r.remote_test.clone(),
        r.pair.clone(),
        r.status.marker().to_string(),
        r.reason.clone(),
        opt(r.local_exit),
        opt(r.remote_exit),
        r.remote_ended
            .map(|e| e.as_str().to_string())
            .unwrap_or_default(),
        r.started_at.clone(),
        format!("{:.3}", r.duration_s),
        r.remote_host.clone(),
        r.attempt.to_string(),
        r.flaky.to_string(),
    ]
    .into_iter()
    .chain(variant_columns(
        r.repetition,
        r.warmup,
        &r.params,
        param_names,
    ))
    .collect()
}

/// Rewrite results.csv from `records`.
pub fn write_results(path: &Path, records: &[&PairRecord]) -> std::io::Result<()> {
    let params = param_names(records.iter().copied());
    write_table(
        path,
        results_header(&params),
        records.iter().map(|r| results_row(r, &params)),
    )
}

/// Adds results.csv rows while a run goes, so no committed pair is lost if the run dies.
pub struct Appender {
    file: std::fs::File,
    params: Vec<String>,
}

impl Appender {
    pub fn open(path: &Path, params: Vec<String>) -> std::io::Result<Appender> {
        let exists = std::fs::symlink_metadata(path).is_ok_and(|m| m.len() > 0);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(path)?;
        if !exists {
            file.write_all(&encode(results_header(&params), Vec::<Vec<String>>::new())?)?;
        }
        Ok(Appender { file, params })
    }

    pub fn append(&mut self, rec: &PairRecord) -> std::io::Result<()> {
        let bytes = encode(results_row(rec, &self.params), Vec::<Vec<String>>::new())?;
        self.file.write_all(&bytes)
    }
}

/// Write the run's metrics.csv: the §5 columns, then `repetition`, `warmup` and one
/// `param_<NAME>` column per parameter.
pub fn write_metrics(path: &Path, rows: &[MetricRow]) -> std::io::Result<()> {
    let params: Vec<String> = rows
        .iter()
        .flat_map(|r| r.run.params.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .cloned()
        .collect();
    let header = METRICS_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(["repetition".to_string(), "warmup".to_string()])
        .chain(params.iter().map(|n| format!("param_{n}")))
        .chain(["source".to_string()]);
    let body = rows.iter().map(|m| {
        let run = &m.run;
        [
            run.tag.clone(),
            run.group.clone(),
            run.pair.clone(),
            m.side.to_string(),
            m.name.to_string(),
            m.value.to_string(),
            m.unit.to_string(),
            run.attempt.to_string(),
        ]
        .into_iter()
        .chain(variant_columns(
            run.repetition,
            run.warmup,
            &run.params,
            &params,
        ))
        .chain([m.source.to_string()])
        .collect::<Vec<String>>()
    });
    write_table(path, header, body)
}

/// The `name,value[,unit]` rows of a side's metrics.csv; rows whose value is not a
/// number are skipped (a header, say) and counted.
pub fn parse_side_metrics(bytes: &[u8]) -> (Vec<(String, f64, String)>, usize) {
    let mut rows = Vec::new();
    let mut bad = 0;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
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

/// Which run a row or folder is: group, pair and the variant with its parameters sorted
/// (results.csv lists parameters by name, folders in the order they were given).
pub type RunKey = (String, String, String);

pub fn run_key(group: &str, pair: &str, variant: &str) -> RunKey {
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

/// `L_x_R` split at its first `_x_` (only used when nothing better is known).
pub fn split_pair(pair: &str) -> (String, String) {
    match pair.split_once("_x_") {
        Some((l, r)) => (l.to_string(), r.to_string()),
        None => (pair.to_string(), String::new()),
    }
}

/// The latest attempt of each run in results.csv (used only where a run's own record is
/// missing or damaged), and what is wrong with the file.
pub fn read_results(tag_dir: &Path, tag: &str) -> (HashMap<RunKey, PairRecord>, Vec<String>) {
    let mut rows: HashMap<RunKey, PairRecord> = HashMap::new();
    let mut problems = Vec::new();
    let Ok(bytes) = super::nofollow::read_beneath(tag_dir, Path::new("results.csv")) else {
        problems.push("results.csv is missing; it is rebuilt from the pair folders".into());
        return (rows, problems);
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(&bytes[..]);
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            problems.push(format!(
                "results.csv is damaged ({e}); it is rebuilt from the pair folders"
            ));
            return (rows, problems);
        }
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(group_i), Some(pair_i), Some(status_i)) = (col("group"), col("pair"), col("status"))
    else {
        problems.push(
            "results.csv has no group/pair/status columns (damaged); it is rebuilt from the pair folders"
                .into(),
        );
        return (rows, problems);
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
        let pv: Vec<(String, String)> = params.clone().into_iter().collect();
        let variant = variant_rel(&pv, repetition, warmup);
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
            remote_ended: Ended::parse(&get("remote_ended")),
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
            notes: Vec::new(),
            places: None,
            check: None,
            resources: Default::default(),
            unreached: false,
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
        problems.push(format!(
            "results.csv is damaged (line{} {}{}); it is rebuilt from the pair folders",
            if damaged_lines.len() > 1 { "s" } else { "" },
            shown.join(", "),
            if damaged_lines.len() > 5 { ", ..." } else { "" }
        ));
    }
    (rows, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_odd_names() {
        let line = encode(["a,b", "c\"d", "e"], Vec::<Vec<String>>::new()).unwrap();
        assert_eq!(line, b"\"a,b\",\"c\"\"d\",e\n");
        assert_eq!(
            run_key("g", "p", "B=2,A=1/rep-1"),
            run_key("g", "p", "A=1,B=2/rep-1")
        );
    }
}
