//! Processes on this machine: spawning scripts into their own process group, reaping
//! every child (including orphans that were re-parented to us), waiting with timeouts,
//! and the kill sequence (SIGHUP → SIGTERM → SIGKILL, a grace period apart) that ends a
//! whole process group together with the processes that escaped it.
//!
//! pairbench makes itself a *child subreaper* (Linux), so that daemons started by a
//! script (`nohup`, `setsid`, double fork) are re-parented to pairbench instead of init.
//! One reaper thread collects every exit; it never steals the exit status of a process
//! that is being spawned, because spawning and reaping share one lock.
//!
//! Escaped processes are found through a marker in their environment
//! ([`MARKER_VAR`]): every script of a pair gets a unique value, and
//! [`find_marked`] scans `/proc` for it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

/// Environment variable that carries the per-script marker used to find escaped processes.
pub const MARKER_VAR: &str = "PAIRBENCH_MARKER";

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

impl Exit {
    /// The exit code, when the process exited (not killed by a signal).
    pub fn code(self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(c),
            Exit::Signal(_) => None,
        }
    }

    /// What goes in an `exit_code` file: the code, or `signal NAME`.
    pub fn file_text(self) -> String {
        match self {
            Exit::Code(c) => c.to_string(),
            Exit::Signal(s) => format!("signal {}", signal_name(s)),
        }
    }

    /// Parse what [`Exit::file_text`] wrote.
    pub fn parse_file_text(text: &str) -> Option<Exit> {
        let t = text.trim();
        if let Ok(c) = t.parse() {
            return Some(Exit::Code(c));
        }
        let name = t.strip_prefix("signal ")?;
        Signal::iterator()
            .find(|s| s.as_str() == name)
            .map(|s| Exit::Signal(s as i32))
            .or_else(|| name.parse().ok().map(Exit::Signal))
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited {c}"),
            Exit::Signal(s) => write!(f, "killed by {}", signal_name(*s)),
        }
    }
}

/// `SIGTERM` for 15, or the number when unknown.
pub fn signal_name(sig: i32) -> String {
    Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| sig.to_string())
}

/// The exit slot of one spawned process, filled in by the reaper.
#[derive(Default)]
struct ExitSlot {
    exit: Mutex<Option<Exit>>,
    cv: Condvar,
}

struct Reaper {
    /// Processes we spawned and still wait for, by pid.
    table: Mutex<HashMap<i32, Arc<ExitSlot>>>,
    /// Signalled when a process is added to an empty table.
    more: Condvar,
}

fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<Reaper> = OnceLock::new();
    REAPER.get_or_init(|| {
        #[cfg(target_os = "linux")]
        {
            // Orphans of our scripts come to us, so nothing escapes to init unseen.
            let _ = nix::sys::prctl::set_child_subreaper(true);
        }
        let r = Reaper {
            table: Mutex::new(HashMap::new()),
            more: Condvar::new(),
        };
        std::thread::Builder::new()
            .name("pairbench-reaper".into())
            .spawn(reap_loop)
            .expect("cannot start the reaper thread");
        r
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn reap_loop() {
    let r = reaper();
    loop {
        // Peek at an exited child without reaping it, then reap it under the table lock:
        // a process being spawned (table locked) is never reaped behind std's back.
        match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(status) => {
                let Some(pid) = status.pid() else { continue };
                let mut table = lock(&r.table);
                let reaped = waitpid(pid, Some(WaitPidFlag::WNOHANG));
                let exit = match reaped {
                    Ok(WaitStatus::Exited(_, code)) => Some(Exit::Code(code)),
                    Ok(WaitStatus::Signaled(_, sig, _)) => Some(Exit::Signal(sig as i32)),
                    _ => None,
                };
                if let (Some(exit), Some(slot)) = (exit, table.remove(&pid.as_raw())) {
                    *lock(&slot.exit) = Some(exit);
                    slot.cv.notify_all();
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => {
                // No children at all: sleep until one is spawned.
                let table = lock(&r.table);
                let _unused = r
                    .more
                    .wait_timeout_while(table, Duration::from_millis(200), |t| t.is_empty())
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Variables added to (or replacing those of) pairbench's own environment.
    pub env: Vec<(String, String)>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Unique marker value put in [`MARKER_VAR`].
    pub marker: String,
}

/// Why a script could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot create {path}: {source}")]
    Output { path: PathBuf, source: io::Error },
    #[error("cannot execute {}: {reason}", .path.display())]
    Exec { path: PathBuf, reason: String },
}

/// A started process, in its own process group.
pub struct Child {
    pid: Pid,
    marker: String,
    slot: Arc<ExitSlot>,
    terminated_by_us: AtomicBool,
    terminating: Mutex<()>,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child").field("pid", &self.pid).finish()
    }
}

/// Start `spec` in a new process group with its output going straight to files.
pub fn spawn(spec: &Spec) -> Result<Child, SpawnError> {
    let out = |p: &Path| {
        File::create(p).map_err(|source| SpawnError::Output {
            path: p.to_path_buf(),
            source,
        })
    };
    let stdout = out(&spec.stdout)?;
    let stderr = out(&spec.stderr)?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env(MARKER_VAR, &spec.marker)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0);
    start(cmd, spec)
}

/// Start `spec` on pairbench's terminal (a shell for the user: `run --interactive`), in
/// its own process group made the terminal's foreground; [`take_terminal_back`] after.
pub fn spawn_on_terminal(spec: &Spec) -> Result<Child, SpawnError> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env(MARKER_VAR, &spec.marker)
        .process_group(0);
    // SAFETY: only system calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            use nix::sys::signal::{SigHandler, Signal, signal};
            // Taking the terminal from a background group would stop us: ignore that.
            signal(Signal::SIGTTOU, SigHandler::SigIgn)?;
            let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpgrp());
            signal(Signal::SIGTTOU, SigHandler::SigDfl)?;
            Ok(())
        });
    }
    start(cmd, spec)
}

