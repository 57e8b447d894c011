//! Results people read, drawn from a run's tree alone (SPEC §3, §5): `junit.xml`,
//! `summary.md`, `plots/` (SVG and PNG) and `index.html`, written at the end of every run
//! by [`write_all`]; and `pairbench report [TAG]` ([`command`]), which also rebuilds
//! `results.csv`, `metrics.csv` and `stats.csv` from the run folders and then runs each
//! group's `make_graphs`. One module per output, like hyperfine's exporters: [`load`]
//! reads the tree, `junit`, `summary`, [`plots`] and `html` write, [`font`] embeds the
//! font, [`names`] makes names safe, `make_graphs` runs the groups' own scripts.
//!
//! Cost: about 0.2 s for 1,000 pairs (benches/report.rs); plots larger than
//! [`plots::MAX_PNG_PIXELS`] get an SVG only.

pub mod font;
mod html;
mod junit;
pub mod load;
mod make_graphs;
mod matrix;
pub mod names;
pub mod plots;
mod summary;

use std::path::Path;

use crate::exit_status::ExitStatus;
use crate::terminal::shown;
use crate::tree::nofollow::write_atomic;
use crate::tree::walk::Walked;
use crate::tree::{Counts, lock};
use load::Run;

/// What drawing a run's report produced.
pub struct Drawn {
    pub plots: Vec<plots::Plot>,
    /// One line per file or plot that could not be written.
    pub problems: Vec<String>,
}

/// What drawing a report after a run found: the tree's problems (one line each), and the
/// report files that could not be written.
pub struct AfterRun {
    pub warnings: Vec<String>,
    pub not_written: Vec<String>,
}

/// Write every report file of a tag folder just run, from what the run's walk found.
pub fn after_run(tag_dir: &Path, walked: Walked) -> AfterRun {
    let run = load::from_walk(tag_dir, walked);
    let drawn = draw(&run);
    AfterRun {
        warnings: run.warnings,
        not_written: drawn.problems,
    }
}

/// Write every report file of a tag folder; returns warnings.
pub fn write_all(tag_dir: &Path) -> Vec<String> {
    let a = after_run(tag_dir, crate::tree::walk::walk(tag_dir));
    a.warnings.into_iter().chain(a.not_written).collect()
}

/// Draw junit.xml, summary.md, plots/ and index.html of a loaded run.
pub fn draw(run: &Run) -> Drawn {
    let dir = &run.dir;
    let mut problems = Vec::new();
    let mut put = |name: &str, bytes: std::io::Result<Vec<u8>>| {
        if let Err(e) = bytes.and_then(|b| write_atomic(&dir.join(name), &b)) {
            problems.push(format!("cannot write {name} in '{}': {e}", dir.display()));
        }
    };
    put("junit.xml", junit::render(run));
    put("summary.md", Ok(summary::render(run).into_bytes()));
    let (plots, plot_problems) = fresh_folder(run, "plots", "draws no plots", |tmp| {
        plots::draw_all(run, tmp)
    });
    problems.extend(plot_problems);
    let plots = plots.unwrap_or_default();
    problems.extend(write_pages(run, &plots));
    Drawn { plots, problems }
}

/// Write index.html and `pages/` of a run whose plots are `plots`; returns problems.
fn write_pages(run: &Run, plots: &[plots::Plot]) -> Vec<String> {
    let dir = &run.dir;
    let mut problems = Vec::new();
    let site = html::render(run, plots);
    if !site.pages.is_empty() {
        let (_, page_problems) = fresh_folder(run, "pages", "writes no group pages", |tmp| {
            let mut problems = Vec::new();
            for (name, text) in &site.pages {
                if let Err(e) = write_atomic(&tmp.join(name), text.as_bytes()) {
                    problems.push(format!("cannot write pages/{name}: {e}"));
                }
            }
            ((), problems)
        });
        problems.extend(page_problems);
    } else if not_ours(&dir.join("pages")).is_none() {
        // Pages of an earlier, larger rendering.
        let _ = std::fs::remove_dir_all(dir.join("pages"));
    }
    if let Err(e) = write_atomic(&dir.join("index.html"), site.index.as_bytes()) {
        problems.push(format!(
            "cannot write index.html in '{}': {e}",
            dir.display()
        ));
    }
    problems
}

