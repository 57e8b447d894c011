//! `pairbench review [TAG]` (docs/regression.md, "Review"), like `cargo insta review`: on
//! a terminal, walk each run of the stored run whose output differs from its reference
//! or that has no reference yet, show its diff, and ask: `a` accept (bless it), `r`
//! reject (keep the reference; a pending one is removed), `s` skip, `q` quit. Without a
//! terminal it refuses (one line, exit 2): `pairbench check` shows the same differences
//! and `pairbench bless` accepts them all.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use ::console::{Key, Term, style};

use super::bless::{Blessed, bless_runs};
use super::diff::Diff;
use super::reference;
use super::stored::{Stored, Which};
use crate::exit_status::ExitStatus;
use crate::terminal::shown;
use crate::tree::Status;
use crate::tree::record::CheckResult;
use crate::tree::walk::Found;

/// One difference or pending reference to decide on.
struct Item<'a> {
    id: String,
    group_dir: PathBuf,
    /// The runs sharing the reference (the first is shown).
    runs: Vec<&'a Found>,
    title: String,
    diff: String,
    pending: bool,
}

/// Lines of a diff shown per item.
const SHOWN_LINES: usize = 400;

fn colour(diff: &str) -> String {
    let mut out = String::new();
    for l in diff.lines().take(SHOWN_LINES) {
        let l = shown(l);
        let s = if l.starts_with("+++") || l.starts_with("---") {
            style(l).bold().to_string()
        } else if l.starts_with('+') {
            style(l).green().to_string()
        } else if l.starts_with('-') {
            style(l).red().to_string()
        } else if l.starts_with("@@") {
            style(l).cyan().to_string()
        } else {
            l.into_owned()
        };
        out.push_str(&s);
        out.push('\n');
    }
    let n = diff.lines().count();
    if n > SHOWN_LINES {
        out.push_str(&format!(
            "... {} more lines (the whole diff: pairbench check)\n",
            n - SHOWN_LINES
        ));
    }
    out
}

/// `pairbench review`.
pub fn command(which: &Which) -> anyhow::Result<ExitStatus> {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        anyhow::bail!(
            "review asks what to do with each difference, so it needs a terminal: `pairbench check` shows the differences, `pairbench bless` accepts them all"
        );
    }
    let stored = Stored::open(which)?;
    let mut items: Vec<Item> = Vec::new();
    let mut index: BTreeMap<(PathBuf, String), usize> = BTreeMap::new();
    for f in stored.selected() {
        if f.rec.outcome().0 != Status::Success {
            continue;
        }
        let Some(Ok((_, c))) = stored.compare(f) else {
            continue;
        };
        let group_dir = stored.group_dir(&f.rec);
        let key = (
            group_dir.clone(),
            reference::rel(&f.rec.pair, &f.rec.variant),
        );
        if let Some(&i) = index.get(&key) {
            items[i].runs.push(f);
            continue;
        }
        let (title, diff, pending) = match c.result {
            CheckResult::Matched => continue,
            CheckResult::Differs => (c.reason(), c.diff.clone(), false),
            CheckResult::Missing | CheckResult::Pending => {
                let mut d = Diff::default();
                for (k, content) in &c.outputs.files {
                    d.file("/dev/null", k, None, Some(content.body()));
                }
                (
                    format!("new: no reference in {} yet", c.reference),
                    d.finish(),
                    true,
                )
            }
        };
        index.insert(key.clone(), items.len());
        items.push(Item {
            id: format!("{}/{}", f.rec.group, key.1),
            group_dir,
            runs: vec![f],
            title,
            diff,
            pending,
        });
    }
    let term = Term::stdout();
    if items.is_empty() {
        term.write_line(&format!(
            "pairbench: review '{}': nothing to review, every run of a checked group matches its reference",
            stored.tag
        ))?;
        return Ok(ExitStatus::SUCCESS);
    }
    let (mut accepted, mut rejected, mut skipped) = (0, 0, 0);
    let total = items.len();
    let mut failed = false;
    let mut notes = Vec::new();
    for (i, item) in items.iter().enumerate() {
        term.write_line("")?;
        term.write_line(
            &style(format!("[{}/{total}] {}", i + 1, shown(&item.id)))
                .bold()
                .to_string(),
        )?;
        term.write_line(&shown(&item.title))?;
        term.write_str(&colour(&item.diff))?;
        let choice = loop {
            term.write_str(&format!(
                "{} accept   {} reject   {} skip   {} quit  > ",
                style("a").green().bold(),
                style("r").red().bold(),
                style("s").yellow().bold(),
                style("q").bold()
            ))?;
            let k = term.read_key()?;
            term.write_line("")?;
            match k {
                Key::Char(c @ ('a' | 'r' | 's' | 'q')) => break c,
                Key::Escape => break 'q',
                _ => term.write_line("please press a, r, s or q")?,
            }
        };
        match choice {
            'a' => match bless_runs(&stored, &item.runs, &mut notes) {
                Ok(b) => {
                    accepted += 1;
                    let what = match b {
                        Blessed::Added => "added".to_string(),
                        Blessed::Changed(f) => format!("changed {}", f.join(", ")),
                        Blessed::Unchanged => "unchanged".to_string(),
                    };
                    term.write_line(&format!("accepted: reference {what}"))?;
                }
                Err(e) => {
                    failed = true;
                    term.write_line(&format!(
                        "pairbench: cannot accept {}: {}",
                        shown(&item.id),
                        shown(&e)
                    ))?;
                }
            },
            'r' => {
                rejected += 1;
                let first = item.runs[0];
                let dir = reference::dir(&item.group_dir, &first.rec.pair, &first.rec.variant);
                match reference::remove_pending(&dir) {
                    Ok(n) if n > 0 => term.write_line(&format!(
                        "rejected: {n} pending file{} removed",
                        if n == 1 { "" } else { "s" }
                    ))?,
                    Ok(_) if item.pending => {
                        term.write_line("rejected: nothing pending to remove")?
                    }
                    Ok(_) => term.write_line("rejected: the reference stays as it is")?,
                    Err(e) => {
                        failed = true;
                        term.write_line(&format!("pairbench: {}", shown(&e.to_string())))?;
                    }
                }
            }
            's' => skipped += 1,
            _ => {
                skipped += total - i;
                break;
            }
        }
    }
    for n in notes {
        term.write_line(&format!("note: {}", shown(&n)))?;
    }
    term.write_line(&format!(
        "pairbench: review '{}': {accepted} accepted, {rejected} rejected, {skipped} skipped",
        stored.tag
    ))?;
    Ok(if failed {
        ExitStatus::ERROR
    } else {
        ExitStatus::SUCCESS
    })
}
