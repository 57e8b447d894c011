//! SPEC §4: the environment scripts get, and the helpers, from bash, Python and Perl.
mod common;
use common::Project;
use std::collections::HashMap;

fn env_file(text: &str) -> HashMap<String, String> {
    text.split('\0')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn both_sides_get_the_pairbench_and_mirage_bench_environment() {
    let p = Project::new();
    std::fs::write(
        p.path().join("pairbench.toml"),
        "timeout = \"30s\"\n[env]\nSERVER_PORT = \"5000\"\nFROM_FILE = \"file\"\n",
    )
    .unwrap();
    p.bash(
        "web/local/client",
        "wait_for_remote; env -0 > env; pwd -P > pwd",
    );
    p.bash("web/remote/server", "env -0 > env; pwd -P > pwd");
    p.run(&[
        "run",
        "--tag",
        "envtest",
        "--env",
        "FROM_FILE=flag",
        "--env",
        "EXTRA=x y",
    ])
    .expect_code(0);
    let pair = p.pair("web", "client_x_server");
    let root = std::fs::canonicalize(p.path()).unwrap();
    let groups = root.join("groups");
    let results = root.join("results/envtest/web");
    for side in ["local", "remote"] {
        let env = env_file(&pair.read(&format!("{side}/env")));
        let cwd = pair.read(&format!("{side}/pwd")).trim().to_string();
        let want = [
            ("PAIRBENCH_TAG", "envtest".to_string()),
            ("PAIRBENCH_GROUP", "web".into()),
            ("PAIRBENCH_SIDE", side.into()),
            ("PAIRBENCH_RESULT_DIR", cwd.clone()),
            (
                "PAIRBENCH_GROUP_DIR",
                groups.join("web").display().to_string(),
            ),
            ("PAIRBENCH_REMOTE_HOST", "127.0.0.1".into()),
            ("PAIRBENCH_LOCAL_HOST", "127.0.0.1".into()),
            ("PAIRBENCH_PAIR", "client_x_server".into()),
            ("PAIRBENCH_LOCAL_TEST", "client".into()),
            ("PAIRBENCH_REMOTE_TEST", "server".into()),
            ("TEST", "web".into()),
            ("RESULTS_TAG", "envtest".into()),
            ("REMOTE_HOST", "127.0.0.1".into()),
            ("LOCAL_ROOT_PATH", groups.display().to_string()),
            ("REMOTE_ROOT_PATH", groups.display().to_string()),
            (
                "LOCAL_TEST_ROOT_PATH",
                groups.join("web").display().to_string(),
            ),
            (
                "REMOTE_TEST_ROOT_PATH",
                groups.join("web").display().to_string(),
            ),
            ("LOCAL_RESULTS_ROOT_PATH", results.display().to_string()),
            ("REMOTE_RESULTS_ROOT_PATH", results.display().to_string()),
            ("SERVER_PORT", "5000".into()),
            ("FROM_FILE", "flag".into()),
            ("EXTRA", "x y".into()),
        ];
        for (k, v) in want {
            assert_eq!(env.get(k), Some(&v), "{side}: {k}");
        }
        assert!(env.contains_key("REMOTE_USER") && env.contains_key("REMOTE_PORT"));
        assert!(cwd.ends_with(side), "{side} runs in its own folder: {cwd}");
    }
}

#[test]
fn helpers_are_executables_that_python_and_perl_can_call() {
    let p = Project::new();
    p.script(
        "g/local/py",
        "#!/usr/bin/env python3\nimport subprocess\n\
         subprocess.run(['report_metric', 'latency', '1.5', 'ms'], check=True)\n\
         subprocess.run(['wait_for_remote'], check=True)\n",
    );
    p.script(
        "g/local/pl",
        "#!/usr/bin/env perl\nsystem('report_metric', 'throughput', '42', 'MB/s') == 0 or exit 1;\n\
         system('kill_remote') == 0 or exit 1;\n",
    );
    p.bash("g/remote/r", "sleep 0.2");
    p.run(&["run"]).expect_code(0);
    let rows = common::script_metrics(&p.latest().join("metrics.csv"));
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str()).collect();
    assert!(
        names.contains(&"latency") && names.contains(&"throughput"),
        "{names:?}"
    );
    assert_eq!(p.pair("g", "py_x_r").status(), "SUCCESS");
    let pl = p
        .results_csv()
        .into_iter()
        .find(|r| r["pair"] == "pl_x_r")
        .unwrap();
    assert_eq!(pl["status"], "SUCCESS");
}

