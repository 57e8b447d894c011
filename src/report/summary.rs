//! `summary.md`: the run's counts, then per group the local × remote matrix with each
//! pair's status and duration, its counts, and the reason of every pair that did not
//! succeed. Names are Markdown-escaped so any group or test name keeps the tables intact.

use super::load::{GroupRun, Run};
use super::names::markdown as md;
use super::{counts_line, fmt_duration};
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
    s.push_str(&format!("- {}\n", md(&counts_line(run.counts()))));
    for g in &run.groups {
        s.push('\n');
        group(&mut s, g);
    }
    s
}

fn group(s: &mut String, g: &GroupRun) {
    s.push_str(&format!("## {}\n\n", md(&g.name)));
    s.push_str(&format!("{}\n\n", md(&counts_line(g.counts()))));
    s.push_str("| local \\\\ remote |");
    for r in &g.remotes {
        s.push_str(&format!(" {} |", md(r)));
    }
    s.push_str("\n| --- |");
    for _ in &g.remotes {
        s.push_str(" --- |");
    }
    s.push('\n');
    for l in &g.locals {
        s.push_str(&format!("| {} |", md(l)));
        for r in &g.remotes {
            match g.cell(l, r) {
                Some(c) => {
                    s.push_str(&format!(" {} {}", c.status, md(&fmt_duration(c.mean_s))));
                    if c.runs.len() > 1 {
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
                None => s.push_str(" not run |"),
            }
        }
        s.push('\n');
    }
    let bad: Vec<_> = g
        .runs
        .iter()
        .filter(|p| p.status != Status::Success)
        .collect();
    if !bad.is_empty() {
        s.push_str("\nNot successful:\n\n");
        for p in bad {
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
        }
    }
}
