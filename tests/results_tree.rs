//! The result tree as a results database: every outcome row (SPEC §2) and every name edge
//! (names the tag level keeps, `hooks`, nested groups, hostile names, names that are not
//! UTF-8, long parameter values) ends up as exactly one pair folder, one results.csv row
//! and one count in the summary, and the exit status agrees; or the run is refused up
//! front with one clear line.
mod common;
use common::{Project, read_csv};
use std::collections::BTreeSet;
use std::path::Path;

/// Every run folder below a tag folder (a folder holding a marker), as paths below it.
fn pair_folders(tag_dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if !e.file_type().unwrap().is_dir() || name.starts_with('.') {
                continue;
            }
            if ["SUCCESS", "FAILED", "ERROR"]
                .iter()
                .any(|m| p.join(m).is_file())
            {
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            } else if name != "plots" || dir != root {
                walk(root, &p, out);
            }
        }
    }
    walk(tag_dir, tag_dir, &mut out);
    out
}

/// `(success, failed, error)` from the summary line.
fn summary_counts(stdout: &str) -> (usize, usize, usize) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("pairbench: ") && l.contains(" SUCCESS, "))
        .unwrap_or_else(|| panic!("no summary line in {stdout}"));
    let n = |word: &str| -> usize {
        let before = line.split(&format!(" {word}")).next().unwrap();
        before.rsplit(' ').next().unwrap().parse().unwrap()
    };
    (n("SUCCESS"), n("FAILED"), n("ERROR"))
}

/// One row of the fixture: a group with one local and one remote test.
struct Row {
    group: &'static str,
    local: &'static str,
    remote: &'static str,
    local_body: &'static str,
    remote_body: &'static str,
    /// A hook of the group and its body.
    hook: Option<(&'static str, &'static str)>,
    want: &'static str,
}

const fn row(
    group: &'static str,
    local_body: &'static str,
    remote_body: &'static str,
    want: &'static str,
) -> Row {
    Row {
        group,
        local: "l",
        remote: "r",
        local_body,
        remote_body,
        hook: None,
        want,
    }
}

/// Each local test first waits briefly for the remote, so a remote that exits on its own
/// has really exited when the local test ends.
const WAIT: &str = "wait_for_remote --timeout 1s >/dev/null 2>&1;";

fn rows() -> Vec<Row> {
    vec![
        row(
            "exit0-own0",
            "wait_for_remote --timeout 1s >/dev/null 2>&1; exit 0",
            "exit 0",
            "SUCCESS",
        ),
        row("exit0-served", "exit 0", "sleep 300", "SUCCESS"),
        row("exit1", "exit 1", "sleep 300", "FAILED"),
        row("exit2", "exit 2", "sleep 300", "ERROR"),
        row("signal", "kill -KILL $$", "sleep 300", "FAILED"),
        row("timeout", "sleep 300", "sleep 300", "FAILED"),
        row(
            "remote2",
            "wait_for_remote --timeout 1s >/dev/null 2>&1; exit 0",
            "exit 2",
            "ERROR",
        ),
        row(
            "remote3",
            "wait_for_remote --timeout 1s >/dev/null 2>&1; exit 0",
            "exit 3",
            "FAILED",
        ),
        row(
            "both-fail-and-error",
            "wait_for_remote --timeout 1s >/dev/null 2>&1; exit 1",
            "exit 2",
            "ERROR",
        ),
        Row {
            hook: Some(("before_first_test_local", "exit 1")),
            ..row("hook-before-fails", "exit 0", "exit 0", "ERROR")
        },
        Row {
            hook: Some(("after_last_test_local", "exit 1")),
            ..row("hook-after-fails", "exit 0", "exit 0", "SUCCESS")
        },
        // Names: a group named `hooks` (its own hooks folder is hooks/hooks), nested
        // groups whose last folder is a reserved word, hostile names.
        Row {
            hook: Some(("before_first_test_local", "exit 0")),
            ..row("hooks", "exit 0", "exit 0", "SUCCESS")
        },
        row("nested/plots", "exit 0", "exit 0", "SUCCESS"),
        row("deep/er/hooks", "exit 1", "exit 0", "FAILED"),
        Row {
            local: "with space 'q' \"dq\" $(touch pwned)",
            remote: "r;`id`",
            ..row("odd name", "exit 0", "exit 0", "SUCCESS")
        },
        Row {
            local: "new\nline",
            ..row("newline", "exit 1", "exit 0", "FAILED")
        },
    ]
}

fn fixture(p: &Project, rows: &[Row]) {
    for r in rows {
        p.bash(&format!("{}/local/{}", r.group, r.local), r.local_body);
        p.bash(&format!("{}/remote/{}", r.group, r.remote), r.remote_body);
        if let Some((name, body)) = r.hook {
            p.bash(&format!("{}/{name}", r.group), body);
        }
    }
}

