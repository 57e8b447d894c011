//! `pairbench agent`: the remote end of an SSH transport. pairbench uploads itself to the
//! remote host and runs this once per connection; it reads [`Request`]s on stdin and
//! answers with [`Event`]s on stdout. Scripts are started and ended with
//! [`crate::process`], exactly as on this machine: own process group, own side (a cgroup
//! where the host allows it, else the sweep: [`crate::contain`]), the grace sequence.
//!
//! Nothing is left behind: when stdin ends or fails, or no request (not even a ping)
//! arrives for `--idle-timeout-ms` (the link is dead), the agent ends every script it
//! started at once, removes its run folder (unless `--keep`) and exits; a keeper does
//! the same if the agent itself is killed. The agent holds a lock on `<run folder>/.lock`
//! while it lives, so a later agent knows which run folders belong to runs that are over
//! and removes them (saying so in its hello).

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::proto::{self, Event, PackAfter, Request};
use crate::contain::{self, Stop, StopSignal};
use crate::process::{self, Child};

/// Options of `pairbench agent`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// End everything and exit when nothing arrives for this long
    #[arg(long, default_value_t = 30_000)]
    pub idle_timeout_ms: u64,
    /// Send a tick this often
    #[arg(long, default_value_t = 1_000)]
    pub ping_ms: u64,
    /// Accepted for older pairbench versions; when the connection ends, everything is
    /// ended at once
    #[arg(long, default_value_t = 2_000)]
    pub grace_ms: u64,
    /// This run's folder on this host: locked while the agent lives, removed when it ends
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Keep the run folder when the agent ends
    #[arg(long)]
    pub keep: bool,
}

/// The lock file in a run folder: held by the agent of a run that is not over.
fn lock_path(run_dir: &Path) -> PathBuf {
    run_dir.join(".lock")
}

/// Lock this run's folder; remove the folders of runs that are over (their lock is
/// free). Returns the lock and what was removed.
fn lock_run(run_dir: &Path) -> (Option<nix::fcntl::Flock<std::fs::File>>, Vec<String>) {
    let Some(runs) = run_dir.parent() else {
        return (None, Vec::new());
    };
    let _ = std::fs::create_dir_all(run_dir);
    let mine = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(run_dir))
        .ok()
        .and_then(|f| nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).ok());
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(runs) else {
        return (mine, removed);
    };
    for e in entries.flatten() {
        let folder = e.path();
        if folder == run_dir {
            continue;
        }
        let lock = lock_path(&folder);
        // Not just made by an agent that is about to lock it.
        let settled = std::fs::metadata(&lock)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(5));
        if !settled {
            continue;
        }
        let Ok(f) = std::fs::OpenOptions::new().write(true).open(&lock) else {
            continue;
        };
        // A free lock: that run's agent is gone, so the run is over.
        if let Ok(held) = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            if std::fs::remove_dir_all(&folder).is_ok() {
                removed.push(folder.display().to_string());
            }
            drop(held);
        }
    }
    (mine, removed)
}

/// The agent is done: its scripts are ended, its folder removed (unless kept).
fn leave(procs: &Procs, run_dir: Option<&Path>, keep: bool) {
    end_all(procs);
    contain::current().finish();
    if let Some(d) = run_dir
        && !keep
    {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone)]
struct Out(Arc<Mutex<std::io::Stdout>>);

impl Out {
    fn send(&self, ev: &Event) {
        let mut b = self.batch();
        b.push(ev);
        b.finish();
    }

    fn write(&self, bytes: &[u8]) {
        let mut o = lock(&self.0);
        // A dead stdout means a dead connection: stdin will tell us too.
        let _ = o.write_all(bytes).and_then(|_| o.flush());
    }

    /// Events written together: one write (one SSH packet, mostly) for the many small
    /// events of a folder sent back, and its answer.
    fn batch(&self) -> Batch<'_> {
        Batch {
            out: self,
            buf: Vec::new(),
        }
    }
}

struct Batch<'a> {
    out: &'a Out,
    buf: Vec<u8>,
}

