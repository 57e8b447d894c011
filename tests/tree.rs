//! SPEC §3: the result tree: pair folders with their files, hooks' folders, run.json,
//! metrics.csv, `latest`, and pair folders that only ever appear complete.
mod common;
use common::Project;
use std::time::Duration;

#[test]
fn a_pair_folder_holds_both_sides_outputs_and_the_files_they_wrote() {
    let p = Project::new();
    p.bash(
        "g/local/l",
        "wait_for_remote 2>/dev/null; echo out; echo err >&2; echo data > written.txt; exit 0",
    );
    p.bash(
        "g/remote/r",
        "echo rout; echo rerr >&2; echo rdata > served.txt",
    );
    p.run(&["run", "--tag", "first"]).expect_code(0);
    let pair = p.pair("g", "l_x_r");
    assert_eq!(pair.read("local/stdout"), "out\n");
    assert_eq!(pair.read("local/stderr"), "err\n");
    assert_eq!(pair.read("local/exit_code"), "0\n");
    assert_eq!(pair.read("local/written.txt"), "data\n");
    assert_eq!(pair.read("remote/stdout"), "rout\n");
    assert_eq!(pair.read("remote/stderr"), "rerr\n");
    assert_eq!(pair.read("remote/served.txt"), "rdata\n");
    let (marker, text) = pair.marker();
    assert_eq!(marker, "SUCCESS");
    // "<time> <reason>\n", one line.
    let (time, reason) = text.trim_end().split_once(' ').unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
    assert!(reason.starts_with("local exited 0"), "{reason}");
    assert_eq!(text.lines().count(), 1);
    assert_eq!(
        std::fs::read_link(p.path().join("results/latest")).unwrap(),
        std::path::PathBuf::from("first")
    );
}

#[test]
fn run_json_and_metrics_csv_describe_the_run() {
    let p = Project::new();
    p.bash(
        "g/local/l",
        "report_metric rps 1234.5 req/s\nreport_metric errors 0",
    );
    p.bash("g/remote/r", "echo 'cpu_time,0.25,s' > metrics.csv");
    p.run(&["run", "--tag", "m1", "--env", "A=b"])
        .expect_code(0);
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.latest().join("run.json")).unwrap()).unwrap();
    assert_eq!(run["tag"], "m1");
    assert_eq!(run["counts"]["success"], 1);
    assert!(run["ended_at"].is_string());
    assert!(
        run["command_line"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--tag")
    );
    assert_eq!(run["options"]["timeout"], "10m");
    let host = &run["hosts"][0];
    assert!(host["cpus"].as_u64().unwrap() >= 1);
    assert!(host["memory_bytes"].as_u64().unwrap() > 0);
    assert!(host["kernel"].as_str().unwrap().starts_with("Linux"));
    let rows = common::script_metrics(&p.latest().join("metrics.csv"));
    let got: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["side"].clone(),
                r["name"].clone(),
                r["value"].clone(),
                r["unit"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "local".into(),
                "rps".into(),
                "1234.5".into(),
                "req/s".into()
            ),
            ("local".into(), "errors".into(), "0".into(), "".into()),
            (
                "remote".into(),
                "cpu_time".into(),
                "0.25".into(),
                "s".into()
            ),
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r["tag"] == "m1" && r["group"] == "g" && r["pair"] == "l_x_r")
    );
}

