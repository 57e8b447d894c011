//! The records of a result tree: a pair's [`Status`], how its remote side [`Ended`], the
//! [`PairRecord`] kept as `pair.json` (and a row of results.csv), a [`MetricRow`] of the
//! run's metrics.csv, and [`Counts`] by status. See the README, "The result tree".

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::layout::SIDES;

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

    pub fn parse(s: &str) -> Option<Ended> {
        match s {
            "self" => Some(Ended::OnItsOwn),
            "terminated" => Some(Ended::Terminated),
            _ => None,
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
    /// What pairbench noticed but did not make the outcome (e.g. links a remote host sent,
    /// which are not recreated here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Where the run's scripts ran and what they were told about it, so that their output
    /// can be normalised after the run (`pairbench bless`, `check`; docs/regression.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub places: Option<Places>,
    /// What the regression check made of the run (a group with references).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckMark>,
    /// What each side's processes used (side → metric → value): pairbench's own
    /// metrics (docs/resources.md), rows of metrics.csv with source `pairbench`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, BTreeMap<String, f64>>,
    /// pairbench could not run it: no remote host could be reached (down, its key
    /// refused, the login refused). An ERROR that is not a result of the pair: a later
    /// run of the tag runs it again (docs/ssh.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreached: bool,
}

/// The paths and addresses a run's scripts were given (their environment, docs/groups-and-scripts.md):
/// each side's folder (the local one while the run was being written), the group's
/// scripts, the groups folder and the group's result folder on each side's machine, and
/// both hosts' addresses.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Places {
    pub local_dir: String,
    pub remote_dir: String,
    pub local_group_dir: String,
    pub remote_group_dir: String,
    pub local_root: String,
    pub remote_root: String,
    pub local_results: String,
    pub remote_results: String,
    pub remote_host: String,
    pub local_host: String,
}

/// What the regression check found for a run (docs/regression.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckResult {
    /// The run's output matches its reference.
    Matched,
    /// It differs (the pair is FAILED, `check.diff` says how).
    Differs,
    /// No reference, and none written: under CI the pair is FAILED.
    Missing,
    /// No reference: the output was written as a pending one (`<file>.new`).
    Pending,
}

/// The regression check of a run: what it found, and the outcome before it (a difference
/// turns SUCCESS into FAILED; `pairbench check` compares again from that outcome).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckMark {
    pub result: CheckResult,
    pub status: Status,
    pub reason: String,
}

impl PairRecord {
    /// A record of which only where it is and its status are known (its variant's
    /// parameters and repetition are read from the variant's folder name).
    pub fn known_only_by_place(
        tag: &str,
        group: &str,
        pair: &str,
        variant: &str,
        status: Status,
    ) -> PairRecord {
        let (local_test, remote_test) = super::tables::split_pair(pair);
        let (params, repetition, warmup) = super::walk::parse_variant(variant);
        PairRecord {
            tag: tag.to_string(),
            group: group.to_string(),
            local_test,
            remote_test,
            pair: pair.to_string(),
            status,
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
            variant: variant.to_string(),
            params,
            repetition,
            warmup,
            notes: Vec::new(),
            places: None,
            check: None,
            resources: Default::default(),
            unreached: false,
        }
    }

    /// The status and reason of the run before the regression check changed them.
    pub fn outcome(&self) -> (Status, &str) {
        match &self.check {
            Some(c) => (c.status, &c.reason),
            None => (self.status, &self.reason),
        }
    }

    /// `<group>/<pair>[/<variant>]`: one run of a pair.
    pub fn id(&self) -> String {
        run_id(&self.group, &self.pair, &self.variant)
    }
}

/// `<group>/<pair>[/<variant>]`, as [`PairRecord::id`] writes it.
pub fn run_id(group: &str, pair: &str, variant: &str) -> String {
    if variant.is_empty() {
        format!("{group}/{pair}")
    } else {
        format!("{group}/{pair}/{variant}")
    }
}

/// The run a metric value belongs to: what every value of one run shares, held once
/// for all of them (a run has 16 of pairbench's own values and any number of its
/// scripts'; a 10,000-pair run has 160,000 values).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRun {
    pub tag: String,
    pub group: String,
    pub pair: String,
    /// The run's folder below the pair folder.
    pub variant: String,
    pub attempt: u32,
    pub repetition: Option<u32>,
    pub warmup: bool,
    pub params: BTreeMap<String, String>,
    /// `<group>/<pair>[/<variant>]`, as [`PairRecord::id`].
    id: String,
}

