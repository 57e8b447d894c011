//! The module map (README, "Architecture"): data flows cli → config → discover → plan →
//! runner → transport → process / tree → report, and the cli calls the report. This test
//! reads `src/**/*.rs`, collects each top-level module's `crate::<module>` uses (comments
//! left out) and fails on an import cycle between top-level modules, or on an import the
//! table below does not allow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which top-level modules each one may use. Leaves (config, discover, hostinfo, sockets,
/// terminal) use none, and process only the containment it spawns into; nothing may use
/// the cli; only the cli uses the runner, the report and the commands.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "check",
        &[
            "config",
            "console",
            "discover",
            "exit_status",
            "group_toml",
            "terminal",
            "tree",
        ],
    ),
    (
        "cli",
        &[
            "check",
            "compare",
            "config",
            "console",
            "contain",
            "discover",
            "exit_status",
            "helpers",
            "inventory",
            "list",
            "merge",
            "report",
            "runner",
            "skeleton",
            "slurm",
            "testbed",
            "transport",
            "tree",
            "terminal",
        ],
    ),
    (
        "compare",
        &[
            "config",
            "console",
            "exit_status",
            "stats",
            "tree",
            "terminal",
        ],
    ),
    ("config", &[]),
    ("console", &["interrupt"]),
    ("contain", &["config"]),
    (
        "control",
        &["contain", "helpers", "transport", "sockets", "testbed"],
    ),
    ("discover", &[]),
    ("exit_status", &["tree"]),
    ("helpers", &["config", "outcome", "sockets"]),
    ("group_toml", &["config", "contain"]),
    ("hostinfo", &[]),
    ("interrupt", &["contain", "control", "process"]),
    ("inventory", &["config"]),
    ("list", &["console", "discover", "terminal"]),
    (
        "merge",
        &[
            "config",
            "console",
            "exit_status",
            "stats",
            "terminal",
            "tree",
        ],
    ),
    ("outcome", &["process", "tree"]),
    ("plan", &["discover", "tree"]),
    ("process", &["contain"]),
    (
        "report",
        &[
            "config",
            "console",
            "exit_status",
            "hostinfo",
            "outcome",
            "process",
            "sample",
            "stats",
            "tree",
            "terminal",
        ],
    ),
    (
        "runner",
        &[
            "check",
            "config",
            "console",
            "contain",
            "control",
            "discover",
            "exit_status",
            "group_toml",
            "helpers",
            "hostinfo",
            "interrupt",
            "outcome",
            "plan",
            "process",
            "stats",
            "transport",
            "tree",
            "testbed",
            "terminal",
            "trace",
            "sample",
        ],
    ),
    ("skeleton", &["discover", "terminal"]),
    ("slurm", &["config"]),
    ("sockets", &[]),
    ("stats", &["tree"]),
    (
        "transport",
        &[
            "config", "contain", "discover", "helpers", "hostinfo", "outcome", "process", "tree",
            "sockets", "trace", "sample",
        ],
    ),
    ("terminal", &[]),
    ("testbed", &["config", "tree"]),
    ("trace", &["config", "process", "tree"]),
    ("sample", &["contain", "tree"]),
    ("tree", &["hostinfo"]),
];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a source file belongs to (`None` for lib.rs and main.rs).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// `crate::<name>` uses in `text`, comments left out.
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
        // `use crate::{a, b::c}` lists.
        if let Some(i) = code.find("crate::{") {
            let list = &code[i + "crate::{".len()..];
            for item in list.split([',', '}']) {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let Some(m) = module_of(&src, &f) else {
            continue;
        };
        let text = std::fs::read_to_string(&f).unwrap();
        let entry = g.entry(m.clone()).or_default();
        for u in uses(&text) {
            if u != m {
                entry.insert(u);
            }
        }
    }
    g
}

#[test]
fn every_import_follows_the_module_map() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    let mut bad = Vec::new();
    for (m, deps) in graph() {
        let Some(ok) = allowed.get(m.as_str()) else {
            bad.push(format!(
                "module '{m}' is not in the module map (tests/architecture.rs)"
            ));
            continue;
        };
        for d in deps {
            if !ok.contains(d.as_str()) {
                bad.push(format!("{m} uses {d}, which the module map does not allow"));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn no_two_top_level_modules_import_each_other_even_through_others() {
    let g = graph();
    // Depth-first search for a cycle.
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        m: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(g, d, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(cycle) = visit(&g, m, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_scanner_sees_uses_and_skips_comments() {
    let u = uses("use crate::{tree::Status, plan};\n// crate::runner\nlet x = crate::stats::f();");
    assert_eq!(u.into_iter().collect::<Vec<_>>(), ["plan", "stats", "tree"]);
}
