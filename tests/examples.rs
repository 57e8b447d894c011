//! The example groups shipped in groups/ run green on a machine with bash and python3,
//! as `cargo run --release -- run` does.
mod common;
use common::read_csv;

/// `pairbench run -g <repo>/<groups> -o <fresh folder> --tag TAG ARGS`, which must exit 0;
/// the folder it wrote into.
fn run_green(groups: &str, tag: &str, args: &[&str]) -> tempfile::TempDir {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(assert_cmd::cargo::cargo_bin!("pairbench"))
        .args(["run", "-g"])
        .arg(repo.join(groups))
        .arg("-o")
        .arg(out.path())
        .args(["--tag", tag, "--progress", "never"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

#[test]
fn the_example_groups_run_green_and_report_metrics() {
    let out = run_green("groups", "examples", &["-j", "2"]);
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
    let out = run_green("groups", "kv", &["kv-store", "-j", "4", "--repeat", "4"]);
    let rows = read_csv(&out.path().join("kv/results.csv"));
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r["status"] == "SUCCESS"), "{rows:?}");
}

/// The tools are all installed here; when one is missing the test is skipped, loudly, or
/// fails under CI (which installs them: .ci/run).
fn have_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !std::process::Command::new("sh")
                .args(["-c", &format!("command -v {t} || test -x /usr/sbin/{t}")])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install {missing:?} (.ci/run)"
    );
    eprintln!(
        "SKIPPED: {missing:?} not installed (apt-get install {})",
        missing.join(" ")
    );
    false
}

/// `pairbench run -g <groups> -j 4 --repeat 3 ARGS` into a fresh folder: all SUCCESS,
/// every metric of `metrics` reported 3 times per pair that reports it, and a plot of
/// each in plots/.
fn runs_green_with_plots(groups: &str, args: &[&str], runs: usize, metrics: &[&str]) {
    let mut all = vec!["-j", "4", "--repeat", "3"];
    all.extend_from_slice(args);
    let out = run_green(groups, "t", &all);
    let rows = read_csv(&out.path().join("t/results.csv"));
    assert_eq!(rows.len(), runs, "{rows:?}");
    assert!(rows.iter().all(|r| r["status"] == "SUCCESS"), "{rows:?}");
    let rows = read_csv(&out.path().join("t/metrics.csv"));
    let plots: Vec<String> = std::fs::read_dir(out.path().join("t/plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for m in metrics {
        let values: Vec<f64> = rows
            .iter()
            .filter(|r| r["name"] == *m)
            .map(|r| r["value"].parse().unwrap())
            .collect();
        assert!(
            values.len() >= 3 && values.len().is_multiple_of(3),
            "{m}: {values:?}"
        );
        assert!(
            values.iter().all(|v| v.is_finite() && *v >= 0.0),
            "{m}: {values:?}"
        );
        let png = plots
            .iter()
            .any(|p| p.contains(&format!(".metric.{m}-")) && p.ends_with(".png"));
        assert!(png, "a plot of {m} in {plots:?}");
    }
}

#[test]
fn the_iperf3_example_runs_green_four_at_a_time_with_metrics_and_plots() {
    if !have_tools(&["iperf3", "jq"]) {
        return;
    }
    runs_green_with_plots(
        "examples/iperf3",
        &["--env", "IPERF_TIME=2"],
        6,
        &["tcp_throughput", "udp_loss", "udp_jitter"],
    );
}

#[test]
fn the_nginx_example_runs_green_four_at_a_time_with_metrics_and_plots() {
    if !have_tools(&["nginx", "curl", "wrk"]) {
        return;
    }
    runs_green_with_plots(
        "examples/nginx",
        &["--env", "WRK_TIME=2s"],
        6,
        &[
            "requests",
            "requests_per_s",
            "mean_download",
            "cpu_us_per_requests",
        ],
    );
}

#[test]
fn the_kv_store_group_runs_green_four_at_a_time_with_metrics_and_plots() {
    runs_green_with_plots(
        "groups",
        &["kv-store"],
        12,
        &[
            "latency_mean",
            "latency_p99",
            "throughput",
            "request_rate",
            "cpu_us_per_requests",
        ],
    );
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