impl MetricRun {
    pub fn of(r: &PairRecord) -> MetricRun {
        MetricRun {
            tag: r.tag.clone(),
            group: r.group.clone(),
            pair: r.pair.clone(),
            variant: r.variant.clone(),
            attempt: r.attempt,
            repetition: r.repetition,
            warmup: r.warmup,
            params: r.params.clone(),
            id: r.id(),
        }
    }

    /// The run, as [`PairRecord::id`].
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// One metric value, as in the run's metrics.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub run: Arc<MetricRun>,
    pub side: Cow<'static, str>,
    pub name: Cow<'static, str>,
    pub value: f64,
    pub unit: Cow<'static, str>,
    /// `script` (a side's metrics.csv) or `pairbench` (its own measurements).
    pub source: &'static str,
}

/// The source of a metric a script reported.
pub const SCRIPT: &str = "script";
/// The source of pairbench's own measurements (docs/resources.md).
pub const PAIRBENCH: &str = "pairbench";

/// `s` as one of `known` when it is one (no copy), else as its own string.
fn known_or_owned(s: &str, known: &[&'static str]) -> Cow<'static, str> {
    match known.iter().find(|k| **k == s) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(s.to_string()),
    }
}

impl MetricRow {
    /// A value that side `side` of the run `run` reported.
    pub fn of(
        run: &Arc<MetricRun>,
        side: &str,
        name: String,
        value: f64,
        unit: String,
    ) -> MetricRow {
        MetricRow {
            run: Arc::clone(run),
            side: known_or_owned(side, &SIDES),
            name: Cow::Owned(name),
            value,
            unit: Cow::Owned(unit),
            source: SCRIPT,
        }
    }

    /// pairbench's own measurements of `r` (whose shared part is `run`), side by side.
    pub fn own_of(r: &PairRecord, run: &Arc<MetricRun>) -> Vec<MetricRow> {
        let mut out = Vec::new();
        for (side, values) in &r.resources {
            for (name, v) in values {
                out.push(MetricRow {
                    run: Arc::clone(run),
                    side: known_or_owned(side, &SIDES),
                    name: known_or_owned(name, &RESOURCE_METRICS),
                    value: *v,
                    unit: Cow::Borrowed(own_unit(name)),
                    source: PAIRBENCH,
                });
            }
        }
        out
    }

    /// The run this value belongs to, as [`PairRecord::id`].
    pub fn run_id(&self) -> &str {
        self.run.id()
    }
}

/// The names of pairbench's own resource metrics (docs/resources.md).
pub const RESOURCE_METRICS: [&str; 8] = [
    "cpu_user_s",
    "cpu_sys_s",
    "max_rss_kib",
    "ctx_switches_voluntary",
    "ctx_switches_involuntary",
    "major_faults",
    "io_read_kib",
    "io_write_kib",
];

/// The prefix of the CPU per unit of work (group.toml `cpu_per`; docs/resources.md).
pub const CPU_PER: &str = "cpu_us_per_";

/// Is `name` one of pairbench's own measurements (resources, `cpu_us_per_*`, `strace.*`,
/// `perf.*`)?
pub fn is_own_metric(name: &str) -> bool {
    RESOURCE_METRICS.contains(&name)
        || name.starts_with(CPU_PER)
        || name.starts_with("strace.")
        || name.starts_with("perf.")
}

/// The unit of one of pairbench's own metrics, from its name.
pub fn own_unit(name: &str) -> &'static str {
    if name.starts_with(CPU_PER) {
        "us"
    } else if name.ends_with("_s") {
        "s"
    } else if name.ends_with("_kib") {
        "KiB"
    } else if name.ends_with("_pct") {
        "%"
    } else {
        ""
    }
}

/// Counts by status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub success: usize,
    pub failed: usize,
    pub error: usize,
}

impl Counts {
    pub fn add(&mut self, s: Status) {
        match s {
            Status::Success => self.success += 1,
            Status::Failed => self.failed += 1,
            Status::Error => self.error += 1,
        }
    }
    pub fn total(&self) -> usize {
        self.success + self.failed + self.error
    }
    /// Counts of `records`.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a PairRecord>) -> Counts {
        let mut c = Counts::default();
        for r in records {
            c.add(r.status);
        }
        c
    }
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
}
