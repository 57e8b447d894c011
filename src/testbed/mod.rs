//! The testbed (docs/testbed.md): hosts made on this machine — network namespaces on a
//! userspace switch, each with its own address, an OpenSSH server and a link that can be
//! shaped (delay, jitter, loss, rate), cut and healed — so the ordinary SSH transport
//! reaches them like real machines, and faults can be made on purpose.
//!
//! - [`state`]: what was made, on disk, so `down` always removes it.
//! - [`up`]: making and removing the whole testbed.
//! - [`ops`]: changing a link or a host, `status`, `shell`.
//! - [`shape`]: link shapes and the link emulator (VDE's wirefilter).
//! - [`net`], [`cgroup`], [`sshd`]: the kernel, the cgroups and the SSH servers.
//! - [`command`]: the `pairbench testbed` command line and the script helpers.
//! - [`events`]: what a pair's scripts changed, gathered and undone when it ends.
//! - [`auto`]: `pairbench run --testbed`: up, run over its hosts, down.

pub mod auto;
pub mod cgroup;
pub mod command;
pub mod events;
pub mod net;
pub mod ops;
pub mod shape;
pub mod sshd;
pub mod state;
pub mod up;

use std::path::{Path, PathBuf};

use crate::config::{RemoteDef, TestbedConf};
pub use state::Dir;

/// Why a testbed command failed; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error(
        "the testbed needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) to {what}: run it with sudo (`sudo pairbench testbed {verb}`)"
    )]
    NotPrivileged { what: String, verb: String },
    #[error("{0}")]
    Invalid(String),
    #[error("no testbed is up (state folder {0}): start one with `sudo pairbench testbed up`")]
    NotUp(PathBuf),
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

impl TestbedError {
    pub fn io(path: &Path, what: &str, source: std::io::Error) -> TestbedError {
        TestbedError::Io {
            what: what.into(),
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Environment variable naming the state folder (set for scripts of a testbed run).
pub const DIR_ENV: &str = "PAIRBENCH_TESTBED_DIR";

/// The state folder: `flag`, else `$PAIRBENCH_TESTBED_DIR`, else `[testbed] state_dir`,
/// else /run/pairbench/testbed.
pub fn state_dir(flag: Option<&Path>, conf: &TestbedConf) -> Dir {
    let path = flag
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(DIR_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| conf.state_dir.clone())
        .unwrap_or_else(|| PathBuf::from(state::DEFAULT_DIR));
    Dir::new(std::path::absolute(&path).unwrap_or(path))
}

/// True when this process may make namespaces and links (root, or both capabilities).
pub fn privileged() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    const NET_ADMIN: u64 = 1 << 12;
    const SYS_ADMIN: u64 = 1 << 21;
    caps & NET_ADMIN != 0 && caps & SYS_ADMIN != 0
}

/// Refuse without the privileges, in one line.
pub fn need_privileges(what: &str, verb: &str) -> Result<(), TestbedError> {
    if privileged() {
        Ok(())
    } else {
        Err(TestbedError::NotPrivileged {
            what: what.into(),
            verb: verb.into(),
        })
    }
}

/// The hosts of the testbed in `dir` as `[[remote]]` definitions, so `--remote NAME`
/// reaches them through the ordinary SSH transport (empty when no testbed is up).
pub fn remote_defs(dir: &Dir) -> Vec<RemoteDef> {
    let Ok(Some(st)) = dir.load() else {
        return Vec::new();
    };
    if !st.complete {
        return Vec::new();
    }
    st.hosts
        .iter()
        .map(|h| RemoteDef {
            name: h.name.clone(),
            host: h.addr.clone(),
            user: Some(st.user.clone()),
            port: Some(22),
            identity_file: Some(dir.client_key().to_string_lossy().into_owned()),
            // The default (~/.pairbench of the user): the hosts share this machine's
            // files, so the agent is uploaded once per build, not once per testbed.
            workdir: None,
            slots: Some(h.slots),
            agent: None,
            known_hosts: Some(dir.known_hosts().to_string_lossy().into_owned()),
        })
        .collect()
}