/// Make pairbench's process group the terminal's foreground again.
pub fn take_terminal_back() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIGTTOU is ignored only around the call, and put back as it was.
    unsafe {
        if let Ok(old) = signal(Signal::SIGTTOU, SigHandler::SigIgn) {
            let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpgrp());
            let _ = signal(Signal::SIGTTOU, old);
        }
    }
}

fn start(mut cmd: Command, spec: &Spec) -> Result<Child, SpawnError> {
    let r = reaper();
    let slot = Arc::new(ExitSlot::default());
    let mut table = lock(&r.table);
    let child = cmd.spawn().map_err(|e| SpawnError::Exec {
        path: spec.program.clone(),
        reason: explain_exec_error(&spec.program, &e),
    })?;
    let pid = Pid::from_raw(child.id() as i32);
    // The Child handle is not needed: the reaper collects the exit status.
    drop(child);
    let was_empty = table.is_empty();
    table.insert(pid.as_raw(), slot.clone());
    drop(table);
    if was_empty {
        r.more.notify_all();
    }
    Ok(Child {
        pid,
        marker: spec.marker.clone(),
        slot,
        terminated_by_us: AtomicBool::new(false),
        terminating: Mutex::new(()),
    })
}

/// Turn an exec failure into a reason a user can act on.
pub fn explain_exec_error(program: &Path, e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc_enoexec) if libc_enoexec == Errno::ENOEXEC as i32 => {
            "exec format error: not a binary and no '#!' interpreter line".to_string()
        }
        Some(enoent) if enoent == Errno::ENOENT as i32 && program.exists() => {
            match read_shebang(program) {
                Some(interp) => format!("interpreter '{interp}' not found (from its '#!' line)"),
                None => "interpreter not found".to_string(),
            }
        }
        Some(eacces) if eacces == Errno::EACCES as i32 => {
            "permission denied (is it executable, and its interpreter too?)".to_string()
        }
        _ => e.to_string(),
    }
}

fn read_shebang(path: &Path) -> Option<String> {
    let mut buf = [0u8; 256];
    let n = File::open(path).ok()?.read(&mut buf).ok()?;
    let head = buf[..n].strip_prefix(b"#!")?;
    let line = head.split(|&b| b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    line.split_whitespace().next().map(str::to_string)
}

impl Child {
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// The exit of the main process, if it has exited.
    pub fn try_exit(&self) -> Option<Exit> {
        *lock(&self.slot.exit)
    }

    /// Wait up to `timeout` for the main process to exit.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Exit> {
        let guard = lock(&self.slot.exit);
        let (guard, _) = self
            .slot
            .cv
            .wait_timeout_while(guard, timeout, |e| e.is_none())
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }

    /// True when pairbench terminated the main process while it was still running.
    pub fn terminated_by_us(&self) -> bool {
        self.terminated_by_us.load(Ordering::SeqCst)
    }

    /// End the process group and every process carrying this child's marker:
    /// SIGHUP, SIGTERM, SIGKILL, `grace` apart, stopping as soon as all are gone.
    /// Returns when everything is gone. Safe to call more than once, from any thread.
    pub fn terminate(&self, grace: Duration) {
        let _one_at_a_time = lock(&self.terminating);
        if self.try_exit().is_none() {
            self.terminated_by_us.store(true, Ordering::SeqCst);
        }
        kill_sequence(Some(self.pid), &self.marker, grace);
    }
}

