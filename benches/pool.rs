//! Pool start benchmark: how close a run over N SSH hosts comes to its ideal time.
//!
//! `cargo bench --bench pool` (root: hosts are network namespaces, each running its own
//! OpenSSH sshd, made by tests/common/sshd.rs) builds, for N = 2, 8, 16 (and 64 with
//! `PAIRBENCH_BENCH_POOL_MAX=64`), one group of 8 local tests that sleep 0.5 s × N remote
//! tests that run until they are ended, and runs it with `-j N` over the N hosts (one
//! slot each, each with its own work folder). Every host then runs 8 pairs one after
//! another: the ideal is 8 × 0.5 s = 4.0 s, whatever N. It prints ideal and wall time
//! (median of 3 runs after a warm-up run that uploads the agent to every host) and their
//! ratio. The hosts' sshd sets SHLVL=1, so the remote account's bash reads no
//! ~/.bashrc: what is measured is pairbench, not the account's login shell (which runs
//! once per host, on the host's own CPU on real hosts, but here all N share this
//! machine's cores; this machine's root ~/.bashrc runs `pyenv init`, whose lock makes
//! concurrent logins wait for each other). `PAIRBENCH_BENCH_POOL_LOGIN_AS_IS=1` keeps
//! the login shell as it is. `PAIRBENCH_BENCH_POOL=2,8` picks the sizes, and `PAIRBENCH_BENCH_POOL_KEEP=1`
//! keeps each size's project folder (its result trees) to look at.

#[path = "../tests/common/sshd.rs"]
mod sshd;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pairbench");
const LOCAL_TESTS: usize = 8;
const LOCAL_SLEEP_S: f64 = 0.5;

fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn run(dir: &Path, home: &Path, tag: &str, hosts: usize) -> Duration {
    let mut args: Vec<String> = ["run", "--progress", "never", "--tag", tag, "-j"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(hosts.to_string());
    for i in 0..hosts {
        args.push("--remote".into());
        args.push(format!("h{i:02}"));
    }
    let start = Instant::now();
    let out = Command::new(BIN)
        .args(&args)
        .current_dir(dir)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let t = start.elapsed();
    assert!(
        out.status.code() == Some(0),
        "pairbench failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    t
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn sizes() -> Vec<usize> {
    if let Ok(list) = std::env::var("PAIRBENCH_BENCH_POOL") {
        return list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .filter(|&n| n > 0)
            .collect();
    }
    let max: usize = std::env::var("PAIRBENCH_BENCH_POOL_MAX")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    [2, 8, 16, 64].into_iter().filter(|&n| n <= max).collect()
}

/// Wall times (first run, median of the next 3) of a run over `n` hosts made with
/// `extra_config` in their sshd_config.
fn measure(n: usize, extra_config: &str) -> (f64, f64) {
    let hosts: Vec<sshd::Sshd> = (0..n)
        .map(|_| sshd::Sshd::start_in_netns_with(extra_config).expect("a namespace host"))
        .collect();
    sshd::one_client(&hosts.iter().collect::<Vec<_>>());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for l in 0..LOCAL_TESTS {
        script(
            &dir.join(format!("groups/pool/local/l{l:02}")),
            &format!("#!/bin/sh\nsleep {LOCAL_SLEEP_S}\n"),
        );
    }
    for r in 0..n {
        script(
            &dir.join(format!("groups/pool/remote/r{r:02}")),
            "#!/bin/sh\nexec sleep 600\n",
        );
    }
    let mut toml = String::new();
    for (i, h) in hosts.iter().enumerate() {
        toml.push_str(&format!(
            "[[remote]]\nname = \"h{i:02}\"\nhost = \"{}\"\nuser = \"{}\"\nport = {}\nidentity_file = \"~/.ssh/id_ed25519\"\nworkdir = \"{}\"\nslots = 1\n",
            h.host,
            h.user,
            h.port,
            dir.join(format!("work{i:02}")).display()
        ));
    }
    std::fs::write(dir.join("pairbench.toml"), toml).unwrap();
    let home = hosts[0].home.clone();
    let first = run(dir, &home, "warm", n).as_secs_f64();
    let walls: Vec<f64> = (0..3)
        .map(|i| run(dir, &home, &format!("r{i}"), n).as_secs_f64())
        .collect();
    if std::env::var_os("PAIRBENCH_BENCH_POOL_KEEP").is_some() {
        println!("kept: {}", tmp.keep().display());
    }
    (first, median(walls))
}

fn main() {
    if !sshd::netns_available() {
        println!("pool: skipped (needs root, sshd and iproute2)");
        return;
    }
    // The remote account's login shell as it is, or plain (see the top of this file).
    let as_is = std::env::var_os("PAIRBENCH_BENCH_POOL_LOGIN_AS_IS").is_some();
    let ideal = LOCAL_TESTS as f64 * LOCAL_SLEEP_S;
    println!(
        "Each host runs {LOCAL_TESTS} pairs of a {LOCAL_SLEEP_S} s local test, one after another, -j = hosts; login shell: {}.",
        if as_is {
            "as the remote account has it"
        } else {
            "plain (no ~/.bashrc)"
        }
    );
    println!("| hosts | pairs | ideal | wall | ratio | first run (uploads the agent) |");
    println!("|---|---|---|---|---|---|");
    for n in sizes() {
        let (first, wall) = measure(n, if as_is { "" } else { sshd::PLAIN_LOGIN });
        println!(
            "| {n} | {} | {ideal:.1} s | {wall:.2} s | {:.2} | {first:.2} s |",
            n * LOCAL_TESTS,
            wall / ideal
        );
    }
}
