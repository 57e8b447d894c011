//! `summary.md`: the run's counts, then per group the local × remote matrix with each
//! pair's status and duration (one mean per parameter set) (collapsed as on the page when it is large, see
//! [`matrix`]), its counts, and the reason of each pair that did not succeed (at most
//! 100 per group, so the file stays within what a CI job summary takes), with the diff
//! of a run whose output differs from its reference (docs/regression.md; capped). Names are
//! Markdown-escaped so any group or test name keeps the tables intact.

use super::load::{GroupRun, Run};
use super::matrix::{self, View};
use super::names::markdown as md;
use super::{check_diff, counts_line, fmt_duration, group_counts_line};
use crate::tree::Status;

/// The summary.md text of a run.
pub fn render(run: &Run) -> String {
    let mut s = String::new();
    s.push_str(&format!("# pairbench run {}\n\n", md(&run.tag)));
    let m = &run.manifest;
    if let Some(start) = &m.started_at {
        s.push_str(&format!("- started: {}\n", md(start)));
    }
    if let Some(end) = &m.ended_at {
        s.push_str(&format!("- ended: {}\n", md(end)));
    }
    if m.interrupted {
        s.push_str("- interrupted: the run did not finish every pair\n");
    }
    if !m.command_line.is_empty() {
        s.push_str(&format!("- command: {}\n", md(&m.command_line.join(" "))));
    }
    let mut counts = counts_line(run.counts());
    let not_run: usize = run.groups.iter().map(GroupRun::not_run).sum();
    if not_run > 0 {
        counts.push_str(&format!(", {not_run} not run"));
    }
    s.push_str(&format!("- {}\n", md(&counts)));
    for g in &run.groups {
        s.push('\n');
        group(&mut s, g, &run.dir);
    }
    s
}

/// Runs that did not succeed listed per group (results.csv has them all).
const FAILURES_SHOWN: usize = 100;
/// Lines of a collapsed matrix's summary.
const SUMMARY_ROWS: usize = 100;

/// Lines of a run's diff shown, and of all diffs of the summary.
const DIFF_LINES: usize = 60;
const DIFF_LINES_IN_ALL: usize = 3000;

/// A diff as a fenced block inside a list item, its fence longer than any run of
/// backticks in it.
fn fenced_diff(s: &mut String, diff: &str, more: usize) {
    let mut longest = 0;
    let mut run = 0;
    for c in diff.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest.max(2) + 1);
    s.push_str(&format!("\n  {fence}diff\n"));
    for l in diff.lines() {
        s.push_str("  ");
        s.extend(l.chars().map(|c| {
            if c.is_control() && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        }));
        s.push('\n');
    }
    s.push_str(&format!("  {fence}\n"));
    if more > 0 {
        s.push_str(&format!(
            "\n  … {more} more lines in its folder's check.diff\n"
        ));
    }
    s.push('\n');
}

fn group(s: &mut String, g: &GroupRun, tag_dir: &std::path::Path) {
    s.push_str(&format!("## {}\n\n", md(&g.name)));
    s.push_str(&format!("{}\n\n", md(&group_counts_line(g))));
    let (nl, nr) = (g.locals.len(), g.remotes.len());
    match matrix::view(g) {
        View::Full => table(s, g, &g.locals, &g.remotes),
        View::AllSucceeded => {
            s.push_str(&format!(
                "All {} pairs of the {nl} × {nr} matrix succeeded.\n",
                nl * nr
            ));
        }
        View::Part(rows, cols) => {
            s.push_str(&format!(
                "The matrix is {nl} × {nr}: shown are the {} local and {} remote tests that have a pair that did not succeed; every pair not shown succeeded.\n\n",
                rows.len(),
                cols.len()
            ));
            let locals: Vec<String> = rows.iter().map(|&i| g.locals[i].clone()).collect();
            let remotes: Vec<String> = cols.iter().map(|&j| g.remotes[j].clone()).collect();
            table(s, g, &locals, &remotes);
        }
        View::PerLocal(rows) => {
            s.push_str(&format!(
                "The matrix is {nl} × {nr}, and {} of its local tests have a pair that did not succeed:\n\n",
                rows.len()
            ));
            s.push_str("| local test | SUCCESS | FAILED | ERROR | not run | did not succeed with |\n| --- | --- | --- | --- | --- | --- |\n");
            let lines = matrix::lines(g, &rows, 5);
            for line in lines.iter().take(SUMMARY_ROWS) {
                let mut with: Vec<String> = line.with.iter().map(|r| md(r)).collect();
                if line.bad() > with.len() {
                    with.push("…".into());
                }
                s.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    md(&line.local),
                    line.success,
                    line.failed,
                    line.error,
                    line.not_run,
                    with.join(", ")
                ));
            }
            if lines.len() > SUMMARY_ROWS {
                s.push_str(&format!(
                    "\n… and {} more local tests (index.html has the full matrix).\n",
                    lines.len() - SUMMARY_ROWS
                ));
            }
        }
    }
    let bad: Vec<_> = g
        .runs
        .iter()
        .filter(|p| p.status != Status::Success)
        .collect();
    if !bad.is_empty() {
        let mut diff_lines = 0;
        s.push_str("\nNot successful:\n\n");
        for p in bad.iter().take(FAILURES_SHOWN) {
            let variant = if p.variant.is_empty() {
                String::new()
            } else {
                format!(" \\[{}\\]", md(&p.variant))
            };
            s.push_str(&format!(
                "- {} × {}{variant}: {}: {}\n",
                md(&p.local_test),
                md(&p.remote_test),
                p.status,
                md(&p.reason)
            ));
            if diff_lines < DIFF_LINES_IN_ALL
                && let Some((diff, more)) = check_diff(tag_dir, p, DIFF_LINES)
            {
                diff_lines += diff.lines().count();
                fenced_diff(s, &diff, more);
            }
        }
        if bad.len() > FAILURES_SHOWN {
            s.push_str(&format!(
                "- … and {} more (results.csv lists them all)\n",
                bad.len() - FAILURES_SHOWN
            ));
        }
    }
}

