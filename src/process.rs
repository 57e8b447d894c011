//! Processes on this machine: spawning scripts into their own process group and their
//! side's containment (born in the side's cgroup with clone3, or below the sweep's
//! holder: see [`crate::contain`] and docs/containment.md), reaping every
//! child (including orphans that were re-parented to us), waiting with timeouts, and
//! ending a side: its stop signal, SIGTERM, SIGKILL, a grace period apart, to its process
//! group and every other process of the side, then `cgroup.kill`.
//!
//! pairbench makes itself a *child subreaper* (Linux), so that daemons started by a
//! script (`nohup`, `setsid`, double fork) are re-parented to pairbench instead of init.
//! One reaper thread collects every exit; it never steals the exit status of a process
//! that is being spawned, because spawning and reaping share one lock.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

use crate::contain::{self, PreExec, Rusage, Side, Stop, StopSignal};

pub use crate::contain::procfs::MARKER_VAR;

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

/// A process we spawned and still wait for.
struct Waited {
    slot: Arc<ExitSlot>,
    /// Where its rusage goes (its side's).
    rusage: Arc<Mutex<Rusage>>,
}

struct Reaper {
    /// Processes we spawned and still wait for, by pid.
    table: Mutex<HashMap<i32, Waited>>,
    /// Signalled when a process is added to an empty table.
    more: Condvar,
    /// Signalled when a spawn is over (its process is in the table, or it failed).
    spawned: Condvar,
    /// The sides in a cgroup, by their `0::` path in /proc/<pid>/cgroup: orphans of a
    /// side that come to us are reaped into its rusage (docs/resources.md).
    by_cgroup: Mutex<HashMap<String, Arc<Mutex<Rusage>>>>,
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
            spawned: Condvar::new(),
            by_cgroup: Mutex::new(HashMap::new()),
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
                if !table.contains_key(&pid.as_raw()) && SPAWNING.load(Ordering::SeqCst) > 0 {
                    // Perhaps a process being spawned (not in the table yet), which the
                    // spawner may reap itself: look again once the spawns are done.
                    let _unused = r
                        .spawned
                        .wait_timeout_while(table, Duration::from_millis(100), |t| {
                            !t.contains_key(&pid.as_raw()) && SPAWNING.load(Ordering::SeqCst) > 0
                        })
                        .unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                // An orphan of a side: which side, while it is still a zombie.
                let orphan_of = if table.contains_key(&pid.as_raw()) {
                    None
                } else {
                    side_of_orphan(r, pid.as_raw())
                };
                // From here until its rusage is added, the process is neither a zombie
                // nor counted: settle_reaper waits for REAPING to be zero too.
                REAPING.fetch_add(1, Ordering::SeqCst);
                let (exit, usage) = wait4(pid.as_raw());
                let waited = if exit.is_some() {
                    table.remove(&pid.as_raw())
                } else {
                    None
                };
                if let Some(u) = usage {
                    let sink = waited.as_ref().map(|w| &w.rusage).or(orphan_of.as_ref());
                    if let Some(sink) = sink {
                        lock(sink).add(&u);
                    }
                }
                REAPING.fetch_sub(1, Ordering::SeqCst);
                if let (Some(exit), Some(w)) = (exit, waited) {
                    *lock(&w.slot.exit) = Some(exit);
                    w.slot.cv.notify_all();
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

/// Reap `pid` if it has exited: how it ended and its rusage (that of the children it
/// waited for included).
fn wait4(pid: i32) -> (Option<Exit>, Option<nix::libc::rusage>) {
    use nix::libc;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data the kernel fills in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals.
    let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
    if r != pid {
        return (None, None);
    }
    let exit = if libc::WIFEXITED(status) {
        Some(Exit::Code(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(Exit::Signal(libc::WTERMSIG(status)))
    } else {
        None
    };
    (exit, Some(ru))
}

/// The `0::` line of /proc/<pid>/cgroup (a zombie keeps its cgroup until it is reaped).
fn cgroup_of(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// The side a re-parented orphan `pid` belongs to (its cgroup, or one above it).
fn side_of_orphan(r: &Reaper, pid: i32) -> Option<Arc<Mutex<Rusage>>> {
    let sides = lock(&r.by_cgroup);
    if sides.is_empty() {
        return None;
    }
    let mut path = cgroup_of(pid)?;
    loop {
        if let Some(s) = sides.get(&path) {
            return Some(s.clone());
        }
        let cut = path.rfind('/')?;
        if cut == 0 {
            return None;
        }
        path.truncate(cut);
    }
}

/// Spawns under way: their process may exit before it is in the reaper's table.
static SPAWNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A spawn under way (see [`SPAWNING`]); when it ends, the reaper looks again.
struct Spawning;

impl Spawning {
    fn begin() -> Spawning {
        SPAWNING.fetch_add(1, Ordering::SeqCst);
        Spawning
    }
}

impl Drop for Spawning {
    fn drop(&mut self) {
        let r = reaper();
        let _table = lock(&r.table);
        SPAWNING.fetch_sub(1, Ordering::SeqCst);
        r.spawned.notify_all();
    }
}

/// Processes the reaper has reaped whose rusage it has not added yet.
static REAPING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Wait until the reaper has reaped every child that has exited and added its rusage, so
/// a side's rusage holds its last processes. The bound is generous: it is only reached
/// when the reaper thread is starved (a loaded machine), and waiting less would record a
/// side's usage without them.
fn settle_reaper() {
    use nix::libc;
    let end = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        // SAFETY: siginfo_t is plain data the kernel fills in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a local.
        let r = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is set by waitid (0 when no child has exited).
        let zombie = r == 0 && unsafe { info.si_pid() } != 0;
        if (!zombie && REAPING.load(Ordering::SeqCst) == 0) || std::time::Instant::now() >= end {
            return;
        }
        std::thread::sleep(Duration::from_micros(100));
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
    #[error("cannot create {path}: {err}")]
    Output { path: PathBuf, err: io::Error },
    #[error("cannot execute {}: {reason}", .path.display())]
    Exec { path: PathBuf, reason: String },
    #[error("cannot make the cgroup of {}: {source}", .path.display())]
    Contain { path: PathBuf, source: io::Error },
}

/// A started process, in its own process group and its own side.
pub struct Child {
    pid: Pid,
    slot: Arc<ExitSlot>,
    side: Side,
    terminated_by_us: AtomicBool,
    /// The signal after which the main process exited, when pairbench ended it.
    stopped_by: Mutex<Option<Signal>>,
    terminating: Mutex<()>,
    /// The side's key in the reaper's `by_cgroup`, under `cgroup2`.
    cgroup_key: Option<String>,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child").field("pid", &self.pid).finish()
    }
}

/// Start `spec` in a new process group and a new side, with its output going straight
/// to files.
pub fn spawn(spec: &Spec) -> Result<Child, SpawnError> {
    spawn_in(spec, false)
}

/// Start `spec` on pairbench's terminal (a shell for the user: `run --interactive`), in
/// its own process group made the terminal's foreground, contained in its side like any
/// script; [`take_terminal_back`] after. Its stdout and stderr files stay empty.
pub fn spawn_on_terminal(spec: &Spec) -> Result<Child, SpawnError> {
    spawn_in(spec, true)
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

fn spawn_in(spec: &Spec, on_terminal: bool) -> Result<Child, SpawnError> {
    let out = |p: &Path| {
        File::create(p).map_err(|err| SpawnError::Output {
            path: p.to_path_buf(),
            err,
        })
    };
    let stdout = out(&spec.stdout)?;
    let stderr = out(&spec.stderr)?;
    let stdio = [stdout.as_raw_fd(), stderr.as_raw_fd()];
    let label = spec.marker.rsplit('-').next().unwrap_or("side");
    let side = contain::current()
        .side(label)
        .map_err(|source| SpawnError::Contain {
            path: spec.program.clone(),
            source,
        })?;
    let mut status_pipe = None;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env(MARKER_VAR, &spec.marker)
        .process_group(0);
    if on_terminal {
        // SAFETY: only signal(2) and tcsetpgrp(3) (an ioctl) between fork and exec.
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
    } else {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(stdout.try_clone().map_err(|err| {
                SpawnError::Output {
                    path: spec.stdout.clone(),
                    err,
                }
            })?))
            .stderr(Stdio::from(stderr.try_clone().map_err(|err| {
                SpawnError::Output {
                    path: spec.stderr.clone(),
                    err,
                }
            })?));
    }
    match side.pre_exec() {
        PreExec::Join(fd) => {
            let mem = side.mem_procs_fd();
            // SAFETY: between fork and exec only write(2), which is async-signal-safe,
            // on descriptors opened before the fork.
            unsafe {
                cmd.pre_exec(move || {
                    if let Some(m) = mem {
                        // Peak memory only: a failure leaves it unmeasured.
                        nix::libc::write(m, b"0".as_ptr().cast(), 1);
                    }
                    let r = nix::libc::write(fd, b"0".as_ptr().cast(), 1);
                    if r == 1 {
                        Ok(())
                    } else {
                        Err(io::Error::last_os_error())
                    }
                });
            }
        }
        PreExec::Holder => {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| {
                SpawnError::Contain {
                    path: spec.program.clone(),
                    source: e.into(),
                }
            })?;
            let fd = w.as_raw_fd();
            // SAFETY: runs in the forked child only; become_holder makes async-signal-safe
            // calls only.
            unsafe {
                cmd.pre_exec(move || contain::sweep::become_holder(fd));
            }
            status_pipe = Some((r, w));
        }
    }
    // The kernel runs the script, or says why not: exec it ourselves with execve (the
    // C library's execvp would hand a file it cannot run to /bin/sh).
    let exec = Arc::new(ExecArgs::new(spec).map_err(|source| SpawnError::Exec {
        path: spec.program.clone(),
        reason: source.to_string(),
    })?);
    {
        let exec = exec.clone();
        // SAFETY: execve(2) is async-signal-safe; its arguments were built before the fork.
        unsafe {
            cmd.pre_exec(move || exec.exec());
        }
    }
    let r = reaper();
    let slot = Arc::new(ExitSlot::default());
    // Under the sweep the reaper sees the holder end (the side is empty); the script's
    // exit comes through the status pipe.
    let first_slot = if status_pipe.is_some() {
        Arc::new(ExitSlot::default())
    } else {
        slot.clone()
    };
    // The reaper keeps reaping meanwhile (the other side's exit is not held up by this
    // spawn), except a process it does not know while a spawn is under way.
    let spawning = Spawning::begin();
    // Under cgroup2, born in its cgroup (clone3): no migration to wait for. The Child
    // handle of std is not needed: the reaper collects the exit status.
    let born = match side.cgroup_dir_fd() {
        Some(cg) if !on_terminal => {
            clone_into_cgroup(&exec, stdio, &spec.cwd, cg, side.mem_procs_fd()).transpose()
        }
        _ => None,
    };
    let spawned = born.unwrap_or_else(|| cmd.spawn().map(|c| c.id() as i32));
    let pid = match spawned {
        Ok(pid) => Pid::from_raw(pid),
        Err(e) => {
            drop(spawning);
            side.finish();
            return Err(SpawnError::Exec {
                path: spec.program.clone(),
                reason: explain_exec_error(&spec.program, &e),
            });
        }
    };
    side.started(pid.as_raw());
    let mut table = lock(&r.table);
    let was_empty = table.is_empty();
    // Its orphans come to us: they are known by its cgroup.
    let cgroup_key = side.cgroup_path().map(str::to_string);
    if let Some(k) = &cgroup_key {
        lock(&r.by_cgroup).insert(k.clone(), side.rusage_sink());
    }
    table.insert(
        pid.as_raw(),
        Waited {
            slot: first_slot,
            rusage: side.rusage_sink(),
        },
    );
    drop(table);
    drop(spawning);
    if let Some((r, w)) = status_pipe {
        drop(w);
        let slot = slot.clone();
        std::thread::Builder::new()
            .name("pairbench-status".into())
            .spawn(move || read_status(r, &slot))
            .map_err(|source| SpawnError::Contain {
                path: spec.program.clone(),
                source,
            })?;
    }
    if was_empty {
        r.more.notify_all();
    }
    Ok(Child {
        pid,
        slot,
        side,
        terminated_by_us: AtomicBool::new(false),
        stopped_by: Mutex::new(None),
        terminating: Mutex::new(()),
        cgroup_key,
    })
}

/// What execve needs, built before the fork (nothing is allocated after it).
struct ExecArgs {
    program: std::ffi::CString,
    _argv: Vec<std::ffi::CString>,
    _envp: Vec<std::ffi::CString>,
    argv: Vec<*const nix::libc::c_char>,
    envp: Vec<*const nix::libc::c_char>,
}

// SAFETY: the pointers point into the CStrings owned by the same value, which is only
// read (in the forked child).
unsafe impl Send for ExecArgs {}
// SAFETY: as above: nothing mutates them.
unsafe impl Sync for ExecArgs {}

impl ExecArgs {
    fn new(spec: &Spec) -> io::Result<ExecArgs> {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |b: &[u8]| {
            CString::new(b).map_err(|_| io::Error::other("a NUL byte in an argument or variable"))
        };
        let path = std::path::absolute(&spec.program)?;
        let program = c(path.as_os_str().as_bytes())?;
        let mut argv = vec![c(spec.program.as_os_str().as_bytes())?];
        for a in &spec.args {
            argv.push(c(a.as_bytes())?);
        }
        let mut vars: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os().collect();
        let mut set = |k: &str, v: &str| {
            vars.retain(|(ek, _)| ek.as_bytes() != k.as_bytes());
            vars.push((k.into(), v.into()));
        };
        for (k, v) in &spec.env {
            set(k, v);
        }
        set(MARKER_VAR, &spec.marker);
        let mut envp = Vec::with_capacity(vars.len());
        for (k, v) in &vars {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            envp.push(c(&kv)?);
        }
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        Ok(ExecArgs {
            program,
            argv: ptrs(&argv),
            envp: ptrs(&envp),
            _argv: argv,
            _envp: envp,
        })
    }

    /// In the forked child: execve, or the reason it failed.
    fn exec(&self) -> io::Result<()> {
        // SAFETY: NUL-terminated strings and NULL-terminated arrays built in `new`.
        unsafe {
            nix::libc::execve(
                self.program.as_ptr(),
                self.argv.as_ptr(),
                self.envp.as_ptr(),
            );
        }
        Err(io::Error::last_os_error())
    }
}

/// clone3's flag (linux/sched.h); the libc crate's constant does not fit its type.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2), up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Start `exec` as a new process born in the cgroup `cgroup` (a directory descriptor),
/// with `stdio` as its stdout and stderr, /dev/null as stdin, in `cwd`, in a process
/// group of its own. `Ok(None)` where the kernel cannot (no clone3): the caller falls
/// back to fork and joining the cgroup.
fn clone_into_cgroup(
    exec: &ExecArgs,
    stdio: [std::os::fd::RawFd; 2],
    cwd: &Path,
    cgroup: std::os::fd::RawFd,
    mem_v1: Option<std::os::fd::RawFd>,
) -> io::Result<Option<i32>> {
    use nix::libc;
    use std::os::unix::ffi::OsStrExt;
    let null = File::open("/dev/null")?;
    let cwd = std::ffi::CString::new(cwd.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("a NUL byte in the folder name"))?;
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let fds = [null.as_raw_fd(), stdio[0], stdio[1]];
    let w = err_w.as_raw_fd();
    let child = ChildArgs {
        exec,
        fds,
        cwd: &cwd,
        err: w,
        mem_v1: mem_v1.unwrap_or(-1),
    };
    let pid = spawn_vfork(&child, cgroup);
    if pid < 0 {
        let e = io::Error::from_raw_os_error(-pid as i32);
        return match e.raw_os_error() {
            Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::E2BIG) | Some(libc::EPERM) => {
                Ok(None)
            }
            _ => Err(e),
        };
    }
    let pid = pid as i32;
    drop(err_w);
    // The child's errno if it could not exec; nothing (end of file) once it did.
    let mut f = File::from(err_r);
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if got == 4 {
        let _ = waitpid(Pid::from_raw(pid), None);
        return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(buf)));
    }
    Ok(Some(pid))
}

/// What the child of [`spawn_vfork`] needs, built before the clone.
struct ChildArgs<'a> {
    exec: &'a ExecArgs,
    fds: [std::os::fd::RawFd; 3],
    cwd: &'a std::ffi::CStr,
    err: std::os::fd::RawFd,
    mem_v1: std::os::fd::RawFd,
}

