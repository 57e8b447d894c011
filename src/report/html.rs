//! `index.html` and the pages below `pages/`: self-contained HTML (inline CSS, no script,
//! no request leaves the result folder: a Content-Security-Policy says so) that a person
//! can use at any size of run (docs/results.md, "The page").
//!
//! The index opens with the run's counts and what did not succeed (reasons and links to
//! the pair and its logs, at most [`FAILURES_SHOWN`], then "and N more" leading to
//! `pages/failures.html`). A small run then shows every group on the index: its
//! local × remote matrix (each cell linking the pair's folder and logs), its hooks, and
//! its plots, each metric chart beside the table of its numbers (mean ± sd, n). A large
//! run (more than [`INLINE_RUNS`] runs, [`INLINE_CELLS`] matrix cells, [`INLINE_GROUPS`]
//! groups or [`INLINE_ROWS`] rows of numbers) lists its groups on the index instead, each with a page of
//! its own (`pages/<group>.html`). A matrix of more than [`matrix::FULL_CELLS`] cells is
//! collapsed to the rows and columns that hold a pair that did not succeed (or to a line
//! per local test when even that is too large), with the full matrix one click away
//! (`pages/<group>.matrix.html`). Every list on the index is capped, so it stays small
//! at any size: about 50 KiB at 10,000 pairs, a few hundred KiB at most for names of
//! usual length (benches/report.rs checks 512 KiB).
//!
//! Every link is relative and percent-encoded per path segment; page names come from
//! [`safe_stem`], so no group name can collide with them or leave `pages/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::load::{Cell, GroupRun, Run, run_dir, run_label, run_parts};
use super::matrix::{self, View};
use super::names::{ellipsize, href, html as h, safe_stem};
use super::plots::{Kind, Plot};
use super::{fmt_duration, fmt_value, group_counts_line};
use crate::tree::nofollow::is_file;
use crate::tree::{Counts, PairRecord, Status};

