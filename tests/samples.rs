//! `--sample D` (docs/resources.md): both sides' hosts sampled from /proc while a pair
//! runs, into `<side>/samples.csv` (`t_s,name,value,unit`) — on this machine and on a
//! remote host over a real sshd — and a time series per pair on the page.

mod common;
#[path = "common/sshd.rs"]
mod sshd;

use std::collections::{BTreeSet, HashMap};

use common::{Project, read_csv};
use sshd::Sshd;

/// Busy on a CPU for a second (of wall time), then done.
const BURN: &str = "perl -MTime::HiRes=time -e '$end = time + 1; while (time < $end) {}'";

fn check_samples(p: &Project) {
    let pair = p.pair("g", "client_x_server");
    assert_eq!(pair.status(), "SUCCESS", "{}", pair.reason());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.latest().join("run.json")).unwrap())
            .unwrap();
    let cgroups = manifest["accounting"]["local"]["cpu"] == "cgroup2 cpu.stat";
    for side in ["local", "remote"] {
        let rows: Vec<HashMap<String, String>> =
            read_csv(&pair.path().join(side).join("samples.csv"));
        let times: BTreeSet<String> = rows.iter().map(|r| r["t_s"].clone()).collect();
        // A pair of about a second at 100ms: about ten moments (a busy machine may
        // start the sampler a little late or end it a little early).
        assert!(
            (8..=14).contains(&times.len()),
            "{side}: {} moments: {times:?}",
            times.len()
        );
        let values = |name: &str| -> Vec<f64> {
            rows.iter()
                .filter(|r| r["name"] == name)
                .map(|r| r["value"].parse().unwrap())
                .collect()
        };
        let busy = values("cpu_busy_pct");
        assert_eq!(
            busy.len(),
            times.len(),
            "{side}: cpu_busy_pct at every moment"
        );
        assert!(busy.iter().all(|v| (0.0..=100.0).contains(v)), "{busy:?}");
        assert!(values("mem_used_kib").iter().all(|v| *v > 0.0));
        assert!(
            rows.iter().any(|r| r["name"] == "net.lo.rx_bytes_per_s"),
            "{side}: the loopback interface"
        );
        let side_cpu = values("side_cpu_pct");
        // A side's own CPU is its cgroup's: sampled whenever the side has one.
        if cgroups {
            assert!(
                side_cpu.len() + 2 >= times.len(),
                "{side}: side_cpu_pct at (nearly) every moment: {side_cpu:?}"
            );
        }
        let max = side_cpu.iter().cloned().fold(0.0, f64::max);
        // The local side spins on a CPU for a second (getting what a shared machine
        // leaves it); the remote one sleeps.
        if side == "local" {
            assert!(max > 10.0, "local side_cpu_pct {side_cpu:?}");
        } else {
            assert!(max < 10.0, "remote side_cpu_pct {side_cpu:?}");
        }
    }
    // The page draws the pair's time series and links the samples.
    let plots = p.latest().join("plots");
    let series: Vec<String> = std::fs::read_dir(&plots)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".samples.") && n.ends_with(".svg"))
        .collect();
    assert_eq!(series.len(), 1, "one time series for the pair: {series:?}");
    let svg = std::fs::read_to_string(plots.join(&series[0])).unwrap();
    assert!(
        svg.contains("local") && svg.contains("remote"),
        "both sides"
    );
    let html = std::fs::read_to_string(p.latest().join("index.html")).unwrap();
    assert!(
        html.contains("local/samples.csv"),
        "the page links the samples"
    );
    assert!(html.contains(&series[0]), "the page shows the time series");
}

fn group(p: &Project) {
    p.bash("g/local/client", BURN);
    p.bash("g/remote/server", "exec sleep 30");
}

#[test]
fn a_one_second_pair_at_100ms_has_about_ten_moments_per_side() {
    let p = Project::new();
    group(&p);
    p.run(&["run", "--progress", "never", "--sample", "100ms"])
        .expect_code(0);
    check_samples(&p);
}

#[test]
fn a_remote_host_is_sampled_by_its_agent() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    group(&p);
    p.run_with(
        |c| s.client(c),
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &s.spec(),
            "--sample",
            "100ms",
        ],
    )
    .expect_code(0);
    check_samples(&p);
}

#[test]
fn without_sample_there_are_no_samples_and_a_bad_one_is_refused() {
    let p = Project::new();
    p.bash("g/local/client", "true");
    p.bash("g/remote/server", "true");
    p.run(&["run", "--progress", "never"]).expect_code(0);
    let pair = p.pair("g", "client_x_server");
    assert!(!pair.path().join("local/samples.csv").exists());
    let r = p.run(&["run", "--sample", "1ms"]);
    r.expect_code(2);
    assert!(r.stderr().contains("--sample"), "{}", r.stderr());
}
