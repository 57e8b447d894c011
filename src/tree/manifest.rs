//! `run.json`, the manifest of a tag: the version, the tag, the run plan (the options that
//! shape the tree: `--repeat`, `--warmup`, `--param`), every invocation that ran on the
//! tag (command line, start, end, interrupted, counts), the latest options and hosts, and
//! the latest counts. Read back by `--resume` (which reuses the plan), by a later run on
//! the tag (which refuses another plan) and by the report. See the README, "Running
//! again on a tag".

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::commit::{WriteError, at};
use super::layout::Tree;
use super::nofollow;
use super::record::Counts;
use crate::hostinfo::HostInfo;

/// The options that shape a tag's tree: every run on the tag must share them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPlan {
    pub repeat: u32,
    pub warmup: u32,
    /// Parameters and their values, in the order given.
    pub params: Vec<(String, Vec<String>)>,
}

impl Default for RunPlan {
    fn default() -> RunPlan {
        RunPlan {
            repeat: 1,
            warmup: 0,
            params: Vec::new(),
        }
    }
}

impl RunPlan {
    /// The command-line options of this plan (`--repeat 3 --param N=1,2`), for messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.repeat != 1 {
            parts.push(format!("--repeat {}", self.repeat));
        }
        if self.warmup != 0 {
            parts.push(format!("--warmup {}", self.warmup));
        }
        for (n, v) in &self.params {
            parts.push(format!("--param {n}={}", v.join(",")));
        }
        if parts.is_empty() {
            "no --repeat, --warmup or --param".into()
        } else {
            parts.join(" ")
        }
    }

    /// The first option in which `now` differs from this (the tag's) plan: its name, the
    /// tag's value and the new one.
    pub fn differs(&self, now: &RunPlan) -> Option<(&'static str, String, String)> {
        if self.repeat != now.repeat {
            return Some(("--repeat", self.repeat.to_string(), now.repeat.to_string()));
        }
        if self.warmup != now.warmup {
            return Some(("--warmup", self.warmup.to_string(), now.warmup.to_string()));
        }
        if self.params != now.params {
            let show = |p: &[(String, Vec<String>)]| {
                if p.is_empty() {
                    "none".to_string()
                } else {
                    p.iter()
                        .map(|(n, v)| format!("{n}={}", v.join(",")))
                        .collect::<Vec<_>>()
                        .join(" ")
                }
            };
            return Some(("--param", show(&self.params), show(&now.params)));
        }
        None
    }
}

/// What a run plans for one group: the local and remote tests of its pairs and, when
/// not every combination of them runs, which pairs. Kept in run.json (`planned_pairs`), so that
/// the report of an interrupted run shows the pairs that never ran as not run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupPlan {
    pub group: String,
    pub local: Vec<String>,
    pub remote: Vec<String>,
    /// Indices into `local` and `remote`; absent when every combination is planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<Vec<(u32, u32)>>,
}

/// One `pairbench run` on the tag.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Invocation {
    pub command_line: Vec<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub interrupted: bool,
    /// Pairs it ran, and how they ended (when it ended).
    pub pairs_run: usize,
    pub counts: Option<Counts>,
}

/// What `run.json` holds (every field optional when read, so older or damaged
/// manifests still load).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    pub pairbench_version: String,
    pub tag: String,
    /// The latest invocation's command line.
    pub command_line: Vec<String>,
    /// When the first invocation started.
    pub started_at: Option<String>,
    /// When the latest invocation ended (none while it runs, or if it was killed).
    pub ended_at: Option<String>,
    /// The latest invocation's options.
    pub options: serde_json::Value,
    pub plan: Option<RunPlan>,
    pub hosts: Vec<HostInfo>,
    /// How this machine contained the latest invocation's scripts: `method` (`cgroup2`
    /// or `sweep`), `at` (the run's cgroup) or `why` (docs/containment.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containment: Option<serde_json::Value>,
    /// Where each side's resource metrics come from: `local` and `remote`, each naming
    /// the source of `cpu`, `memory`, `major_faults`, `io` and `ctx_switches`
    /// (docs/resources.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounting: Option<serde_json::Value>,
    /// Groups whose group.toml changed a setting: each value and where it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_settings: Option<serde_json::Value>,
    /// Counts of the pairs the latest invocation planned.
    pub counts: Counts,
    pub pairs_planned: usize,
    pub pairs_run: usize,
    pub pairs_skipped: usize,
    pub interrupted: bool,
    /// The seed of --shuffle.
    pub shuffle_seed: Option<u64>,
    /// Every invocation on the tag, the first one first.
    pub invocations: Vec<Invocation>,
    /// The latest invocation's pairs, per group (absent in runs of older versions).
    pub planned_pairs: Vec<GroupPlan>,
    /// `--shard K/N` of the latest invocation: which share of the suite this tree holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// With `--shard`: the pairs of the whole suite (every shard's), so that a merge can
    /// say which pairs no shard has.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suite_pairs: Vec<GroupPlan>,
    /// A tag made by `pairbench merge`: the shard trees it folded, and what was missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
}

/// Shard `k` of `n` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

/// What `pairbench merge` folded into a tag (docs/scaling-out.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Merged {
    pub merged_at: String,
    /// Each shard tree, in the order given.
    pub shards: Vec<MergedShard>,
    /// Shards of the N the shards' run.json name that were not given.
    pub missing_shards: Vec<u64>,
    /// Pairs of the suite that no shard has: `group/L_x_R`.
    pub missing_pairs: Vec<String>,
}

/// One shard tree folded in by a merge.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MergedShard {
    /// Where it was read from.
    pub from: String,
    pub tag: String,
    pub shard: Option<Shard>,
    pub pairs: usize,
    pub counts: Counts,
}

/// Why run.json cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("run.json is damaged ({0})")]
    Damaged(String),
    #[error("run.json is a link or not a file (not followed)")]
    NotAFile,
}

/// The manifest of a tag folder; `Ok(None)` when it has none.
pub fn read(tag_dir: &Path) -> Result<Option<Manifest>, ManifestError> {
    match nofollow::kind(&tag_dir.join("run.json")) {
        nofollow::Kind::Missing => return Ok(None),
        nofollow::Kind::File => {}
        _ => return Err(ManifestError::NotAFile),
    }
    let bytes = nofollow::read_beneath(tag_dir, Path::new("run.json"))
        .map_err(|e| ManifestError::Damaged(e.to_string()))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ManifestError::Damaged(e.to_string()))
}

/// Write the manifest of `tree` (atomically).
pub fn write(tree: &Tree, m: &Manifest) -> Result<(), WriteError> {
    let path = tree.file("run.json");
    let json = serde_json::to_vec_pretty(m)
        .map_err(|e| WriteError::new(&path, std::io::Error::other(e)))?;
    at(&path, nofollow::write_atomic(&path, &json))
}
