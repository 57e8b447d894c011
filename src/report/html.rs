//! `index.html`: one self-contained page (inline CSS, no script, no request leaves the
//! result folder: a Content-Security-Policy says so) with the run's counts and hosts and,
//! per group, the local × remote matrix linking every pair's folder and logs, the reasons
//! of pairs that did not succeed, the group's hook logs, and its plots (relative `<img>`
//! links to plots/). Every link is relative and percent-encoded per path segment.

use std::fmt::Write as _;
use std::path::Path;

use super::load::{Cell, GroupRun, Run, run_dir, run_label, run_parts};
use super::names::{href, html as h};
use super::plots::Plot;
use super::{counts_line, fmt_duration};
use crate::results::{PairRecord, Status};

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
.counts .SUCCESS { color: #1d7a31; } .counts .FAILED { color: #b8302c; } .counts .ERROR { color: #a86400; }
figure.plot { margin: 1rem 0; }
figure.plot img { max-width: 100%; height: auto; border: 1px solid #eee; }
figure.plot.wide img { max-width: none; }
figcaption { font-size: .85rem; color: #555; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: .1rem 1rem; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
footer { margin-top: 2rem; font-size: .85rem; color: #555; }
"#;

/// Plots wider than this (pixels) are shown at their size in a scrolling box.
const WIDE: u32 = 2400;

/// The index.html text of a run whose plots are `plots`.
pub fn render(run: &Run, plots: &[Plot]) -> String {
    let mut s = String::with_capacity(16 * 1024 + run.records().count() * 600);
    let title = format!("pairbench run {}", run.tag);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    s.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'\">\n",
    );
    s.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    let _ = writeln!(s, "<title>{}</title>", h(&title));
    let _ = writeln!(s, "<style>{CSS}</style>\n</head>\n<body>");
    let _ = writeln!(s, "<h1>pairbench run <code>{}</code></h1>", h(&run.tag));
    let _ = writeln!(
        s,
        "<p class=\"counts\" id=\"counts\">{}</p>",
        counts_html(run.counts())
    );
    meta(&mut s, run);
    if !run.warnings.is_empty() {
        s.push_str("<h2>Problems found in the result tree</h2>\n<ul class=\"warnings\">\n");
        for w in &run.warnings {
            let _ = writeln!(s, "<li>{}</li>", h(w));
        }
        s.push_str("</ul>\n");
    }
    if run.groups.len() > 1 {
        s.push_str("<nav><h2>Groups</h2>\n<ul>\n");
        for (i, g) in run.groups.iter().enumerate() {
            let _ = writeln!(
                s,
                "<li><a href=\"#group-{}\">{}</a>: {}</li>",
                i + 1,
                h(&g.name),
                h(&counts_line(g.counts()))
            );
        }
        s.push_str("</ul></nav>\n");
    }
    for (i, g) in run.groups.iter().enumerate() {
        group(&mut s, run, i + 1, g, plots);
    }
    hosts(&mut s, run);
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
        .filter(|f| run.dir.join(f).is_file())
        .map(|f| format!("<a href=\"{}\">{}</a>", href(&[f]), h(f)))
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
    s
}

fn counts_html(c: crate::runner::progress::Counts) -> String {
    format!(
        "{} pair{}: <span class=\"SUCCESS\">{} SUCCESS</span>, <span class=\"FAILED\">{} FAILED</span>, <span class=\"ERROR\">{} ERROR</span>",
        c.total(),
        super::plural(c.total()),
        c.success,
        c.failed,
        c.error
    )
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

fn group(s: &mut String, run: &Run, n: usize, g: &GroupRun, plots: &[Plot]) {
    let _ = writeln!(s, "<section class=\"group\" id=\"group-{n}\">");
    let _ = writeln!(s, "<h2>{}</h2>", h(&g.name));
    let _ = writeln!(s, "<p class=\"counts\">{}</p>", counts_html(g.counts()));
    s.push_str("<div class=\"scroll\"><table class=\"matrix\">\n<thead><tr><th scope=\"col\">local \\ remote</th>");
    for r in &g.remotes {
        let _ = write!(s, "<th scope=\"col\">{}</th>", h(r));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for l in &g.locals {
        let _ = write!(s, "<tr><th scope=\"row\">{}</th>", h(l));
        for r in &g.remotes {
            match g.cell(l, r) {
                Some(c) => cell(s, &run.dir, &c),
                None => s.push_str("<td class=\"none\">not run</td>"),
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table></div>\n");

    let bad: Vec<&PairRecord> = g
        .runs
        .iter()
        .filter(|p| p.status != Status::Success)
        .collect();
    if !bad.is_empty() {
        s.push_str("<h3>Not successful</h3>\n<ul class=\"reasons\">\n");
        for p in bad {
            let _ = writeln!(
                s,
                "<li><a href=\"{}/\">{}</a>: {}: {}</li>",
                href(&run_parts(p)),
                h(&run_label(p)),
                p.status,
                h(&p.reason)
            );
        }
        s.push_str("</ul>\n");
    }
    hooks(s, &run.dir, g);
    let mine: Vec<&Plot> = plots
        .iter()
        .filter(|p| p.group == g.name && p.svg)
        .collect();
    if !mine.is_empty() {
        s.push_str("<h3>Plots</h3>\n");
        for p in mine {
            let svg = href(&["plots", &p.svg_name()]);
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
            if p.png {
                let _ = write!(
                    s,
                    " · <a href=\"{}\">PNG</a>",
                    href(&["plots", &p.png_name()])
                );
            } else if let Some(why) = &p.no_png {
                let _ = write!(s, " ({})", h(why));
            }
            s.push_str("</figcaption></figure>\n");
        }
    }
    s.push_str("</section>\n");
}

/// Runs of a pair linked one by one in its cell, at most (the pair folder has them all).
const MAX_RUN_LINKS: usize = 60;

fn cell(s: &mut String, tag_dir: &Path, c: &Cell) {
    let Some(first) = c.runs.first() else {
        return;
    };
    let worst = c
        .runs
        .iter()
        .find(|r| r.status == c.status)
        .unwrap_or(first);
    let pair_href = href(&[&first.group, &first.pair]);
    let _ = write!(
        s,
        "<td class=\"{}\" title=\"{}\"><a class=\"status\" href=\"{pair_href}/\">{}</a>",
        c.status,
        h(&worst.reason),
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
        logs(s, tag_dir, first);
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
                href(&run_parts(r)),
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

/// Links to one run's logs.
fn logs(s: &mut String, tag_dir: &Path, r: &PairRecord) {
    let dir = run_dir(tag_dir, r);
    let parts = run_parts(r);
    s.push_str("<span class=\"logs\">");
    let mut first = true;
    for side in ["local", "remote"] {
        let mut links = Vec::new();
        for (stream, short) in [("stdout", "out"), ("stderr", "err")] {
            if dir.join(side).join(stream).is_file() {
                let mut target = parts.clone();
                target.extend([side, stream]);
                links.push(format!("<a href=\"{}\">{short}</a>", href(&target)));
            }
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
    if dir.join("events.csv").is_file() {
        let mut target = parts.clone();
        target.push("events.csv");
        let _ = write!(s, " · <a href=\"{}\">testbed events</a>", href(&target));
    }
    s.push_str("</span>");
}

fn hooks(s: &mut String, tag_dir: &Path, g: &GroupRun) {
    let dir = tag_dir.join(&g.name).join("hooks");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    if names.is_empty() {
        return;
    }
    names.sort();
    s.push_str("<h3>Hooks</h3>\n<ul class=\"hooks\">\n");
    for name in names {
        let exit = std::fs::read_to_string(dir.join(&name).join("exit_code"))
            .map(|e| format!("exit {}", e.trim()))
            .unwrap_or_else(|_| "no exit code".into());
        let _ = write!(
            s,
            "<li><a href=\"{}/\">{}</a>: {}",
            href(&[&g.name, "hooks", &name]),
            h(&name),
            h(&exit)
        );
        for stream in ["stdout", "stderr"] {
            if dir.join(&name).join(stream).is_file() {
                let _ = write!(
                    s,
                    " <a href=\"{}\">{stream}</a>",
                    href(&[&g.name, "hooks", &name, stream])
                );
            }
        }
        s.push_str("</li>\n");
    }
    s.push_str("</ul>\n");
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
