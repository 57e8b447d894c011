//! What of a run is compared (docs/regression.md, "What is compared"): per side, how it
//! ended (`<side>/exit_code`: the exit code, or `terminated` when pairbench ended it) and
//! the files `[check] files` names, read from the run's folder without following a link
//! (links are left out), text normalised, other files (a NUL byte, not UTF-8, or larger
//! than [`TEXT_LIMIT`]) kept as bytes; and the values of the gated metrics.

use std::collections::BTreeMap;
use std::path::Path;

use super::normalize::{self, Context};
use crate::group_toml::GroupSettings;
use crate::tree::layout::{EXIT_FILE, SIDES};
use crate::tree::{Ended, PairRecord, nofollow, tables};

/// Files larger than this are compared by hash, not line by line.
pub const TEXT_LIMIT: u64 = 64 * 1024 * 1024;

/// A reference file's suffix while it is pending (not yet accepted).
pub const PENDING: &str = ".new";

/// One compared file's contents.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Normalised text.
    Text(String),
    Binary(Vec<u8>),
}

impl Content {
    /// Text if it is text, else bytes (a NUL byte, not UTF-8, or too large).
    pub fn of(bytes: Vec<u8>) -> Content {
        if bytes.len() as u64 > TEXT_LIMIT || bytes.contains(&0) {
            return Content::Binary(bytes);
        }
        match String::from_utf8(bytes) {
            Ok(t) => Content::Text(t),
            Err(e) => Content::Binary(e.into_bytes()),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Content::Text(t) => t.as_bytes(),
            Content::Binary(b) => b,
        }
    }

    pub fn body(&self) -> super::diff::Body<'_> {
        match self {
            Content::Text(t) => super::diff::Body::Text(t),
            Content::Binary(b) => super::diff::Body::Binary(b),
        }
    }
}

/// A run's compared output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    /// `<side>/<path>` → contents, `<side>/exit_code` included.
    pub files: BTreeMap<String, Content>,
    /// Side → metric → value (the mean when a side reported it more than once), for the
    /// gated metrics.
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
}

/// How a side ended, as its reference's `exit_code` holds it.
pub fn exit_text(rec: &PairRecord, side: &str) -> String {
    let code = |c: Option<i32>| c.map_or("none".to_string(), |c| c.to_string());
    if side == "remote" {
        if rec.remote_ended == Some(Ended::Terminated) {
            return "terminated".into();
        }
        return code(rec.remote_exit);
    }
    code(rec.local_exit)
}

/// Is this a file a side's folder holds that is compared?
fn compared(settings: &GroupSettings, rel: &str) -> bool {
    rel != EXIT_FILE && !rel.ends_with(PENDING) && settings.check.file_set.is_match(rel)
}

/// The compared output of the run in `run_dir` (holding `local/` and `remote/`), with the
/// normalisation context `ctx`. Problems reading it are lines in the second value.
pub fn collect(
    settings: &GroupSettings,
    run_dir: &Path,
    rec: &PairRecord,
    ctx: &Context,
) -> (Outputs, Vec<String>) {
    let mut out = Outputs::default();
    let mut problems = Vec::new();
    for side in SIDES {
        out.files.insert(
            format!("{side}/{EXIT_FILE}"),
            Content::Text(format!("{}\n", exit_text(rec, side))),
        );
        let side_dir = run_dir.join(side);
        if nofollow::kind(&side_dir) != nofollow::Kind::Dir {
            continue;
        }
        for entry in walkdir::WalkDir::new(&side_dir)
            .min_depth(1)
            .max_depth(64)
            .sort_by_file_name()
        {
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&side_dir) else {
                continue;
            };
            let Some(rel) = rel.to_str() else {
                problems.push(format!(
                    "{side}/{}: not named in UTF-8, so not compared",
                    rel.to_string_lossy()
                ));
                continue;
            };
            if !compared(settings, rel) {
                continue;
            }
            match nofollow::read_beneath(run_dir, &Path::new(side).join(rel)) {
                Ok(bytes) => {
                    let c = match Content::of(bytes) {
                        Content::Text(t) => {
                            Content::Text(normalize::normalize(&t, ctx, &settings.check.normalize))
                        }
                        b => b,
                    };
                    out.files.insert(format!("{side}/{rel}"), c);
                }
                Err(e) => problems.push(format!("{side}/{rel}: cannot be read ({e})")),
            }
        }
    }
    if !settings.check.gates.is_empty() {
        out.metrics = gated_metrics(settings, run_dir);
    }
    (out, problems)
}

/// The values of the gated metrics both sides reported.
fn gated_metrics(
    settings: &GroupSettings,
    run_dir: &Path,
) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for side in SIDES {
        let Ok(bytes) = nofollow::read_beneath(run_dir, &Path::new(side).join("metrics.csv"))
        else {
            continue;
        };
        let (rows, _) = tables::parse_side_metrics(&bytes);
        let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for (name, value, _) in rows {
            if settings.check.gates.iter().any(|(g, _)| *g == name) {
                let e = sums.entry(name).or_default();
                e.0 += value;
                e.1 += 1;
            }
        }
        if !sums.is_empty() {
            out.insert(
                side.to_string(),
                sums.into_iter()
                    .map(|(k, (sum, n))| (k, sum / n as f64))
                    .collect(),
            );
        }
    }
    out
}
