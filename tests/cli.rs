//! The command line: bad input gets one clear line and exit 2, never a panic; `list`,
//! `new`, `-v` and the closing summary.
mod common;
use common::Project;

fn one_clear_line(p: &Project, args: &[&str], needle: &str) {
    let run = p.run(args);
    run.expect_code(2);
    let err = run.stderr();
    assert!(err.contains(needle), "{args:?}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: one line: {err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn bad_input_gets_one_clear_line_and_exit_2() {
    let p = Project::new();
    one_clear_line(&p, &["run"], "groups folder 'groups' does not exist");
    one_clear_line(&p, &["list"], "does not exist");
    p.bash("g/local/l", "exit 0").bash("g/remote/r", "exit 0");
    one_clear_line(&p, &["run", "nope"], "no group named 'nope'");
    one_clear_line(
        &p,
        &["run", "--timeout", "soon"],
        "bad duration 'soon' for --timeout",
    );
    one_clear_line(&p, &["run", "--kill-grace=-1s"], "bad duration");
    one_clear_line(&p, &["run", "--env", "NOEQUALS"], "bad --env 'NOEQUALS'");
    one_clear_line(&p, &["run", "--tag", "../escape"], "bad tag");
    one_clear_line(&p, &["run", "--shard", "3/2"], "bad --shard");
    one_clear_line(&p, &["run", "-g", "missing-dir"], "does not exist");
    one_clear_line(
        &p,
        &["run", "--config", "nope.toml"],
        "cannot read config file",
    );
    std::fs::write(p.path().join("pairbench.toml"), "timeout = [").unwrap();
    one_clear_line(&p, &["run"], "pairbench.toml");
    std::fs::write(p.path().join("pairbench.toml"), "timout = \"1s\"").unwrap();
    one_clear_line(&p, &["run"], "unknown field");
    std::fs::remove_file(p.path().join("pairbench.toml")).unwrap();
    one_clear_line(&p, &["report", "nosuchtag"], "no run tagged 'nosuchtag'");
    assert!(!p.path().join("results/../escape").exists());
}

#[test]
fn an_unknown_option_is_a_usage_error() {
    let p = Project::new();
    let run = p.run(&["run", "--no-such-flag"]);
    run.expect_code(2);
    assert!(run.stderr().contains("--no-such-flag"));
}

#[test]
fn scripts_the_kernel_cannot_execute_are_error_pairs_and_the_run_goes_on() {
    let p = Project::new();
    p.script("g/local/no_shebang", "echo hi\n");
    p.script(
        "g/local/no_interpreter",
        "#!/nonexistent/python9\nprint(1)\n",
    );
    p.bash("g/local/fine", "exit 0");
    p.bash("g/remote/r", "exit 0");
    p.run(&["run"]).expect_code(2);
    let no_shebang = p.pair("g", "no_shebang_x_r");
    assert_eq!(no_shebang.status(), "ERROR");
    assert!(
        no_shebang.reason().contains("exec format error"),
        "{}",
        no_shebang.reason()
    );
    let no_interp = p.pair("g", "no_interpreter_x_r");
    assert_eq!(no_interp.status(), "ERROR");
    assert!(
        no_interp
            .reason()
            .contains("interpreter '/nonexistent/python9' not found"),
        "{}",
        no_interp.reason()
    );
    assert_eq!(p.pair("g", "fine_x_r").status(), "SUCCESS");
}

#[test]
fn a_remote_the_kernel_cannot_execute_is_an_error_too() {
    let p = Project::new();
    p.bash("g/local/l", "exit 0");
    p.script("g/remote/r", "#!/nonexistent/sh\n");
    p.run(&["run"]).expect_code(2);
    let pair = p.pair("g", "l_x_r");
    assert_eq!(pair.status(), "ERROR");
    assert!(
        pair.reason().contains("remote test could not start"),
        "{}",
        pair.reason()
    );
}

#[test]
fn list_shows_groups_enabled_and_disabled_tests_and_the_matrix() {
    let p = Project::new();
    p.bash("web/local/curl", "exit 0")
        .bash("web/local/wrk", "exit 0");
    p.file("web/local/common.sh", "# a helper, not a test");
    p.file("web/local/.hidden", "");
    p.bash("web/remote/nginx", "exit 0");
    p.bash("web/before_first_test_local", "exit 0");
    let run = p.run(&["list"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("web  (2 pairs)"), "{out}");
    assert!(
        out.contains("common.sh  [disabled: not executable"),
        "{out}"
    );
    assert!(!out.contains(".hidden"));
    assert!(out.contains("hooks: before_first_test_local"));
    assert!(out.contains("curl") && out.contains("wrk") && out.contains("nginx"));
    assert!(out.contains("1 groups, 2 pairs"));
}

#[test]
fn new_makes_a_group_that_runs_green_and_refuses_to_overwrite() {
    let p = Project::new();
    p.run(&["new", "echo"]).expect_code(0);
    p.run(&["run", "echo"]).expect_code(0);
    assert_eq!(
        p.pair("echo", "echo_client_x_echo_server").status(),
        "SUCCESS"
    );
    let metrics = std::fs::read_to_string(p.latest().join("metrics.csv")).unwrap();
    assert!(metrics.contains("round_trip"), "{metrics}");
    let again = p.run(&["new", "echo"]);
    again.expect_code(2);
    assert!(again.stderr().contains("already exists"));
    p.run(&["new", "../out"]).expect_code(2);
}

#[test]
fn verbose_streams_both_sides_with_prefixes_and_the_summary_says_where_results_are() {
    let p = Project::new();
    p.bash("g/local/l", "wait_for_remote 2>/dev/null; echo from-local");
    p.bash("g/remote/r", "echo from-remote");
    let run = p.run(&["run", "-v", "--tag", "vv"]);
    run.expect_code(0);
    let out = run.stdout();
    let has = |side: &str, text: &str| {
        out.lines().any(|l| {
            l.starts_with(side)
                && l.ends_with(text)
                && l.contains(" | ")
                && l[side.len()..].trim_start().as_bytes()[2] == b':'
        })
    };
    assert!(has("local  ", "from-local"), "{out}");
    assert!(has("remote ", "from-remote"), "{out}");
    assert!(
        out.contains("1 pairs: 1 SUCCESS, 0 FAILED, 0 ERROR"),
        "{out}"
    );
    assert!(out.contains("results: results/vv"), "{out}");
}

#[test]
fn without_a_terminal_each_finished_pair_gets_a_plain_line() {
    let p = Project::new();
    p.bash("g/local/a", "exit 0").bash("g/local/b", "exit 1");
    p.bash("g/remote/r", "exit 0");
    let run = p.run(&["run"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(out.contains("[1/2] SUCCESS g/a_x_r"), "{out}");
    assert!(out.contains("[2/2] FAILED  g/b_x_r"), "{out}");
    assert!(out.contains("local exited 1"));
}