#[test]
fn wait_for_remote_blocks_until_the_remote_exits_and_times_out_with_124() {
    let p = Project::new();
    p.bash(
        "g/local/waits",
        "wait_for_remote; echo $? > rc; cat \"$REMOTE_RESULTS_PATH/done\" > seen",
    );
    p.bash(
        "g/local/gives_up",
        "wait_for_remote --timeout 300ms; echo $? > rc",
    );
    p.bash("g/remote/slow", "sleep 0.5; echo yes > done; exec sleep 2");
    p.run(&["run", "--kill-grace", "100ms"]).expect_code(0);
    // `slow` ends after 2.5 s; `waits` saw the file written before that.
    let waits = p.pair("g", "waits_x_slow");
    assert_eq!(waits.read("local/rc"), "0\n");
    assert_eq!(waits.read("local/seen"), "yes\n");
    assert_eq!(p.pair("g", "gives_up_x_slow").read("local/rc"), "124\n");
    assert!(
        waits
            .read("local/stderr")
            .contains("wait_for_remote: the remote test has exited")
    );
}

#[test]
fn kill_remote_ends_the_remote_test_and_returns_when_it_is_gone() {
    let p = Project::new();
    p.bash(
        "g/local/l",
        "for i in $(seq 100); do [ -s \"$REMOTE_RESULTS_PATH/pid\" ] && break; sleep 0.05; done\n\
         kill_remote; echo $? > rc\n\
         pid=$(cat \"$REMOTE_RESULTS_PATH/pid\")\n\
         if kill -0 \"$pid\" 2>/dev/null; then echo alive > state; else echo gone > state; fi",
    );
    p.bash(
        "g/remote/r",
        "trap '' HUP; echo $$ > pid; sleep 300 & wait; sleep 300",
    );
    p.run(&["run", "--kill-grace", "200ms"]).expect_code(0);
    let pair = p.pair("g", "l_x_r");
    assert_eq!(pair.read("local/rc"), "0\n");
    assert_eq!(pair.read("local/state"), "gone\n");
    let row = &p.results_csv()[0];
    assert_eq!(row["remote_ended"], "terminated");
    assert_eq!(row["status"], "SUCCESS");
}

#[test]
fn report_metric_refuses_a_value_that_is_not_a_number() {
    let p = Project::new();
    p.bash(
        "g/local/l",
        "report_metric speed fast; echo $? > rc; report_metric speed 3 m/s",
    );
    p.bash("g/remote/r", "exit 0");
    p.run(&["run"]).expect_code(0);
    let pair = p.pair("g", "l_x_r");
    assert_eq!(pair.read("local/rc"), "2\n");
    assert_eq!(pair.read("local/metrics.csv"), "speed,3,m/s\n");
    assert!(pair.read("local/stderr").contains("not a number"));
}

#[test]
fn report_metric_takes_negative_values() {
    let p = Project::new();
    p.bash(
        "g/local/l",
        "report_metric delta -5; echo $? > rc; report_metric offset -1.5e3 us; echo $? >> rc",
    );
    p.bash("g/remote/r", "exit 0");
    p.run(&["run"]).expect_code(0);
    let pair = p.pair("g", "l_x_r");
    assert_eq!(
        pair.read("local/rc"),
        "0\n0\n",
        "{}",
        pair.read("local/stderr")
    );
    assert_eq!(
        pair.read("local/metrics.csv"),
        "delta,-5\noffset,-1.5e3,us\n"
    );
    let rows = common::script_metrics(&p.latest().join("metrics.csv"));
    let values: Vec<&str> = rows.iter().map(|r| r["value"].as_str()).collect();
    assert_eq!(values, ["-5", "-1500"]);
}

#[test]
fn the_default_helper_timeout_is_the_wait_timeout_option() {
    let p = Project::new();
    p.bash("g/local/l", "wait_for_remote; echo $? > rc");
    p.bash("g/remote/r", "sleep 300");
    p.run(&["run", "--wait-timeout", "300ms", "--kill-grace", "100ms"])
        .expect_code(0);
    assert_eq!(p.pair("g", "l_x_r").read("local/rc"), "124\n");
}
