//! A stored run, as `bless`, `check` and `review` read it (they run nothing): its runs
//! (the latest attempt of each, through the tree's walker), each run's group folder (`-g`
//! when given, else the one the run used: its record says, or run.json's `groups_dir`),
//! and each group's `[check]` settings, read from its group.toml as a run would.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::{Checked, RunAt, compare, is_checked};
use crate::config::Direction;
use crate::group_toml::GroupSettings;
use crate::tree::walk::{self, Found};
use crate::tree::{PairRecord, lock, manifest};

/// Which stored run a command reads, and how: the results folder and tag (or `latest`),
/// `-g` (the groups folder, when not the one the run used), `-f` globs on
/// `<group>/<pair>`, and pairbench.toml's `[metrics]` directions.
pub struct Which<'a> {
    pub results_dir: &'a Path,
    pub tag: &'a str,
    pub groups_dir: Option<&'a Path>,
    pub filters: &'a [String],
    pub directions: &'a BTreeMap<String, Direction>,
}

/// A stored run opened for checking.
pub struct Stored {
    pub tag: String,
    /// The tag folder (absolute).
    pub dir: PathBuf,
    /// The latest attempt of every run, sorted by group, pair and variant.
    pub runs: Vec<Found>,
    /// One line per problem of the tree.
    pub problems: Vec<String>,
    groups_given: Option<PathBuf>,
    groups_of_run: Option<PathBuf>,
    directions: BTreeMap<String, Direction>,
    settings: RefCell<BTreeMap<PathBuf, Result<GroupSettings, String>>>,
    filters: Option<globset::GlobSet>,
}

impl Stored {
    /// Open the run `w` names.
    pub fn open(w: &Which) -> anyhow::Result<Stored> {
        let (groups_dir, filters) = (w.groups_dir, w.filters);
        let (tag, dir) = lock::resolve(w.results_dir, w.tag)?;
        let dir = std::fs::canonicalize(&dir)
            .with_context(|| format!("cannot resolve '{}'", dir.display()))?;
        if lock::in_use(&dir) {
            bail!("tag '{tag}' is being run right now: wait for the run to finish, then try again");
        }
        let manifest = manifest::read(&dir).ok().flatten();
        let groups_of_run = manifest
            .as_ref()
            .and_then(|m| m.options.get("groups_dir"))
            .and_then(|v| v.as_str())
            .map(PathBuf::from);
        let filters = if filters.is_empty() {
            None
        } else {
            let mut b = globset::GlobSetBuilder::new();
            for f in filters {
                b.add(
                    globset::Glob::new(f)
                        .map_err(|e| anyhow::anyhow!("bad --filter '{f}': {}", e.kind()))?,
                );
            }
            Some(b.build().context("bad --filter")?)
        };
        let walked = walk::walk(&dir);
        if let Some(g) = groups_dir
            && !g.is_dir()
        {
            bail!(
                "groups folder '{}' does not exist: point -g at the groups the run used",
                g.display()
            );
        }
        Ok(Stored {
            tag,
            dir,
            runs: walked.runs,
            problems: walked.problems,
            groups_given: groups_dir.map(Path::to_path_buf),
            groups_of_run,
            directions: w.directions.clone(),
            settings: RefCell::new(BTreeMap::new()),
            filters,
        })
    }

    /// The runs `-f` selects.
    pub fn selected(&self) -> impl Iterator<Item = &Found> {
        self.runs.iter().filter(|f| {
            self.filters
                .as_ref()
                .is_none_or(|g| g.is_match(format!("{}/{}", f.rec.group, f.rec.pair)))
        })
    }

    /// Does `-f` select the pair `<group>/<pair>`?
    pub fn selects(&self, group: &str, pair: &str) -> bool {
        self.filters
            .as_ref()
            .is_none_or(|g| g.is_match(format!("{group}/{pair}")))
    }

    /// The folder of the group's scripts for the run `rec`.
    pub fn group_dir(&self, rec: &PairRecord) -> PathBuf {
        if let Some(g) = &self.groups_given {
            return g.join(&rec.group);
        }
        if let Some(p) = rec
            .places
            .as_ref()
            .filter(|p| !p.local_group_dir.is_empty())
        {
            return PathBuf::from(&p.local_group_dir);
        }
        self.groups_of_run
            .clone()
            .unwrap_or_else(|| PathBuf::from("groups"))
            .join(&rec.group)
    }

    /// The settings of the group at `group_dir` (read once).
    pub fn settings(&self, group_dir: &Path) -> Result<GroupSettings, String> {
        self.settings
            .borrow_mut()
            .entry(group_dir.to_path_buf())
            .or_insert_with(|| {
                if !group_dir.is_dir() {
                    return Err(format!(
                        "the group's folder '{}' does not exist (give the groups folder the run used with -g)",
                        group_dir.display()
                    ));
                }
                GroupSettings::load_for_check(group_dir, &self.directions).map_err(|e| e.to_string())
            })
            .clone()
    }

    /// Compare a stored run with today's reference; `None` when its group is not checked.
    pub fn compare(&self, f: &Found) -> Option<Result<(GroupSettings, Checked), String>> {
        let group_dir = self.group_dir(&f.rec);
        let settings = match self.settings(&group_dir) {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        };
        if !is_checked(&settings, &group_dir) {
            return None;
        }
        let at = RunAt {
            dir: &f.dir,
            final_dir: &f.dir,
            tag: &self.tag,
        };
        let c = compare(&settings, &group_dir, &f.rec, &at);
        Some(Ok((settings, c)))
    }

    /// The run folder's normalisation context.
    pub fn context(&self, f: &Found) -> super::normalize::Context {
        super::context(
            &f.rec,
            &RunAt {
                dir: &f.dir,
                final_dir: &f.dir,
                tag: &self.tag,
            },
        )
    }
}
