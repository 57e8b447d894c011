//! What people read, pinned with insta snapshots: summary.md, `pairbench list`, and the
//! one-line errors of refused runs (times, durations and temporary paths redacted).
mod common;
use common::Project;

/// Redactions for whatever differs between runs and machines.
fn filters(p: &Project) -> Vec<(String, String)> {
    let dir = regex_escape(&p.path().display().to_string());
    vec![
        (dir, "[PROJECT]".into()),
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?".into(),
            "[TIME]".into(),
        ),
        (r"\b\d+(\.\d+)? (ms|s)\b".into(), "[DURATION]".into()),
        (r"(?m)^- command: .*$".into(), "- command: [COMMAND]".into()),
    ]
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$#&-~".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

macro_rules! snap {
    ($p:expr, $name:expr, $value:expr) => {{
        let f = filters($p);
        let mut settings = insta::Settings::clone_current();
        for (re, with) in &f {
            settings.add_filter(re, with.as_str());
        }
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_snapshot!($name, $value));
    }};
}

fn odd_group(p: &Project) {
    // Each waits for the remote to end on its own (a second at most), so how the remote
    // ended is known when the local test ends.
    let wait = "wait_for_remote --timeout 1s >/dev/null 2>&1;";
    p.bash("web|site/local/get *", &format!("{wait} exit 0"));
    p.bash(
        "web|site/local/post",
        &format!("{wait} echo boom >&2; exit 1"),
    );
    p.bash("web|site/remote/nginx", "sleep 30");
    p.bash("web|site/remote/[broken]", "exit 2");
    p.file("web|site/local/notes.txt", "not a test");
    p.bash("web|site/before_first_test_local", "exit 0");
    p.file("web|site/after_last_test_local", "not executable");
}

#[test]
fn summary_md() {
    let p = Project::new();
    odd_group(&p);
    p.run(&[
        "run",
        "--tag",
        "S",
        "--progress",
        "never",
        "--kill-grace",
        "200ms",
    ])
    .expect_code(2);
    let md = std::fs::read_to_string(p.path().join("results/S/summary.md")).unwrap();
    snap!(&p, "summary_md", md);
}

#[test]
fn list_output() {
    use std::os::unix::ffi::OsStrExt;
    let p = Project::new();
    odd_group(&p);
    let bad = p
        .path()
        .join("groups/web|site/remote")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    std::fs::write(&bad, "#!/bin/sh\n").unwrap();
    let r = p.run(&["list"]);
    r.expect_code(0);
    snap!(&p, "list_output", r.stdout());
}

#[test]
fn refusals_are_one_line_each() {
    use std::os::unix::ffi::OsStrExt;
    let mut lines = Vec::new();
    let mut push = |p: &Project, what: &str, args: &[&str]| {
        let r = p.run(args);
        assert_eq!(r.code(), 2, "{what}: {}", r.stderr());
        assert_eq!(r.stderr().lines().count(), 1, "{what}: {}", r.stderr());
        let line = r
            .stderr()
            .replace(&p.path().display().to_string(), "[PROJECT]");
        lines.push(format!("{what}:\n  {}", line.trim_end()));
    };
    let p = Project::new();
    p.bash("plots/local/l", "exit 0");
    p.bash("plots/remote/r", "exit 0");
    push(&p, "a group named like the run's own files", &["run"]);

    let p = Project::new();
    p.bash("g/local/l", "exit 0");
    p.bash("g/remote/r", "exit 0");
    let long = format!("V={}", "v".repeat(300));
    push(
        &p,
        "a parameter value too long for a folder",
        &["run", "--param", &long],
    );
    p.run(&["run", "--tag", "T", "--repeat", "2", "--progress", "never"])
        .expect_code(0);
    push(&p, "another run plan on a tag", &["run", "--tag", "T"]);
    push(&p, "an unknown group", &["run", "nope"]);
    push(&p, "a tag that does not exist", &["report", "nope"]);

    let p = Project::new();
    p.bash("g/local/l", "exit 0");
    p.bash("g/remote/r", "exit 0");
    std::fs::write(
        p.path()
            .join("groups/g/local")
            .join(std::ffi::OsStr::from_bytes(b"b\xffd")),
        "#!/bin/sh\n",
    )
    .unwrap();
    push(&p, "a test whose name is not UTF-8", &["run"]);

    let p = Project::new();
    push(&p, "no groups folder", &["run"]);
    let p0 = Project::new();
    snap!(&p0, "refusals", lines.join("\n"));
}
