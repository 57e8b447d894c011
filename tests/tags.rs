//! A tag's life: its id claimed atomically, `latest` from the moment a run starts,
//! `--resume` after a kill -9, the run plan kept in run.json (a different plan is refused,
//! never deleting results), every invocation kept, leftovers of a crashed run removed.
mod common;
use common::{Project, processes_with_env, read_csv};
use std::time::Duration;

fn manifest(p: &Project, tag: &str) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(p.path().join("results").join(tag).join("run.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn runs_started_in_the_same_second_get_their_own_tags() {
    let p = Project::new();
    p.bash("g/local/l", "sleep 0.5");
    p.bash("g/remote/r", "exit 0");
    let children: Vec<_> = (0..4)
        .map(|_| {
            p.cmd()
                .args(["run", "--progress", "never"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tags: Vec<_> = std::fs::read_dir(p.path().join("results"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .collect();
    assert_eq!(tags.len(), 4, "{tags:?}");
    for t in tags {
        assert_eq!(read_csv(&t.path().join("results.csv")).len(), 1);
    }
}

#[test]
fn resume_after_kill_9_continues_the_killed_run_not_the_previous_one() {
    let p = Project::new();
    let token = format!("KILL9_TOKEN=x{}", std::process::id());
    for i in 0..3 {
        p.bash(&format!("g/local/l{i}"), "sleep 1");
    }
    p.bash("g/remote/r", "exit 0");
    p.run(&["run", "--tag", "done", "--progress", "never"])
        .expect_code(0);
    let mut child = p
        .cmd()
        .args([
            "run",
            "--tag",
            "killed",
            "--progress",
            "never",
            "--env",
            &token,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = p.path().join("results/killed/g/l0_x_r/SUCCESS");
    assert!(common::eventually(Duration::from_secs(60), || first.exists()));
    assert_eq!(
        std::fs::read_link(p.path().join("results/latest")).unwrap(),
        std::path::PathBuf::from("killed"),
        "latest points at the run while it runs"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // Its orphaned scripts end on their own (sleep 1).
    assert!(common::eventually(Duration::from_secs(30), || {
        processes_with_env(&token).is_empty()
    }));
    let r = p.run(&["run", "--resume", "--progress", "never"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("results: results/killed"),
        "{}",
        r.stdout()
    );
    let rows = read_csv(&p.path().join("results/killed/results.csv"));
    assert_eq!(rows.len(), 3, "{rows:?}");
    let hidden: Vec<_> = std::fs::read_dir(p.path().join("results/killed/g"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "leftovers removed: {hidden:?}");
    let m = manifest(&p, "killed");
    let inv = m["invocations"].as_array().unwrap();
    assert_eq!(inv.len(), 2);
    assert!(inv[0]["ended_at"].is_null(), "the killed run never ended");
    assert!(
        inv[0]["command_line"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--tag")
    );
    assert!(
        inv[1]["command_line"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--resume")
    );
    assert_eq!(
        read_csv(&p.path().join("results/done/results.csv")).len(),
        3
    );
}

#[test]
fn a_later_run_with_another_plan_is_refused_and_deletes_nothing() {
    let p = Project::new();
    p.bash("g/local/l", "exit 0");
    p.bash("g/remote/r", "exit 0");
    p.run(&["run", "--tag", "T", "--repeat", "3", "--progress", "never"])
        .expect_code(0);
    let reps = |p: &Project| {
        std::fs::read_dir(p.path().join("results/T/g/l_x_r"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("rep-"))
            .count()
    };
    assert_eq!(reps(&p), 3);
    for args in [
        vec!["run", "--tag", "T"],
        vec!["run", "--tag", "T", "--repeat", "2"],
        vec!["run", "--resume", "--param", "N=1"],
    ] {
        let r = p.run(&[args.as_slice(), &["--progress", "never"]].concat());
        r.expect_code(2);
        let err = r.stderr();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("tag 'T' was run with"), "{err}");
        assert!(err.contains("-B") && err.contains("new --tag"), "{err}");
        assert_eq!(reps(&p), 3, "nothing deleted by {args:?}");
    }
    // --resume reuses the plan: nothing is missing, nothing runs.
    let r = p.run(&["run", "--resume", "--progress", "never"]);
    r.expect_code(0);
    assert!(r.stdout().contains("3 runs: 3 SUCCESS"), "{}", r.stdout());
    assert_eq!(reps(&p), 3);
    // -B redoes the tag with the new plan.
    p.run(&["run", "--tag", "T", "-B", "--progress", "never"])
        .expect_code(0);
    assert_eq!(reps(&p), 0);
    assert_eq!(read_csv(&p.path().join("results/T/results.csv")).len(), 1);
    // The refused runs are not invocations of the tag; the three that ran are.
    assert_eq!(
        manifest(&p, "T")["invocations"].as_array().unwrap().len(),
        3
    );
}