/// The matrix of `locals` × `remotes` as a Markdown table.
fn table(s: &mut String, g: &GroupRun, locals: &[String], remotes: &[String]) {
    s.push_str("| local \\\\ remote |");
    for r in remotes {
        s.push_str(&format!(" {} |", md(r)));
    }
    s.push_str("\n| --- |");
    for _ in remotes {
        s.push_str(" --- |");
    }
    s.push('\n');
    for l in locals {
        s.push_str(&format!("| {} |", md(l)));
        for r in remotes {
            match g.cell(l, r) {
                Some(c) => {
                    let sets = per_set(&c.runs);
                    if sets.len() > 1 {
                        // One mean per parameter set: values of different sets are not
                        // mixed.
                        s.push_str(&format!(" {}", c.status));
                        for (i, (set, runs)) in sets.iter().enumerate() {
                            let (mean, ok) = mean_of(runs);
                            s.push_str(&format!(
                                "{} {}: {} ({ok}/{} SUCCESS{})",
                                if i == 0 { "" } else { ";" },
                                md(set),
                                md(&fmt_duration(mean)),
                                runs.len(),
                                if runs.len() > 1 { ", mean" } else { "" }
                            ));
                        }
                    } else {
                        s.push_str(&format!(" {} {}", c.status, md(&fmt_duration(c.mean_s))));
                    }
                    if sets.len() <= 1 && c.runs.len() > 1 {
                        s.push_str(&format!(
                            " ({}/{} SUCCESS, mean)",
                            c.successes,
                            c.runs.len()
                        ));
                    }
                    if c.flaky {
                        s.push_str(" flaky");
                    }
                    s.push_str(" |");
                }
                None if g.planned(l, r) => s.push_str(" not run |"),
                None => s.push_str(" — |"),
            }
        }
        s.push('\n');
    }
}

/// A cell's runs by parameter set (`A=1,B=2`), in order.
fn per_set<'a>(
    runs: &[&'a crate::tree::PairRecord],
) -> Vec<(String, Vec<&'a crate::tree::PairRecord>)> {
    let mut sets: std::collections::BTreeMap<String, Vec<&crate::tree::PairRecord>> =
        std::collections::BTreeMap::new();
    for r in runs {
        let key = r
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        sets.entry(key).or_default().push(r);
    }
    sets.into_iter().collect()
}

/// The mean duration of the measured runs (warm-ups only when there is nothing else),
/// and how many runs succeeded.
fn mean_of(runs: &[&crate::tree::PairRecord]) -> (f64, usize) {
    let measured: Vec<f64> = runs
        .iter()
        .filter(|r| !r.warmup)
        .map(|r| r.duration_s)
        .collect();
    let d: Vec<f64> = if measured.is_empty() {
        runs.iter().map(|r| r.duration_s).collect()
    } else {
        measured
    };
    let ok = runs.iter().filter(|r| r.status == Status::Success).count();
    (d.iter().sum::<f64>() / d.len().max(1) as f64, ok)
}
