//! Regression runs (docs/regression.md): a group with references (`expected/` beside
//! `local/` and `remote/`, or a `[check]` table in its group.toml) is *checked*. Each run
//! of one of its pairs is compared, as soon as it ends and before it is recorded, with
//! the reference of its pair and parameter set: per side how it ended and the files
//! `[check] files` names, both normalised, wildcards in the reference, and the metric
//! gates. A difference turns SUCCESS into FAILED with a `check.diff`; a pair without a
//! reference fails under `CI`, and otherwise gets its output written as a pending
//! reference (`<file>.new`).
//!
//! [`normalize`] (built-in and per-group rules), [`matching`] (`[..]` and `...`), [`diff`]
//! (unified diffs, capped), [`outputs`] (what of a run is compared), [`reference`] (the
//! `expected/` folder), [`gate`] (metric gates); the commands [`bless`], [`recheck`]
//! (`pairbench check`) and [`review`], which read a stored run through [`stored`].

pub mod bless;
pub mod diff;
pub mod gate;
pub mod matching;
pub mod normalize;
pub mod outputs;
pub mod recheck;
pub mod reference;
pub mod review;
pub mod stored;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::discover::EXPECTED_DIR;
use crate::group_toml::GroupSettings;
use crate::tree::record::{CheckMark, CheckResult};
use crate::tree::{PairRecord, Status};
use outputs::{Content, Outputs};
use reference::Reference;

/// `<side>/exit_code`: how a side ended, in a reference.
const EXIT_KEY_SUFFIX: &str = "/exit_code";

/// Is a group checked: it has `expected/`, or its group.toml a `[check]`?
pub fn is_checked(settings: &GroupSettings, group_dir: &Path) -> bool {
    settings.check.given || group_dir.join(EXPECTED_DIR).is_dir()
}

/// The pair names of the group at `group_dir` today: every local × remote test (a
/// disabled one too: chmod -x does not make its references go).
pub fn pairs_today(group_dir: &Path) -> BTreeSet<String> {
    let names = |side: &str| -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(group_dir.join(side)) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| std::fs::metadata(e.path()).map_or(true, |m| !m.is_dir()))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect()
    };
    let remotes = names("remote");
    names("local")
        .iter()
        .flat_map(|l| remotes.iter().map(move |r| crate::tree::pair_name(l, r)))
        .collect()
}

/// One line for each thing in the `expected/` of the group `name` (at `group_dir`) that
/// no pair of the group can use (a reference folder of a pair that does not exist).
pub fn stray_references(name: &str, group_dir: &Path) -> Vec<String> {
    reference::strays(group_dir, &pairs_today(group_dir))
        .into_iter()
        .map(|(stray, why)| {
            format!(
                "{name}/{EXPECTED_DIR}/{stray}: {why} (a test renamed or removed?): `pairbench bless --prune` removes it"
            )
        })
        .collect()
}

/// Does this run happen under CI (`CI` set to anything but empty, `false`, `0` or `no`)?
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "false" | "0" | "no"
        )
    })
}

/// Where a run is: its folder (holding `local/` and `remote/`; while the run is written,
/// its staging folder), where it ends up in the tree, and its tag.
pub struct RunAt<'a> {
    pub dir: &'a Path,
    pub final_dir: &'a Path,
    pub tag: &'a str,
}

/// What comparing a run with its reference found.
#[derive(Debug)]
pub struct Checked {
    /// `Matched`, `Differs` or `Missing` (no reference).
    pub result: CheckResult,
    /// The files that differ (`remote/stdout`).
    pub differing: Vec<String>,
    /// The metric gates that failed, one line each.
    pub gates_failed: Vec<String>,
    /// The unified diff (empty when nothing differs).
    pub diff: String,
    /// `expected/<pair>[/<params>]`, relative to the group's folder.
    pub reference: String,
    /// The run's normalised output.
    pub outputs: Outputs,
    /// The reference as it is on disk.
    pub found: Option<Reference>,
    /// What could not be read (each also a difference).
    pub problems: Vec<String>,
}

