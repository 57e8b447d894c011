//! `pairbench bless [TAG] [-f GLOB] [--prune] [--force]` (docs/regression.md, "Bless"):
//! store a stored run's normalised output as the references of its pairs, in the group
//! folders the run used. A pair whose outcome was SUCCESS is blessed (one that failed
//! only because its output differed included); FAILED and ERROR pairs only with
//! `--force`. A reference the output already matches (normalised, wildcards) is left as
//! it is, and so is a blessed metric value the run's passes its gate against (a metric
//! of several repetitions: their mean); a run of several repetitions is blessed from its
//! first measured one. Only the
//! references of the runs it is asked about are touched; `--prune` also removes the
//! reference folders of pairs that no longer exist (no such local × remote test).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::outputs::Outputs;
use super::reference;
use super::stored::{Stored, Which};
use super::{RunAt, compare};
use crate::discover::EXPECTED_DIR;
use crate::exit_status::ExitStatus;
use crate::terminal::shown;
use crate::tree::Status;
use crate::tree::walk::Found;

/// What blessing one reference did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blessed {
    Added,
    /// The files that changed.
    Changed(Vec<String>),
    Unchanged,
}

/// Bless the reference of the runs `runs` (one pair and parameter set, the first one
/// blessed); `notes` gets a line when its repetitions differ from each other.
pub fn bless_runs(
    stored: &Stored,
    runs: &[&Found],
    notes: &mut Vec<String>,
) -> Result<Blessed, String> {
    let first = runs.first().ok_or("nothing to bless")?;
    let group_dir = stored.group_dir(&first.rec);
    let settings = stored.settings(&group_dir)?;
    let at = |f: &Found| {
        let ctx = stored.context(f);
        let c = compare(
            &settings,
            &group_dir,
            &f.rec,
            &RunAt {
                dir: &f.dir,
                final_dir: &f.dir,
                tag: &stored.tag,
            },
        );
        (ctx, c)
    };
    let (ctx, c) = at(first);
    if let Some(p) = c.problems.first() {
        return Err(format!("{}: {p}", first.rec.id()));
    }
    let outputs: Vec<Outputs> = runs[1..].iter().map(|f| at(f).1.outputs).collect();
    if let Some(i) = outputs.iter().position(|o| o.files != c.outputs.files) {
        notes.push(format!(
            "{} and {} differ from each other; blessed the first",
            first.rec.id(),
            runs[i + 1].rec.variant
        ));
    }
    let files = c.new_reference(&settings, &ctx)?;
    // Several repetitions: a metric's value is their mean.
    let mut sums: BTreeMap<(String, String), (f64, usize)> = BTreeMap::new();
    for m in std::iter::once(&c.outputs.metrics).chain(outputs.iter().map(|o| &o.metrics)) {
        for (side, values) in m {
            for (name, v) in values {
                let e = sums.entry((side.clone(), name.clone())).or_default();
                e.0 += v;
                e.1 += 1;
            }
        }
    }
    let mut values: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for ((side, name), (sum, n)) in sums {
        values.entry(side).or_default().insert(name, sum / n as f64);
    }
    let metrics = c.new_metrics(&settings, &values);
    let dir = reference::dir(&group_dir, &first.rec.pair, &first.rec.variant);
    let existed = c.found.is_some();
    let changed =
        reference::replace(&group_dir, &dir, &files, &metrics).map_err(|e| e.to_string())?;
    Ok(if !existed {
        Blessed::Added
    } else if changed.is_empty() {
        Blessed::Unchanged
    } else {
        Blessed::Changed(changed)
    })
}

/// `pairbench bless`: `prune` and `force` are its options of the same names.
pub fn command(which: &Which, prune: bool, force: bool) -> anyhow::Result<ExitStatus> {
    let stored = Stored::open(which)?;
    // One reference per group folder, pair and parameter set, its runs in order.
    let mut by_ref: BTreeMap<(PathBuf, String, String), Vec<&Found>> = BTreeMap::new();
    let mut not_blessed = 0;
    let mut groups: BTreeMap<PathBuf, String> = BTreeMap::new();
    for f in stored.selected() {
        let group_dir = stored.group_dir(&f.rec);
        groups.insert(group_dir.clone(), f.rec.group.clone());
        let ok = f.rec.outcome().0 == Status::Success;
        if !ok && !force {
            not_blessed += 1;
            continue;
        }
        let key = (
            group_dir,
            f.rec.group.clone(),
            reference::rel(&f.rec.pair, &f.rec.variant),
        );
        by_ref.entry(key).or_default().push(f);
    }
    let mut lines = String::new();
    let (mut added, mut changed, mut unchanged, mut pruned, mut failed) = (0, 0, 0, 0, 0);
    let mut notes = Vec::new();
    for ((_, group, rel), mut runs) in by_ref {
        // Measured runs first (warm-ups last), by repetition; SUCCESS before the others.
        runs.sort_by_key(|f| {
            (
                f.rec.outcome().0 != Status::Success,
                f.rec.warmup,
                f.rec.repetition,
            )
        });
        let id = format!("{group}/{rel}");
        match bless_runs(&stored, &runs, &mut notes) {
            Ok(Blessed::Added) => {
                added += 1;
                lines.push_str(&format!("added      {}\n", shown(&id)));
            }
            Ok(Blessed::Changed(files)) => {
                changed += 1;
                lines.push_str(&format!(
                    "changed    {} ({})\n",
                    shown(&id),
                    shown(&files.join(", "))
                ));
            }
            Ok(Blessed::Unchanged) => unchanged += 1,
            Err(e) => {
                failed += 1;
                eprintln!("pairbench: cannot bless {}: {}", shown(&id), shown(&e));
            }
        }
    }
    if prune {
        for (group_dir, group) in &groups {
            for (name, why) in reference::strays(group_dir, &super::pairs_today(group_dir)) {
                if !stored.selects(group, &name) {
                    continue;
                }
                match reference::prune(group_dir, &name) {
                    Ok(()) => {
                        pruned += 1;
                        lines.push_str(&format!(
                            "pruned     {}/{EXPECTED_DIR}/{} ({why})\n",
                            shown(group),
                            shown(&name)
                        ));
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("pairbench: cannot prune: {}", shown(&e.to_string()));
                    }
                }
            }
        }
    }
    for n in &notes {
        lines.push_str(&format!("note: {}\n", shown(n)));
    }
    let mut summary = format!(
        "pairbench: bless '{}': {added} added, {changed} changed, {unchanged} unchanged, {pruned} pruned",
        stored.tag
    );
    if not_blessed > 0 {
        summary.push_str(&format!(
            "; {not_blessed} FAILED or ERROR run{} not blessed (--force blesses {})",
            if not_blessed == 1 { "" } else { "s" },
            if not_blessed == 1 { "it" } else { "them" }
        ));
    }
    if let Some(dir) = groups.keys().next()
        && added + changed + pruned > 0
    {
        let where_ = if groups.len() == 1 {
            dir.join(EXPECTED_DIR).display().to_string()
        } else {
            format!("the expected/ folders of {} groups", groups.len())
        };
        summary.push_str(&format!(" (commit {where_})"));
    }
    lines.push_str(&summary);
    lines.push('\n');
    crate::console::block(&lines);
    Ok(if failed > 0 {
        ExitStatus::ERROR
    } else {
        ExitStatus::SUCCESS
    })
}