impl Batch<'_> {
    fn push(&mut self, ev: &Event) {
        if serde_json::to_writer(&mut self.buf, ev).is_ok() {
            self.buf.push(b'\n');
        }
        if self.buf.len() >= proto::CHUNK {
            self.out.write(&self.buf);
            self.buf.clear();
        }
    }

    fn finish(self) {
        if !self.buf.is_empty() {
            self.out.write(&self.buf);
        }
    }
}

/// A started script, and the thread streaming its output (with `-v`).
struct Proc {
    child: Arc<Child>,
    follower: Mutex<Option<std::thread::JoinHandle<()>>>,
    exit_pack: Mutex<ExitPack>,
    /// `--sample`: the host sampled while the script runs.
    sampler: Mutex<Option<crate::sample::Sampler>>,
}

/// The folder a script's end sends back on its own (`pack_on_exit`).
enum ExitPack {
    /// Not asked for, declined, or a `terminate` came first: `terminate` sends it.
    No,
    Asked(u64, PackAfter),
    /// Sent with the answer to `pack_on_exit`.
    Sent,
}

type Procs = Arc<Mutex<HashMap<u64, Arc<Proc>>>>;

/// Run the agent until its connection ends; returns the exit status.
pub fn main(args: &AgentArgs) -> i32 {
    let out = Out(Arc::new(Mutex::new(std::io::stdout())));
    let procs: Procs = Arc::default();
    let last_input = Arc::new(Mutex::new(Instant::now()));
    let containment = contain::current();
    let (_run_lock, removed) = match &args.run_dir {
        Some(d) => lock_run(d),
        None => (None, Vec::new()),
    };
    let mut cleaned = contain::leftovers::clean_dead_runs(&std::env::temp_dir())
        .line()
        .map(|l| l.trim_start_matches("pairbench: ").to_string());
    if !removed.is_empty() {
        let line = format!(
            "removed the folders of {} runs that are over: {}",
            removed.len(),
            removed.join(", ")
        );
        cleaned = Some(match cleaned {
            Some(c) => format!("{c}; {line}"),
            None => line,
        });
    }
    let mut keep_paths = Vec::new();
    if let Some(d) = &args.run_dir
        && !args.keep
    {
        keep_paths.push(d.clone());
    }
    if let Err(e) =
        contain::keeper::start(containment.name(), containment.cgroup_dir(), &keep_paths)
    {
        eprintln!("pairbench agent: cannot start its keeper: {e}");
    }
    let helpers = helper_dir();
    out.send(&hello(containment.description().clone(), cleaned));
    let idle = Duration::from_millis(args.idle_timeout_ms);
    let every = Duration::from_millis(args.ping_ms.max(10));
    let ticks = {
        let out = out.clone();
        std::thread::Builder::new()
            .name("agent-tick".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    // May block when the link is dead; the watchdog does not write.
                    out.send(&Event::Tick);
                }
            })
    };
    let watchdog = {
        let (procs, last_input) = (procs.clone(), last_input.clone());
        let (run_dir, keep) = (args.run_dir.clone(), args.keep);
        std::thread::Builder::new()
            .name("agent-watchdog".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    if lock(&last_input).elapsed() > idle {
                        eprintln!(
                            "pairbench agent: nothing from pairbench for {}ms: ending everything",
                            idle.as_millis()
                        );
                        leave(&procs, run_dir.as_deref(), keep);
                        // Not exit(): another thread may hold stdout, blocked on a dead link.
                        // SAFETY: _exit ends the process at once; nothing is used after it.
                        unsafe { nix::libc::_exit(3) }
                    }
                }
            })
    };
    if ticks.is_err() || watchdog.is_err() {
        eprintln!("pairbench agent: cannot start a thread");
        leave(&procs, args.run_dir.as_deref(), args.keep);
        return 2;
    }
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        *lock(&last_input) = Instant::now();
        match serde_json::from_str::<Request>(line.trim_end()) {
            Ok(req) => handle(req, &out, &procs, helpers.as_deref()),
            Err(e) => eprintln!("pairbench agent: bad request ({e}): {}", line.trim_end()),
        }
    }
    leave(&procs, args.run_dir.as_deref(), args.keep);
    0
}

