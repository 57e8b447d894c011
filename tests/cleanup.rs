//! SPEC §2: nothing survives a pair or a hook: daemons started with `setsid`, `nohup`,
//! `&` and double forks, ignoring SIGHUP and SIGTERM, are gone when the pair is recorded.
mod common;
use common::{Project, processes_with_env};

/// A script body that leaves stubborn processes behind in every way a script can.
const STUBBORN: &str = r#"
trap '' HUP TERM
setsid bash -c 'trap "" HUP TERM; sleep 300' </dev/null >/dev/null 2>&1 &
nohup sleep 301 </dev/null >/dev/null 2>&1 &
(trap '' HUP TERM; exec sleep 302) &
bash -c '(trap "" HUP TERM; setsid sleep 303 </dev/null >/dev/null 2>&1 &) &'
echo started
"#;

fn token() -> String {
    format!(
        "CLEANUP_TOKEN=t{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

#[test]
fn stubborn_remote_daemons_are_gone_when_the_pair_is_recorded() {
    let p = Project::new();
    // The local test proves the remote daemons exist while the pair runs.
    p.bash(
        "g/local/l",
        "for i in $(seq 100); do [ -s \"$REMOTE_RESULTS_PATH/stdout\" ] && break; sleep 0.05; done\n\
         sleep 0.3\n\
         grep -l \"$CLEANUP_TOKEN\" /proc/[0-9]*/environ 2>/dev/null | wc -l > seen",
    );
    p.bash("g/remote/r", &format!("{STUBBORN}\nsleep 300"));
    let tok = token();
    p.run(&["run", "--kill-grace", "200ms", "--env", &tok])
        .expect_code(0);
    let seen: usize = p
        .pair("g", "l_x_r")
        .read("local/seen")
        .trim()
        .parse()
        .unwrap();
    assert!(
        seen >= 5,
        "the daemons should have been running during the pair ({seen})"
    );
    assert_eq!(processes_with_env(&tok), Vec::<i32>::new(), "left behind");
    assert_eq!(p.pair("g", "l_x_r").status(), "SUCCESS");
}

#[test]
fn stubborn_local_daemons_and_a_remote_that_exited_leave_nothing_behind() {
    let p = Project::new();
    p.bash("g/local/l", STUBBORN);
    p.bash("g/remote/r", &format!("{STUBBORN}\nexit 0"));
    let tok = token();
    p.run(&["run", "--kill-grace", "200ms", "--env", &tok])
        .expect_code(0);
    assert_eq!(processes_with_env(&tok), Vec::<i32>::new(), "left behind");
}

#[test]
fn hooks_leave_nothing_behind_either() {
    let p = Project::new();
    p.bash("g/local/l", "exit 0").bash("g/remote/r", "exit 0");
    for h in [
        "before_first_test_local",
        "before_first_test_remote",
        "after_last_test_remote",
        "after_last_test_local",
    ] {
        p.bash(&format!("g/{h}"), STUBBORN);
    }
    let tok = token();
    p.run(&["run", "--kill-grace", "200ms", "--env", &tok])
        .expect_code(0);
    assert_eq!(processes_with_env(&tok), Vec::<i32>::new(), "left behind");
}

#[test]
fn a_hook_that_hangs_is_ended_at_the_hook_timeout_and_errors_the_group() {
    let p = Project::new();
    p.bash("g/local/l", "echo ran > ran")
        .bash("g/remote/r", "exit 0");
    p.bash("g/before_first_test_remote", "trap '' HUP TERM; sleep 300");
    p.bash("g/after_last_test_local", "echo after > after.txt");
    let tok = token();
    p.run(&[
        "run",
        "--hook-timeout",
        "1s",
        "--kill-grace",
        "200ms",
        "--env",
        &tok,
    ])
    .expect_code(2);
    let pair = p.pair("g", "l_x_r");
    assert_eq!(pair.status(), "ERROR");
    assert!(
        pair.reason()
            .contains("before_first_test_remote timed out after 1s"),
        "{}",
        pair.reason()
    );
    assert!(
        !pair.path().join("local/ran").exists(),
        "the pair must not run"
    );
    assert!(
        p.latest().join("g/after.txt").exists(),
        "after-hooks always run"
    );
    assert_eq!(processes_with_env(&tok), Vec::<i32>::new(), "left behind");
}

#[test]
fn the_kill_sequence_escalates_from_sighup_to_sigterm_to_sigkill() {
    let p = Project::new();
    p.bash("g/local/l", "sleep 0.2");
    // Logs each signal it receives and ignores it.
    p.bash(
        "g/remote/r",
        "trap 'echo HUP >> signals' HUP\ntrap 'echo TERM >> signals' TERM\n\
         echo ready\nwhile true; do sleep 0.05; done",
    );
    p.run(&["run", "--kill-grace", "300ms"]).expect_code(0);
    let pair = p.pair("g", "l_x_r");
    assert_eq!(pair.read("remote/signals"), "HUP\nTERM\n");
    assert_eq!(pair.read("remote/exit_code").trim(), "signal SIGKILL");
}
