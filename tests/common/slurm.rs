//! A real single-node Slurm for tests, started by the test as root: a munge key made
//! for it and its own munged, then slurmctld and slurmd with a minimal slurm.conf, all
//! in a temporary folder, on free ports of this machine. Ended (with every job step
//! still running) on drop. Needs Debian's slurm-wlm and munge: outside CI a test skips
//! with a loud line where they are missing; in CI it fails instead.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NEEDED: [&str; 6] = [
    "/usr/sbin/munged",
    "/usr/sbin/mungekey",
    "/usr/sbin/slurmctld",
    "/usr/sbin/slurmd",
    "/usr/bin/sbatch",
    "/usr/bin/squeue",
];

fn skip(msg: &str) -> bool {
    let strict = std::env::var_os("CI").is_some()
        || std::env::var("PAIRBENCH_REQUIRE_SSHD").is_ok_and(|v| v == "1");
    if strict {
        panic!("{msg} (CI forbids skipping)");
    }
    eprintln!("\n!!!!!!!!!! {msg} !!!!!!!!!!\n");
    false
}

/// True when a Slurm can be started here; otherwise says why loudly (or panics in CI).
pub fn available() -> bool {
    let missing: Vec<&str> = NEEDED
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        return skip(&format!(
            "SLURM TEST SKIPPED: {} not found: install them with `apt-get install slurm-wlm munge`",
            missing.join(", ")
        ));
    }
    if !nix::unistd::geteuid().is_root() {
        return skip("SLURM TEST SKIPPED: starting slurmctld and slurmd needs root");
    }
    true
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .expect("host name")
        .to_string_lossy()
        .into_owned()
}

/// A running single-node Slurm.
pub struct Slurm {
    pub dir: tempfile::TempDir,
    /// Its slurm.conf: give it to Slurm's commands as SLURM_CONF.
    pub conf: PathBuf,
    pub node: String,
    daemons: Vec<Child>,
}

impl Slurm {
    /// Start munged, slurmctld and slurmd; `None` (after a loud line) where they cannot.
    pub fn start() -> Option<Slurm> {
        if !available() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("pairbench-slurm")
            .tempdir()
            .unwrap();
        let d = dir.path().to_path_buf();
        for sub in ["state", "spool"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let ok = Command::new("mungekey")
            .arg("-c")
            .arg("-k")
            .arg(d.join("munge.key"))
            .status()
            .unwrap();
        assert!(ok.success(), "mungekey failed");
        let node = hostname();
        let conf = d.join("slurm.conf");
        let text = format!(
            "ClusterName=pairbench\nSlurmctldHost={node}\nSlurmUser=root\nSlurmdUser=root\n\
             AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={d}/munge.sock\n\
             StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldPort={}\nSlurmdPort={}\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nReturnToService=2\n\
             SchedulerType=sched/backfill\nSelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n\
             JobCompType=jobcomp/none\nAccountingStorageType=accounting_storage/none\n\
             JobAcctGatherType=jobacct_gather/none\nMpiDefault=none\n\
             SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
             NodeName={node} CPUs=2 State=UNKNOWN\n\
             PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            free_port(),
            free_port(),
            d = d.display()
        );
        std::fs::write(&conf, text).unwrap();
        let mut s = Slurm {
            dir,
            conf,
            node,
            daemons: Vec::new(),
        };
        let quiet = |c: &mut Command| {
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        };
        let mut munged = Command::new("munged");
        munged
            .arg("-F")
            .arg(format!("--key-file={}/munge.key", d.display()))
            .arg(format!("--socket={}/munge.sock", d.display()))
            .arg(format!("--pid-file={}/munged.pid", d.display()))
            .arg(format!("--log-file={}/munged.log", d.display()))
            .arg(format!("--seed-file={}/munged.seed", d.display()));
        quiet(&mut munged);
        s.daemons.push(munged.spawn().expect("start munged"));
        s.wait_for("munge's socket", || d.join("munge.sock").exists());
        let mut ctld = Command::new("slurmctld");
        ctld.args(["-D", "-c", "-f"]).arg(&s.conf);
        quiet(&mut ctld);
        s.daemons.push(ctld.spawn().expect("start slurmctld"));
        let mut slurmd = Command::new("slurmd");
        slurmd.args(["-D", "-N", &s.node, "-f"]).arg(&s.conf);
        quiet(&mut slurmd);
        s.daemons.push(slurmd.spawn().expect("start slurmd"));
        s.wait_for("the node to be idle", || {
            s.cmd("sinfo")
                .args(["-h", "-o", "%t"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
        });
        Some(s)
    }

    fn wait_for(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            if ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("Slurm: waited 60s for {what}:\n{}", self.logs());
    }

    /// A Slurm command (sbatch, squeue, ...) talking to this Slurm.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Wait (up to `limit`) until no job is queued or running.
    pub fn wait_idle(&self, limit: Duration) {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            let out = self.cmd("squeue").args(["-h", "-o", "%i %T"]).output();
            if out.is_ok_and(|o| o.status.success() && o.stdout.is_empty()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let q = self.cmd("squeue").output().unwrap();
        panic!(
            "Slurm jobs did not finish within {limit:?}:\n{}\n{}",
            String::from_utf8_lossy(&q.stdout),
            self.logs()
        );
    }

    pub fn logs(&self) -> String {
        ["slurmctld.log", "slurmd.log", "munged.log"]
            .iter()
            .map(|f| {
                let t = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(15).collect();
                format!(
                    "--- {f}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let _ = self.cmd("scancel").args(["--user", "root"]).output();
        // slurmd's job steps, then the daemons, the last started first.
        for child in self.daemons.iter_mut().rev() {
            for p in super::sshd::descendants(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
