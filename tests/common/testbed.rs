//! A testbed for one test: its own state folder and subnet (10.213.X.0/24, never the
//! default one), a project whose pairbench.toml names both, and `pairbench testbed down`
//! on drop whatever the test did.
//!
//! Outside CI a test skips with a loud line when it cannot run here (not root, no VDE);
//! with PAIRBENCH_REQUIRE_SSHD=1 it fails instead.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::{Project, Run};

/// True when testbed tests can run here; otherwise says why loudly (or panics in CI).
pub fn available() -> bool {
    if !crate::sshd::netns_available() {
        return false;
    }
    let missing: Vec<&str> = ["/usr/bin/vde_switch", "/usr/bin/wirefilter"]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "TESTBED TEST SKIPPED: {} not found: install it with `apt-get install vde2`",
        missing.join(", ")
    );
    if std::env::var("PAIRBENCH_REQUIRE_SSHD").is_ok_and(|v| v == "1") {
        panic!("{msg} (PAIRBENCH_REQUIRE_SSHD=1 forbids skipping)");
    }
    eprintln!("\n!!!!!!!!!! {msg} !!!!!!!!!!\n");
    false
}

/// A project with a testbed of its own.
pub struct Bed {
    pub project: Project,
    pub state: PathBuf,
    /// The first three octets of the subnet, e.g. `10.213.57`.
    pub net: String,
    _state_dir: tempfile::TempDir,
}

impl Bed {
    /// `extra`: more of pairbench.toml (e.g. `[[testbed.host]]` tables).
    pub fn new(extra: &str) -> Bed {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let x = 1 + (std::process::id().wrapping_mul(7).wrapping_add(n * 13) % 250);
        let net = format!("10.213.{x}");
        let state_dir = tempfile::Builder::new()
            .prefix("pairbench-testbed")
            .tempdir()
            .expect("temp dir");
        let state = state_dir.path().join("state");
        let project = Project::new();
        std::fs::write(
            project.path().join("pairbench.toml"),
            format!(
                "[testbed]\nsubnet = \"{net}.0/24\"\nstate_dir = \"{}\"\n{extra}\n",
                state.display()
            ),
        )
        .unwrap();
        Bed {
            project,
            state,
            net,
            _state_dir: state_dir,
        }
    }

    /// Address of the K-th host (from 1).
    pub fn addr(&self, k: u32) -> String {
        format!("{}.{}", self.net, k + 1)
    }

    /// `pairbench ARGS` in the project.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.cmd().args(args).output().expect("run pairbench");
        Run {
            out,
            project_dir: self.project.path().to_path_buf(),
        }
    }

    pub fn cmd(&self) -> std::process::Command {
        let mut c = self.project.cmd();
        c.env_remove("PAIRBENCH_TESTBED_DIR");
        c
    }

    pub fn state_json(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.state.join("state.json")).expect("state.json");
        serde_json::from_str(&text).unwrap()
    }

    /// Names of the network namespaces of this testbed that exist.
    pub fn namespaces(&self, id: &str) -> Vec<String> {
        std::fs::read_dir("/run/netns")
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&format!("pbtb-{id}-")))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = self.cmd().args(["testbed", "down"]).output();
    }
}

/// Microseconds a TCP connect from this machine to `addr` takes (median of `n`).
pub fn connect_ms(addr: &str, n: usize) -> f64 {
    let a: std::net::SocketAddr = addr.parse().unwrap();
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            let t = std::time::Instant::now();
            let _s = std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(5))
                .expect("connect");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[n / 2]
}
