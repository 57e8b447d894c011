//! The testbed's state on disk (docs/testbed.md, "State"): what `up` made — namespaces,
//! the machine's TAP and route, cgroups, processes with their start times, keys — written
//! *before* each thing is made, so `down` removes everything even after a `kill -9` of
//! pairbench in the middle of `up`. One JSON file, replaced atomically; a lock file keeps
//! two commands from changing it at once.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TestbedError;
use super::shape::LinkSpec;

/// The default state folder (a tmpfs: a reboot forgets it, as it forgets the namespaces).
pub const DEFAULT_DIR: &str = "/run/pairbench/testbed";

/// A process the testbed started, known by pid and start time (so a reused pid is never
/// signalled).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Proc {
    pub pid: i32,
    /// Field 22 of /proc/PID/stat: clock ticks after boot.
    pub start: u64,
}

impl Proc {
    /// The process `pid` as it is now (`None` when it does not exist).
    pub fn of(pid: i32) -> Option<Proc> {
        start_time(pid).map(|start| Proc { pid, start })
    }

    /// True when this very process still runs (not a zombie, not a reused pid).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start) && !is_zombie(self.pid)
    }

    /// SIGKILL it if it is still this process.
    pub fn kill(&self) {
        if self.alive() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn start_time(pid: i32) -> Option<u64> {
    // After "pid (comm)": field 3 is index 0, so field 22 is index 19.
    stat_fields(pid)?.get(19)?.parse().ok()
}

fn is_zombie(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s == "Z" || s == "X"))
}

/// One host: a network namespace, its switch and link filter, its sshd.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostState {
    pub name: String,
    /// The network namespace (`ip netns` name).
    pub netns: String,
    pub addr: String,
    pub slots: usize,
    /// The link as configured (shape), and whether it is cut.
    pub link: LinkSpec,
    /// The link as `up` made it (what a pair's changes are undone to).
    #[serde(default)]
    pub configured: LinkSpec,
    pub cut: bool,
    pub paused: bool,
    pub stopped: bool,
    /// The host's own `vde_switch` (inside the namespace, with the TAP `eth0`).
    pub switch: Option<Proc>,
    /// The `wirefilter` between the host's switch and the testbed's hub: the link.
    pub wire: Option<Proc>,
    pub sshd: Option<Proc>,
}

/// What a testbed is made of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct State {
    pub version: u32,
    /// Short id of this state folder: part of every name the testbed gives the kernel.
    pub id: String,
    pub subnet: String,
    /// This machine's address on the testbed (on `tap`).
    pub machine_addr: String,
    /// The TAP device of this machine on the hub switch.
    pub tap: String,
    /// Who logs in to the hosts (the user who ran `up`, also under sudo).
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// The `unreachable` route for the subnet was (to be) added.
    pub route: bool,
    /// The testbed's cgroup (v2), when the machine has one.
    pub cgroup: Option<PathBuf>,
    /// The hub `vde_switch` on this machine.
    pub hub: Option<Proc>,
    pub hosts: Vec<HostState>,
    /// Every host is up: false while `up` works (or after it was killed).
    pub complete: bool,
    pub created_at: String,
}

impl State {
    pub fn host(&self, name: &str) -> Option<&HostState> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn host_mut(&mut self, name: &str) -> Option<&mut HostState> {
        self.hosts.iter_mut().find(|h| h.name == name)
    }
}

/// The files of one state folder.
#[derive(Debug, Clone)]
pub struct Dir {
    pub path: PathBuf,
}

impl Dir {
    pub fn new(path: PathBuf) -> Dir {
        Dir { path }
    }

    pub fn state_file(&self) -> PathBuf {
        self.path.join("state.json")
    }
    pub fn client_key(&self) -> PathBuf {
        self.path.join("client_key")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.path.join("known_hosts")
    }
    pub fn ssh_config(&self) -> PathBuf {
        self.path.join("ssh_config")
    }
    pub fn hub_sock(&self) -> PathBuf {
        self.path.join("hub.sock")
    }
    pub fn hub_pid(&self) -> PathBuf {
        self.path.join("hub.pid")
    }
    pub fn host_dir(&self, name: &str) -> PathBuf {
        self.path.join("hosts").join(name)
    }

    /// The short id of this folder (hash of its absolute path).
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let abs = std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone());
        let d = Sha256::digest(abs.as_os_str().as_encoded_bytes());
        d.iter().take(3).map(|b| format!("{b:02x}")).collect()
    }

    /// The state, if a testbed was (being) made here.
    pub fn load(&self) -> Result<Option<State>, TestbedError> {
        let file = self.state_file();
        match std::fs::read_to_string(&file) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| TestbedError::Failed(format!(
                    "the testbed state {} is damaged ({e}): remove what it lists by hand (ip netns list) and delete the file",
                    file.display()
                ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TestbedError::io(&file, "read", e)),
        }
    }

    /// Write the state atomically (readable by all: it holds no secret).
    pub fn save(&self, st: &State) -> Result<(), TestbedError> {
        let file = self.state_file();
        let tmp = self.path.join("state.json.tmp");
        let text = serde_json::to_string_pretty(st)
            .map_err(|e| TestbedError::Failed(format!("cannot encode the testbed state: {e}")))?;
        write_file(&tmp, text.as_bytes(), 0o644)?;
        std::fs::rename(&tmp, &file).map_err(|e| TestbedError::io(&file, "write", e))
    }

    /// Create the folder (and its parents) if needed.
    pub fn create(&self) -> Result<(), TestbedError> {
        std::fs::create_dir_all(&self.path)
            .map_err(|e| TestbedError::io(&self.path, "create", e))?;
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| TestbedError::io(&self.path, "set permissions of", e))
    }

    /// Hold the folder's lock until the guard is dropped (waits for another command).
    pub fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>, TestbedError> {
        self.create()?;
        let path = self.path.join("lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| TestbedError::io(&path, "open", e))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| TestbedError::Failed(format!("cannot lock {}: {e}", path.display())))
    }
}

/// Write `bytes` to `path` (created with `mode`, replaced if there).
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TestbedError> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(path)
        .map_err(|e| TestbedError::io(path, "create", e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| TestbedError::io(path, "write", e))
}
