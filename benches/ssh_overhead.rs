//! SSH overhead benchmark: what a pair costs when its remote side runs over SSH.
//!
//! `cargo bench --bench ssh_overhead` starts a real sshd on 127.0.0.1 (the test fixture of
//! tests/common/sshd.rs; needs openssh-server), then runs 100 trivial pairs
//! (`exit 0` × `exit 0`) with `--remote local` and with `--remote user@127.0.0.1:port`,
//! and prints milliseconds per pair of each and the difference: the per-pair cost of
//! SSH beyond the scripts' own time. Also the one-time cost of a run's connection (TCP,
//! handshake, login, agent check and start) with the agent already uploaded.

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

fn pairbench(dir: &Path, home: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(BIN)
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

fn main() {
    let Some(s) = sshd::Sshd::start() else {
        println!("ssh overhead: skipped (no sshd)");
        return;
    };
    s.trust();
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
    std::fs::write(
        dir.join("pairbench.toml"),
        format!(
            "[[remote]]\nname = \"bench\"\nhost = \"{}\"\nuser = \"{}\"\nport = {}\nworkdir = \"{}\"\n",
            s.host,
            s.user,
            s.port,
            work.display()
        ),
    )
    .unwrap();
    let home = s.home.clone();
    // First run: uploads the agent (once per build).
    let first = pairbench(
        dir,
        &home,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            "bench",
            "--tag",
            "w",
            "one",
        ],
    );
    let rounds = 5;
    let (mut local, mut ssh, mut one, mut one_local) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        let t = format!("l{i}");
        local.push(
            pairbench(
                dir,
                &home,
                &["run", "--progress", "never", "--tag", &t, "trivial"],
            )
            .as_secs_f64()
                * 10.0,
        );
        let t = format!("s{i}");
        ssh.push(
            pairbench(
                dir,
                &home,
                &[
                    "run",
                    "--progress",
                    "never",
                    "--remote",
                    "bench",
                    "--tag",
                    &t,
                    "trivial",
                ],
            )
            .as_secs_f64()
                * 10.0,
        );
        let t = format!("ol{i}");
        one_local.push(
            pairbench(
                dir,
                &home,
                &["run", "--progress", "never", "--tag", &t, "one"],
            )
            .as_secs_f64()
                * 1000.0,
        );
        let t = format!("o{i}");
        one.push(
            pairbench(
                dir,
                &home,
                &[
                    "run",
                    "--progress",
                    "never",
                    "--remote",
                    "bench",
                    "--tag",
                    &t,
                    "one",
                ],
            )
            .as_secs_f64()
                * 1000.0,
        );
    }
    let (l, s_) = (median(local), median(ssh));
    // A run of one pair over SSH minus the same run on this machine: the run's fixed
    // SSH cost (connect, log in, start the agent, clean up, say goodbye).
    let fixed = median(one) - median(one_local);
    println!(
        "ssh overhead (100 x `exit 0` x `exit 0`, median of {rounds}): --remote local {l:.2} ms/pair, \
         over ssh to 127.0.0.1 {s_:.2} ms/pair, ssh adds {:.2} ms/pair (target: <= 20 ms)",
        s_ - l
    );
    println!(
        "ssh per run: connect, login, agent start and clean-up {fixed:.0} ms (once per run and host); \
         the first run, which uploads the agent, took {:.0} ms in all",
        first.as_secs_f64() * 1000.0
    );
}
