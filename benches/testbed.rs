//! Testbed benchmark (root; docs/testbed.md, "What it costs"): `cargo bench --bench testbed`
//! prints
//! - `testbed up --hosts 16` and `testbed down`: seconds, median of 5 (goal: ≤ 2 s each);
//! - shaping: TCP connect round trip to a host whose link has `--delay 20ms` (goal:
//!   ≥ 40 ms and within 10%), and iperf3 throughput through `--rate 50mbit` (goal: within
//!   10% of 50 Mbit/s);
//! - a link cut in the middle of a pair: how long until that pair is recorded ERROR with
//!   `--connect-timeout 3s`, while the run goes on over the other host.
//!
//! Its own state folder and subnet (10.213.250.0/24); everything is removed at the end.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pairbench");
const NET: &str = "10.213.250";

fn pb(dir: &Path, args: &[&str]) -> (Duration, String, i32) {
    let t = Instant::now();
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("PAIRBENCH_TESTBED_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (t.elapsed(), text, out.status.code().unwrap_or(-1))
}

fn ok(dir: &Path, args: &[&str]) -> Duration {
    let (t, text, code) = pb(dir, args);
    assert_eq!(code, 0, "pairbench {args:?}: {text}");
    t
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn connect_ms(addr: &str) -> f64 {
    let a: std::net::SocketAddr = addr.parse().unwrap();
    let t = Instant::now();
    let _s = std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5)).unwrap();
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    if !nix::unistd::geteuid().is_root() || !Path::new("/usr/bin/wirefilter").exists() {
        println!("testbed: skipped (needs root and vde2)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("pairbench.toml"),
        format!(
            "[testbed]\nsubnet = \"{NET}.0/24\"\nstate_dir = \"{}\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();

    let (mut ups, mut downs) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        ups.push(ok(dir, &["testbed", "up", "--hosts", "16"]).as_secs_f64());
        downs.push(ok(dir, &["testbed", "down"]).as_secs_f64());
    }
    println!(
        "testbed up --hosts 16: {:.3} s median (of {ups:.3?}); down: {:.3} s median (of {downs:.3?})",
        median(ups.clone()),
        median(downs.clone())
    );

    ok(dir, &["testbed", "up", "--hosts", "2"]);
    let host = format!("{NET}.2:22");
    let base = median((0..21).map(|_| connect_ms(&host)).collect());
    ok(
        dir,
        &["testbed", "link", "server1", "shape", "--delay", "20ms"],
    );
    let shaped = median((0..21).map(|_| connect_ms(&host)).collect());
    println!(
        "connect RTT: {base:.2} ms unshaped; {shaped:.2} ms with --delay 20ms (goal 40 ms, {:+.1}%)",
        (shaped - 40.0) / 40.0 * 100.0
    );
    ok(dir, &["testbed", "link", "server1", "clear"]);
    ok(
        dir,
        &["testbed", "link", "server1", "shape", "--rate", "50mbit"],
    );
    ok(
        dir,
        &[
            "testbed",
            "shell",
            "server1",
            "--",
            "iperf3",
            "-s",
            "-1",
            "-D",
            "-B",
            &format!("{NET}.2"),
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new("iperf3")
        .args(["-c", &format!("{NET}.2"), "-t", "5", "-O", "1", "-J"])
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let bps = j["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    println!(
        "throughput with --rate 50mbit: {:.1} Mbit/s ({:+.1}%)",
        bps / 1e6,
        (bps / 50e6 - 1.0) * 100.0
    );
    ok(dir, &["testbed", "down"]);

    // A cut mid-pair: ERROR within --connect-timeout; the other pairs go on.
    script(&dir.join("groups/warm/local/l"), "true");
    script(&dir.join("groups/warm/remote/r"), "true");
    // The first run of a build uploads its agent: not part of what is measured.
    ok(
        dir,
        &["run", "warm", "--testbed", "2", "--progress", "never"],
    );
    let g = dir.join("groups/g");
    script(&g.join("remote/srv"), "exec sleep 300");
    script(
        &g.join("local/a_cut"),
        "sleep 1; testbed_link down; sleep 60",
    );
    script(&g.join("local/b_ok"), "sleep 1");
    script(&g.join("local/c_ok"), "sleep 1");
    let (t, text, code) = pb(
        dir,
        &[
            "run",
            "g",
            "--testbed",
            "2",
            "-j",
            "2",
            "--connect-timeout",
            "3s",
            "--progress",
            "never",
        ],
    );
    let mut rd = csv::Reader::from_path(dir.join("results/latest/results.csv")).unwrap();
    let heads = rd.headers().unwrap().clone();
    let col = |r: &csv::StringRecord, name: &str| {
        heads
            .iter()
            .position(|h| h == name)
            .and_then(|i| r.get(i))
            .unwrap_or("?")
            .to_string()
    };
    let rows: Vec<csv::StringRecord> = rd.records().flatten().collect();
    for r in &rows {
        println!(
            "  {}: {} after {} s ({})",
            col(r, "pair"),
            col(r, "status"),
            col(r, "duration_s"),
            col(r, "reason")
        );
    }
    println!(
        "cut mid-pair (--connect-timeout 3s, cut 1 s into the pair): exit {code}, whole run {:.1} s",
        t.as_secs_f64()
    );
    if code != 2 {
        println!("{text}");
    }
}
