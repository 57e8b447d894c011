//! SPEC §7: a tag folder as a set of make targets, the tag lock, shards, retries, and
//! Ctrl-C followed by --resume.
mod common;
use common::{Project, processes_with_env};
use std::time::Duration;

fn runs_log(p: &Project) -> Vec<String> {
    std::fs::read_to_string(p.path().join("runs.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn logging_group(p: &Project) {
    let log = p.path().join("runs.log");
    for l in ["a", "b"] {
        p.bash(
            &format!("g/local/{l}"),
            &format!(
                "echo \"$PAIRBENCH_PAIR\" >> '{}'; exit ${{FAIL_{l}:-0}}",
                log.display()
            ),
        );
    }
    p.bash("g/remote/r", "exit 0");
}

#[test]
fn an_existing_tag_runs_only_missing_or_changed_pairs() {
    let p = Project::new();
    logging_group(&p);
    p.run(&["run", "--tag", "T", "--env", "FAIL_b=1"])
        .expect_code(1);
    assert_eq!(runs_log(&p), ["a_x_r", "b_x_r"]);

    // Nothing changed: nothing runs, and the tag still reports its FAILED pair.
    let again = p.run(&["run", "--tag", "T"]);
    again.expect_code(1);
    assert_eq!(runs_log(&p).len(), 2);
    assert!(again.stdout().contains("1 FAILED"), "{}", again.stdout());

    // A changed script reruns its pairs only.
    p.bash(
        "g/local/a",
        &format!("echo changed >> '{}'", p.path().join("runs.log").display()),
    );
    p.run(&["run", "--tag", "T"]).expect_code(1);
    assert_eq!(runs_log(&p)[2..], ["changed"]);

    // --recheck reruns FAILED and ERROR pairs.
    p.run(&["run", "--tag", "T", "--recheck"]).expect_code(0);
    assert_eq!(runs_log(&p)[3..], ["b_x_r"]);
    assert_eq!(p.pair("g", "b_x_r").status(), "SUCCESS");

    // -B reruns everything.
    p.run(&["run", "--tag", "T", "-B"]).expect_code(0);
    assert_eq!(runs_log(&p).len(), 6);
    assert_eq!(p.results_csv().len(), 2, "one row per pair, not per run");
}

#[test]
fn dry_run_prints_each_pair_and_why_and_runs_nothing() {
    let p = Project::new();
    logging_group(&p);
    let fresh = p.run(&["run", "-n", "--tag", "D"]);
    fresh.expect_code(0);
    assert!(
        fresh.stdout().contains("run   g/a_x_r  (no result yet)"),
        "{}",
        fresh.stdout()
    );
    assert!(
        !p.path().join("results/D").exists(),
        "a dry run writes nothing"
    );
    p.run(&["run", "--tag", "D"]).expect_code(0);
    p.bash("g/remote/r", "exit 0 # changed");
    let after = p.run(&["run", "-n", "--tag", "D"]);
    assert!(
        after.stdout().contains("run   g/a_x_r  (scripts changed"),
        "{}",
        after.stdout()
    );
    p.run(&["run", "--tag", "D"]).expect_code(0);
    let same = p.run(&["run", "-n", "--tag", "D"]);
    assert!(
        same.stdout()
            .contains("skip  g/b_x_r  (up to date (SUCCESS))"),
        "{}",
        same.stdout()
    );
    assert!(same.stdout().contains("0 of 2 pairs would run"));
    assert_eq!(runs_log(&p).len(), 4);
}

#[test]
fn a_second_run_on_a_busy_tag_is_refused() {
    let p = Project::new();
    p.bash("g/local/l", "sleep 3").bash("g/remote/r", "exit 0");
    let mut first = p
        .cmd()
        .args(["run", "--tag", "busy"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(common::eventually(Duration::from_secs(30), || {
        p.path().join("results/busy/.pairbench.lock").exists()
    }));
    std::thread::sleep(Duration::from_millis(300));
    let second = p.run(&["run", "--tag", "busy"]);
    second.expect_code(2);
    assert!(
        second
            .stderr()
            .contains("tag 'busy' is in use by another pairbench run"),
        "{}",
        second.stderr()
    );
    assert!(first.wait().unwrap().success());
}

#[test]
fn shards_are_disjoint_complete_and_stable_when_pairs_are_added() {
    let p = Project::new();
    for i in 0..12 {
        p.bash(&format!("g/local/l{i}"), "exit 0");
    }
    for i in 0..3 {
        p.bash(&format!("g/remote/r{i}"), "exit 0");
    }
    let shard = |k: u32| -> Vec<String> {
        let out = p.run(&["run", "-n", "--shard", &format!("{k}/3")]).stdout();
        out.lines()
            .filter_map(|l| l.strip_prefix("run   "))
            .map(|l| l.split("  ").next().unwrap().to_string())
            .collect()
    };
    let before: Vec<Vec<String>> = (1..=3).map(shard).collect();
    let mut all: Vec<String> = before.concat();
    assert_eq!(all.len(), 36, "together the shards are the whole set");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 36, "shards are disjoint");
    assert!(before.iter().all(|s| !s.is_empty()));
    p.bash("g/local/l_new", "exit 0");
    let after: Vec<Vec<String>> = (1..=3).map(shard).collect();
    for k in 0..3 {
        assert!(
            before[k].iter().all(|id| after[k].contains(id)),
            "adding pairs moved a pair out of shard {}",
            k + 1
        );
    }
}

#[test]
fn retries_keep_earlier_attempts_and_mark_a_late_pass_flaky() {
    let p = Project::new();
    let counter = p.path().join("count");
    p.bash(
        "g/local/flaky",
        &format!(
            "n=$(cat '{c}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{c}'; echo attempt $n; [ $n -ge 2 ]",
            c = counter.display()
        ),
    );
    p.bash("g/local/broken", "exit 1");
    p.bash("g/remote/r", "exit 0");
    p.run(&["run", "--retries", "2"]).expect_code(1);
    let flaky = p.pair("g", "flaky_x_r");
    assert_eq!(flaky.status(), "SUCCESS");
    assert!(flaky.reason().contains("flaky"));
    assert_eq!(flaky.read("attempts/1/local/stdout"), "attempt 1\n");
    assert!(flaky.path().join("attempts/1/FAILED").exists());
    let broken = p.pair("g", "broken_x_r");
    assert!(broken.path().join("attempts/1/FAILED").exists());
    assert!(broken.path().join("attempts/2/FAILED").exists());
    let rows = p.results_csv();
    let summary: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["pair"].clone(),
                r["attempt"].clone(),
                r["status"].clone(),
                r["flaky"].clone(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_string(), b.to_string(), c.to_string(), d.to_string())
    };
    assert_eq!(
        summary,
        [
            s("broken_x_r", "1", "FAILED", "false"),
            s("broken_x_r", "2", "FAILED", "false"),
            s("broken_x_r", "3", "FAILED", "false"),
            s("flaky_x_r", "1", "FAILED", "false"),
            s("flaky_x_r", "2", "SUCCESS", "true"),
        ]
    );
}

#[test]
fn ctrl_c_ends_running_pairs_runs_after_hooks_exits_130_and_resume_finishes() {
    let p = Project::new();
    let log = p.path().join("runs.log");
    for i in 0..4 {
        p.bash(
            &format!("g/local/l{i}"),
            &format!("echo l{i} >> '{}'; sleep 1.5", log.display()),
        );
    }
    p.bash("g/remote/r", "trap '' HUP TERM; sleep 300");
    p.bash("g/after_last_test_local", "echo after >> after.log");
    let token = format!("INT_TOKEN=x{}", std::process::id());
    let mut child = p
        .cmd()
        .args([
            "run",
            "--tag",
            "I",
            "--kill-grace",
            "200ms",
            "--env",
            &token,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt while the second pair runs.
    assert!(common::eventually(Duration::from_secs(60), || runs_log(&p)
        .len()
        >= 2));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        processes_with_env(&token),
        Vec::<i32>::new(),
        "left running"
    );
    let group = p.path().join("results/I/g");
    assert!(
        group.join("l0_x_r/SUCCESS").exists(),
        "the finished pair is kept"
    );
    assert!(
        !group.join("l1_x_r").exists(),
        "the interrupted pair is not recorded"
    );
    let hidden: Vec<_> = std::fs::read_dir(&group)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "no half-written pair: {hidden:?}");
    assert_eq!(
        std::fs::read_to_string(group.join("after.log")).unwrap(),
        "after\n"
    );

    let resumed = p.run(&["run", "--resume", "--kill-grace", "200ms"]);
    resumed.expect_code(0);
    assert_eq!(
        runs_log(&p)[2..],
        ["l1", "l2", "l3"],
        "exactly what was missing"
    );
    assert_eq!(p.results_csv().len(), 4);
}

#[test]
fn a_terminal_gets_a_progress_bar() {
    let p = Project::new();
    p.bash("g/local/a", "sleep 0.3")
        .bash("g/local/b", "sleep 0.3");
    p.bash("g/remote/r", "exit 0");
    let bin = assert_cmd::cargo::cargo_bin!("pairbench");
    // `script` gives pairbench a pseudo-terminal and records what it drew.
    let out = std::process::Command::new("script")
        .args([
            "-qefc",
            &format!("'{}' run --tag pb", bin.display()),
            "/dev/null",
        ])
        .current_dir(p.path())
        .output()
        .expect("script(1) from util-linux");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("pairs"), "{screen}");
    assert!(screen.contains("ok, 0 failed, 0 error"), "{screen}");
    assert!(screen.contains("ETA"), "{screen}");
    assert!(p.path().join("results/pb/g/b_x_r/SUCCESS").exists());
}

#[test]
fn a_second_ctrl_c_ends_everything_at_once() {
    let p = Project::new();
    p.bash(
        "g/local/l",
        "touch \"$LOCAL_RESULTS_ROOT_PATH/started\"; sleep 300",
    );
    p.bash("g/remote/r", "sleep 300");
    p.bash(
        "g/after_last_test_local",
        "touch after_started; trap '' HUP TERM INT; sleep 300",
    );
    let token = format!("INT2_TOKEN=x{}", std::process::id());
    let mut child = p
        .cmd()
        .args(["run", "--tag", "I2", "--kill-grace", "5s", "--env", &token])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let group = p.path().join("results/I2/g");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    assert!(common::eventually(Duration::from_secs(60), || group
        .join("started")
        .exists()));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    assert!(common::eventually(Duration::from_secs(60), || group
        .join("after_started")
        .exists()));
    let start = std::time::Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the second Ctrl-C did not wait"
    );
    assert!(
        common::eventually(Duration::from_secs(10), || processes_with_env(&token)
            .is_empty()),
        "left running: {:?}",
        processes_with_env(&token)
    );
}