fn hello(containment: contain::Description, cleaned: Option<String>) -> Event {
    let uts = nix::sys::utsname::uname().ok();
    let s = |f: Option<&std::ffi::OsStr>| {
        f.map(|x| x.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let uname = format!(
        "{} {} {} {}",
        s(uts.as_ref().map(|u| u.sysname())),
        s(uts.as_ref().map(|u| u.nodename())),
        s(uts.as_ref().map(|u| u.release())),
        s(uts.as_ref().map(|u| u.machine())),
    );
    Event::Hello {
        version: env!("CARGO_PKG_VERSION").into(),
        uname,
        cpuinfo: std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
        meminfo: std::fs::read_to_string("/proc/meminfo").unwrap_or_default(),
        ssh_connection: std::env::var("SSH_CONNECTION").unwrap_or_default(),
        home: std::env::var("HOME").unwrap_or_default(),
        containment,
        cleaned,
        accounting: Some(contain::current().accounting()),
    }
}

/// End every script this agent started, all at once: pairbench is gone, so stopping is
/// final (no grace).
fn end_all(procs: &Procs) {
    contain::current().kill_everything_now();
    let now = Stop {
        grace: Duration::ZERO,
        signal: StopSignal(nix::sys::signal::Signal::SIGKILL),
    };
    let all: Vec<Arc<Child>> = lock(procs).values().map(|p| p.child.clone()).collect();
    for c in &all {
        c.stop(now);
    }
}

fn done(re: u64) -> Event {
    Event::Done {
        re,
        pid: None,
        terminated: None,
        exit: None,
        stopped_by: None,
        usage: None,
        pack_error: None,
        packed: None,
    }
}

/// The answer to a `pack_on_exit` (with what the side used, when it was sent).
fn packed(re: u64, sent: bool, pack_error: Option<String>, usage: Option<contain::Usage>) -> Event {
    Event::Done {
        re,
        pid: None,
        terminated: None,
        exit: None,
        stopped_by: None,
        usage,
        pack_error,
        packed: Some(sent),
    }
}

fn failed(re: u64, error: String) -> Event {
    Event::Failed { re, error }
}

/// A folder with `report_metric` (a link to this executable), for remote scripts' PATH,
/// as local scripts have it.
fn helper_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // Mark this build as in use, so pairbench does not prune it (see connect.rs).
    let _ = std::fs::File::open(&exe).and_then(|f| f.set_modified(std::time::SystemTime::now()));
    let name = exe.file_name()?.to_string_lossy().into_owned();
    let dir = exe.parent()?.join(format!("{name}.helpers"));
    std::fs::create_dir_all(&dir).ok()?;
    let link = dir.join("report_metric");
    if std::fs::read_link(&link).ok().as_deref() != Some(exe.as_path()) {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&exe, &link).ok()?;
    }
    Some(dir)
}

