//! SPEC §2: every row of the outcome table, its precedence, the reasons, the CSV columns
//! and the exit status of `pairbench run`.
mod common;
use common::Project;

fn table_group(p: &Project) {
    // Each local test first waits (briefly) for the remote one, so a remote that exits on
    // its own has really exited when the local test ends.
    for (name, code) in [("ok", 0), ("fail", 1), ("err", 2)] {
        p.bash(
            &format!("t/local/{name}"),
            &format!("wait_for_remote --timeout 1s >/dev/null 2>&1; exit {code}"),
        );
    }
    p.bash("t/remote/ok", "exit 0");
    p.bash("t/remote/bad", "exit 3");
    p.bash("t/remote/err", "exit 2");
    p.bash("t/remote/serve", "sleep 300");
}

#[test]
fn the_outcome_table_and_its_precedence() {
    let p = Project::new();
    table_group(&p);
    p.run(&["run", "-j", "4", "--kill-grace", "200ms"])
        .expect_code(2);
    let expect = [
        ("ok_x_ok", "SUCCESS", "local exited 0, remote exited 0"),
        ("ok_x_bad", "FAILED", "remote exited 3"),
        ("ok_x_err", "ERROR", "remote exited 2"),
        (
            "ok_x_serve",
            "SUCCESS",
            "local exited 0, remote terminated by SIGHUP",
        ),
        ("fail_x_ok", "FAILED", "local exited 1"),
        ("fail_x_bad", "FAILED", "local exited 1; remote exited 3"),
        ("fail_x_err", "ERROR", "remote exited 2; local exited 1"),
        ("fail_x_serve", "FAILED", "local exited 1"),
        ("err_x_ok", "ERROR", "local exited 2"),
        ("err_x_bad", "ERROR", "local exited 2; remote exited 3"),
        ("err_x_err", "ERROR", "local exited 2; remote exited 2"),
        ("err_x_serve", "ERROR", "local exited 2"),
    ];
    for (pair, status, reason) in expect {
        let dir = p.pair("t", pair);
        assert_eq!(dir.status(), status, "{pair}");
        assert!(
            dir.reason().trim_end().ends_with(reason),
            "{pair}: reason {:?}, want {reason:?}",
            dir.reason()
        );
    }
    let rows = p.results_csv();
    assert_eq!(rows.len(), 12);
    let row = |pair: &str| rows.iter().find(|r| r["pair"] == pair).unwrap().clone();
    let ok_bad = row("ok_x_bad");
    assert_eq!(
        (
            ok_bad["local_exit"].as_str(),
            ok_bad["remote_exit"].as_str(),
            ok_bad["remote_ended"].as_str()
        ),
        ("0", "3", "self")
    );
    let served = row("fail_x_serve");
    assert_eq!(served["remote_ended"], "terminated");
    assert_eq!(
        served["remote_exit"], "",
        "a terminated remote has no exit code"
    );
    assert_eq!(served["local_exit"], "1");
    assert_eq!(served["remote_host"], "local");
    assert_eq!(served["attempt"], "1");
    assert!(chrono::DateTime::parse_from_rfc3339(&served["started_at"]).is_ok());
    assert!(served["duration_s"].parse::<f64>().unwrap() >= 0.0);
}

#[test]
fn results_csv_has_exactly_the_spec_columns() {
    let p = Project::new();
    p.bash("g/local/a", "exit 0").bash("g/remote/b", "exit 0");
    p.run(&["run"]).expect_code(0);
    let header = std::fs::read_to_string(p.latest().join("results.csv")).unwrap();
    // The SPEC §3 columns, in order; later features only append (`flaky` from --retries, `repetition`/`warmup` from --repeat).
    assert_eq!(
        header.lines().next().unwrap(),
        "tag,group,local_test,remote_test,pair,status,reason,local_exit,remote_exit,remote_ended,started_at,duration_s,remote_host,attempt,flaky,repetition,warmup"
    );
}

#[test]
fn exit_status_is_1_when_something_failed_and_nothing_errored() {
    let p = Project::new();
    p.bash("g/local/good", "exit 0")
        .bash("g/local/bad", "exit 1")
        .bash("g/remote/r", "exit 0");
    p.run(&["run"]).expect_code(1);
    assert_eq!(p.pair("g", "bad_x_r").status(), "FAILED");
    assert_eq!(p.pair("g", "good_x_r").status(), "SUCCESS");
}

#[test]
fn a_local_test_that_hangs_times_out_as_failed() {
    let p = Project::new();
    p.bash("g/local/hang", "echo started; sleep 300")
        .bash("g/remote/r", "sleep 300");
    let start = std::time::Instant::now();
    p.run(&["run", "--timeout", "1s", "--kill-grace", "200ms"])
        .expect_code(1);
    assert!(
        start.elapsed().as_secs() < 120,
        "the run did not wait for the sleeps"
    );
    let pair = p.pair("g", "hang_x_r");
    assert_eq!(pair.status(), "FAILED");
    assert!(
        pair.reason().contains("local timed out after 1s"),
        "{}",
        pair.reason()
    );
    assert_eq!(pair.read("local/exit_code").trim(), "signal SIGHUP");
    assert_eq!(pair.read("local/stdout"), "started\n");
}

#[test]
fn a_remote_killed_by_a_signal_on_its_own_fails_the_pair() {
    let p = Project::new();
    p.bash("g/local/l", "wait_for_remote --timeout 5s")
        .bash("g/remote/r", "kill -SEGV $$");
    p.run(&["run"]).expect_code(1);
    let pair = p.pair("g", "l_x_r");
    assert_eq!(pair.status(), "FAILED");
    assert!(
        pair.reason().contains("remote killed by SIGSEGV"),
        "{}",
        pair.reason()
    );
}