/// Fill a fresh folder with `fill`, then put it in place of `<tag>/<name>` (plots/ or
/// pages/), so the folder never mixes files of two renderings. A `<name>` that is not
/// the report's own (a group of that name) is left alone: `refusal` says what is not
/// done then.
fn fresh_folder<T>(
    run: &Run,
    name: &str,
    refusal: &str,
    fill: impl FnOnce(&Path) -> (T, Vec<String>),
) -> (Option<T>, Vec<String>) {
    let pid = std::process::id();
    let tmp = run.dir.join(format!(".{name}.tmp{pid}"));
    let old = run.dir.join(format!(".{name}.old{pid}"));
    let dest = run.dir.join(name);
    let _ = std::fs::remove_dir_all(&tmp);
    if let Some(why) = not_ours(&dest) {
        return (
            None,
            vec![format!(
                "'{}' {why}, so pairbench leaves it alone and {refusal} (a group named '{name}'? rename it)",
                dest.display()
            )],
        );
    }
    if let Err(e) = std::fs::create_dir(&tmp) {
        return (
            None,
            vec![format!("cannot create {}: {e}; {refusal}", tmp.display())],
        );
    }
    let (made, mut problems) = fill(&tmp);
    let _ = std::fs::remove_dir_all(&old);
    let moved_old = std::fs::symlink_metadata(&dest).is_ok();
    if moved_old && let Err(e) = std::fs::rename(&dest, &old) {
        problems.push(format!("cannot replace {}: {e}", dest.display()));
        let _ = std::fs::remove_dir_all(&tmp);
        return (None, problems);
    }
    if let Err(e) = std::fs::rename(&tmp, &dest) {
        problems.push(format!("cannot move {name} to {}: {e}", dest.display()));
        if moved_old {
            let _ = std::fs::rename(&old, &dest);
        }
        return (None, problems);
    }
    if moved_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    (Some(made), problems)
}

/// Rebuild results.csv, metrics.csv and stats.csv of `dir` from the run folders the walk
/// found, as a run does (every attempt of every run, the runs rebuilt from results.csv
/// or their marker where their record was damaged included). One line per table that
/// could not be written.
fn rebuild_tables(dir: &Path, walked: &Walked) -> Vec<String> {
    crate::stats::write_tables(&crate::tree::Tree::at(dir), walked)
        .into_iter()
        .map(|(_, e)| e.to_string())
        .collect()
}

/// Why `folder` is not a plots/ or pages/ folder pairbench wrote (which holds files
/// only), if it is not.
fn not_ours(folder: &Path) -> Option<&'static str> {
    let meta = std::fs::symlink_metadata(folder).ok()?;
    if !meta.is_dir() {
        return Some("is not a folder");
    }
    let Ok(rd) = std::fs::read_dir(folder) else {
        return Some("cannot be read");
    };
    for e in rd.flatten() {
        if e.file_type().map_or(true, |t| t.is_dir()) {
            return Some("holds folders (the report's own folders hold files only)");
        }
    }
    None
}

/// `pairbench report [TAG]`: redraw every table, plot and page of a stored run, then run
/// each group's `make_graphs`. 0 when everything was drawn and every make_graphs
/// succeeded; 1 when what it drew is incomplete (the tree has a problem: a damaged or
/// missing record, a missing marker, two markers, a deleted side folder), or a table,
/// plot or page could not be written, or a make_graphs failed; a tag that does not exist
/// is an error (the CLI prints it and exits 2).
pub fn command(results_dir: &Path, tag: &str, groups_dir: &Path) -> anyhow::Result<ExitStatus> {
    let (_tag, dir) = lock::resolve(results_dir, tag)?;
    let dir = make_graphs::absolute(&dir);
    let walked = crate::tree::walk::walk(&dir);
    let in_use = lock::in_use(&dir);
    // The tables first, so that what they need is gone before the drawing starts.
    let not_written = if in_use {
        Vec::new()
    } else {
        rebuild_tables(&dir, &walked)
    };
    let run = load::from_walk(&dir, walked);
    let mut incomplete = run.incomplete();
    for w in &run.warnings {
        eprintln!("pairbench: warning: {}", shown(w));
    }
    if in_use {
        // The run appends to results.csv and rewrites both tables when it ends.
        eprintln!(
            "pairbench: note: '{}' is being run right now: the report shows the pairs finished so far; its tables (results.csv, metrics.csv, stats.csv) are left to the run",
            run.tag
        );
    }
    for line in &not_written {
        eprintln!("pairbench: {line}");
        incomplete = true;
    }
    let drawn = draw(&run);
    for w in &drawn.problems {
        eprintln!("pairbench: warning: {}", shown(w));
        incomplete = true;
    }
    let c = run.counts();
    crate::console::line(&format!(
        "pairbench: report of '{}' redrawn: {} in {} group{}, {} plot{}: {}",
        run.tag,
        counts_line(c),
        run.groups.len(),
        plural(run.groups.len()),
        drawn.plots.len(),
        plural(drawn.plots.len()),
        dir.join("index.html").display()
    ));
    let groups_dir = make_graphs::groups_dir(&run, groups_dir);
    let mut graphs_failed = false;
    let graphs = make_graphs::run_all(&run, &groups_dir);
    for o in &graphs {
        if o.ok {
            crate::console::line(&format!("pairbench: {}", shown(&o.line)));
        } else {
            eprintln!("pairbench: warning: {}", shown(&o.line));
            graphs_failed = true;
        }
    }
    if !graphs.is_empty() {
        // The pages again, with what make_graphs wrote and its logs.
        for w in write_pages(&run, &drawn.plots) {
            eprintln!("pairbench: warning: {}", shown(&w));
            incomplete = true;
        }
    }
    Ok(if incomplete || graphs_failed {
        ExitStatus::FAILED
    } else {
        ExitStatus::SUCCESS
    })
}