fn handle(req: Request, out: &Out, procs: &Procs, helpers: Option<&Path>) {
    match req {
        Request::Ping => {}
        Request::Mkdir { id, path } => out.send(&match std::fs::create_dir_all(&path) {
            Ok(()) => done(id),
            Err(e) => failed(id, format!("cannot create {path}: {e}")),
        }),
        Request::Put {
            id,
            path,
            mode,
            data,
            append,
        } => out.send(&match put(&path, mode, &data, append) {
            Ok(()) => done(id),
            Err(e) => failed(id, format!("cannot write {path}: {e}")),
        }),
        Request::Remove { id, path } => out.send(&match std::fs::remove_dir_all(&path) {
            Ok(()) => done(id),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => done(id),
            Err(e) => failed(id, format!("cannot remove {path}: {e}")),
        }),
        Request::Pack {
            id,
            path,
            exclude,
            remove,
        } => {
            let mut batch = out.batch();
            let ev = match pack_and_remove(id, &path, &exclude, remove, &mut batch) {
                Ok(()) => done(id),
                Err(e) => failed(id, e),
            };
            batch.push(&ev);
            batch.finish();
        }
        Request::Start {
            id,
            program,
            cwd,
            env,
            stdout,
            stderr,
            marker,
            stream,
            pack_on_exit,
            trace,
            sample_ms,
        } => {
            let mut env = env;
            if let Some(dir) = helpers {
                let path = crate::helpers::path_with(dir, &env);
                env.push(("PATH".into(), path));
            }
            let (program, args) = match crate::transport::local::traced(
                trace.as_ref(),
                Path::new(&program),
                Path::new(&cwd),
                &env,
            ) {
                Ok(pa) => pa,
                Err(e) => {
                    out.send(&failed(id, e));
                    return;
                }
            };
            let spec = process::Spec {
                program,
                args,
                cwd: cwd.into(),
                env,
                stdout: stdout.into(),
                stderr: stderr.into(),
                // This host's leftover cleaning knows runs by its own processes.
                marker: format!("{}-{marker}", contain::current().name()),
            };
            match process::spawn(&spec) {
                Err(e) => {
                    out.send(&failed(id, e.to_string()));
                    if let Some((pack_id, _)) = pack_on_exit {
                        out.send(&packed(pack_id, false, None, None));
                    }
                }
                Ok(child) => {
                    let child = Arc::new(child);
                    let sampler = sample_ms.map(|ms| {
                        crate::sample::Sampler::start(
                            Duration::from_millis(ms),
                            vec![crate::sample::Target {
                                dir: spec.cwd.clone(),
                                cgroup: child.cgroup_dir(),
                            }],
                        )
                    });
                    let proc = Arc::new(Proc {
                        child: child.clone(),
                        follower: Mutex::new(None),
                        exit_pack: Mutex::new(match pack_on_exit {
                            Some((pack_id, p)) => ExitPack::Asked(pack_id, p),
                            None => ExitPack::No,
                        }),
                        sampler: Mutex::new(sampler),
                    });
                    lock(procs).insert(id, proc.clone());
                    out.send(&Event::Done {
                        re: id,
                        pid: Some(child.pid()),
                        terminated: None,
                        exit: None,
                        stopped_by: None,
                        usage: None,
                        pack_error: None,
                        packed: None,
                    });
                    if stream {
                        let (out, child) = (out.clone(), child.clone());
                        let files = [(1u8, spec.stdout.clone()), (2u8, spec.stderr.clone())];
                        *lock(&proc.follower) = std::thread::Builder::new()
                            .name("agent-stream".into())
                            .spawn(move || follow(id, &child, &files, &out))
                            .ok();
                    }
                    let out = out.clone();
                    let _ = std::thread::Builder::new()
                        .name("agent-wait".into())
                        .spawn(move || report_exit(id, &proc, &out));
                }
            }
        }
        Request::WaitPort {
            id,
            proc_id,
            port,
            proto,
            open,
            timeout_ms,
        } => {
            let proc = lock(procs).get(&proc_id).map(|p| p.child.clone());
            let Some(child) = proc else {
                out.send(&failed(id, format!("no process {proc_id}")));
                return;
            };
            let out = out.clone();
            let _ = std::thread::Builder::new()
                .name("agent-port".into())
                .spawn(move || {
                    let limit = Duration::from_millis(timeout_ms);
                    let exited = || child.try_exit().is_some();
                    out.send(&match crate::sockets::wait(
                        child.pid(),
                        port,
                        proto,
                        open,
                        limit,
                        exited,
                    ) {
                        Ok(w) => Event::Port {
                            re: id,
                            state: w.word().into(),
                        },
                        Err(e) => failed(id, e),
                    });
                });
        }
        Request::PortTaken { id, port } => out.send(&match crate::sockets::tcp_port_taken(port) {
            Ok(t) => Event::Port {
                re: id,
                state: if t { "taken" } else { "free" }.into(),
            },
            Err(e) => failed(id, e),
        }),
        Request::Terminate {
            id,
            proc_id,
            grace_ms,
            signal,
            pack,
        } => {
            let signal = match signal.as_deref().map(StopSignal::parse) {
                None => StopSignal::DEFAULT,
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    out.send(&failed(id, e));
                    return;
                }
            };
            let proc = lock(procs).get(&proc_id).cloned();
            let Some(proc) = proc else {
                out.send(&failed(id, format!("no process {proc_id}")));
                return;
            };
            // From now on the folder goes with this answer, unless the script's end sent
            // it already.
            {
                let mut ep = lock(&proc.exit_pack);
                if let ExitPack::Asked(pack_id, _) = &*ep {
                    out.send(&packed(*pack_id, false, None, None));
                    *ep = ExitPack::No;
                }
            }
            let out = out.clone();
            let _ = std::thread::Builder::new()
                .name("agent-terminate".into())
                .spawn(move || {
                    let child = &proc.child;
                    child.stop(Stop {
                        grace: Duration::from_millis(grace_ms).min(contain::MAX_DURATION),
                        signal,
                    });
                    // The group is gone; give the reaper a moment to record the exit.
                    let exit = child.wait_timeout(Duration::from_secs(2));
                    if let Some(s) = lock(&proc.sampler).take() {
                        for p in s.stop() {
                            eprintln!("pairbench agent: {p}");
                        }
                    }
                    // All its output is sent before the answer (it ends with the process).
                    if exit.is_some()
                        && let Some(f) = lock(&proc.follower).take()
                    {
                        let _ = f.join();
                    }
                    // The side is gone: its folder changes no more.
                    let mut batch = out.batch();
                    let sent_at_exit = matches!(*lock(&proc.exit_pack), ExitPack::Sent);
                    let pack = pack.filter(|_| !sent_at_exit);
                    let did_pack = pack.is_some();
                    let pack_error = pack.and_then(|p| {
                        pack_and_remove(id, &p.path, &[], p.remove, &mut batch).err()
                    });
                    batch.push(&Event::Done {
                        re: id,
                        pid: None,
                        terminated: Some(child.terminated_by_us()),
                        exit: exit.map(|e| e.file_text()),
                        stopped_by: child.stopped_by().map(|s| s.as_str().to_string()),
                        usage: child.usage(),
                        pack_error,
                        packed: Some(did_pack),
                    });
                    batch.finish();
                });
        }
    }
}

