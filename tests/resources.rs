//! What each side costs (docs/resources.md): every pair's both sides get pairbench's own
//! resource metrics of their whole process tree — a detached (setsid) grandchild
//! included — in metrics.csv (source `pairbench`), pair.json and stats.csv, on this
//! machine and on a remote host over a real sshd; run.json says how they were measured.

mod common;
#[path = "common/sshd.rs"]
mod sshd;

use std::collections::HashMap;

use common::{Project, read_csv};
use sshd::Sshd;

/// Burns 1.0 s of user CPU in a grandchild that detached (setsid, double fork), and
/// waits for it.
const BURN: &str = "( setsid perl -e 'while ((times)[0] < 1.0) { for (1..200000) {} } open(F, \">burnt\"); close F' & )\n\
while [ ! -e burnt ]; do sleep 0.05; done";

/// Allocates and touches 200 MiB in a grandchild, then waits for it.
const TOUCH: &str = "( /usr/bin/python3 -c 'b = b\"\\x01\" * (200 << 20); open(\"touched\", \"w\")' & )\n\
while [ ! -e touched ]; do sleep 0.05; done";

/// The value of pairbench's own metric `name` of `side`, from the run's metrics.csv.
fn own(rows: &[HashMap<String, String>], side: &str, name: &str) -> f64 {
    let found: Vec<&HashMap<String, String>> = rows
        .iter()
        .filter(|r| r["side"] == side && r["name"] == name && r["source"] == "pairbench")
        .collect();
    assert_eq!(found.len(), 1, "one {side} {name} in {rows:?}");
    found[0]["value"].parse().unwrap()
}

fn check_burn_and_touch(p: &Project, remote: bool) {
    let rows = read_csv(&p.latest().join("metrics.csv"));
    for side in ["local", "remote"] {
        let cpu = own(&rows, side, "cpu_user_s");
        assert!(
            (0.8..=1.5).contains(&cpu),
            "{side} (remote over ssh: {remote}) cpu_user_s {cpu}: {rows:?}"
        );
        for name in [
            "cpu_sys_s",
            "max_rss_kib",
            "ctx_switches_voluntary",
            "ctx_switches_involuntary",
            "major_faults",
            "io_read_kib",
            "io_write_kib",
        ] {
            let v = own(&rows, side, name);
            assert!(v >= 0.0, "{side} {name} {v}");
        }
    }
    let peak = own(&rows, "local", "max_rss_kib") / 1024.0;
    assert!((190.0..=260.0).contains(&peak), "local peak {peak} MiB");
    let peak = own(&rows, "remote", "max_rss_kib") / 1024.0;
    assert!((190.0..=260.0).contains(&peak), "remote peak {peak} MiB");
    // pair.json holds them, stats.csv summarises them like any metric.
    let pair = p.pair("g", "client_x_server");
    let rec: serde_json::Value = serde_json::from_str(&pair.read("pair.json")).unwrap();
    assert!(
        rec["resources"]["remote"]["cpu_user_s"].as_f64().is_some(),
        "{rec}"
    );
    let stats = read_csv(&p.latest().join("stats.csv"));
    assert!(
        stats
            .iter()
            .any(|s| s["metric"] == "cpu_user_s" && s["side"] == "local" && s["n"] == "1"),
        "{stats:?}"
    );
    // run.json says how each side was measured.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.latest().join("run.json")).unwrap())
            .unwrap();
    // Under cgroup2 a side's CPU is its cgroup's cpu.stat; under the sweep, rusage.
    let cpu = if manifest["containment"]["method"] == "cgroup2" {
        "cgroup2 cpu.stat"
    } else {
        "rusage"
    };
    for side in ["local", "remote"] {
        assert_eq!(
            manifest["accounting"][side]["cpu"], cpu,
            "{}",
            manifest["accounting"]
        );
    }
}

fn burn_and_touch_group(p: &Project) {
    p.bash(
        "g/local/client",
        &format!("{BURN}\n{TOUCH}\nwait_for_remote"),
    );
    p.bash("g/remote/server", &format!("{BURN}\n{TOUCH}"));
}

#[test]
fn a_detached_grandchild_is_counted_on_both_sides_here() {
    let p = Project::new();
    burn_and_touch_group(&p);
    p.run(&["run", "--progress", "never"]).expect_code(0);
    assert_eq!(p.pair("g", "client_x_server").status(), "SUCCESS");
    check_burn_and_touch(&p, false);
}