#[test]
fn hooks_run_in_order_with_their_own_folders() {
    let p = Project::new();
    p.bash(
        "g/local/l",
        "echo pair >> \"$LOCAL_RESULTS_ROOT_PATH/order\"",
    );
    p.bash("g/remote/r", "exit 0");
    for h in [
        "before_first_test_local",
        "before_first_test_remote",
        "after_last_test_remote",
        "after_last_test_local",
    ] {
        p.bash(
            &format!("g/{h}"),
            &format!("echo {h} >> order; echo \"cwd=$PWD\"; echo \"side=$PAIRBENCH_SIDE\""),
        );
    }
    p.run(&["run"]).expect_code(0);
    let group = p.latest().join("g");
    assert_eq!(
        std::fs::read_to_string(group.join("order")).unwrap(),
        "before_first_test_local\nbefore_first_test_remote\npair\nafter_last_test_remote\nafter_last_test_local\n"
    );
    let out = std::fs::read_to_string(group.join("hooks/before_first_test_remote/stdout")).unwrap();
    let group_abs = std::fs::canonicalize(&group).unwrap();
    assert!(
        out.contains(&format!("cwd={}", group_abs.display())),
        "{out}"
    );
    assert!(out.contains("side=remote"));
    assert_eq!(
        std::fs::read_to_string(group.join("hooks/after_last_test_local/exit_code")).unwrap(),
        "0\n"
    );
}

#[test]
fn a_failing_before_hook_errors_every_pair_of_its_group_and_after_hooks_still_run() {
    let p = Project::new();
    p.bash("g/local/a", "touch ran")
        .bash("g/local/b", "touch ran");
    p.bash("g/remote/r", "exit 0");
    p.bash(
        "g/before_first_test_local",
        "echo 'no database' >&2; exit 1",
    );
    p.bash("g/before_first_test_remote", "touch remote_before_ran");
    p.bash("g/after_last_test_remote", "touch after_remote_ran");
    p.bash("g/after_last_test_local", "touch after_local_ran");
    p.bash("other/local/l", "exit 0")
        .bash("other/remote/r", "exit 0");
    p.run(&["run"]).expect_code(2);
    for pair in ["a_x_r", "b_x_r"] {
        let d = p.pair("g", pair);
        assert_eq!(d.status(), "ERROR");
        assert!(
            d.reason().contains("before_first_test_local exited 1"),
            "{}",
            d.reason()
        );
        assert!(!d.path().join("local/ran").exists());
    }
    let g = p.latest().join("g");
    assert!(!g.join("remote_before_ran").exists());
    assert!(g.join("after_remote_ran").exists());
    assert!(g.join("after_local_ran").exists());
    assert_eq!(
        std::fs::read_to_string(g.join("hooks/before_first_test_local/stderr")).unwrap(),
        "no database\n"
    );
    assert_eq!(
        p.pair("other", "l_x_r").status(),
        "SUCCESS",
        "other groups go on"
    );
}

#[test]
fn pair_folders_appear_only_complete() {
    let p = Project::new();
    p.bash(
        "g/local/a",
        "echo partial > half; sleep 0.5; echo done >> half",
    );
    p.bash("g/local/b", "sleep 0.5");
    p.bash("g/remote/r", "sleep 300");
    let mut child = p
        .cmd()
        .args(["run", "--tag", "watch", "--kill-grace", "100ms"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let group = p.path().join("results/watch/g");
    let mut looks = 0;
    let mut seen_partial = false;
    loop {
        if let Ok(rd) = std::fs::read_dir(&group) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    seen_partial |= name.ends_with(".partial");
                    continue;
                }
                if name == "hooks" {
                    continue;
                }
                let has_marker = ["SUCCESS", "FAILED", "ERROR"]
                    .iter()
                    .any(|m| e.path().join(m).exists());
                assert!(has_marker, "{name} is visible without a marker");
                looks += 1;
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(seen_partial, "the pairs were staged under a hidden name");
    assert!(looks > 0);
    assert_eq!(p.pair("g", "a_x_r").read("local/half"), "partial\ndone\n");
}

#[test]
fn a_second_run_gets_its_own_tag_folder_and_latest_moves() {
    let p = Project::new();
    p.bash("g/local/l", "exit 0").bash("g/remote/r", "exit 0");
    p.run(&["run", "--tag", "one"]).expect_code(0);
    p.run(&["run", "--tag", "two"]).expect_code(0);
    assert!(p.path().join("results/one/g/l_x_r/SUCCESS").exists());
    assert!(p.path().join("results/two/g/l_x_r/SUCCESS").exists());
    assert!(p.latest().ends_with("two"));
}