/// Send folder `path` back as the answer of request `id` (`file`/`dir`/`link` events),
/// then remove it if asked (and its parent, if that leaves it empty: `<pair>/` of
/// `<pair>/remote`).
fn pack_and_remove(
    id: u64,
    path: &str,
    exclude: &[String],
    remove: bool,
    out: &mut Batch,
) -> Result<(), String> {
    let p = Path::new(path);
    pack(id, p, exclude, out).map_err(|e| format!("cannot read {path}: {e}"))?;
    if remove {
        let _ = std::fs::remove_dir_all(p);
        if let Some(parent) = p.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
    Ok(())
}

/// Send `exited` when the script's main process ends; then, when it left nothing
/// running and nobody has come to end it, its folder (`pack_on_exit`).
fn report_exit(id: u64, proc: &Proc, out: &Out) {
    let child = &proc.child;
    loop {
        if let Some(e) = child.wait_timeout(Duration::from_secs(3600)) {
            out.send(&Event::Exited {
                proc_id: id,
                exit: e.file_text(),
            });
            break;
        }
    }
    if !matches!(*lock(&proc.exit_pack), ExitPack::Asked(..)) {
        return;
    }
    // Not under the lock: a `terminate` may come meanwhile (and then sends the folder).
    let gone = child.side_gone(Duration::from_millis(5));
    let asked = {
        let mut ep = lock(&proc.exit_pack);
        match std::mem::replace(&mut *ep, ExitPack::No) {
            ExitPack::Asked(pack_id, p) => {
                if gone {
                    *ep = ExitPack::Sent;
                    Some((pack_id, p))
                } else {
                    out.send(&packed(pack_id, false, None, None));
                    None
                }
            }
            other => {
                *ep = other;
                None
            }
        }
    };
    let Some((pack_id, p)) = asked else { return };
    // Nothing of the side is left: end it (its usage read, its cgroup gone), and send
    // its folder, which nothing changes any more.
    child.stop(Stop {
        grace: Duration::ZERO,
        signal: StopSignal::DEFAULT,
    });
    if let Some(s) = lock(&proc.sampler).take() {
        for p in s.stop() {
            eprintln!("pairbench agent: {p}");
        }
    }
    if let Some(f) = lock(&proc.follower).take() {
        let _ = f.join();
    }
    let mut batch = out.batch();
    let pack_error = pack_and_remove(pack_id, &p.path, &[], p.remove, &mut batch).err();
    batch.push(&packed(pack_id, true, pack_error, child.usage()));
    batch.finish();
}

/// Send what the script writes to its output files, until its main process has ended.
fn follow(id: u64, child: &Child, files: &[(u8, PathBuf)], out: &Out) {
    let mut offsets = vec![0u64; files.len()];
    let mut buf = vec![0u8; proto::CHUNK];
    loop {
        let ended = child.wait_timeout(Duration::from_millis(50)).is_some();
        for ((stream, path), offset) in files.iter().zip(offsets.iter_mut()) {
            let Ok(mut f) = std::fs::File::open(path) else {
                continue;
            };
            if std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(*offset)).is_err() {
                continue;
            }
            while let Ok(n) = read_full(&mut f, &mut buf) {
                if n == 0 {
                    break;
                }
                *offset += n as u64;
                out.send(&Event::Output {
                    proc_id: id,
                    stream: *stream,
                    data: proto::b64_encode(&buf[..n]),
                });
                if n < buf.len() {
                    break;
                }
            }
        }
        if ended {
            return;
        }
    }
}