/// Is anything left of process group `pgid`?
fn group_alive(pgid: Pid) -> bool {
    !matches!(killpg(pgid, None), Err(Errno::ESRCH))
}

/// The kill sequence on group `pgid` (if any) and on every live process marked `marker`.
pub fn kill_sequence(pgid: Option<Pid>, marker: &str, grace: Duration) {
    let alive = |marked: &mut Vec<Pid>| {
        *marked = find_marked(marker);
        pgid.is_some_and(group_alive) || !marked.is_empty()
    };
    let mut marked = Vec::new();
    for sig in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGKILL] {
        if !alive(&mut marked) {
            return;
        }
        if let Some(g) = pgid {
            let _ = killpg(g, sig);
        }
        // Marked processes still in the group got the signal already; signalling them
        // twice would make a script that traps it see it twice.
        for p in &marked {
            let in_group = pgid.is_some_and(|g| nix::unistd::getpgid(Some(*p)) == Ok(g));
            if !in_group {
                let _ = kill(*p, sig);
            }
        }
        // After SIGKILL, wait (boundedly) for the kernel to finish them off.
        let wait = if sig == Signal::SIGKILL {
            Duration::from_secs(10).max(grace)
        } else {
            grace
        };
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(1);
        loop {
            let group_gone = pgid.is_none_or(|g| !group_alive(g));
            let marked_gone = marked.iter().all(|p| !pid_alive(*p));
            if group_gone && marked_gone {
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// Alive and not a zombie.
fn pid_alive(pid: Pid) -> bool {
    match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(stat) => proc_state(&stat).is_some_and(|s| s != b'Z' && s != b'X'),
        Err(_) => false,
    }
}

fn proc_state(stat: &[u8]) -> Option<u8> {
    // "pid (comm) S ..." — comm may contain anything, so look after the last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).copied()
}

/// Every live process (not a zombie) whose environment holds `MARKER_VAR=marker`.
pub fn find_marked(marker: &str) -> Vec<Pid> {
    let mut needle = Vec::with_capacity(MARKER_VAR.len() + marker.len() + 2);
    needle.extend_from_slice(MARKER_VAR.as_bytes());
    needle.push(b'=');
    needle.extend_from_slice(marker.as_bytes());
    needle.push(0);
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut buf = Vec::with_capacity(8192);
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = parse_pid(&name) else {
            continue;
        };
        if pid == me {
            continue;
        }
        buf.clear();
        let Ok(mut f) = File::open(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if f.read_to_end(&mut buf).is_err() || buf.is_empty() {
            continue;
        }
        // Entries are NUL-separated; match a whole entry.
        let hit = buf.starts_with(&needle)
            || buf
                .windows(needle.len() + 1)
                .any(|w| w[0] == 0 && w[1..] == needle[..]);
        if hit && pid_alive(Pid::from_raw(pid)) {
            found.push(Pid::from_raw(pid));
        }
    }
    found
}

fn parse_pid(name: &OsStr) -> Option<i32> {
    let b = name.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// SIGKILL every process group we started and have not reaped yet (second Ctrl-C).
pub fn kill_all_now() {
    let table = lock(&reaper().table);
    for pid in table.keys() {
        let _ = killpg(Pid::from_raw(*pid), Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_text_round_trips() {
        for e in [
            Exit::Code(0),
            Exit::Code(3),
            Exit::Signal(9),
            Exit::Signal(15),
        ] {
            assert_eq!(Exit::parse_file_text(&e.file_text()), Some(e));
        }
        assert_eq!(Exit::Signal(15).to_string(), "killed by SIGTERM");
        assert_eq!(Exit::Code(1).to_string(), "exited 1");
    }

    #[test]
    fn state_after_odd_comm() {
        assert_eq!(proc_state(b"12 (a) b) S 1 2"), Some(b'S'));
        assert_eq!(proc_state(b"12 (x) Z 1"), Some(b'Z'));
    }
}
