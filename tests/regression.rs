//! Regression runs (docs/regression.md): references in `groups/<g>/expected/`, each pair
//! of a checked group compared as it ends, `bless`, `check` and `review`, metric gates,
//! normalisation and wildcards, as a user sees them: the real binary on real scripts,
//! the markers, diffs, reports and reference files it leaves, and its exit status.

mod common;
#[path = "common/sshd.rs"]
mod sshd;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Project, Run, eventually};

/// `pairbench ARGS` in the project, outside CI (whatever the test itself runs under).
fn pb(p: &Project, args: &[&str]) -> Run {
    let out = p
        .cmd()
        .env_remove("CI")
        .args(args)
        .output()
        .expect("run pairbench");
    Run {
        out,
        project_dir: p.path().to_path_buf(),
    }
}

/// `pairbench ARGS` with `CI` set to `ci`.
fn pb_ci(p: &Project, ci: &str, args: &[&str]) -> Run {
    let out = p
        .cmd()
        .env("CI", ci)
        .args(args)
        .output()
        .expect("run pairbench");
    Run {
        out,
        project_dir: p.path().to_path_buf(),
    }
}

/// Assert that `text` holds `want`, showing it when it does not.
#[track_caller]
fn has(text: &str, want: &str) {
    assert!(text.contains(want), "{want:?} not in:\n{text}");
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn expected(p: &Project, rel: &str) -> PathBuf {
    p.path().join("groups/g/expected").join(rel)
}

/// Files below `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

fn pair_json(p: &Project, pair: &str) -> serde_json::Value {
    serde_json::from_str(&p.pair("g", pair).read("pair.json")).unwrap()
}

/// A group `g` whose server prints two lines and exits, and whose client waits for it,
/// then prints three lines and writes `out/data.txt`.
fn simple_group(p: &Project) {
    p.bash("g/remote/srv", "echo ready; echo 'line two'");
    client(
        p,
        "cli",
        "echo alpha; echo beta; echo gamma; mkdir -p out; echo 42 > out/data.txt",
    );
}

/// A local test that waits for the remote test to end (so its output is complete),
/// then runs `body`.
fn client(p: &Project, name: &str, body: &str) {
    p.bash(
        &format!("g/local/{name}"),
        &format!("wait_for_remote 2>/dev/null\n{body}"),
    );
}

#[test]
fn an_unchanged_rerun_passes_and_one_changed_line_fails_with_its_diff() {
    let p = Project::new();
    simple_group(&p);
    // No expected/ yet: the group runs as it always did.
    pb(&p, &["run", "--tag", "first"]).expect_code(0);
    assert!(!p.path().join("groups/g/expected").exists());
    assert!(pair_json(&p, "cli_x_srv").get("check").is_none());

    let b = pb(&p, &["bless"]);
    b.expect_code(0);
    has(&b.stdout(), "added      g/cli_x_srv");
    has(
        &b.stdout(),
        "bless 'first': 1 added, 0 changed, 0 unchanged, 0 pruned",
    );
    assert_eq!(
        files(&expected(&p, "cli_x_srv")),
        [
            "local/exit_code",
            "local/out/data.txt",
            "local/stdout",
            "remote/exit_code",
            "remote/stdout"
        ]
    );
    assert_eq!(
        read(&expected(&p, "cli_x_srv/local/stdout")),
        "alpha\nbeta\ngamma\n"
    );
    assert_eq!(read(&expected(&p, "cli_x_srv/local/exit_code")), "0\n");
    assert_eq!(read(&expected(&p, "cli_x_srv/remote/exit_code")), "0\n");
    assert_eq!(read(&expected(&p, "cli_x_srv/local/out/data.txt")), "42\n");

    // The same output again: SUCCESS, and the check says it matched.
    pb(&p, &["run", "--tag", "second"]).expect_code(0);
    assert_eq!(pair_json(&p, "cli_x_srv")["check"]["result"], "matched");
    assert!(!p.pair("g", "cli_x_srv").path().join("check.diff").exists());
    pb(&p, &["check"]).expect_code(0);
    let again = pb(&p, &["bless"]);
    has(&again.stdout(), "0 added, 0 changed, 1 unchanged");

    // One changed line.
    client(
        &p,
        "cli",
        "echo alpha; echo BETA; echo gamma; mkdir -p out; echo 42 > out/data.txt",
    );
    let r = pb(&p, &["run", "--tag", "third"]);
    r.expect_code(1);
    let pair = p.pair("g", "cli_x_srv");
    let (status, reason) = pair.marker();
    assert_eq!(status, "FAILED");
    assert!(
        reason.ends_with(" output differs from expected: local/stdout\n"),
        "{reason}"
    );
    assert_eq!(
        pair.read("check.diff"),
        "--- expected/cli_x_srv/local/stdout\n+++ local/stdout\n@@ -1,3 +1,3 @@\n alpha\n-beta\n+BETA\n gamma\n"
    );
    // The output itself is kept as the script wrote it.
    assert_eq!(pair.read("local/stdout"), "alpha\nBETA\ngamma\n");
    let j = pair_json(&p, "cli_x_srv");
    assert_eq!(j["check"]["result"], "differs");
    assert_eq!(j["check"]["status"], "SUCCESS");
    // Every report shows the difference.
    let tag = p.latest();
    let summary = read(&tag.join("summary.md"));
    has(&summary, "```diff\n");
    has(&summary, "  -beta\n  +BETA\n");
    let html = read(&tag.join("index.html"));
    has(&html, "<span class=\"del\">-beta</span>");
    has(&html, "<span class=\"add\">+BETA</span>");
    let junit = read(&tag.join("junit.xml"));
    has(
        &junit,
        "<failure message=\"output differs from expected: local/stdout\"",
    );
    has(&junit, "-beta\n+BETA\n");
    // `check` re-checks the stored run offline.
    let c = pb(&p, &["check", "third"]);
    c.expect_code(1);
    has(
        &c.stdout(),
        "DIFFERS  g/cli_x_srv: output differs from expected: local/stdout",
    );
    has(&c.stdout(), "\n-beta\n+BETA\n");

    // Two files differ: the reason counts them.
    client(
        &p,
        "cli",
        "echo alpha; echo BETA; echo gamma; mkdir -p out; echo 43 > out/data.txt",
    );
    pb(&p, &["run", "--tag", "fourth"]).expect_code(1);
    let reason = p.pair("g", "cli_x_srv").reason();
    has(
        &reason,
        "output differs from expected: local/out/data.txt and 1 more file",
    );

    // Blessing the failed run (its outcome was SUCCESS) accepts the new output, and the
    // stored run now checks clean against today's references.
    let b = pb(&p, &["bless", "fourth"]);
    b.expect_code(0);
    has(
        &b.stdout(),
        "changed    g/cli_x_srv (local/out/data.txt, local/stdout)",
    );
    pb(&p, &["check", "fourth"]).expect_code(0);
    pb(&p, &["check", "third"]).expect_code(1);
    pb(&p, &["check", "no-such-tag"]).expect_code(2);
}

#[test]
fn incidental_differences_pass_through_normalisation() {
    let p = Project::new();
    p.bash(
        "g/remote/srv",
        r#"echo "started $(date -u +%Y-%m-%dT%H:%M:%S.%NZ) (pid $$)"
echo "log [$(date '+%d/%b/%Y:%H:%M:%S %z')] $(date)"
echo "cwd $PWD"
echo "helpers in $PAIRBENCH_GROUP_DIR/lib"
echo "results of the group in $LOCAL_RESULTS_ROOT_PATH"
echo "serving $PAIRBENCH_REMOTE_HOST for run $PAIRBENCH_TAG"
printf 'buffer at 0x%012x\n' "$((RANDOM * 32768 + RANDOM + 4096))"
echo "sshd[$$]: accepted"
echo "took $RANDOM ms""#,
    );
    client(&p, "cli", "echo \"client in $PWD at $(date +%T.%N)\"");
    p.file(
        "g/group.toml",
        "[[check.normalize]]\nregex = 'took \\d+ ms'\nreplace = 'took [N] ms'\n",
    );
    pb(&p, &["run", "--tag", "run-one"]).expect_code(0);
    // A group with [check] is checked from the first run: its output is pending.
    assert_eq!(pair_json(&p, "cli_x_srv")["check"]["result"], "pending");
    pb(&p, &["bless"]).expect_code(0);
    assert_eq!(
        read(&expected(&p, "cli_x_srv/remote/stdout")),
        "started [TIME] (pid [PID])\n\
         log [[TIME]] [TIME]\n\
         cwd [RESULT_DIR]\n\
         helpers in [GROUP_DIR]/lib\n\
         results of the group in [GROUP_RESULT_DIR]\n\
         serving [REMOTE_HOST] for run [TAG]\n\
         buffer at [ADDR]\n\
         sshd[[PID]]: accepted\n\
         took [N] ms\n"
    );
    assert_eq!(
        read(&expected(&p, "cli_x_srv/local/stdout")),
        "client in [RESULT_DIR] at [TIME]\n"
    );
    assert!(
        files(&expected(&p, "cli_x_srv"))
            .iter()
            .all(|f| !f.ends_with(".new"))
    );
    // Another second, another tag, other pids and addresses: still the same output.
    std::thread::sleep(Duration::from_millis(1100));
    let r = pb(&p, &["run", "--tag", "run-two"]);
    r.expect_code(0);
    assert_eq!(pair_json(&p, "cli_x_srv")["check"]["result"], "matched");
    let out = p.pair("g", "cli_x_srv").read("remote/stdout");
    has(&out, "run-two");
}

#[test]
fn wildcards_match_any_text_in_a_line_and_any_lines() {
    let p = Project::new();
    p.bash("g/remote/srv", "exec sleep 60");
    p.bash(
        "g/local/cli",
        "echo start; for i in $(seq $((RANDOM % 5))); do echo noise $RANDOM; done; echo \"port $RANDOM open\"; echo end",
    );
    let reference = "start\n...\nport [..] open\nend\n";
    p.file("g/expected/cli_x_srv/local/stdout", reference);
    for tag in ["w1", "w2", "w3"] {
        pb(&p, &["run", "--tag", tag]).expect_code(0);
        assert_eq!(pair_json(&p, "cli_x_srv")["check"]["result"], "matched");
    }
    // Bless keeps a reference the output matches as it is, wildcards and all; the remote
    // side, which the hand-written reference left out, is not compared.
    let b = pb(&p, &["bless", "-f", "g/*"]);
    has(&b.stdout(), "1 changed");
    assert_eq!(read(&expected(&p, "cli_x_srv/local/stdout")), reference);
    std::fs::remove_dir_all(expected(&p, "cli_x_srv/remote")).unwrap();

    p.bash(
        "g/local/cli",
        "echo start; echo noise 1; echo noise 2; echo 'port 80 open'; echo END",
    );
    pb(&p, &["run", "--tag", "w4"]).expect_code(1);
    assert_eq!(
        p.pair("g", "cli_x_srv").read("check.diff"),
        "--- expected/cli_x_srv/local/stdout\n+++ local/stdout\n@@ -1,4 +1,4 @@\n start\n ...\n port [..] open\n-end\n+END\n"
    );
}

#[test]
fn a_metric_gate_fails_a_20_percent_throughput_drop_and_passes_a_2_percent_one() {
    let p = Project::new();
    p.bash("g/remote/srv", "exec sleep 60");
    p.bash(
        "g/local/cli",
        "echo done; report_metric rps \"$RPS\" req/s; report_metric latency_ms \"$LAT\" ms",
    );
    p.file(
        "g/group.toml",
        "[metrics]\nrps = \"higher\"\n\n[check.metrics]\nrps = \"5%\"\nlatency_ms = { max = 20 }\n",
    );
    let run = |tag: &str, rps: &str, lat: &str| {
        let rps = format!("RPS={rps}");
        let lat = format!("LAT={lat}");
        pb(&p, &["run", "--tag", tag, "--env", &rps, "--env", &lat])
    };
    run("base", "1000", "5").expect_code(0);
    pb(&p, &["bless"]).expect_code(0);
    let m = read(&expected(&p, "cli_x_srv/metrics.toml"));
    // Only what a relative gate compares with is stored.
    assert!(m.ends_with("\n[local]\nrps = 1000.0\n"), "{m}");

    run("two-percent", "980", "5").expect_code(0);
    run("faster", "5000", "5").expect_code(0);
    run("twenty-percent", "800", "5").expect_code(1);
    let reason = p.pair("g", "cli_x_srv").reason();
    has(
        &reason,
        "metric rps (local) is 800, 20% lower than the blessed 1000 (the gate allows 5%; higher is better)",
    );
    assert!(
        p.pair("g", "cli_x_srv")
            .read("check.diff")
            .contains("metric rps (local) is 800"),
    );
    run("slow", "1000", "25").expect_code(1);
    let reason = p.pair("g", "cli_x_srv").reason();
    has(
        &reason,
        "metric latency_ms (local) is 25, above its maximum 20",
    );
    // The offline check sees the same.
    pb(&p, &["check", "twenty-percent"]).expect_code(1);
    pb(&p, &["check", "two-percent"]).expect_code(0);
    // Blessing a run that passes its gates keeps the blessed value; blessing the slower
    // one makes it the new baseline.
    let b = pb(&p, &["bless", "two-percent"]);
    has(&b.stdout(), "0 changed, 1 unchanged");
    let b = pb(&p, &["bless", "twenty-percent"]);
    has(&b.stdout(), "changed    g/cli_x_srv (metrics.toml)");
    assert!(read(&expected(&p, "cli_x_srv/metrics.toml")).ends_with("rps = 800.0\n"));
    run("after", "800", "5").expect_code(0);
}

#[test]
fn new_pairs_fail_under_ci_and_get_a_pending_reference_otherwise() {
    let p = Project::new();
    simple_group(&p);
    pb(&p, &["run", "--tag", "one"]).expect_code(0);
    pb(&p, &["bless"]).expect_code(0);
    client(&p, "cli2", "echo a new client");

    let r = pb_ci(&p, "true", &["run", "--tag", "in-ci"]);
    r.expect_code(1);
    let (status, reason) = p.pair("g", "cli2_x_srv").marker();
    assert_eq!(status, "FAILED");
    has(&reason, "no reference in expected/cli2_x_srv");
    assert_eq!(p.pair("g", "cli_x_srv").status(), "SUCCESS");
    assert!(
        p.pair("g", "cli2_x_srv")
            .read("check.diff")
            .contains("--- /dev/null\n+++ local/stdout\n@@ -0,0 +1 @@\n+a new client\n")
    );
    assert!(
        !expected(&p, "cli2_x_srv").exists(),
        "nothing pending under CI"
    );

    // CI=false is no CI: the new pair passes and its output waits as `.new` files.
    let r = pb_ci(&p, "false", &["run", "--tag", "at-my-desk"]);
    r.expect_code(0);
    has(
        &r.stdout(),
        "pairbench: 1 pair of checked groups had no reference: its output is pending as expected/<pair>/…/*.new",
    );
    let reason = p.pair("g", "cli2_x_srv").reason();
    has(&reason, "pending reference expected/cli2_x_srv/*.new");
    assert_eq!(
        files(&expected(&p, "cli2_x_srv")),
        [
            "local/exit_code.new",
            "local/stdout.new",
            "remote/exit_code.new",
            "remote/stdout.new"
        ]
    );
    assert_eq!(
        read(&expected(&p, "cli2_x_srv/local/stdout.new")),
        "a new client\n"
    );
    let c = pb(&p, &["check"]);
    c.expect_code(1);
    has(&c.stdout(), "NEW      g/cli2_x_srv");
    // Bless takes the pending output; CI passes from then on.
    let b = pb(&p, &["bless"]);
    has(&b.stdout(), "added      g/cli2_x_srv");
    assert!(
        files(&expected(&p, "cli2_x_srv"))
            .iter()
            .all(|f| !f.ends_with(".new"))
    );
    pb_ci(&p, "1", &["run", "--tag", "in-ci-again"]).expect_code(0);
}

#[test]
fn bless_touches_only_what_it_is_asked_about_and_prune_removes_gone_pairs() {
    let p = Project::new();
    p.bash("g/remote/srv", "exec sleep 60");
    p.bash("g/local/a", "echo a");
    p.bash("g/local/b", "echo b");
    p.bash("g/local/c", "echo c; exit 1");
    pb(&p, &["run", "--tag", "t1"]).expect_code(1);
    let b = pb(&p, &["bless"]);
    b.expect_code(0);
    has(
        &b.stdout(),
        "2 added, 0 changed, 0 unchanged, 0 pruned; 1 FAILED or ERROR run not blessed (--force blesses it)",
    );
    assert!(!expected(&p, "c_x_srv").exists());
    // A server pairbench ended: the reference says so, not how the signal ended it.
    assert_eq!(
        read(&expected(&p, "a_x_srv/remote/exit_code")),
        "terminated\n"
    );
    let forced = pb(&p, &["bless", "--force", "-f", "g/c_*"]);
    has(&forced.stdout(), "added      g/c_x_srv");
    assert_eq!(read(&expected(&p, "c_x_srv/local/exit_code")), "1\n");

    // b's test goes away, and a folder for no pair appears: the run says so, and bless
    // leaves both alone until asked to prune.
    std::fs::write(expected(&p, "b_x_srv/local/stdout"), "edited by hand\n").unwrap();
    std::fs::remove_file(p.path().join("groups/g/local/b")).unwrap();
    std::fs::create_dir_all(expected(&p, "old_x_srv/local")).unwrap();
    std::fs::write(expected(&p, "old_x_srv/local/stdout"), "x\n").unwrap();
    p.bash("g/local/a", "echo A");
    let r = pb(&p, &["run", "--tag", "t2"]);
    r.expect_code(1);
    for stray in ["b_x_srv", "old_x_srv"] {
        has(
            &r.stderr(),
            &format!("pairbench: warning: g/expected/{stray}: no pair of the group has this name"),
        );
    }
    // `check` says so too.
    has(
        &pb(&p, &["check"]).stderr(),
        "g/expected/old_x_srv: no pair of the group has this name",
    );
    let none = pb(&p, &["bless", "-f", "g/nothing*"]);
    has(&none.stdout(), "0 added, 0 changed, 0 unchanged");
    assert_eq!(read(&expected(&p, "a_x_srv/local/stdout")), "a\n");
    let b = pb(&p, &["bless"]);
    has(&b.stdout(), "changed    g/a_x_srv (local/stdout)");
    assert_eq!(read(&expected(&p, "a_x_srv/local/stdout")), "A\n");
    assert_eq!(
        read(&expected(&p, "b_x_srv/local/stdout")),
        "edited by hand\n"
    );
    assert!(expected(&p, "old_x_srv").exists());
    let pr = pb(&p, &["bless", "--prune"]);
    pr.expect_code(0);
    has(
        &pr.stdout(),
        "pruned     g/expected/b_x_srv (no pair of the group has this name)",
    );
    has(&pr.stdout(), "pruned     g/expected/old_x_srv");
    assert!(!expected(&p, "b_x_srv").exists());
    assert!(!expected(&p, "old_x_srv").exists());
    assert!(expected(&p, "a_x_srv/local/stdout").exists());
    assert!(expected(&p, "c_x_srv/local/stdout").exists());
}

#[test]
fn bad_check_settings_get_one_clear_line() {
    let p = Project::new();
    simple_group(&p);
    for (toml, want) in [
        (
            "[[check.normalize]]\nregex = '(unclosed'\nreplace = 'x'\n",
            "check.normalize[1].regex' is not a valid regex",
        ),
        (
            "[check]\nfilez = ['stdout']\n",
            "'check.filez' is not a key of [check] (files, normalize, metrics)",
        ),
        (
            "[check]\nfiles = ['out/[']\n",
            "'check.files' has a bad glob 'out/['",
        ),
        (
            "[check.metrics]\nrps = 'fast'\n",
            "'check.metrics.rps' must be a percentage like \"5%\"",
        ),
        (
            "[metrics]\nrps = 'up'\n",
            "'metrics.rps' must be \"higher\" or \"lower\"",
        ),
        ("[checks]\n", "unknown key 'checks'"),
    ] {
        p.file("g/group.toml", toml);
        let r = pb(&p, &["run"]);
        r.expect_code(2);
        let err = r.stderr();
        assert_eq!(err.lines().count(), 1, "{err}");
        has(&err, "group.toml");
        assert!(err.contains(want), "{toml}: {err}");
        assert!(!p.path().join("results").exists(), "nothing ran for {toml}");
    }
    // The offline commands read group.toml as a run does.
    std::fs::remove_file(p.path().join("groups/g/group.toml")).unwrap();
    pb(&p, &["run"]).expect_code(0);
    p.file("g/group.toml", "[[check.normalize]]\nregex = '('\n");
    let c = pb(&p, &["check"]);
    c.expect_code(2);
    has(&c.stderr(), "is not a valid regex");
    let b = pb(&p, &["bless"]);
    b.expect_code(2);
    has(&b.stderr(), "is not a valid regex");
    // A reference that cannot be read: the pair cannot pass, and says why.
    std::fs::remove_file(p.path().join("groups/g/group.toml")).unwrap();
    pb(&p, &["bless"]).expect_code(0);
    std::fs::write(expected(&p, "cli_x_srv/metrics.toml"), "rps = [\n").unwrap();
    pb(&p, &["run", "--tag", "unreadable"]).expect_code(1);
    let reason = p.pair("g", "cli_x_srv").reason();
    has(&reason, "output could not be compared with expected: ");
    has(&reason, "metrics.toml is not valid TOML");
}

#[test]
fn binary_files_are_compared_by_hash_and_huge_outputs_get_a_capped_diff() {
    let p = Project::new();
    p.bash("g/remote/srv", "exec sleep 60");
    p.bash(
        "g/local/cli",
        "mkdir -p out; printf 'A\\000B%s' \"$SEED\" > out/blob.bin; python3 -c \"import sys; [print(f'line {i} {sys.argv[1]}') for i in range(100000)]\" \"$SEED\"",
    );
    pb(&p, &["run", "--tag", "a", "--env", "SEED=1"]).expect_code(0);
    pb(&p, &["bless"]).expect_code(0);
    pb(&p, &["run", "--tag", "same", "--env", "SEED=1"]).expect_code(0);
    pb(&p, &["run", "--tag", "b", "--env", "SEED=2"]).expect_code(1);
    let pair = p.pair("g", "cli_x_srv");
    let reason = pair.reason();
    has(
        &reason,
        "output differs from expected: local/out/blob.bin and 1 more file",
    );
    let diff = pair.read("check.diff");
    assert!(
        diff.starts_with(
            "Binary files expected/cli_x_srv/local/out/blob.bin and local/out/blob.bin differ (sha256 "
        ),
        "{}",
        &diff[..300.min(diff.len())]
    );
    assert!(diff.len() < 300 * 1024, "{} bytes", diff.len());
    assert!(
        diff.contains("more lines of this file's diff not shown (the whole file: local/stdout)")
    );
    // The whole output is kept.
    assert_eq!(pair.read("local/stdout").lines().count(), 100_000);
    let summary = read(&p.latest().join("summary.md"));
    assert!(summary.len() < 64 * 1024, "{}", summary.len());
}

#[test]
fn parameter_sets_have_one_reference_that_every_repetition_must_match() {
    let p = Project::new();
    p.bash("g/remote/srv", "exec sleep 60");
    p.bash("g/local/cli", "echo \"n=$PAIRBENCH_PARAM_N\"");
    let plan = ["--param", "N=1,2", "--repeat", "2"];
    let mut args = vec!["run", "--tag", "p1"];
    args.extend(plan);
    pb(&p, &args).expect_code(0);
    let b = pb(&p, &["bless"]);
    has(&b.stdout(), "2 added");
    assert_eq!(read(&expected(&p, "cli_x_srv/N=1/local/stdout")), "n=1\n");
    assert_eq!(read(&expected(&p, "cli_x_srv/N=2/local/stdout")), "n=2\n");
    assert!(!expected(&p, "cli_x_srv/local").exists());

    p.bash(
        "g/local/cli",
        "echo \"n=$PAIRBENCH_PARAM_N\"; if [ \"$PAIRBENCH_PARAM_N$PAIRBENCH_REPETITION\" = 22 ]; then echo extra; fi",
    );
    let mut args = vec!["run", "--tag", "p2"];
    args.extend(plan);
    pb(&p, &args).expect_code(1);
    let rows = p.results_csv();
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r["status"] == "FAILED")
        .map(|r| format!("{}/{}", r["param_N"], r["repetition"]))
        .collect();
    assert_eq!(failed, ["2/2"], "{rows:?}");
    assert_eq!(rows.len(), 4);
    let diff = read(&p.latest().join("g/cli_x_srv/N=2/rep-2/check.diff"));
    assert!(
        diff.starts_with("--- expected/cli_x_srv/N=2/local/stdout\n+++ local/stdout\n"),
        "{diff}"
    );
    assert!(diff.ends_with(" n=2\n+extra\n"), "{diff}");
}