fn put(path: &str, mode: u32, data: &str, append: bool) -> std::io::Result<()> {
    let bytes = proto::b64_decode(data)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad base64"))?;
    let p = Path::new(path);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(p)?;
    f.write_all(&bytes)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode & 0o7777))
}

fn excluded(rel: &Path, exclude: &[String]) -> bool {
    exclude.iter().any(|x| rel.starts_with(x))
}

/// Is `rel` an ancestor of an excluded path (so it is not "empty" for our purposes)?
fn holds_excluded(rel: &Path, exclude: &[String]) -> bool {
    exclude
        .iter()
        .any(|x| Path::new(x).starts_with(rel) && Path::new(x) != rel)
}

fn pack(id: u64, root: &Path, exclude: &[String], out: &mut Batch) -> std::io::Result<()> {
    std::fs::metadata(root)?;
    // One buffer for all files, as large as the largest small file needs.
    let mut buf = Vec::new();
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        if entries.is_empty() && !rel.as_os_str().is_empty() && !holds_excluded(&rel, exclude) {
            out.push(&Event::Dir {
                re: id,
                rel: rel.to_string_lossy().into_owned(),
            });
        }
        for e in entries {
            let r = rel.join(e.file_name());
            if excluded(&r, exclude) {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            let rels = r.to_string_lossy().into_owned();
            if ft.is_dir() {
                stack.push(r);
            } else if ft.is_symlink() {
                if let Ok(t) = std::fs::read_link(e.path()) {
                    out.push(&Event::Link {
                        re: id,
                        rel: rels,
                        target: t.to_string_lossy().into_owned(),
                    });
                }
            } else if ft.is_file() {
                let meta = e.metadata();
                let mode = meta
                    .as_ref()
                    .map(|m| m.permissions().mode())
                    .unwrap_or(0o644);
                let len = meta.map(|m| m.len()).unwrap_or(u64::MAX);
                let mut f = std::fs::File::open(e.path())?;
                // One more byte than the file has: a file read whole is known to end.
                let mut want = usize::try_from(len.saturating_add(1))
                    .unwrap_or(proto::CHUNK)
                    .min(proto::CHUNK);
                if buf.len() < want {
                    buf.resize(want, 0);
                }
                let mut first = true;
                loop {
                    let n = read_full(&mut f, &mut buf[..want])?;
                    if n == 0 && !first {
                        break;
                    }
                    out.push(&Event::File {
                        re: id,
                        rel: rels.clone(),
                        mode,
                        data: proto::b64_encode(&buf[..n]),
                        append: !first,
                    });
                    first = false;
                    if n < want {
                        break;
                    }
                    // It grew since: the rest in full chunks.
                    if want < proto::CHUNK {
                        want = proto::CHUNK;
                        buf.resize(want, 0);
                    }
                }
            }
        }
    }
    Ok(())
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
