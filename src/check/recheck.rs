//! `pairbench check [TAG]` (docs/regression.md, "Check"): compare a stored run with
//! today's references, offline, without changing the run: one line per run of a checked
//! group that does not match (its diff below it, capped), and a count. Exit 0 when every
//! run of a checked group had a SUCCESS outcome and matches its reference; 1 when one
//! differs, has no reference, or did not succeed; 2 on bad input.

use super::stored::{Stored, Which};
use crate::exit_status::ExitStatus;
use crate::terminal::shown;
use crate::tree::Status;
use crate::tree::record::CheckResult;

/// Lines of a run's diff printed (check.diff and the reports have more).
pub const DIFF_LINES: usize = 60;

/// `text` safe for a terminal, line by line, at most `max` lines.
pub fn shown_lines(text: &str, max: usize) -> String {
    let mut out = String::new();
    let all: Vec<&str> = text.lines().collect();
    for l in all.iter().take(max) {
        out.push_str(&shown(l));
        out.push('\n');
    }
    if all.len() > max {
        out.push_str(&format!("... {} more lines\n", all.len() - max));
    }
    out
}

/// `pairbench check`.
pub fn command(which: &Which) -> anyhow::Result<ExitStatus> {
    let stored = Stored::open(which)?;
    let mut text = String::new();
    let (mut matched, mut differ, mut new, mut not_ok, mut unchecked) = (0, 0, 0, 0, 0);
    let mut bad_input = false;
    for f in stored.selected() {
        let id = f.rec.id();
        let Some(c) = stored.compare(f) else {
            unchecked += 1;
            continue;
        };
        let (_, c) = match c {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pairbench: {}: {}", shown(&f.rec.group), shown(&e));
                bad_input = true;
                continue;
            }
        };
        let (status, reason) = f.rec.outcome();
        if status != Status::Success {
            not_ok += 1;
            text.push_str(&format!(
                "{:<9}{}: {} (not compared)\n",
                status.marker(),
                shown(&id),
                shown(reason)
            ));
            continue;
        }
        match c.result {
            CheckResult::Matched => matched += 1,
            CheckResult::Differs => {
                differ += 1;
                text.push_str(&format!(
                    "DIFFERS  {}: {}\n",
                    shown(&id),
                    shown(&c.reason())
                ));
                text.push_str(&shown_lines(&c.diff, DIFF_LINES));
            }
            CheckResult::Missing | CheckResult::Pending => {
                new += 1;
                text.push_str(&format!(
                    "NEW      {}: no reference in {} (`pairbench bless` or `pairbench review` stores one)\n",
                    shown(&id),
                    shown(&c.reference)
                ));
            }
        }
    }
    let mut groups: std::collections::BTreeMap<std::path::PathBuf, &str> = Default::default();
    for f in stored.selected() {
        groups.insert(stored.group_dir(&f.rec), &f.rec.group);
    }
    for (dir, name) in groups {
        for w in super::stray_references(name, &dir) {
            eprintln!("pairbench: warning: {}", shown(&w));
        }
    }
    let checked = matched + differ + new + not_ok;
    let mut line = format!(
        "pairbench: check '{}': {checked} run{} of checked groups: {matched} match, {differ} differ, {new} without a reference, {not_ok} not successful",
        stored.tag,
        if checked == 1 { "" } else { "s" }
    );
    if unchecked > 0 {
        line.push_str(&format!(
            "; {unchecked} run{} of groups without references not checked",
            if unchecked == 1 { "" } else { "s" }
        ));
    }
    text.push_str(&line);
    text.push('\n');
    crate::console::block(&text);
    Ok(if bad_input {
        ExitStatus::ERROR
    } else if differ + new + not_ok > 0 {
        ExitStatus::FAILED
    } else {
        ExitStatus::SUCCESS
    })
}