#[test]
fn review_walks_each_difference_on_a_terminal_and_refuses_without_one() {
    let p = Project::new();
    simple_group(&p);
    pb(&p, &["run", "--tag", "t1"]).expect_code(0);
    pb(&p, &["bless"]).expect_code(0);
    client(&p, "cli", "echo alpha; echo changed");
    client(&p, "new", "echo brand new");
    client(&p, "zz", "echo also new");
    pb(&p, &["run", "--tag", "t2"]).expect_code(1);

    let r = pb(&p, &["review"]);
    r.expect_code(2);
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.stderr());
    has(&r.stderr(), "needs a terminal");

    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is needed: apt-get install tmux"
        );
        eprintln!("\n!!!!!!!!!! REVIEW TEST SKIPPED: tmux not found !!!!!!!!!!\n");
        return;
    }
    let sock = format!("pbreview-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &sock])
            .args(args)
            .output()
            .unwrap()
    };
    let script = format!(
        "cd {dir} && env -u CI NO_COLOR=1 {bin} review t2; echo EXIT=$? > {dir}/exit; sleep 60",
        dir = p.path().display(),
        bin = assert_cmd::cargo::cargo_bin!("pairbench").display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-x",
        "160",
        "-y",
        "50",
        "bash",
        "--norc",
        "-c",
        &script,
    ]);
    let screen = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned();
    let wait_for = |what: &str| {
        assert!(
            eventually(Duration::from_secs(30), || screen().contains(what)),
            "waiting for {what:?}: {}",
            screen()
        );
    };
    // In order: cli_x_srv (a difference), new_x_srv and zz_x_srv (no reference yet).
    wait_for("[1/3] g/cli_x_srv");
    wait_for("+changed");
    tmux(&["send-keys", "x"]);
    wait_for("please press a, r, s or q");
    tmux(&["send-keys", "r"]);
    wait_for("[2/3] g/new_x_srv");
    wait_for("+brand new");
    tmux(&["send-keys", "a"]);
    wait_for("[3/3] g/zz_x_srv");
    tmux(&["send-keys", "q"]);
    let exit = p.path().join("exit");
    assert!(
        eventually(Duration::from_secs(30), || exit.exists()),
        "{}",
        screen()
    );
    let shown = screen();
    tmux(&["kill-server"]);
    assert_eq!(read(&exit).trim(), "EXIT=0", "{shown}");
    has(&shown, "review 't2': 1 accepted, 1 rejected, 1 skipped");
    // Rejected: the reference stays. Accepted: the reference is the run's output, the
    // pending files are gone. Skipped: still pending.
    assert_eq!(
        read(&expected(&p, "cli_x_srv/local/stdout")),
        "alpha\nbeta\ngamma\n"
    );
    assert_eq!(read(&expected(&p, "new_x_srv/local/stdout")), "brand new\n");
    assert!(
        files(&expected(&p, "new_x_srv"))
            .iter()
            .all(|f| !f.ends_with(".new"))
    );
    assert!(expected(&p, "zz_x_srv/local/stdout.new").exists());
}