/// clone3 into `cgroup` as a fork, where [`spawn_vfork`]'s entry into the child is not
/// written (it is per CPU architecture). Returns the pid, or `-errno`.
#[cfg(not(target_arch = "x86_64"))]
fn spawn_vfork(child: &ChildArgs, cgroup: std::os::fd::RawFd) -> i64 {
    use nix::libc;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM is a fork; the child only makes async-signal-safe
    // system calls on values built before, then execs or exits.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: see above; never returns.
        unsafe { child_after_clone(child.exec, child.fds, child.cwd, child.err, child.mem_v1) }
    }
    if pid < 0 {
        return -(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL) as i64);
    }
    pid
}

/// clone3 into `cgroup` sharing our memory until the child execs (`CLONE_VM |
/// CLONE_VFORK`, as posix_spawn does): no copy of pairbench's page tables, which a fork
/// pays for at every spawn and again when the child execs (6.8 instead of 8.5 ms per
/// trivial pair in `cargo bench --bench overhead`). The child runs [`vfork_child`] on a
/// stack of its own. Returns the pid, or `-errno`.
#[cfg(target_arch = "x86_64")]
fn spawn_vfork(child: &ChildArgs, cgroup: std::os::fd::RawFd) -> i64 {
    use nix::libc;
    const CLONE_VM: u64 = libc::CLONE_VM as u64;
    const CLONE_VFORK: u64 = libc::CLONE_VFORK as u64;
    const STACK: usize = 256 * 1024;
    // SAFETY: an anonymous private mapping, unmapped below once the child has exec'd or
    // exited (CLONE_VFORK: we resume only then).
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return -(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::ENOMEM) as i64);
    }
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP | CLONE_VM | CLONE_VFORK,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        stack: stack as u64,
        stack_size: STACK as u64,
        ..CloneArgs::default()
    };
    // No handler of ours may run in the child (it shares our memory): every signal is
    // blocked across the clone; the child sets its handlers to the default before it
    // unblocks them.
    // SAFETY: plain data the C library fills in.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    let ret: i64;
    // SAFETY: the child starts on its own stack (rsp = stack + STACK, 16-byte aligned)
    // and calls vfork_child, which never returns; it reads only `child`, which lives
    // until we resume; rbp is cleared so no unwinder walks into our frames.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") child as *const ChildArgs,
            in("r13") vfork_child as extern "C" fn(*const ChildArgs) -> !,
            lateout("rcx") _,
            lateout("r11") _,
        );
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        libc::munmap(stack, STACK);
    }
    ret
}