#[test]
fn every_outcome_and_name_is_one_folder_one_row_one_count() {
    let p = Project::new();
    let rows = rows();
    fixture(&p, &rows);
    let _ = WAIT;
    let r = p.run(&[
        "run",
        "--tag",
        "T",
        "-j",
        "2",
        "--timeout",
        "3s",
        "--kill-grace",
        "200ms",
        "--progress",
        "never",
    ]);
    r.expect_code(2);
    assert!(!p.path().join("pwned").exists(), "a name reached a shell");
    let tag = p.path().join("results/T");
    let folders = pair_folders(&tag);
    let csv = read_csv(&tag.join("results.csv"));
    assert_eq!(folders.len(), rows.len(), "{folders:#?}");
    assert_eq!(csv.len(), rows.len());
    for row in &rows {
        let pair = format!("{}_x_{}", row.local, row.remote);
        let id = format!("{}/{pair}", row.group);
        assert!(folders.contains(&id), "no folder {id:?} in {folders:#?}");
        let in_csv: Vec<_> = csv
            .iter()
            .filter(|c| c["group"] == row.group && c["pair"] == pair)
            .collect();
        assert_eq!(in_csv.len(), 1, "{id}");
        assert_eq!(
            in_csv[0]["status"], row.want,
            "{id}: {}",
            in_csv[0]["reason"]
        );
        assert_eq!(common::PairDir(tag.join(&id)).status(), row.want, "{id}");
    }
    let want = |s: &str| rows.iter().filter(|r| r.want == s).count();
    let (ok, failed, error) = summary_counts(&r.stdout());
    assert_eq!(
        (ok, failed, error),
        (want("SUCCESS"), want("FAILED"), want("ERROR"))
    );
    let stats = read_csv(&tag.join("stats.csv"));
    let stat_groups: BTreeSet<&str> = stats.iter().map(|s| s["group"].as_str()).collect();
    for g in ["hooks", "nested/plots"] {
        assert!(stat_groups.contains(g), "{g}: {stat_groups:?}");
    }
    // The report reads the same tree: the same counts, and it is complete.
    let rep = p.run(&["report", "T"]);
    rep.expect_code(0);
    let line = format!(
        "{} pairs: {} SUCCESS, {} FAILED, {} ERROR",
        rows.len(),
        ok,
        failed,
        error
    );
    assert!(rep.stdout().contains(&line), "{}", rep.stdout());
}

#[test]
fn exit_status_is_0_for_all_success_and_1_for_failures_without_errors() {
    let p = Project::new();
    let rows = rows();
    let ok: Vec<Row> = rows.into_iter().filter(|r| r.want == "SUCCESS").collect();
    fixture(&p, &ok);
    p.run(&["run", "--progress", "never"]).expect_code(0);
    let p = Project::new();
    let some_failed: Vec<Row> = self::rows()
        .into_iter()
        .filter(|r| r.want != "ERROR" && !r.group.starts_with("timeout"))
        .collect();
    fixture(&p, &some_failed);
    p.run(&[
        "run",
        "--progress",
        "never",
        "-j",
        "2",
        "--kill-grace",
        "200ms",
    ])
    .expect_code(1);
}

#[test]
fn groups_named_like_the_runs_own_files_are_refused_up_front() {
    for name in [
        "plots",
        "run.json",
        "results.csv",
        "index.html",
        "latest",
        "summary.md",
    ] {
        let p = Project::new();
        p.bash(&format!("{name}/local/l"), "exit 1");
        p.bash(&format!("{name}/remote/r"), "exit 0");
        p.bash("fine/local/l", "exit 0");
        p.bash("fine/remote/r", "exit 0");
        let r = p.run(&["run", "--progress", "never"]);
        r.expect_code(2);
        let err = r.stderr();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&format!("group '{name}'")), "{err}");
        assert!(!p.path().join("results").exists(), "nothing is written");
    }
}

#[test]
fn a_test_whose_name_is_not_utf8_is_refused_loudly_and_listed_with_a_warning() {
    use std::os::unix::ffi::OsStrExt;
    let p = Project::new();
    p.bash("g/local/ok", "exit 0");
    p.bash("g/remote/r", "exit 0");
    let bad = p
        .path()
        .join("groups/g/local")
        .join(std::ffi::OsStr::from_bytes(b"fail\xff"));
    std::fs::write(&bad, "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let r = p.run(&["run", "--progress", "never"]);
    r.expect_code(2);
    let err = r.stderr();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("fail\\xFF") && err.contains("rename it"),
        "{err}"
    );
    assert!(!p.path().join("results").exists());
    let l = p.run(&["list"]);
    l.expect_code(0);
    assert!(
        l.stdout().contains("fail\\xFF") && l.stdout().contains("warning"),
        "{}",
        l.stdout()
    );
}

#[test]
fn a_param_value_too_long_for_a_folder_name_is_refused_up_front() {
    let p = Project::new();
    p.bash("g/local/l", "exit 0");
    p.bash("g/remote/r", "exit 0");
    let long = format!("V={}", "x".repeat(300));
    let r = p.run(&["run", "--progress", "never", "--param", &long]);
    r.expect_code(2);
    let err = r.stderr();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--param") && err.contains("longer than 255"),
        "{err}"
    );
}
