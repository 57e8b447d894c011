//! SSH overhead benchmark: what a pair costs when its remote side runs over SSH.
//!
//! `cargo bench --bench ssh_overhead` starts a real sshd on 127.0.0.1 and, as root, one
//! in a network namespace of its own (the test fixture of tests/common/sshd.rs; needs
//! openssh-server), then runs 100 trivial pairs (`exit 0` × `exit 0`) and 1 such pair on
//! this machine and on each host, and prints what a pair costs on each, side by side:
//! the time from one pair's start to the next in the 100-pair run (its results.csv, so
//! the run's fixed costs are left out), and the wall time of the 1-pair run (connect,
//! log in, start the agent, clean up: once per run and host).
//! `PAIRBENCH_BENCH_BIN` runs another pairbench executable (an older build, to compare);
//! `PAIRBENCH_BENCH_ROUNDS` sets the rounds (default 5).

#[path = "../tests/common/sshd.rs"]
mod sshd;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pairbench");

fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn pairbench(bin: &str, dir: &Path, home: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let t = start.elapsed();
    assert!(
        out.status.code() == Some(0),
        "pairbench failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    t
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// `[[remote]]` entry `name` for `s`, its agent cached in `work`.
fn entry(name: &str, s: &sshd::Sshd, work: &Path) -> String {
    format!(
        "[[remote]]\nname = \"{name}\"\nhost = \"{}\"\nuser = \"{}\"\nport = {}\nworkdir = \"{}\"\n",
        s.host,
        s.user,
        s.port,
        work.display()
    )
}

/// Of a 100-pair run of `bin` to `remote` (`None`: this machine): the time from one
/// pair's start to the next (the first pair's start to the last's, / 99, from its
/// results.csv: the run's fixed costs left out); and the wall time (ms) of a 1-pair run.
fn measure(bin: &str, dir: &Path, home: &Path, remote: Option<&str>, n: &mut u32) -> (f64, f64) {
    let mut t = [0.0; 2];
    for (i, group) in ["trivial", "one"].into_iter().enumerate() {
        *n += 1;
        let tag = format!("t{n}");
        let mut args = vec!["run", "--progress", "never", "--tag", &tag, group];
        if let Some(r) = remote {
            args.extend(["--remote", r]);
        }
        t[i] = pairbench(bin, dir, home, &args).as_secs_f64() * 1000.0;
        if i == 0 {
            let mut starts: Vec<f64> =
                csv::Reader::from_path(dir.join("results").join(&tag).join("results.csv"))
                    .unwrap()
                    .deserialize::<std::collections::HashMap<String, String>>()
                    .map(|r| {
                        chrono::DateTime::parse_from_rfc3339(&r.unwrap()["started_at"])
                            .unwrap()
                            .timestamp_micros() as f64
                            / 1000.0
                    })
                    .collect();
            starts.sort_by(|a, b| a.partial_cmp(b).unwrap());
            t[0] = (starts[starts.len() - 1] - starts[0]) / (starts.len() - 1) as f64;
        }
    }
    (t[0], t[1])
}

fn main() {
    let Some(s) = sshd::Sshd::start() else {
        println!("ssh overhead: skipped (no sshd)");
        return;
    };
    s.trust();
    // A host in a network namespace of its own, reached over a veth pair, when this
    // machine can make one (root).
    let ns = sshd::Sshd::start_in_netns();
    if let Some(ns) = &ns {
        // One client HOME that knows both hosts, and whose key both accept.
        sshd::one_client(&[&s, ns]);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let work = dir.join("remote-work");
    for i in 0..10 {
        script(
            &dir.join(format!("groups/trivial/local/l{i:02}")),
            "#!/bin/sh\nexit 0\n",
        );
        script(
            &dir.join(format!("groups/trivial/remote/r{i:02}")),
            "#!/bin/sh\nexit 0\n",
        );
    }
    script(&dir.join("groups/one/local/l"), "#!/bin/sh\nexit 0\n");
    script(&dir.join("groups/one/remote/r"), "#!/bin/sh\nexit 0\n");
    let mut toml = entry("bench", &s, &work);
    if let Some(ns) = &ns {
        toml.push_str(&entry("netns", ns, &dir.join("netns-work")));
    }
    std::fs::write(dir.join("pairbench.toml"), toml).unwrap();
    let home = s.home.clone();
    // The builds measured, one round of each after the other (the machine's load changes
    // slowly, so back to back they see the same).
    let mut bins = vec![("this build".to_string(), BIN.to_string())];
    if let Ok(before) = std::env::var("PAIRBENCH_BENCH_BEFORE") {
        bins.insert(0, ("before".to_string(), before));
    }
    let mut hosts: Vec<(&str, Option<&str>)> = vec![
        ("this machine (--remote local)", None),
        ("sshd on 127.0.0.1", Some("bench")),
    ];
    if ns.is_some() {
        hosts.push(("sshd in a network namespace", Some("netns")));
    } else {
        println!("ssh overhead: no network namespace here (needs root): loopback only");
    }
    // First runs: upload the agent (once per build and host).
    let mut n = 0;
    for (_, bin) in &bins {
        for (_, remote) in &hosts[1..] {
            measure(bin, dir, &home, *remote, &mut n);
        }
    }
    let rounds: usize = std::env::var("PAIRBENCH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    println!(
        "per pair of `exit 0` x `exit 0` (one pair's start to the next's in a run of 100; median of {rounds} rounds), and a run of 1 pair:"
    );
    // Every host and build in each round, so that they all see the same load.
    let mut got = vec![vec![(Vec::new(), Vec::new()); bins.len()]; hosts.len()];
    for _ in 0..rounds {
        for (h, (_, remote)) in hosts.iter().enumerate() {
            for (b, (_, bin)) in bins.iter().enumerate() {
                let (per_pair, one) = measure(bin, dir, &home, *remote, &mut n);
                got[h][b].0.push(per_pair);
                got[h][b].1.push(one);
            }
        }
    }
    for (h, (name, _)) in hosts.iter().enumerate() {
        for (b, (label, _)) in bins.iter().enumerate() {
            let (per_pair, one) = (median(got[h][b].0.clone()), median(got[h][b].1.clone()));
            println!("  {name:30} {label:10} {per_pair:6.2} ms/pair, run of 1 pair {one:5.0} ms");
        }
    }
}