impl Checked {
    /// The reason of a run this check failed.
    pub fn reason(&self) -> String {
        let mut parts = Vec::new();
        if let Some((first, rest)) = self.differing.split_first() {
            let more = match rest.len() {
                0 => String::new(),
                1 => " and 1 more file".to_string(),
                n => format!(" and {n} more files"),
            };
            parts.push(format!("output differs from expected: {first}{more}"));
        }
        parts.extend(self.gates_failed.iter().cloned());
        if parts.is_empty()
            && let Some(p) = self.problems.first()
        {
            parts.push(format!("output could not be compared with expected: {p}"));
        }
        if self.result == CheckResult::Missing {
            parts.push(format!(
                "no reference in {} (under CI a new pair fails): `pairbench bless` stores this run's output as its reference; commit {EXPECTED_DIR}/",
                self.reference
            ));
        }
        parts.join("; ")
    }

    /// The run's output as the files of a reference (`<side>/<path>` → bytes): what bless
    /// stores. A reference file the output matches (wildcards, normalisation) is kept as
    /// it is.
    pub fn new_reference(
        &self,
        settings: &GroupSettings,
        ctx: &normalize::Context,
    ) -> Result<BTreeMap<String, Vec<u8>>, String> {
        let mut files = BTreeMap::new();
        for (key, c) in &self.outputs.files {
            let kept = self
                .found
                .as_ref()
                .and_then(|r| r.files.get(key))
                .filter(|old| same(settings, ctx, old, c));
            let bytes = kept
                .unwrap_or(c)
                .bytes()
                .map_err(|e| format!("cannot read {key} again: {e}"))?;
            files.insert(key.clone(), bytes.into_owned());
        }
        Ok(files)
    }

    /// The metric values bless stores, from the run's `values`: those of the metrics a
    /// `"5%"` gate compares; a blessed value the run's passes its gate against is kept.
    pub fn new_metrics(
        &self,
        settings: &GroupSettings,
        values: &BTreeMap<String, BTreeMap<String, f64>>,
    ) -> BTreeMap<String, BTreeMap<String, f64>> {
        let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for (name, g) in &settings.check.gates {
            let crate::group_toml::Gate::Worse(_) = g else {
                continue;
            };
            let dir = settings.metrics.get(name).copied().unwrap_or_default();
            for (side, m) in values {
                let Some(&v) = m.get(name) else { continue };
                let old = self
                    .found
                    .as_ref()
                    .and_then(|r| r.metrics.get(side))
                    .and_then(|m| m.get(name))
                    .copied();
                let keep = old.filter(|&o| gate::check(name, side, *g, dir, v, Some(o)).is_ok());
                out.entry(side.clone())
                    .or_default()
                    .insert(name.clone(), keep.unwrap_or(v));
            }
        }
        out
    }
}

/// A reference file's contents normalised with the run's context (text only).
fn normalised(settings: &GroupSettings, ctx: &normalize::Context, c: &Content) -> Content {
    match c {
        Content::Text(t) => Content::Text(normalize::normalize(t, ctx, &settings.check.normalize)),
        b => b.clone(),
    }
}

/// Does the run's `new` content match the normalised reference `old` (wildcards)?
fn equal(old: Option<&Content>, new: Option<&Content>) -> bool {
    match (old, new) {
        (Some(Content::Text(o)), Some(Content::Text(n))) => o == n || matching::matches(o, n),
        (Some(o), Some(n)) => o == n,
        _ => false,
    }
}

/// Does the run's `new` content match the reference's `old` as stored?
fn same(settings: &GroupSettings, ctx: &normalize::Context, old: &Content, new: &Content) -> bool {
    equal(Some(&normalised(settings, ctx, old)), Some(new))
}

/// The normalisation context of a run.
pub fn context(rec: &PairRecord, at: &RunAt) -> normalize::Context {
    normalize::Context::of(rec.places.as_ref(), &[at.dir, at.final_dir], at.tag)
}