/// The child of [`spawn_vfork`]: signal handlers back to the default (ours live in the
/// memory it shares), then [`child_after_clone`].
#[cfg(target_arch = "x86_64")]
extern "C" fn vfork_child(args: *const ChildArgs) -> ! {
    use nix::libc;
    // SAFETY: `args` points into the suspended parent's frame; only system calls follow.
    unsafe {
        for sig in 1..libc::SIGRTMAX() {
            let mut sa: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut sa) == 0
                && sa.sa_sigaction != libc::SIG_DFL
                && sa.sa_sigaction != libc::SIG_IGN
            {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let a = &*args;
        child_after_clone(a.exec, a.fds, a.cwd, a.err, a.mem_v1)
    }
}

/// The new process, between clone3 and exec.
///
/// # Safety
/// Only in the child of [`clone_into_cgroup`].
unsafe fn child_after_clone(
    exec: &ExecArgs,
    fds: [std::os::fd::RawFd; 3],
    cwd: &std::ffi::CStr,
    err: std::os::fd::RawFd,
    mem_v1: std::os::fd::RawFd,
) -> ! {
    use nix::libc;
    // SAFETY: async-signal-safe system calls on descriptors and strings that outlive
    // this process image.
    unsafe {
        let fail = || -> ! {
            let e = *libc::__errno_location();
            let b = e.to_ne_bytes();
            libc::write(err, b.as_ptr().cast(), b.len());
            libc::_exit(127)
        };
        for (i, fd) in fds.iter().enumerate() {
            let target = i as libc::c_int;
            if *fd == target {
                libc::fcntl(target, libc::F_SETFD, 0);
            } else if libc::dup2(*fd, target) < 0 {
                fail();
            }
        }
        if libc::chdir(cwd.as_ptr()) < 0 || libc::setpgid(0, 0) < 0 {
            fail();
        }
        if mem_v1 >= 0 {
            // Joining a v1 cgroup can wait on the kernel for a while (before Linux 6.0):
            // first let go of pairbench's descriptors (all close-on-exec: the tag's lock
            // among them), so a pairbench killed meanwhile leaves nothing holding them.
            // Only the error pipe and the v1 `tasks` stay, as exec would leave them.
            let (lo, hi) = (
                err.min(mem_v1) as libc::c_uint,
                err.max(mem_v1) as libc::c_uint,
            );
            let close = |a: libc::c_uint, b: libc::c_uint| {
                if a <= b {
                    libc::syscall(libc::SYS_close_range, a, b, 0 as libc::c_uint);
                }
            };
            close(3, lo.saturating_sub(1));
            close(lo + 1, hi.saturating_sub(1));
            close(hi + 1, libc::c_uint::MAX);
            // Peak memory only: a failure leaves it unmeasured.
            libc::write(mem_v1, b"0".as_ptr().cast(), 1);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::execve(
            exec.program.as_ptr(),
            exec.argv.as_ptr(),
            exec.envp.as_ptr(),
        );
        fail()
    }
}

/// The script's wait status, from its holder (the sweep); a holder gone without one
/// means the script was killed with it.
fn read_status(r: std::os::fd::OwnedFd, slot: &ExitSlot) {
    let mut f = File::from(r);
    let mut buf = [0u8; 4];
    let exit = match f.read_exact(&mut buf) {
        Ok(()) => {
            match nix::sys::wait::WaitStatus::from_raw(Pid::from_raw(1), i32::from_ne_bytes(buf)) {
                Ok(WaitStatus::Exited(_, c)) => Exit::Code(c),
                Ok(WaitStatus::Signaled(_, s, _)) => Exit::Signal(s as i32),
                _ => Exit::Signal(Signal::SIGKILL as i32),
            }
        }
        Err(_) => Exit::Signal(Signal::SIGKILL as i32),
    };
    *lock(&slot.exit) = Some(exit);
    slot.cv.notify_all();
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

    /// End the side with the default stop signal (SIGHUP); see [`Child::stop`].
    pub fn terminate(&self, grace: Duration) {
        self.stop(Stop {
            grace,
            signal: StopSignal::DEFAULT,
        });
    }

    /// End the side: each signal of `stop`'s sequence to the process group and to every
    /// other process of the side, `grace` apart, stopping as soon as all are gone; then
    /// `cgroup.kill` for whatever is left. Returns when everything is gone. Safe to call
    /// more than once, from any thread.
    pub fn stop(&self, stop: Stop) {
        let _one_at_a_time = lock(&self.terminating);
        if self.side.finished() {
            return;
        }
        if self.try_exit().is_none() {
            self.terminated_by_us.store(true, Ordering::SeqCst);
        } else {
            // Most scripts leave nothing behind: their side empties right after them.
            self.side.wait_gone(Duration::from_millis(5));
        }
        let pgid = self.pid.as_raw();
        for sig in stop.sequence() {
            if !self.side.alive() {
                break;
            }
            let main_running = self.try_exit().is_none();
            if sig == Signal::SIGKILL {
                self.side.kill_all();
            } else {
                self.side.signal_and_wait(pgid, sig, stop.grace);
            }
            if main_running && self.main_ended_soon() {
                *lock(&self.stopped_by) = Some(sig);
            }
        }
        self.finish_side();
    }

    /// Empty the side, let the reaper add its last processes to its rusage, then read its
    /// usage.
    fn finish_side(&self) {
        self.side.finish_after(settle_reaper);
        if let Some(k) = &self.cgroup_key {
            lock(&reaper().by_cgroup).remove(k);
        }
    }

    /// Did the main process end? When the side is empty, give the reaper a moment to
    /// record it.
    fn main_ended_soon(&self) -> bool {
        if self.try_exit().is_some() {
            return true;
        }
        if self.side.alive() {
            return false;
        }
        self.wait_timeout(Duration::from_millis(500)).is_some()
    }

    /// The signal that ended the main process, when pairbench ended it.
    pub fn stopped_by(&self) -> Option<Signal> {
        *lock(&self.stopped_by)
    }

    /// Is everything of the side gone, or gone within `limit`? (Most scripts leave
    /// nothing behind: their side empties right after them.)
    pub fn side_gone(&self, limit: Duration) -> bool {
        self.side.usage().is_some() || self.side.wait_gone(limit)
    }

    /// What the side used (known once it has been ended).
    pub fn usage(&self) -> Option<contain::Usage> {
        self.side.usage()
    }

    /// The side's cgroup, under `cgroup2`.
    pub fn cgroup_dir(&self) -> Option<PathBuf> {
        self.side.cgroup_dir()
    }
}

impl Drop for Child {
    /// A side nobody ends any more is ended now.
    fn drop(&mut self) {
        if !self.side.finished() {
            self.finish_side();
        }
    }
}

/// End every script at once (the second Ctrl-C): SIGKILL to every process group we
/// started and not reaped yet, and to everything of every side.
pub fn kill_all_now() {
    // The sides first: under the sweep, a holder killed before its tree would hand the
    // tree to pairbench.
    contain::current().kill_everything_now();
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
    fn a_side_is_ended_and_its_usage_read_once() {
        let dir = std::env::temp_dir().join(format!("pairbench-usage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = Spec {
            program: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done".into(),
            ],
            cwd: dir.clone(),
            env: Vec::new(),
            stdout: dir.join("stdout"),
            stderr: dir.join("stderr"),
            marker: "unit-usage-local".into(),
        };
        let mut spec_sleep = spec.clone();
        spec_sleep.args = vec!["-c".into(), "sleep 0.3".into()];
        let sleeping = spawn(&spec_sleep).unwrap();
        // Its orphans are known by the cgroup path the kernel gives its processes.
        assert_eq!(
            sleeping.cgroup_key.as_deref(),
            cgroup_of(sleeping.pid.as_raw())
                .filter(|_| sleeping.cgroup_dir().is_some())
                .as_deref()
        );
        sleeping.terminate(Duration::from_millis(100));
        let child = spawn(&spec).unwrap();
        assert_eq!(
            child.wait_timeout(Duration::from_secs(60)),
            Some(Exit::Code(0))
        );
        let cg = child.cgroup_dir();
        assert!(child.usage().is_none());
        child.terminate(Duration::from_millis(100));
        let usage = child.usage().expect("read when ended");
        assert!(
            usage.cpu_user_s.is_some() && usage.cpu_sys_s.is_some(),
            "{usage:?}"
        );
        assert!(usage.ctx_switches_voluntary.is_some(), "{usage:?}");
        if let Some(cg) = cg {
            // Removed behind the side, by the run's cgroup thread.
            let end = std::time::Instant::now() + Duration::from_secs(10);
            while cg.exists() && std::time::Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(!cg.exists(), "its cgroup is removed");
        }
        assert_eq!(child.stopped_by(), None, "it ended on its own");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