#[test]
fn a_detached_grandchild_is_counted_on_a_remote_host() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    burn_and_touch_group(&p);
    let r = p.run_with(
        |c| s.client(c),
        &["run", "--progress", "never", "--remote", &s.spec()],
    );
    r.expect_code(0);
    let pair = p.pair("g", "client_x_server");
    assert_eq!(pair.status(), "SUCCESS", "{}", pair.reason());
    check_burn_and_touch(&p, true);
}

#[test]
fn without_cgroups_rusage_counts_the_detached_grandchild() {
    let p = Project::new();
    burn_and_touch_group(&p);
    p.run_with(
        |c| {
            c.env("PAIRBENCH_CONTAINMENT", "sweep");
        },
        &["run", "--progress", "never"],
    )
    .expect_code(0);
    assert_eq!(p.pair("g", "client_x_server").status(), "SUCCESS");
    let rows = read_csv(&p.latest().join("metrics.csv"));
    for side in ["local", "remote"] {
        let cpu = own(&rows, side, "cpu_user_s");
        assert!((0.8..=1.5).contains(&cpu), "{side} cpu_user_s {cpu}");
        let peak = own(&rows, side, "max_rss_kib") / 1024.0;
        assert!((190.0..=260.0).contains(&peak), "{side} peak {peak} MiB");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.latest().join("run.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["accounting"]["local"]["cpu"], "rusage");
}

#[test]
fn a_script_cannot_forge_pairbench_s_own_metrics() {
    let p = Project::new();
    p.bash(
        "g/local/client",
        "report_metric cpu_user_s 99 s\nreport_metric mine 1",
    );
    p.bash("g/remote/server", "true");
    p.run(&["run", "--progress", "never"]).expect_code(0);
    let rows = read_csv(&p.latest().join("metrics.csv"));
    let cpu = own(&rows, "local", "cpu_user_s");
    assert!(cpu < 5.0, "the script's 99 was taken: {rows:?}");
    assert!(
        rows.iter()
            .any(|r| r["name"] == "mine" && r["source"] == "script"),
        "{rows:?}"
    );
}

#[test]
fn the_tree_knows_the_resource_names_as_pairbench_s_own() {
    for (name, _) in pairbench::contain::usage::METRICS {
        assert!(pairbench::tree::record::is_own_metric(name), "{name}");
    }
}

#[test]
fn a_check_gate_on_cpu_fails_a_pair_that_burns_too_much() {
    let p = Project::new();
    p.bash("g/local/client", "wait_for_remote");
    p.bash("g/remote/server", BURN);
    p.file(
        "g/group.toml",
        "[check.metrics]\ncpu_user_s = { max = 0.5 }\n",
    );
    p.file("g/expected/.keep", "");
    let r = p.run(&["run", "--progress", "never"]);
    let pair = p.pair("g", "client_x_server");
    assert_eq!(pair.status(), "FAILED", "{}\n{}", pair.reason(), r.stderr());
    assert!(
        pair.reason().contains("cpu_user_s (remote)"),
        "{}",
        pair.reason()
    );
    r.expect_code(1);
}

#[test]
fn cpu_per_divides_each_side_s_cpu_by_the_count_and_the_page_charts_cpu() {
    let p = Project::new();
    p.file("g/group.toml", "cpu_per = \"requests\"\n");
    p.bash(
        "g/local/client",
        &format!("{BURN}\nreport_metric requests 1000\nwait_for_remote"),
    );
    p.bash("g/remote/server", BURN);
    p.run(&["run", "--progress", "never"]).expect_code(0);
    let rows = read_csv(&p.latest().join("metrics.csv"));
    for side in ["local", "remote"] {
        let cpu = own(&rows, side, "cpu_user_s") + own(&rows, side, "cpu_sys_s");
        let per = own(&rows, side, "cpu_us_per_requests");
        // The client's count is used for both sides: µs of CPU per request.
        let want = cpu * 1e6 / 1000.0;
        assert!(
            (per - want).abs() <= want * 1e-6 + 1e-3,
            "{side}: {per} µs per request, want {want}"
        );
        assert!(
            per > 500.0,
            "{side}: a second of CPU over 1000 requests: {per}"
        );
    }
    // The page has a CPU chart: a bar per pair and side.
    let plots: Vec<String> = std::fs::read_dir(p.latest().join("plots"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        plots
            .iter()
            .any(|n| n.starts_with("g-") && n.ends_with(".cpu.svg")),
        "a CPU chart: {plots:?}"
    );
    let page = std::fs::read_to_string(p.latest().join("index.html")).unwrap();
    assert!(page.contains(".cpu.svg"), "the page shows the CPU chart");
}