const CSS: &str = r#"
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; margin: 1.5rem; color: #222; background: #fff; line-height: 1.35; }
h1 { font-size: 1.5rem; margin: 0 0 .5rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .5rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
code { background: #f4f4f4; padding: 0 .2em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .3rem .45rem; vertical-align: top; }
th { background: #f7f7f7; text-align: left; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; }
.matrix td { min-width: 7.5rem; font-size: .85rem; }
.matrix td a.status { font-weight: 700; text-decoration: none; color: inherit; }
.matrix td .dur { display: block; }
.matrix td .logs { display: block; font-size: .75rem; }
.matrix td .logs a { color: inherit; }
td.SUCCESS { background: #2e9e44; color: #fff; }
td.FAILED { background: #d64541; color: #fff; }
td.ERROR { background: #f0a020; color: #222; }
td.none { background: #ddd; color: #555; }
td.unplanned { background: #fff; color: #999; }
.counts .SUCCESS { color: #1d7a31; } .counts .FAILED { color: #b8302c; } .counts .ERROR { color: #a86400; } .counts .none { color: #666; }
ul.reasons li { margin: .15rem 0; }
ul.reasons .status { font-weight: 700; }
.note { color: #555; font-size: .9rem; }
.chart { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; margin: 1rem 0; }
.chart figure { margin: 0; }
figure.plot img { max-width: 100%; height: auto; border: 1px solid #eee; }
figure.plot.wide img { max-width: none; }
figcaption { font-size: .85rem; color: #555; }
table.numbers { font-size: .85rem; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: .1rem 1rem; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
footer { margin-top: 2rem; font-size: .85rem; color: #555; }
details.diff { margin: .3rem 0 .6rem; }
pre.diff { background: #fafafa; border: 1px solid #ddd; padding: .4rem; overflow-x: auto; font-size: .8rem; margin: .2rem 0; }
pre.diff .add { background: #e6ffec; color: #116329; }
pre.diff .del { background: #ffebe9; color: #82071e; }
pre.diff .hunk { color: #0550ae; }
pre.diff .file { font-weight: 700; }
"#;

/// Runs, matrix cells and groups a run may have and still show every group on the index.
pub const INLINE_RUNS: usize = 400;
pub const INLINE_CELLS: usize = 400;
pub const INLINE_GROUPS: usize = 20;
/// Pairs that did not succeed listed on the index (all are in `pages/failures.html`).
pub const FAILURES_SHOWN: usize = 100;
/// With more runs that did not succeed than this, a table of their reasons comes first.
const REASONS_FROM: usize = 10;
/// Reasons in that table.
const REASONS_SHOWN: usize = 10;
/// Groups listed on the index of a large run (all are in `pages/groups.html`).
pub const GROUPS_SHOWN: usize = 100;
/// Lines of a collapsed matrix's summary (a line per local test).
const SUMMARY_ROWS: usize = 200;
/// Problems of the tree listed (all are in `pages/problems.html`).
const WARNINGS_SHOWN: usize = 50;
/// Rows of a chart's table of numbers shown (stats.csv has them all).
const TABLE_ROWS: usize = 100;
/// Characters of a reason shown in a list (the marker file has it whole).
const REASON_CHARS: usize = 300;
/// Plots wider than this (pixels) are shown at their size in a scrolling box.
const WIDE: u32 = 2400;
/// Plots taller than this are linked, not shown on the page.
const TALL: u32 = 3000;
/// Runs of a pair linked one by one in its cell, at most (the pair folder has them all).
const MAX_RUN_LINKS: usize = 60;

/// The index and the pages below `pages/` (file name, text) of a run.
pub struct Site {
    pub index: String,
    pub pages: Vec<(String, String)>,
}

/// Where a page is: links from it to the tree start with `up`.
#[derive(Clone, Copy)]
struct At {
    up: &'static str,
}

const INDEX: At = At { up: "" };
const PAGE: At = At { up: "../" };

impl At {
    /// A link to a path below the tag folder.
    fn tree(self, parts: &[&str]) -> String {
        format!("{}{}", self.up, href(parts))
    }
    /// A link to a page in `pages/`.
    fn page(self, name: &str) -> String {
        if self.up.is_empty() {
            href(&["pages", name])
        } else {
            href(&[name])
        }
    }
    fn index(self) -> String {
        format!("{}index.html", self.up)
    }
}

/// Rows of the charts' tables a run may have and still show every group on the index.
pub const INLINE_ROWS: usize = 500;

/// Is the run too large to show every group on the index?
pub fn paged(run: &Run, plots: &[Plot]) -> bool {
    let cells: usize = run
        .groups
        .iter()
        .map(|g| g.locals.len() * g.remotes.len())
        .sum();
    let rows: usize = plots.iter().map(|p| p.rows.len().min(TABLE_ROWS)).sum();
    run.records().count() > INLINE_RUNS
        || cells > INLINE_CELLS
        || run.groups.len() > INLINE_GROUPS
        || rows > INLINE_ROWS
}

/// The page of a group, in `pages/`.
pub fn group_page(g: &GroupRun) -> String {
    format!("{}.html", safe_stem(&g.name))
}

fn full_matrix_page(g: &GroupRun) -> String {
    format!("{}.matrix.html", safe_stem(&g.name))
}

/// The index.html text and pages of a run whose plots are `plots`.
pub fn render(run: &Run, plots: &[Plot]) -> Site {
    let mut pages = Vec::new();
    let paged = paged(run, plots);
    let mut s = String::with_capacity(64 * 1024);
    head(&mut s, &format!("pairbench run {}", run.tag));
    let _ = writeln!(s, "<h1>pairbench run <code>{}</code></h1>", h(&run.tag));
    let not_run: usize = run.groups.iter().map(GroupRun::not_run).sum();
    let _ = writeln!(
        s,
        "<p class=\"counts\" id=\"counts\">{}</p>",
        counts_html(run.counts(), not_run)
    );
    meta(&mut s, run);
    warnings(&mut s, run, &mut pages);
    let bad: Vec<&PairRecord> = run
        .records()
        .filter(|p| p.status != Status::Success)
        .collect();
    failures(&mut s, INDEX, &run.dir, &bad, FAILURES_SHOWN, true);
    if bad.len() > FAILURES_SHOWN {
        pages.push(("failures.html".into(), failures_page(run, &bad)));
    }
    if paged {
        groups_table(&mut s, run, &mut pages);
        for g in &run.groups {
            let page = group_page_html(run, g, plots, &mut pages);
            pages.push((group_page(g), page));
        }
    } else {
        if run.groups.len() > 1 {
            s.push_str("<nav><h2>Groups</h2>\n<ul>\n");
            for (i, g) in run.groups.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "<li><a href=\"#group-{}\">{}</a>: {}</li>",
                    i + 1,
                    h(&g.name),
                    h(&group_counts_line(g))
                );
            }
            s.push_str("</ul></nav>\n");
        }
        for (i, g) in run.groups.iter().enumerate() {
            let _ = writeln!(s, "<section class=\"group\" id=\"group-{}\">", i + 1);
            let _ = writeln!(s, "<h2>{}</h2>", h(&g.name));
            group_body(&mut s, INDEX, run, g, plots, &mut pages);
            s.push_str("</section>\n");
        }
    }
    hosts(&mut s, run);
    footer(&mut s, run, INDEX);
    Site { index: s, pages }
}

fn head(s: &mut String, title: &str) {
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    s.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'\">\n",
    );
    s.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    let _ = writeln!(s, "<title>{}</title>", h(title));
    let _ = writeln!(s, "<style>{CSS}</style>\n</head>\n<body>");
}

/// The start of a page in `pages/`: its title and the way back to the index.
fn page_head(run: &Run, title: &str) -> String {
    let mut s = String::new();
    head(&mut s, &format!("{title} · pairbench run {}", run.tag));
    let _ = writeln!(
        s,
        "<p><a href=\"{}\">← pairbench run {}</a></p>\n<h1>{}</h1>",
        PAGE.index(),
        h(&run.tag),
        h(title)
    );
    s
}

fn footer(s: &mut String, run: &Run, at: At) {
    s.push_str("<footer>Files of this run: ");
    let files = [
        "results.csv",
        "metrics.csv",
        "stats.csv",
        "junit.xml",
        "summary.md",
        "run.json",
    ];
    let links: Vec<String> = files
        .iter()
        .filter(|f| is_file(&run.dir.join(f)))
        .map(|f| format!("<a href=\"{}\">{}</a>", at.tree(&[f]), h(f)))
        .collect();
    s.push_str(&links.join(" · "));
    let version = if run.manifest.pairbench_version.is_empty() {
        env!("CARGO_PKG_VERSION")
    } else {
        &run.manifest.pairbench_version
    };
    let _ = writeln!(
        s,
        ". Run by pairbench {}; redraw with <code>pairbench report {}</code>.</footer>\n</body>\n</html>",
        h(version),
        h(&run.tag)
    );
}

fn counts_html(c: Counts, not_run: usize) -> String {
    let mut s = format!(
        "{} pair{}: <span class=\"SUCCESS\">{} SUCCESS</span>, <span class=\"FAILED\">{} FAILED</span>, <span class=\"ERROR\">{} ERROR</span>",
        c.total(),
        super::plural(c.total()),
        c.success,
        c.failed,
        c.error
    );
    if not_run > 0 {
        let _ = write!(s, ", <span class=\"none\">{not_run} not run</span>");
    }
    s
}

fn meta(s: &mut String, run: &Run) {
    let m = &run.manifest;
    let mut rows: Vec<(&str, String)> = Vec::new();
    if let Some(v) = &m.started_at {
        rows.push(("started", v.clone()));
    }
    if let Some(v) = &m.ended_at {
        rows.push(("ended", v.clone()));
    }
    if m.interrupted {
        rows.push(("interrupted", "yes: not every pair ran".into()));
    }
    if !m.command_line.is_empty() {
        rows.push(("command", m.command_line.join(" ")));
    }
    if rows.is_empty() {
        return;
    }
    s.push_str("<dl class=\"meta\">\n");
    for (k, v) in rows {
        let _ = writeln!(s, "<dt>{k}</dt><dd>{}</dd>", h(&v));
    }
    s.push_str("</dl>\n");
}

fn warnings(s: &mut String, run: &Run, pages: &mut Vec<(String, String)>) {
    if run.warnings.is_empty() {
        return;
    }
    s.push_str("<h2>Problems found in the result tree</h2>\n<ul class=\"warnings\">\n");
    for w in run.warnings.iter().take(WARNINGS_SHOWN) {
        let _ = writeln!(s, "<li>{}</li>", h(&ellipsize(w, REASON_CHARS)));
    }
    s.push_str("</ul>\n");
    if run.warnings.len() > WARNINGS_SHOWN {
        let _ = writeln!(
            s,
            "<p>… and {} more: <a href=\"{}\">all {} problems</a></p>",
            run.warnings.len() - WARNINGS_SHOWN,
            INDEX.page("problems.html"),
            run.warnings.len()
        );
        let mut p = page_head(run, "Problems found in the result tree");
        p.push_str("<ul class=\"warnings\">\n");
        for w in &run.warnings {
            let _ = writeln!(p, "<li>{}</li>", h(w));
        }
        p.push_str("</ul>\n");
        footer(&mut p, run, PAGE);
        pages.push(("problems.html".into(), p));
    }
}

/// The list of runs that did not succeed, at most `shown` of them, with "and N more"
/// leading to the page of all of them.
fn failures(
    s: &mut String,
    at: At,
    tag_dir: &Path,
    bad: &[&PairRecord],
    shown: usize,
    with_group: bool,
) {
    if bad.is_empty() {
        return;
    }
    let _ = writeln!(s, "<h2 id=\"failures\">Not successful ({})</h2>", bad.len());
    if bad.len() > REASONS_FROM {
        reasons(s, bad);
    }
    s.push_str("<ul class=\"reasons\">\n");
    let mut budget = DIFF_LINES_ON_A_PAGE;
    for p in bad.iter().take(shown) {
        failure_item(s, at, tag_dir, p, with_group, &mut budget);
    }
    s.push_str("</ul>\n");
    if bad.len() > shown {
        let _ = writeln!(
            s,
            "<p>… and {} more: <a href=\"{}\">all {} that did not succeed</a></p>",
            bad.len() - shown,
            at.page("failures.html"),
            bad.len()
        );
    }
}

/// Many runs that did not succeed: first how many for each reason, the most common
/// first (at most [`REASONS_SHOWN`] reasons).
fn reasons(s: &mut String, bad: &[&PairRecord]) {
    let mut by: std::collections::HashMap<(Status, &str), usize> = Default::default();
    for p in bad {
        *by.entry((p.status, p.reason.as_str())).or_default() += 1;
    }
    let mut by: Vec<((Status, &str), usize)> = by.into_iter().collect();
    by.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    s.push_str("<table class=\"why\">\n<thead><tr><th>runs</th><th>status</th><th>reason</th></tr></thead>\n<tbody>\n");
    for ((status, reason), n) in by.iter().take(REASONS_SHOWN) {
        let _ = writeln!(
            s,
            "<tr><td class=\"num\">{n}</td><td>{status}</td><td>{}</td></tr>",
            h(&ellipsize(reason, REASON_CHARS))
        );
    }
    s.push_str("</tbody></table>\n");
    if by.len() > REASONS_SHOWN {
        let _ = writeln!(
            s,
            "<p class=\"note\">… and {} other reasons.</p>",
            by.len() - REASONS_SHOWN
        );
    }
}

fn failure_item(
    s: &mut String,
    at: At,
    tag_dir: &Path,
    p: &PairRecord,
    with_group: bool,
    diff_budget: &mut usize,
) {
    let parts = run_parts(p);
    let label = if with_group {
        format!("{}/{}", p.group, run_label(p))
    } else {
        run_label(p)
    };
    let _ = write!(
        s,
        "<li><span class=\"status\">{}</span> <a href=\"{}/\">{}</a>: {}",
        p.status,
        at.tree(&parts),
        h(&label),
        h(&ellipsize(&p.reason, REASON_CHARS))
    );
    // The logs, where a person looks next.
    let dir = run_dir(tag_dir, p);
    for side in ["local", "remote"] {
        for stream in ["stdout", "stderr"] {
            if !is_file(&dir.join(side).join(stream)) {
                continue;
            }
            let mut target = parts.clone();
            target.extend([side, stream]);
            let _ = write!(
                s,
                " <a class=\"log\" href=\"{}\">{side} {stream}</a>",
                at.tree(&target)
            );
        }
        for (name, what, slash) in side_extras(&dir, side) {
            let mut target = parts.clone();
            target.extend([side, name]);
            let _ = write!(
                s,
                " <a class=\"log\" href=\"{}{slash}\">{side} {what}</a>",
                at.tree(&target)
            );
        }
    }
    diff(s, at, tag_dir, p, diff_budget);
    s.push_str("</li>\n");
}

/// Lines of a run's `check.diff` shown on a page, and of all diffs on one page (each
/// file has it whole).
const DIFF_LINES: usize = 300;
const DIFF_LINES_ON_A_PAGE: usize = 2000;

/// How a run's output differs from its reference (docs/regression.md): its `check.diff`,
/// coloured, with a link to the whole file; `budget` is how many lines the page has left
/// for diffs (past it, only the link).
fn diff(s: &mut String, at: At, tag_dir: &Path, p: &PairRecord, budget: &mut usize) {
    let mut target = run_parts(p);
    target.push(crate::tree::layout::CHECK_DIFF);
    if *budget == 0 {
        let file = run_dir(tag_dir, p).join(crate::tree::layout::CHECK_DIFF);
        if is_file(&file) {
            let _ = write!(
                s,
                " <a class=\"log\" href=\"{}\">how the output differs (check.diff)</a>",
                at.tree(&target)
            );
        }
        return;
    }
    let Some((text, more)) = super::check_diff(tag_dir, p, DIFF_LINES.min(*budget)) else {
        return;
    };
    *budget = budget.saturating_sub(text.lines().count());
    s.push_str("<details class=\"diff\" open><summary>how the output differs from expected</summary><pre class=\"diff\">");
    for l in text.lines() {
        let class = if l.starts_with("+++") || l.starts_with("---") {
            "file"
        } else if l.starts_with('+') {
            "add"
        } else if l.starts_with('-') {
            "del"
        } else if l.starts_with("@@") {
            "hunk"
        } else {
            "same"
        };
        let _ = writeln!(s, "<span class=\"{class}\">{}</span>", h(l));
    }
    s.push_str("</pre>");
    if more > 0 {
        let _ = write!(
            s,
            "<p class=\"note\">… {more} more lines in <a href=\"{}\">check.diff</a></p>",
            at.tree(&target)
        );
    } else {
        let _ = write!(
            s,
            "<p class=\"note\"><a href=\"{}\">check.diff</a></p>",
            at.tree(&target)
        );
    }
    s.push_str("</details>");
}

fn failures_page(run: &Run, bad: &[&PairRecord]) -> String {
    let mut s = page_head(run, "Not successful");
    let _ = writeln!(
        s,
        "<p class=\"counts\">{}</p>",
        counts_html(run.counts(), 0)
    );
    s.push_str("<ul class=\"reasons\">\n");
    let mut budget = DIFF_LINES_ON_A_PAGE;
    for p in bad {
        failure_item(&mut s, PAGE, &run.dir, p, true, &mut budget);
    }
    s.push_str("</ul>\n");
    footer(&mut s, run, PAGE);
    s
}

/// The groups of a large run: a line each (at most [`GROUPS_SHOWN`] on the index), the
/// groups with pairs that did not succeed first.
fn groups_table(s: &mut String, run: &Run, pages: &mut Vec<(String, String)>) {
    let mut order: Vec<&GroupRun> = run.groups.iter().collect();
    order.sort_by_key(|g| {
        let c = g.counts();
        std::cmp::Reverse(c.failed + c.error + g.not_run())
    });
    let table = |groups: &[&GroupRun], at: At| {
        let mut t = String::from(
            "<div class=\"scroll\"><table class=\"groups\">\n<thead><tr><th>group</th><th>pairs</th><th>SUCCESS</th><th>FAILED</th><th>ERROR</th><th>not run</th><th>time</th></tr></thead>\n<tbody>\n",
        );
        for g in groups {
            let c = g.counts();
            let _ = writeln!(
                t,
                "<tr><td><a href=\"{}\">{}</a></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                at.page(&group_page(g)),
                h(&ellipsize(&g.name, 120)),
                c.total(),
                c.success,
                c.failed,
                c.error,
                g.not_run(),
                h(&fmt_duration(g.time()))
            );
        }
        t.push_str("</tbody></table></div>\n");
        t
    };
    let _ = writeln!(
        s,
        "<h2 id=\"groups\">Groups ({})</h2>\n<p class=\"note\">This run is large, so each group has a page of its own.</p>",
        run.groups.len()
    );
    s.push_str(&table(&order[..order.len().min(GROUPS_SHOWN)], INDEX));
    if order.len() > GROUPS_SHOWN {
        let _ = writeln!(
            s,
            "<p>… and {} more: <a href=\"{}\">all {} groups</a></p>",
            order.len() - GROUPS_SHOWN,
            INDEX.page("groups.html"),
            order.len()
        );
        let mut p = page_head(run, "Groups");
        p.push_str(&table(&order, PAGE));
        footer(&mut p, run, PAGE);
        pages.push(("groups.html".into(), p));
    }
}

fn group_page_html(
    run: &Run,
    g: &GroupRun,
    plots: &[Plot],
    pages: &mut Vec<(String, String)>,
) -> String {
    let mut s = page_head(run, &g.name);
    group_body(&mut s, PAGE, run, g, plots, pages);
    footer(&mut s, run, PAGE);
    s
}

/// A group's counts, what did not succeed, its matrix, hooks and plots.
fn group_body(
    s: &mut String,
    at: At,
    run: &Run,
    g: &GroupRun,
    plots: &[Plot],
    pages: &mut Vec<(String, String)>,
) {
    let _ = writeln!(
        s,
        "<p class=\"counts\">{}</p>",
        counts_html(g.counts(), g.not_run())
    );
    // On the index, the run's own list says what did not succeed.
    if !at.up.is_empty() {
        let bad: Vec<&PairRecord> = g
            .runs
            .iter()
            .filter(|p| p.status != Status::Success)
            .collect();
        failures(s, at, &run.dir, &bad, FAILURES_SHOWN, false);
    }
    s.push_str("<h3>Matrix</h3>\n");
    if matches!(matrix::view(g), View::Full) {
        matrix(s, at, run, g, &g.locals, &g.remotes);
    } else {
        collapsed(s, at, run, g);
        let mut p = page_head(run, &format!("{}: the full matrix", g.name));
        let _ = writeln!(
            p,
            "<p><a href=\"{}\">the group's page</a></p>",
            PAGE.page(&group_page(g))
        );
        matrix(&mut p, PAGE, run, g, &g.locals, &g.remotes);
        footer(&mut p, run, PAGE);
        pages.push((full_matrix_page(g), p));
    }
    let mine: Vec<&Plot> = plots.iter().filter(|p| p.group == g.name).collect();
    // The matrix plot (for papers and slides): linked, not shown a second time.
    if let Some(m) = mine.iter().find(|p| p.kind == Kind::Matrix && p.svg) {
        let _ = write!(
            s,
            "<p class=\"note\">The matrix as a plot: <a href=\"{}\">SVG</a>",
            at.tree(&["plots", &m.svg_name()])
        );
        if m.png {
            let _ = write!(
                s,
                " · <a href=\"{}\">PNG</a>",
                at.tree(&["plots", &m.png_name()])
            );
        }
        s.push_str("</p>\n");
    }
    hooks(s, at, &run.dir, g);
    group_files(s, at, &run.dir, g);
    let charts: Vec<&&Plot> = mine
        .iter()
        .filter(|p| p.kind != Kind::Matrix && p.svg)
        .collect();
    if !charts.is_empty() {
        s.push_str("<h3>Plots</h3>\n");
        for p in charts {
            chart(s, at, p);
        }
    }
}

/// A chart and, beside it, the table of its numbers.
fn chart(s: &mut String, at: At, p: &Plot) {
    let svg = at.tree(&["plots", &p.svg_name()]);
    s.push_str("<div class=\"chart\">");
    if p.size.1 <= TALL {
        let _ = write!(
            s,
            "<figure class=\"plot{}\"><div class=\"scroll\"><img src=\"{svg}\" alt=\"{}\" width=\"{}\" height=\"{}\"></div><figcaption>{} — <a href=\"{svg}\">SVG</a>",
            // Very wide plots scroll at their size instead of shrinking to a sliver.
            if p.size.0 > WIDE { " wide" } else { "" },
            h(&p.title),
            p.size.0,
            p.size.1,
            h(&p.title)
        );
    } else {
        let _ = write!(
            s,
            "<figure class=\"plot\"><figcaption>{} — <a href=\"{svg}\">SVG</a> ({} × {} pixels, too tall to show here; its numbers are beside)",
            h(&p.title),
            p.size.0,
            p.size.1
        );
    }
    if p.png {
        let _ = write!(
            s,
            " · <a href=\"{}\">PNG</a>",
            at.tree(&["plots", &p.png_name()])
        );
    } else if let Some(why) = &p.no_png {
        let _ = write!(s, " ({})", h(why));
    }
    s.push_str("</figcaption></figure>\n");
    numbers(s, at, p);
    s.push_str("</div>\n");
}

/// The table of a chart's numbers: mean ± sd and n per bar (or point).
fn numbers(s: &mut String, at: At, p: &Plot) {
    if p.rows.is_empty() {
        return;
    }
    let unit = if p.unit.is_empty() {
        String::new()
    } else {
        format!(" ({})", h(&p.unit))
    };
    let what = match &p.kind {
        Kind::Line { .. } => "series · parameter",
        _ => "pair",
    };
    let _ = writeln!(
        s,
        "<div class=\"scroll\"><table class=\"numbers\">\n<caption class=\"note\">{}</caption>\n<thead><tr><th>{what}</th><th>mean{unit}</th><th>± sd</th><th>n</th></tr></thead>\n<tbody>",
        h(&p.title)
    );
    for r in p.rows.iter().take(TABLE_ROWS) {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            h(&r.label),
            h(&fmt_value(r.mean)),
            if r.n > 1 {
                h(&fmt_value(r.sd))
            } else {
                String::new()
            },
            r.n
        );
    }
    s.push_str("</tbody></table>");
    if p.rows.len() > TABLE_ROWS {
        let _ = write!(
            s,
            "<p class=\"note\">… and {} more rows: <a href=\"{}\">stats.csv</a> has them all.</p>",
            p.rows.len() - TABLE_ROWS,
            at.tree(&["stats.csv"])
        );
    }
    s.push_str("</div>\n");
}

/// The matrix of `locals` × `remotes`.
fn matrix(s: &mut String, at: At, run: &Run, g: &GroupRun, locals: &[String], remotes: &[String]) {
    s.push_str("<div class=\"scroll\"><table class=\"matrix\">\n<thead><tr><th scope=\"col\">local \\ remote</th>");
    for r in remotes {
        let _ = write!(s, "<th scope=\"col\">{}</th>", h(r));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for l in locals {
        let _ = write!(s, "<tr><th scope=\"row\">{}</th>", h(l));
        for r in remotes {
            match g.cell(l, r) {
                Some(c) => cell(s, at, &run.dir, &c),
                None if g.planned(l, r) => s.push_str("<td class=\"none\">not run</td>"),
                None => {
                    s.push_str("<td class=\"unplanned\" title=\"not selected in this run\">—</td>")
                }
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table></div>\n");
}

/// A large matrix: the rows and columns holding a pair that did not succeed, or, when
/// even those are too many, a line per local test; the full matrix is a page of its own.
fn collapsed(s: &mut String, at: At, run: &Run, g: &GroupRun) {
    let full = at.page(&full_matrix_page(g));
    let (nl, nr) = (g.locals.len(), g.remotes.len());
    match matrix::view(g) {
        View::Full => matrix(s, at, run, g, &g.locals, &g.remotes),
        View::AllSucceeded => {
            let _ = writeln!(
                s,
                "<p>All {} pairs of the {nl} × {nr} matrix succeeded. <a href=\"{full}\">The full matrix</a></p>",
                nl * nr
            );
        }
        View::Part(rows, cols) => {
            let _ = writeln!(
                s,
                "<p class=\"note\">The matrix is {nl} × {nr}: shown are the {} local and {} remote tests that have a pair that did not succeed; every pair not shown succeeded. <a href=\"{full}\">The full matrix</a></p>",
                rows.len(),
                cols.len()
            );
            let locals: Vec<String> = rows.iter().map(|&i| g.locals[i].clone()).collect();
            let remotes: Vec<String> = cols.iter().map(|&j| g.remotes[j].clone()).collect();
            matrix(s, at, run, g, &locals, &remotes);
        }
        View::PerLocal(rows) => {
            let _ = writeln!(
                s,
                "<p class=\"note\">The matrix is {nl} × {nr}, and {} of its local tests have a pair that did not succeed: shown is a line per such local test. <a href=\"{full}\">The full matrix</a></p>",
                rows.len()
            );
            s.push_str("<div class=\"scroll\"><table class=\"summary\">\n<thead><tr><th>local test</th><th>SUCCESS</th><th>FAILED</th><th>ERROR</th><th>not run</th><th>did not succeed with</th></tr></thead>\n<tbody>\n");
            let lines = matrix::lines(g, &rows, 5);
            for line in lines.iter().take(SUMMARY_ROWS) {
                let mut with: Vec<String> = line.with.iter().map(|r| h(r)).collect();
                if line.bad() > with.len() {
                    with.push("…".into());
                }
                let _ = writeln!(
                    s,
                    "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                    h(&line.local),
                    line.success,
                    line.failed,
                    line.error,
                    line.not_run,
                    with.join(", ")
                );
            }
            s.push_str("</tbody></table></div>\n");
            if lines.len() > SUMMARY_ROWS {
                let _ = writeln!(
                    s,
                    "<p>… and {} more local tests: <a href=\"{full}\">the full matrix</a></p>",
                    lines.len() - SUMMARY_ROWS
                );
            }
        }
    }
}

fn cell(s: &mut String, at: At, tag_dir: &Path, c: &Cell) {
    let Some(first) = c.runs.first() else {
        return;
    };
    let worst = c
        .runs
        .iter()
        .find(|r| r.status == c.status)
        .unwrap_or(first);
    let pair_href = at.tree(&[&first.group, &first.pair]);
    let _ = write!(
        s,
        "<td class=\"{}\" title=\"{}\"><a class=\"status\" href=\"{pair_href}/\">{}</a>",
        c.status,
        h(&ellipsize(&worst.reason, REASON_CHARS)),
        c.status,
    );
    if c.runs.len() == 1 {
        let _ = write!(
            s,
            "<span class=\"dur\">{}</span>",
            h(&fmt_duration(c.mean_s))
        );
        if c.flaky {
            s.push_str("<span class=\"dur\">flaky</span>");
        }
        logs(s, at, tag_dir, first);
    } else {
        let _ = write!(
            s,
            "<span class=\"dur\">mean {}</span><span class=\"dur\">{}/{} SUCCESS{}</span><span class=\"logs\">runs:",
            h(&fmt_duration(c.mean_s)),
            c.successes,
            c.runs.len(),
            if c.flaky { ", flaky" } else { "" }
        );
        for (i, r) in c.runs.iter().enumerate().take(MAX_RUN_LINKS) {
            let _ = write!(
                s,
                " <a href=\"{}/\" title=\"{}: {}\">{}</a>",
                at.tree(&run_parts(r)),
                h(&r.variant),
                r.status,
                i + 1
            );
        }
        if c.runs.len() > MAX_RUN_LINKS {
            s.push_str(" …");
        }
        s.push_str("</span>");
    }
    s.push_str("</td>");
}

/// What else a side's folder holds that pairbench made (docs/resources.md): its
/// traces (a folder) and its samples, as (name, what, "/" for a folder).
fn side_extras(run_dir: &Path, side: &str) -> Vec<(&'static str, &'static str, &'static str)> {
    use crate::tree::nofollow::{Kind, kind};
    let mut out = Vec::new();
    if kind(&run_dir.join(side).join("trace")) == Kind::Dir {
        out.push(("trace", "trace", "/"));
    }
    if is_file(&run_dir.join(side).join("samples.csv")) {
        out.push(("samples.csv", "samples", ""));
    }
    out
}

/// Links to one run's logs.
fn logs(s: &mut String, at: At, tag_dir: &Path, r: &PairRecord) {
    let dir = run_dir(tag_dir, r);
    let parts = run_parts(r);
    s.push_str("<span class=\"logs\">");
    let mut first = true;
    for side in ["local", "remote"] {
        let mut links = Vec::new();
        for (stream, short) in [("stdout", "out"), ("stderr", "err")] {
            if is_file(&dir.join(side).join(stream)) {
                let mut target = parts.clone();
                target.extend([side, stream]);
                links.push(format!("<a href=\"{}\">{short}</a>", at.tree(&target)));
            }
        }
        for (name, what, slash) in side_extras(&dir, side) {
            let mut target = parts.clone();
            target.extend([side, name]);
            links.push(format!(
                "<a href=\"{}{slash}\">{what}</a>",
                at.tree(&target)
            ));
        }
        if links.is_empty() {
            continue;
        }
        if !first {
            s.push_str(" · ");
        }
        first = false;
        let _ = write!(s, "{side}: {}", links.join(" "));
    }
    // What the pair's scripts did to the testbed (docs/testbed.md, "From scripts").
    if is_file(&dir.join("events.csv")) {
        let mut target = parts.clone();
        target.push("events.csv");
        let _ = write!(s, " · <a href=\"{}\">testbed events</a>", href(&target));
    }
    s.push_str("</span>");
}

fn hooks(s: &mut String, at: At, tag_dir: &Path, g: &GroupRun) {
    let dir = crate::tree::Tree::at(tag_dir).hooks(&g.name);
    let folders = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        v.sort();
        v
    };
    // A hook's folder, or one per host when every host of a pool ran it.
    let mut runs: Vec<Vec<String>> = Vec::new();
    for name in folders(&dir) {
        let here = dir.join(&name);
        let hosts = folders(&here);
        if crate::tree::nofollow::kind(&here.join("exit_code"))
            != crate::tree::nofollow::Kind::Missing
            || hosts.is_empty()
        {
            runs.push(vec![name]);
        } else {
            runs.extend(hosts.into_iter().map(|host| vec![name.clone(), host]));
        }
    }
    if runs.is_empty() {
        return;
    }
    s.push_str("<h3>Hooks</h3>\n<ul class=\"hooks\">\n");
    for run in runs {
        let rel: PathBuf = run.iter().collect();
        let exit = crate::tree::nofollow::read_beneath(&dir, &rel.join("exit_code"))
            .map(|e| format!("exit {}", String::from_utf8_lossy(&e).trim()))
            .unwrap_or_else(|_| "no exit code".into());
        let mut parts: Vec<&str> = vec![&g.name, "hooks"];
        parts.extend(run.iter().map(String::as_str));
        let _ = write!(
            s,
            "<li><a href=\"{}/\">{}</a>: {}",
            at.tree(&parts),
            h(&run.join(" on ")),
            h(&exit)
        );
        for stream in ["stdout", "stderr"] {
            if is_file(&dir.join(&rel).join(stream)) {
                let mut target = parts.clone();
                target.push(stream);
                let _ = write!(s, " <a href=\"{}\">{stream}</a>", at.tree(&target));
            }
        }
        s.push_str("</li>\n");
    }
    s.push_str("</ul>\n");
}

/// Files shown of a group's result folder, at most (images among them are shown).
const GROUP_FILES: usize = 100;
const GROUP_IMAGES: usize = 20;

/// The plain files in the group's result folder: what its hooks and `make_graphs` wrote
/// there (graphs, tables), linked; images shown. Links are not followed.
fn group_files(s: &mut String, at: At, tag_dir: &Path, g: &GroupRun) {
    let Ok(rd) = std::fs::read_dir(crate::tree::Tree::at(tag_dir).group(&g.name)) else {
        return;
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    if names.is_empty() {
        return;
    }
    names.sort();
    let is_image = |n: &str| {
        let n = n.to_ascii_lowercase();
        [".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp"]
            .iter()
            .any(|x| n.ends_with(x))
    };
    s.push_str("<h3>Files of the group</h3>\n<p class=\"note\">What the hooks and <code>make_graphs</code> wrote in the group's result folder.</p>\n<ul class=\"files\">\n");
    for n in names.iter().take(GROUP_FILES) {
        let _ = writeln!(
            s,
            "<li><a href=\"{}\">{}</a></li>",
            at.tree(&[&g.name, n]),
            h(n)
        );
    }
    s.push_str("</ul>\n");
    if names.len() > GROUP_FILES {
        let _ = writeln!(
            s,
            "<p class=\"note\">… and {} more files in <a href=\"{}/\">the group's folder</a>.</p>",
            names.len() - GROUP_FILES,
            at.tree(&[&g.name])
        );
    }
    for n in names.iter().filter(|n| is_image(n)).take(GROUP_IMAGES) {
        let src = at.tree(&[&g.name, n]);
        let _ = writeln!(
            s,
            "<figure class=\"plot\"><img src=\"{src}\" alt=\"{}\"><figcaption><a href=\"{src}\">{}</a></figcaption></figure>",
            h(n),
            h(n)
        );
    }
}

fn hosts(s: &mut String, run: &Run) {
    if run.manifest.hosts.is_empty() {
        return;
    }
    s.push_str("<h2>Hosts</h2>\n<div class=\"scroll\"><table class=\"hosts\">\n<thead><tr><th>name</th><th>role</th><th>address</th><th>hostname</th><th>kernel</th><th>arch</th><th>CPU</th><th>CPUs</th><th>memory</th></tr></thead>\n<tbody>\n");
    for host in &run.manifest.hosts {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            h(&host.name),
            h(&host.role),
            h(&host.address),
            h(&host.hostname),
            h(&host.kernel),
            h(&host.arch),
            h(&host.cpu_model),
            host.cpus,
            h(&fmt_bytes(host.memory_bytes))
        );
    }
    s.push_str("</tbody></table></div>\n");
}

fn fmt_bytes(b: u64) -> String {
    if b == 0 {
        return "unknown".into();
    }
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}
