//! `pairbench list`: groups, their enabled and disabled tests, hooks, and the pair matrix.

use std::fmt::Write;
use std::path::Path;

use crate::discover::{self, HOOK_NAMES};

/// Print the listing of `names` (all groups when empty).
pub fn list(groups_dir: &Path, names: &[String]) -> anyhow::Result<()> {
    let groups = discover::select(discover::discover(groups_dir)?, names, groups_dir)?;
    let mut out = String::new();
    if groups.is_empty() {
        writeln!(
            out,
            "no groups in '{}' (a group is a folder with local/ and remote/; `pairbench new NAME` makes one)",
            groups_dir.display()
        )?;
        crate::console::block(&out);
        return Ok(());
    }
    let mut total = 0;
    for g in &groups {
        let (nl, nr) = (g.enabled_local().count(), g.enabled_remote().count());
        total += nl * nr;
        writeln!(out, "{}  ({} pairs)", g.name, nl * nr)?;
        for (side, tests) in [("local", &g.local), ("remote", &g.remote)] {
            writeln!(out, "  {side}:")?;
            if tests.is_empty() {
                writeln!(out, "    (no tests)")?;
            }
            for t in tests.iter() {
                match &t.disabled {
                    None => writeln!(out, "    {}", t.name)?,
                    Some(why) => writeln!(out, "    {}  [disabled: {why}]", t.name)?,
                }
            }
        }
        let hooks: Vec<&str> = HOOK_NAMES
            .iter()
            .chain(std::iter::once(&"make_graphs"))
            .copied()
            .filter(|h| g.hook(h).is_some())
            .collect();
        if !hooks.is_empty() {
            writeln!(out, "  hooks: {}", hooks.join(", "))?;
        }
        for h in g.inert_hooks() {
            writeln!(out, "  hook {h} is not executable and will not run")?;
        }
        for p in &g.unnamed {
            writeln!(
                out,
                "  warning: {p:?} is not named in UTF-8: `pairbench run` refuses it until it is renamed"
            )?;
        }
        if nl > 0 && nr > 0 {
            let locals: Vec<&str> = g.enabled_local().map(|t| t.name.as_str()).collect();
            let remotes: Vec<&str> = g.enabled_remote().map(|t| t.name.as_str()).collect();
            let w = locals
                .iter()
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
                .max(14);
            writeln!(out, "  pairs (local \\ remote):")?;
            write!(out, "    {:w$}", "local \\ remote")?;
            for r in &remotes {
                write!(out, "  {r}")?;
            }
            writeln!(out)?;
            for l in &locals {
                write!(out, "    {l:w$}")?;
                for r in &remotes {
                    write!(out, "  {:^width$}", "x", width = r.chars().count())?;
                }
                writeln!(out)?;
            }
        }
    }
    writeln!(out, "{} groups, {total} pairs", groups.len())?;
    crate::console::block(&out);
    Ok(())
}
