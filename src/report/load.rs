//! A stored run read back from its tree alone, through the tree's one walker: `run.json`,
//! each run folder's record and marker (the walker falls back on `results.csv` where a
//! record is missing or damaged), and every side's `metrics.csv`. A run folder is a pair
//! folder, or, with `--param` and `--repeat`, a variant folder below it
//! (`<pair>/SIZE=1k/rep-2`); earlier attempts (`attempts/<n>/`) are left out: a report
//! shows the latest attempt of each run. Damage is reported as one warning per problem,
//! never a panic; whatever can be read is kept.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::tree::manifest::{self, GroupPlan};
use crate::tree::walk::{self, Walked};
use crate::tree::{Counts, MetricRow, PairRecord, Status, Tree};

pub use crate::tree::manifest::Manifest;

/// One group of a stored run.
#[derive(Debug, Default)]
pub struct GroupRun {
    pub name: String,
    /// Local and remote test names, sorted.
    pub locals: Vec<String>,
    pub remotes: Vec<String>,
    /// Its runs (the latest attempt of each pair and variant), sorted by pair, variant.
    /// Their `resources` are left empty: pairbench's own values are in `metrics`.
    pub runs: Vec<PairRecord>,
    /// The metric values of those runs (pairbench's own and the scripts').
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
        Counts::of(&self.runs)
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
    Tree::at(tag_dir).run_dir(&r.group, &r.pair, &r.variant)
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
    /// Run folders (or results.csv rows) that could not be read at all (so are not drawn).
    pub unreadable: usize,
}

impl Run {
    pub fn counts(&self) -> Counts {
        Counts::of(self.records())
    }

    pub fn records(&self) -> impl Iterator<Item = &PairRecord> {
        self.groups.iter().flat_map(|g| g.runs.iter())
    }

    pub fn metrics(&self) -> impl Iterator<Item = &MetricRow> {
        self.groups.iter().flat_map(|g| g.metrics.iter())
    }

    /// Is what the report shows incomplete (a problem in the tree)?
    pub fn incomplete(&self) -> bool {
        self.unreadable > 0 || !self.warnings.is_empty()
    }
}

/// Read the run stored in `tag_dir`.
pub fn load(tag_dir: &Path) -> Run {
    from_walk(tag_dir, walk::walk(tag_dir))
}

/// The run stored in `tag_dir`, from what the walker found there.
pub fn from_walk(tag_dir: &Path, mut walked: Walked) -> Run {
    let tree = Tree::at(tag_dir);
    let mut run = Run {
        tag: tree.tag.clone(),
        dir: tag_dir.to_path_buf(),
        ..Run::default()
    };
    run.manifest = match manifest::read(tag_dir) {
        Ok(Some(m)) => m,
        Ok(None) => {
            run.warnings.push(
                "run.json is missing; the report leaves out the run's command line, times and hosts"
                    .to_string(),
            );
            Manifest::default()
        }
        Err(e) => {
            run.warnings.push(format!(
                "{e}; the report leaves out the run's command line, times and hosts"
            ));
            Manifest::default()
        }
    };
    run.warnings.extend(walked.problems.iter().cloned());
    run.unreadable = walked.left_out;
    let (mut metrics, metric_problems) = walked.take_metrics();
    run.warnings.extend(metric_problems);

    // The records move from the walk into their groups (a 10,000-pair run holds each
    // once), without their resources: those are in the metric values now.
    let mut sizes: HashMap<&str, usize> = HashMap::new();
    for f in &walked.runs {
        *sizes.entry(&f.rec.group).or_default() += 1;
    }
    let mut by_group: BTreeMap<String, GroupRun> = sizes
        .into_iter()
        .map(|(name, n)| {
            let g = GroupRun {
                runs: Vec::with_capacity(n),
                ..GroupRun::default()
            };
            (name.to_string(), g)
        })
        .collect();
    for f in walked.runs {
        let mut rec = f.rec;
        rec.resources = BTreeMap::new();
        if let Some(g) = by_group.get_mut(&rec.group) {
            g.runs.push(rec);
        }
    }
    // Planned groups with no finished pair are shown too (all not run).
    for plan in &run.manifest.planned_pairs {
        by_group.entry(plan.group.clone()).or_default();
    }
    for (name, mut g) in by_group {
        g.planned = planned_pairs(&run.manifest.planned_pairs, &name);
        g.name = name;
        g.runs.sort_by(run_order);
        g.runs
            .dedup_by(|a, b| a.pair == b.pair && a.variant == b.variant);
        let mut locals: Vec<String> = g.runs.iter().map(|p| p.local_test.clone()).collect();
        let mut remotes: Vec<String> = g.runs.iter().map(|p| p.remote_test.clone()).collect();
        if let Some(plan) = run
            .manifest
            .planned_pairs
            .iter()
            .find(|p| p.group == g.name)
        {
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
        run.groups.push(g);
    }

    // Each group's metric values, in the order of its runs (a run's own values in the
    // order the walk read them), sorted in place and split off: never copied whole.
    let place: HashMap<String, (usize, usize)> = run
        .groups
        .iter()
        .enumerate()
        .flat_map(|(gi, g)| {
            g.runs
                .iter()
                .enumerate()
                .map(move |(ri, r)| (r.id(), (gi, ri)))
        })
        .collect();
    let unplaced = (usize::MAX, usize::MAX);
    metrics.sort_by_cached_key(|m| place.get(m.run_id()).copied().unwrap_or(unplaced));
    let placed = metrics.partition_point(|m| place.contains_key(m.run_id()));
    metrics.truncate(placed);
    for gi in (0..run.groups.len()).rev() {
        let start = metrics.partition_point(|m| place[m.run_id()].0 < gi);
        run.groups[gi].metrics = if start == 0 {
            std::mem::take(&mut metrics)
        } else {
            let tail = metrics.split_off(start);
            metrics.shrink_to_fit();
            tail
        };
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
fn planned_pairs(plan: &[GroupPlan], group: &str) -> Option<HashSet<(String, String)>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_shown_in_natural_order() {
        let rec = |variant: &str| {
            PairRecord::known_only_by_place("", "g", "a_x_b", variant, Status::Success)
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
    }
}