/// The first `max_lines` lines of a run's `check.diff` (how its output differs from its
/// reference, docs/regression.md), never read through a link, and how many more it has.
pub fn check_diff(
    tag_dir: &Path,
    r: &crate::tree::PairRecord,
    max_lines: usize,
) -> Option<(String, usize)> {
    let dir = load::run_dir(tag_dir, r);
    let bytes =
        crate::tree::nofollow::read_beneath(&dir, Path::new(crate::tree::layout::CHECK_DIFF))
            .ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let mut shown: String = lines
        .iter()
        .take(max_lines)
        .flat_map(|l| [*l, "\n"])
        .collect();
    if shown.is_empty() {
        return None;
    }
    if !shown.ends_with('\n') {
        shown.push('\n');
    }
    Some((shown, lines.len().saturating_sub(max_lines)))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `12 pairs: 10 SUCCESS, 1 FAILED, 1 ERROR`.
pub fn counts_line(c: Counts) -> String {
    format!(
        "{} pair{}: {} SUCCESS, {} FAILED, {} ERROR",
        c.total(),
        plural(c.total()),
        c.success,
        c.failed,
        c.error
    )
}

/// A group's counts line, and, when some of its planned pairs never ran, `, 3 not run`.
pub fn group_counts_line(g: &load::GroupRun) -> String {
    let mut s = counts_line(g.counts());
    let not_run = g.not_run();
    if not_run > 0 {
        s.push_str(&format!(", {not_run} not run"));
    }
    s
}

/// A pair's duration for people: `850 ms`, `12.34 s`, `3m 05s`.
pub fn fmt_duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "?".into();
    }
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 60.0 {
        format!("{s:.2} s")
    } else {
        let total = s.round() as u64;
        let (h, m, sec) = (total / 3600, (total / 60) % 60, total % 60);
        if h > 0 {
            format!("{h}h {m:02}m {sec:02}s")
        } else {
            format!("{m}m {sec:02}s")
        }
    }
}

/// A value with its unit (as [`fmt_value`]); seconds below one as ms or µs ("805 µs",
/// not "8.050e-4 s": what a trivial script's CPU time is). Names reach a page or plot
/// through [`names::printable`].
pub fn fmt_with_unit(v: f64, unit: &str) -> String {
    let (v, unit) = match smaller_unit(unit, v) {
        Some((factor, smaller)) => (v * factor, smaller),
        None => (v, unit),
    };
    if unit.is_empty() {
        fmt_value(v)
    } else {
        format!("{} {}", fmt_value(v), names::printable(unit))
    }
}

/// The factor and unit that show seconds of size `reach` (not 0, below one) as ms or
/// µs; `None` for a second or more, and for other units.
pub fn smaller_unit(unit: &str, reach: f64) -> Option<(f64, &'static str)> {
    match unit {
        "s" if reach != 0.0 && reach.abs() < 1e-3 => Some((1e6, "µs")),
        "s" if reach != 0.0 && reach.abs() < 1.0 => Some((1e3, "ms")),
        _ => None,
    }
}

/// A metric value with up to 4 significant decimals, without trailing zeros.
pub fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e9).contains(&a) {
        return format!("{v:.3e}");
    }
    let decimals = if a >= 1000.0 {
        0
    } else if a >= 100.0 {
        1
    } else if a >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_values_read_well() {
        assert_eq!(fmt_duration(0.0123), "12 ms");
        assert_eq!(fmt_duration(1.5), "1.50 s");
        assert_eq!(fmt_duration(185.0), "3m 05s");
        assert_eq!(fmt_duration(3725.0), "1h 02m 05s");
        assert_eq!(fmt_value(12.5), "12.5");
        assert_eq!(fmt_value(1234.56), "1235");
        assert_eq!(fmt_value(0.25), "0.25");
        assert_eq!(fmt_value(0.0), "0");
        assert_eq!(fmt_value(-0.0001), "-1.000e-4");
        assert_eq!(fmt_value(3.0), "3");
        assert_eq!(fmt_with_unit(8.05e-4, "s"), "805 µs");
        assert_eq!(fmt_with_unit(0.25, "s"), "250 ms");
        assert_eq!(fmt_with_unit(2.5, "s"), "2.5 s");
        assert_eq!(fmt_with_unit(0.0, "s"), "0 s");
        assert_eq!(fmt_with_unit(0.5, "KiB"), "0.5 KiB");
        assert_eq!(fmt_with_unit(3.0, ""), "3");
    }
}