/// Compare the run `rec` (at `at`) of a checked group with its reference.
pub fn compare(
    settings: &GroupSettings,
    group_dir: &Path,
    rec: &PairRecord,
    at: &RunAt,
) -> Checked {
    let ctx = context(rec, at);
    let (outputs, mut problems) = outputs::collect(settings, at.dir, rec, &ctx);
    let rel = reference::rel(&rec.pair, &rec.variant);
    let ref_label = format!("{EXPECTED_DIR}/{rel}");
    let ref_dir = reference::dir(group_dir, &rec.pair, &rec.variant);
    let found = match reference::read(&ref_dir) {
        Ok(r) => r,
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let mut d = diff::Diff::default();
    let mut differing = Vec::new();
    let mut gates_failed = Vec::new();
    for p in &problems {
        d.line(&format!("!!! {p}"));
    }
    if let Some(r) = &found {
        let keys: BTreeSet<&String> = r
            .files
            .keys()
            .chain(outputs.files.keys())
            .filter(|k| r.sides.contains(k.split('/').next().unwrap_or_default()))
            // A hand-written reference may leave out how a side ended.
            .filter(|k| !k.ends_with(EXIT_KEY_SUFFIX) || r.files.contains_key(*k))
            .collect();
        for key in keys {
            let old = r.files.get(key);
            let new = outputs.files.get(key);
            let old_n = old.map(|o| normalised(settings, &ctx, o));
            if equal(old_n.as_ref(), new) {
                continue;
            }
            differing.push(key.clone());
            let label = format!("{ref_label}/{key}");
            match (&old_n, new) {
                (Some(Content::Text(o)), Some(Content::Text(n))) if matching::has_wildcards(o) => {
                    let aligned = matching::align(o, n);
                    d.file(
                        &label,
                        key,
                        Some(diff::Body::Text(o)),
                        Some(diff::Body::Text(&aligned)),
                    );
                }
                _ => d.file(
                    &label,
                    key,
                    old_n.as_ref().map(Content::body),
                    new.map(Content::body),
                ),
            }
        }
    }
    if !settings.check.gates.is_empty() {
        let blessed = found
            .as_ref()
            .map(|r| r.metrics.clone())
            .unwrap_or_default();
        // Without a reference only the bounds can be checked.
        let applicable: Vec<(String, crate::group_toml::Gate)> = settings
            .check
            .gates
            .iter()
            .filter(|(_, g)| found.is_some() || matches!(g, crate::group_toml::Gate::Bounds { .. }))
            .cloned()
            .collect();
        gates_failed = gate::check_all(&applicable, &settings.metrics, &outputs.metrics, &blessed);
        for g in &gates_failed {
            d.line(g);
        }
    }
    let result = if !differing.is_empty() || !gates_failed.is_empty() || !problems.is_empty() {
        CheckResult::Differs
    } else if found.is_none() {
        CheckResult::Missing
    } else {
        CheckResult::Matched
    };
    Checked {
        result,
        differing,
        gates_failed,
        diff: d.finish(),
        reference: ref_label,
        outputs,
        found,
        problems,
    }
}

/// The check of a run as it ends, before it is recorded (only a SUCCESS run is checked):
/// `rec` gets the check's mark, a difference makes it FAILED; a new pair fails under
/// `ci`, or gets its output written as a pending reference. Returns the `check.diff` to
/// keep in the pair folder, and warnings (a pending reference that could not be written).
pub fn at_run_end(
    settings: &GroupSettings,
    group_dir: &Path,
    rec: &mut PairRecord,
    at: &RunAt,
    ci: bool,
) -> (Option<Vec<u8>>, Vec<String>) {
    if rec.status != Status::Success || !is_checked(settings, group_dir) {
        return (None, Vec::new());
    }
    let c = compare(settings, group_dir, rec, at);
    let mut warnings = Vec::new();
    let before = (rec.status, rec.reason.clone());
    let mut result = c.result;
    let mut diff = None;
    match c.result {
        CheckResult::Matched => {}
        CheckResult::Differs => {
            rec.status = Status::Failed;
            rec.reason = c.reason();
            diff = Some(c.diff.clone().into_bytes());
        }
        // No reference: a new pair.
        _ if ci => {
            rec.status = Status::Failed;
            rec.reason = c.reason();
            result = CheckResult::Missing;
            // What the reference would be, for the CI log.
            let mut d = diff::Diff::default();
            for (key, content) in &c.outputs.files {
                d.file("/dev/null", key, None, Some(content.body()));
            }
            diff = Some(d.finish().into_bytes());
        }
        _ => {
            let dir = reference::dir(group_dir, &rec.pair, &rec.variant);
            match reference::write_pending(group_dir, &dir, &c.outputs) {
                Ok(()) => {
                    result = CheckResult::Pending;
                    rec.reason = format!(
                        "{}; new: its output is the pending reference {}/*.new (accept it with `pairbench review` or `pairbench bless`)",
                        rec.reason, c.reference
                    );
                }
                Err(e) => warnings.push(format!(
                    "{}: no reference, and the pending one could not be written: {e}",
                    rec.id()
                )),
            }
        }
    }
    rec.check = Some(CheckMark {
        result,
        status: before.0,
        reason: before.1,
    });
    (diff, warnings)
}