#[test]
fn over_ssh_references_stay_here_and_remote_paths_normalise() {
    let Some(s) = sshd::Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        p.path().join("pairbench.toml"),
        format!(
            "[[remote]]\nname = \"box\"\nhost = \"{}\"\nuser = \"{}\"\nport = {}\nidentity_file = \"~/.ssh/id_ed25519\"\nworkdir = \"{}\"\n",
            s.host,
            s.user,
            s.port,
            work.path().display()
        ),
    )
    .unwrap();
    p.bash(
        "g/remote/srv",
        "echo \"cwd $PWD\"; echo \"scripts $PAIRBENCH_GROUP_DIR\"; if [ -e \"$PAIRBENCH_GROUP_DIR/expected\" ]; then echo 'references uploaded'; else echo 'no references here'; fi",
    );
    client(&p, "cli", "echo \"talking to $PAIRBENCH_REMOTE_HOST\"");
    let run = |tag: &str| {
        let mut cmd = p.cmd();
        s.client(&mut cmd);
        let out = cmd
            .env_remove("CI")
            .args(["run", "--remote", "box", "--tag", tag])
            .output()
            .unwrap();
        Run {
            out,
            project_dir: p.path().to_path_buf(),
        }
    };
    run("s1").expect_code(0);
    pb(&p, &["bless"]).expect_code(0);
    assert_eq!(
        read(&expected(&p, "cli_x_srv/remote/stdout")),
        "cwd [RESULT_DIR]\nscripts [GROUP_DIR]\nno references here\n"
    );
    assert_eq!(
        read(&expected(&p, "cli_x_srv/local/stdout")),
        "talking to [REMOTE_HOST]\n"
    );
    // Now the group has expected/: it is not uploaded, and the next run (another remote
    // work folder) matches.
    let r = run("s2");
    r.expect_code(0);
    assert_eq!(pair_json(&p, "cli_x_srv")["check"]["result"], "matched");
    assert!(
        p.pair("g", "cli_x_srv")
            .read("remote/stdout")
            .contains("no references here")
    );
}

