//! The example groups shipped in groups/ run green on a machine with bash and python3,
//! as `cargo run --release -- run` does.
mod common;
use common::read_csv;

#[test]
fn the_example_groups_run_green_and_report_metrics() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin!("pairbench"))
        .args(["run", "-g"])
        .arg(repo.join("groups"))
        .arg("-o")
        .arg(out.path())
        .args(["--tag", "examples", "-j", "2"])
        .output()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    let rows = read_csv(&out.path().join("examples/results.csv"));
    assert!(rows.len() >= 8);
    assert!(rows.iter().all(|r| r["status"] == "SUCCESS"));
    let metrics = read_csv(&out.path().join("examples/metrics.csv"));
    let names: Vec<&str> = metrics.iter().map(|m| m["name"].as_str()).collect();
    for want in ["latency_mean", "latency_p99", "throughput"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
}

#[test]
fn kv_store_runs_green_with_four_runs_at_once_and_four_repetitions() {
    // Concurrent runs of one pair each listen on their own PAIRBENCH_PORT.
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(assert_cmd::cargo::cargo_bin!("pairbench"))
        .args(["run", "kv-store", "-g"])
        .arg(repo.join("groups"))
        .arg("-o")
        .arg(out.path())
        .args([
            "--tag",
            "kv",
            "-j",
            "4",
            "--repeat",
            "4",
            "--progress",
            "never",
        ])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let rows = read_csv(&out.path().join("kv/results.csv"));
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r["status"] == "SUCCESS"), "{rows:?}");
}

/// A TCP port free on this machine right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_regression_example_matches_its_references_and_a_changed_answer_fails() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // A copy, so a run never writes into the repository (and can be changed).
    let work = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(repo.join("examples/regress"))
        .arg(work.path().join("regress"))
        .status()
        .unwrap();
    assert!(status.success());
    let groups = work.path().join("regress");
    let run = |tag: &str| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin!("pairbench"))
            .args(["run", "-g"])
            .arg(&groups)
            .arg("-o")
            .arg(work.path().join("results"))
            .args(["--tag", tag, "--env", &format!("KV_PORT={}", free_port())])
            // Under CI a pair without a reference fails: every pair has one.
            .env("CI", "true")
            .output()
            .unwrap()
    };
    let out = run("as-shipped");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = work.path().join("results/as-shipped");
    for pair in ["set_get_x_kv_server", "counter_x_kv_server"] {
        let rec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(tag.join("kv").join(pair).join("pair.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(rec["check"]["result"], "matched", "{pair}: {rec}");
    }
    // The server's log has a timestamp, its pid and its port: normalised.
    let log = std::fs::read_to_string(tag.join("kv/counter_x_kv_server/remote/stdout")).unwrap();
    assert!(log.contains(" kv-server["), "{log}");
    assert!(
        !log.contains("[TIME]"),
        "the output itself is kept as written: {log}"
    );

    // A server that answers differently fails with the difference.
    let server = groups.join("kv/remote/kv_server");
    let text = std::fs::read_to_string(&server).unwrap();
    std::fs::write(&server, text.replace("return \"OK\"", "return \"ok\"")).unwrap();
    let out = run("changed");
    assert_eq!(out.status.code(), Some(1));
    let pair = work.path().join("results/changed/kv/set_get_x_kv_server");
    let diff = std::fs::read_to_string(pair.join("check.diff")).unwrap();
    assert!(diff.contains("-OK\n+ok\n"), "{diff}");
    assert!(
        diff.contains(
            "-[TIME] kv-server[[PID]]: SET a 1 -> OK\n-[TIME] kv-server[[PID]]: SET b two -> OK\n+[TIME] kv-server[[PID]]: SET a 1 -> ok\n"
        ),
        "{diff}"
    );
}
