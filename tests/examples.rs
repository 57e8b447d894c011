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
