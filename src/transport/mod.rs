//! Where a script runs. The pair logic and the result writing talk to a [`Transport`]
//! only: start a script, wait for it, terminate it, copy its folder back. `local` runs
//! on this machine; `ssh` on another host.

pub mod local;
pub mod ssh;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::contain::Stop;
use crate::discover::Group;
use crate::process::Exit;
use crate::sockets::{Proto, Waited};

pub use local::LocalTransport;
pub use ssh::SshTransport;

/// One script to start on the transport's machine. Paths are paths on that machine.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    /// Where stdout and stderr go (files on that machine).
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Unique per script; processes carrying it are ended with the script.
    pub marker: String,
    /// The tracer it runs under (`--trace`; docs/resources.md).
    pub trace: Option<crate::config::Trace>,
    /// Sample its host this often while it runs, into `<cwd>/samples.csv` (`--sample`),
    /// where the transport's host is another machine (this one's are sampled by the
    /// runner).
    pub sample: Option<Duration>,
}

/// Why something could not be done on a transport: becomes an ERROR reason.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    Spawn(#[from] crate::process::SpawnError),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Host(String),
}

/// A running script on some transport.
pub trait Running: Send + Sync {
    /// The main process's exit, if it has exited.
    fn try_exit(&self) -> Option<Exit>;
    /// Wait up to `timeout` for the main process to exit.
    fn wait_timeout(&self, timeout: Duration) -> Option<Exit>;
    /// End the script's side: the grace sequence of `stop` on its process group and every
    /// other process of the side, then whatever is left at once; returns when all are
    /// gone. Idempotent.
    fn stop(&self, stop: Stop);
    /// The signal (`SIGTERM`, ...) after which the main process exited, when pairbench
    /// ended it.
    fn stopped_by(&self) -> Option<String> {
        None
    }
    /// What the script's side used (its whole process tree), once it has been stopped
    /// (docs/resources.md).
    fn usage(&self) -> Option<crate::contain::Usage> {
        None
    }
    /// The script's cgroup, where it runs on this machine in one (`--sample` reads its
    /// CPU).
    fn cgroup_dir(&self) -> Option<PathBuf> {
        None
    }
    /// True if [`Running::terminate`] found the main process still running.
    fn terminated_by_us(&self) -> bool;
    /// Why the transport lost track of the script (a dead SSH connection), if it did:
    /// its end will never be known, so the pair is an ERROR with this reason.
    fn failure(&self) -> Option<String> {
        None
    }
    /// Wait up to `limit` until a socket listens on `port` on the script's host, in the
    /// network namespace the script runs in (`open`), or until none does (`!open`),
    /// reading the kernel's socket tables there at least every 50 ms and never
    /// connecting (see [`crate::sockets`]). `Err` when this transport cannot see the
    /// sockets of its host.
    fn wait_port(
        &self,
        port: u16,
        proto: Proto,
        open: bool,
        limit: Duration,
    ) -> Result<Waited, TransportError> {
        let _ = (port, proto, open, limit);
        Err(TransportError::Host(
            "this transport cannot read the socket tables of its host".into(),
        ))
    }
}

/// What copying a folder back brought, besides its files.
#[derive(Debug, Default, Clone)]
pub struct Fetched {
    /// One line per thing not copied (links a remote host sent are never recreated
    /// here), kept in the pair's record.
    pub notes: Vec<String>,
}

/// The folders a group uses on a transport's machine.
#[derive(Debug, Clone)]
pub struct GroupPaths {
    /// The group's scripts (LOCAL_/REMOTE_TEST_ROOT_PATH).
    pub scripts: PathBuf,
    /// Root of all groups (LOCAL_/REMOTE_ROOT_PATH).
    pub root: PathBuf,
    /// The group's result folder for this tag (…_RESULTS_ROOT_PATH), cwd of hooks.
    pub results: PathBuf,
}

/// Where scripts run.
pub trait Transport: Send + Sync {
    /// `local`, or the host's name as the user wrote it.
    fn name(&self) -> &str;
    /// The remote host's address as reachable from this machine.
    fn address(&self) -> String;
    /// This machine's address as seen from the remote host.
    fn local_address(&self) -> String;
    /// User and port, for the mirage-bench variables.
    fn user(&self) -> String;
    fn port(&self) -> u16;
    /// Make the group's scripts available and its result folder exist; returns paths.
    fn prepare_group(
        &self,
        group: &Group,
        tag: &str,
        local_results: &Path,
    ) -> Result<GroupPaths, TransportError>;
    /// A folder on the transport's machine for a side of a pair, given the local one.
    /// Creates it.
    fn side_dir(
        &self,
        paths: &GroupPaths,
        rel: &Path,
        local: &Path,
    ) -> Result<PathBuf, TransportError>;
    /// Start a script.
    fn start(&self, launch: &Launch) -> Result<Box<dyn Running>, TransportError>;
    /// Copy `remote` (a folder on the transport's machine) into `local`; no-op when they
    /// are the same folder. Nothing lands outside `local`, nothing is written through a
    /// link, and links are not recreated (they are listed in [`Fetched::notes`]).
    fn fetch(&self, remote: &Path, local: &Path) -> Result<Fetched, TransportError>;
    /// The group is done: copy back what is left and clean up.
    fn finish_group(&self, paths: &GroupPaths, local_results: &Path) -> Result<(), TransportError>;
    /// `Err(why)` once the host is lost (its remaining pairs go to other hosts).
    fn healthy(&self) -> Result<(), String> {
        Ok(())
    }
    /// Do the scripts it starts run on this machine (so this machine's helpers can be on
    /// their PATH)?
    fn runs_here(&self) -> bool {
        false
    }
    /// Can a script's exit still be on its way when the local test ends (a remote host
    /// reports it over a connection)? Then a script found gone when pairbench comes to end
    /// it ended on its own.
    fn exit_may_lag(&self) -> bool {
        true
    }
    /// Pairs this host runs at once; `None` for as many as `--jobs`.
    fn slots(&self) -> Option<usize> {
        None
    }
    /// Is TCP `port` taken on the host (a socket of any state has it), as its socket
    /// tables say; `Err` when this transport cannot read them.
    fn port_taken(&self, port: u16) -> Result<bool, TransportError> {
        let _ = port;
        Err(TransportError::Host(
            "this transport cannot read the socket tables of its host".into(),
        ))
    }
    /// What the host is, for run.json.
    fn host_info(&self) -> crate::hostinfo::HostInfo {
        crate::hostinfo::this_machine(self.name(), "remote", &self.address())
    }
}