#[test]
fn a_script_cannot_write_the_pairs_check_diff() {
    let p = Project::new();
    simple_group(&p);
    pb(&p, &["run", "--tag", "t1"]).expect_code(0);
    pb(&p, &["bless"]).expect_code(0);
    client(
        &p,
        "cli",
        "echo alpha; echo beta; echo gamma; mkdir -p out; echo 42 > out/data.txt; echo 'all fine' > ../check.diff",
    );
    pb(&p, &["run", "--tag", "t2"]).expect_code(2);
    let (status, reason) = p.pair("g", "cli_x_srv").marker();
    assert_eq!(status, "ERROR");
    has(
        &reason,
        "a script wrote pairbench's own file ../check.diff (removed)",
    );
    assert!(!p.pair("g", "cli_x_srv").path().join("check.diff").exists());
}

#[test]
fn a_gate_takes_its_direction_from_pairbench_toml_when_the_group_does_not_say() {
    let p = Project::new();
    p.bash("g/remote/srv", "exec sleep 60");
    p.bash("g/local/cli", "report_metric tput \"$TPUT\"");
    p.file("g/group.toml", "[check.metrics]\ntput = \"10%\"\n");
    pb(&p, &["run", "--tag", "base", "--env", "TPUT=100"]).expect_code(0);
    pb(&p, &["bless"]).expect_code(0);
    // Lower is better by default: twice the value is worse.
    pb(&p, &["run", "--tag", "double", "--env", "TPUT=200"]).expect_code(1);
    let reason = p.pair("g", "cli_x_srv").reason();
    has(&reason, "100% higher than the blessed 100");
    std::fs::write(
        p.path().join("pairbench.toml"),
        "[metrics]\ntput = \"higher\"\n",
    )
    .unwrap();
    pb(&p, &["run", "--tag", "double-again", "--env", "TPUT=200"]).expect_code(0);
    pb(&p, &["check", "double"]).expect_code(0);
    pb(&p, &["run", "--tag", "half", "--env", "TPUT=50"]).expect_code(1);
}
