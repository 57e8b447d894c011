//! Containment: what keeps every process a script starts — daemons, `env -i`, `setsid`,
//! double forks included — findable until it is ended, and what ends it.
//!
//! One method per pairbench process (a run, or an agent on a remote host):
//! - `cgroup2`: each side of each pair, and each hook, runs in its own cgroup below the
//!   run's (`<own cgroup>/pairbench/<run>/<side>`), joined before the script execs;
//!   ending a side is the grace sequence, then `cgroup.kill`; "gone" is `populated 0`.
//! - `sweep`, where no cgroup v2 subtree can be written: each side below a holder
//!   process that is a child subreaper (see [`sweep`]), plus its process group and the
//!   environment marker.
//!
//! A keeper process ([`keeper`]) ends the run's processes if pairbench itself dies, and
//! the next run removes what dead runs left ([`leftovers`]). The user manual is
//! docs/containment.md.

pub mod cgroup;
pub mod keeper;
pub mod leftovers;
pub mod procfs;
pub mod spares;
pub mod sweep;
pub mod usage;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde::Serialize;

pub use crate::config::{MAX_DURATION, StopSignal};
pub use usage::{Rusage, Sources, Usage};

/// Environment variable that forces a method: `auto` (default), `cgroup2` or `sweep`.
pub const METHOD_VAR: &str = "PAIRBENCH_CONTAINMENT";

/// `now + d`, never overflowing (a duration past any clock is "never").
pub fn deadline(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d.min(MAX_DURATION * 10))
        .unwrap_or(now + MAX_DURATION)
}

/// How a side is ended: its stop signal, then SIGTERM, then SIGKILL, `grace` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    pub grace: Duration,
    pub signal: StopSignal,
}

impl Stop {
    /// The signals in order, each once.
    pub fn sequence(&self) -> Vec<Signal> {
        let mut v = vec![self.signal.0];
        for s in [Signal::SIGTERM, Signal::SIGKILL] {
            if !v.contains(&s) {
                v.push(s);
            }
        }
        if let Some(k) = v.iter().position(|s| *s == Signal::SIGKILL) {
            v.truncate(k + 1);
        }
        v
    }
}

/// What run.json (and an agent's hello) says about containment.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, Default)]
pub struct Description {
    /// `cgroup2` or `sweep`.
    pub method: String,
    /// The run's cgroup, under `cgroup2`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at: Option<String>,
    /// Why cgroups are not used, under `sweep`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub why: Option<String>,
}

impl std::fmt::Display for Description {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.at, &self.why) {
            (Some(at), _) => write!(f, "{} at {at}", self.method),
            (None, Some(why)) => write!(f, "{} ({why})", self.method),
            (None, None) => write!(f, "{}", self.method),
        }
    }
}

enum Method {
    /// The run's cgroup, and the spare side cgroups kept for it.
    Cgroup(cgroup::RunCgroup, Option<std::sync::Arc<spares::Spares>>),
    Sweep,
}

/// This process's containment.
pub struct Containment {
    name: String,
    method: Method,
    description: Description,
    counter: Mutex<u64>,
}

static CURRENT: OnceLock<Containment> = OnceLock::new();

/// `pb-<pid>-<start time>`: names this process for good (pids are reused, start
/// times with them are not).
fn own_name() -> String {
    let pid = std::process::id() as i32;
    let start = procfs::stat(pid).map_or(0, |s| s.start);
    format!("pb-{pid}-{start}")
}

/// The owner of a run named by [`own_name`]: (pid, start time).
pub fn parse_name(name: &str) -> Option<(i32, u64)> {
    let rest = name.strip_prefix("pb-")?;
    let (pid, start) = rest.split_once('-')?;
    let start = start.split('-').next()?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// Is the run called `name` over (its process gone)?
pub fn run_over(name: &str) -> bool {
    parse_name(name).is_some_and(|(pid, start)| !procfs::same_alive(pid, start))
}

impl Containment {
    /// The sweep, and why it is used.
    fn sweep(name: String, why: String) -> Containment {
        Containment {
            name,
            method: Method::Sweep,
            description: Description {
                method: "sweep".into(),
                at: None,
                why: Some(why),
            },
            counter: Mutex::new(0),
        }
    }
}

fn choose() -> Result<Containment, String> {
    let name = own_name();
    let wanted = std::env::var(METHOD_VAR).unwrap_or_default();
    let sweep = |why: String| Containment::sweep(name.clone(), why);
    match wanted.trim() {
        "sweep" => return Ok(sweep(format!("{METHOD_VAR}=sweep"))),
        "" | "auto" | "cgroup2" => {}
        other => {
            return Err(format!(
                "bad {METHOD_VAR}='{other}': use auto, cgroup2 or sweep"
            ));
        }
    }
    let made = cgroup::RunCgroup::create(&name);
    match made {
        Ok(run) => Ok(Containment {
            description: Description {
                method: "cgroup2".into(),
                at: Some(run.dir().display().to_string()),
                why: None,
            },
            name,
            method: Method::Cgroup(
                run.clone(),
                spares::Spares::start(run).map(std::sync::Arc::new),
            ),
            counter: Mutex::new(0),
        }),
        Err(why) if wanted.trim() == "cgroup2" => Err(format!(
            "{METHOD_VAR}=cgroup2, but no cgroup can be used: {why}"
        )),
        Err(why) => Ok(sweep(why)),
    }
}

/// Choose this process's method (once); an error for a bad or impossible
/// `PAIRBENCH_CONTAINMENT`.
pub fn init() -> Result<&'static Containment, String> {
    if let Some(c) = CURRENT.get() {
        return Ok(c);
    }
    let c = choose()?;
    Ok(CURRENT.get_or_init(|| c))
}

/// This process's containment (chosen on first use; the sweep if the choice fails).
pub fn current() -> &'static Containment {
    CURRENT.get_or_init(|| choose().unwrap_or_else(|why| Containment::sweep(own_name(), why)))
}

impl Containment {
    /// `pb-<pid>-<start>`: the run's cgroup, control folder and markers start with it.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &Description {
        &self.description
    }

    /// Where each side's resource values come from (run.json; docs/resources.md): read
    /// from a side's cgroup made for the question, so it names the files a side has.
    pub fn accounting(&self) -> Sources {
        match &self.method {
            Method::Sweep => Sources::rusage(),
            Method::Cgroup(run, _) => match run.side("accounting-probe") {
                Ok(probe) => {
                    let (_, sources) = probe.usage(&Rusage::default());
                    if let Err(e) = probe.remove() {
                        eprintln!("pairbench: warning: cannot remove a cgroup: {e}");
                    }
                    sources
                }
                Err(_) => Sources::rusage(),
            },
        }
    }

    /// The run's cgroup, under `cgroup2`.
    pub fn cgroup_dir(&self) -> Option<&Path> {
        match &self.method {
            Method::Cgroup(c, _) => Some(c.dir()),
            Method::Sweep => None,
        }
    }

    /// A new side (`label`: `local`, `remote` or a hook's name).
    pub fn side(&self, label: &str) -> std::io::Result<Side> {
        let n = {
            let mut c = self.counter.lock().unwrap_or_else(|e| e.into_inner());
            *c += 1;
            *c
        };
        let (kind, spares) = match &self.method {
            Method::Cgroup(run, spares) => {
                let spare = spares.as_ref().and_then(|s| s.take());
                let c = match spare {
                    Some(c) => c,
                    None => {
                        let safe: String = label
                            .chars()
                            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                            .take(60)
                            .collect();
                        run.side(&format!("{n}-{safe}"))?
                    }
                };
                (SideKind::Cgroup(c), spares.clone())
            }
            Method::Sweep => (SideKind::Sweep(sweep::SweepSide::new()), None),
        };
        Ok(Side {
            kind,
            spares,
            usage: Mutex::new(None),
            rusage: std::sync::Arc::new(Mutex::new(Rusage::default())),
        })
    }

    /// The run has a moment (a pair waits for its local test): the cgroup thread does
    /// now what it has to do, rather than while the next script starts (`spares`).
    pub fn tidy_now(&self) {
        if let Method::Cgroup(_, Some(s)) = &self.method {
            s.tidy_now();
        }
    }

    /// End every process of every side at once (the second Ctrl-C, a lost link).
    pub fn kill_everything_now(&self) {
        match &self.method {
            Method::Cgroup(run, _) => {
                if cgroup::populated(run.dir()) {
                    let _ = std::fs::write(run.dir().join("cgroup.kill"), "1");
                    cgroup::wait_empty(run.dir(), Duration::from_secs(5));
                }
            }
            Method::Sweep => {
                let roots = sweep::all_members();
                sweep::freeze_and_kill(
                    &roots,
                    |_| {
                        procfs::find_marked_prefix(&format!("{}-", self.name))
                            .into_iter()
                            .collect()
                    },
                    Duration::from_secs(5),
                );
            }
        }
    }

    /// The run is over: remove its cgroup (ending anything still in it) and let the
    /// keeper go.
    pub fn finish(&self) {
        if let Method::Cgroup(run, spares) = &self.method {
            if let Some(s) = spares {
                s.close();
            }
            let _ = cgroup::kill_tree(run.dir(), Duration::from_secs(5));
            if let Some(m) = run.mem_v1() {
                let _ = cgroup::remove_tree(m);
            }
        }
        keeper::done();
    }
}

enum SideKind {
    Cgroup(cgroup::SideCgroup),
    Sweep(sweep::SweepSide),
}

/// What the child does between fork and exec to enter its side.
pub enum PreExec {
    /// Write "0" to this `cgroup.procs` descriptor.
    Join(std::os::fd::RawFd),
    /// Become the side's holder and fork the script (the sweep): see
    /// [`sweep::become_holder`].
    Holder,
}

/// The containment of one side of a pair (or a hook).
pub struct Side {
    kind: SideKind,
    /// Where an ended side's cgroup goes to be removed (under `cgroup2`).
    spares: Option<std::sync::Arc<spares::Spares>>,
    usage: Mutex<Option<Usage>>,
    /// The rusage of the side's processes reaped so far (the reaper adds to it).
    rusage: std::sync::Arc<Mutex<Rusage>>,
}

/// `killpg`, never on our own group (pid 0 would mean it).
fn signal_group(pgid: i32, sig: Signal) {
    if pgid > 0 {
        let _ = killpg(Pid::from_raw(pgid), sig);
    }
}

impl Side {
    pub fn pre_exec(&self) -> PreExec {
        match &self.kind {
            SideKind::Cgroup(c) => PreExec::Join(c.procs_fd()),
            SideKind::Sweep(_) => PreExec::Holder,
        }
    }

    /// The side's first process `pid` started (with the reaper's table locked): the
    /// script under `cgroup2`, its holder under the sweep.
    pub fn started(&self, pid: i32) {
        if let SideKind::Sweep(s) = &self.kind {
            s.started(pid);
        }
    }

    /// Where the reaper adds the rusage of the side's processes.
    pub fn rusage_sink(&self) -> std::sync::Arc<Mutex<Rusage>> {
        self.rusage.clone()
    }

    /// The descriptor of the side's v1 memory `tasks`, for the child to join before it
    /// execs.
    pub fn mem_procs_fd(&self) -> Option<std::os::fd::RawFd> {
        match &self.kind {
            SideKind::Cgroup(c) => c.mem_procs_fd(),
            SideKind::Sweep(_) => None,
        }
    }

    /// A descriptor of the side's cgroup folder, to start a process right in it.
    pub fn cgroup_dir_fd(&self) -> Option<std::os::fd::RawFd> {
        match &self.kind {
            SideKind::Cgroup(c) => Some(c.dir_fd()),
            SideKind::Sweep(_) => None,
        }
    }

    /// The side's cgroup as /proc/<pid>/cgroup names it for its processes, under
    /// `cgroup2`.
    pub fn cgroup_path(&self) -> Option<&str> {
        match &self.kind {
            SideKind::Cgroup(c) => Some(c.path()),
            SideKind::Sweep(_) => None,
        }
    }

    /// The cgroup, under `cgroup2` (for the accounting and for tests).
    pub fn cgroup_dir(&self) -> Option<PathBuf> {
        match &self.kind {
            SideKind::Cgroup(c) => Some(c.dir().to_path_buf()),
            SideKind::Sweep(_) => None,
        }
    }

    /// Live processes of the side other than those in process group `pgid`.
    fn outside_group(&self, pgid: i32) -> Vec<i32> {
        let pids = match &self.kind {
            SideKind::Cgroup(c) => c.pids(),
            SideKind::Sweep(s) => s.members(),
        };
        pids.into_iter()
            .filter(|p| nix::unistd::getpgid(Some(Pid::from_raw(*p))) != Ok(Pid::from_raw(pgid)))
            .collect()
    }

    /// Is anything of the side alive?
    pub fn alive(&self) -> bool {
        match &self.kind {
            SideKind::Cgroup(c) => c.populated(),
            // The holder leaves once nothing is below it (a zombie holder is gone).
            SideKind::Sweep(s) => s.holder_alive(),
        }
    }

    /// Wait up to `limit` for the side to be empty; true when it is.
    pub fn wait_gone(&self, limit: Duration) -> bool {
        match &self.kind {
            SideKind::Cgroup(c) => c.wait_empty(limit),
            SideKind::Sweep(s) => {
                let end = deadline(limit);
                while s.holder_alive() {
                    if Instant::now() >= end {
                        return false;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                true
            }
        }
    }

    /// Send `sig` to the process group `pgid` and to every other process of the side
    /// (each process once), then wait up to `grace` for the side to be gone.
    pub fn signal_and_wait(&self, pgid: i32, sig: Signal, grace: Duration) {
        let others = self.outside_group(pgid);
        signal_group(pgid, sig);
        for p in &others {
            let _ = kill(Pid::from_raw(*p), sig);
        }
        match &self.kind {
            SideKind::Cgroup(c) => {
                c.wait_empty(grace);
            }
            SideKind::Sweep(s) => {
                let end = deadline(grace);
                let mut pause = Duration::from_millis(1);
                while (s.holder_alive() || others.iter().any(|p| procfs::alive(*p)))
                    && Instant::now() < end
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
            }
        }
    }

    /// SIGKILL to everything left, at once, and wait until it is gone.
    pub fn kill_all(&self) {
        match &self.kind {
            SideKind::Cgroup(c) => {
                if c.populated() {
                    let _ = c.kill();
                    c.wait_empty(Duration::from_secs(10));
                }
            }
            SideKind::Sweep(s) => s.kill_all(Duration::from_secs(10)),
        }
    }

    /// The side is over: its usage is read and its cgroup removed. Idempotent.
    pub fn finish(&self) {
        self.finish_after(|| {});
    }

    /// [`Side::finish`], with `settle` run once the side is empty and before its rusage
    /// is read (the reaper adding its last processes).
    pub fn finish_after(&self, settle: impl FnOnce()) {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        if usage.is_some() {
            return;
        }
        self.kill_all();
        settle();
        let r = *self.rusage.lock().unwrap_or_else(|e| e.into_inner());
        match &self.kind {
            SideKind::Cgroup(c) => {
                *usage = Some(c.usage(&r).0);
                match &self.spares {
                    Some(s) => s.retire(c),
                    None => {
                        if let Err(e) = c.remove() {
                            eprintln!("pairbench: warning: cannot remove a side's cgroup: {e}");
                        }
                    }
                }
            }
            SideKind::Sweep(s) => {
                *usage = Some(Usage::from_rusage(&r));
                s.forget();
            }
        }
    }

    /// What the side used (known once it is finished).
    pub fn usage(&self) -> Option<Usage> {
        self.usage.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Has the side been finished (its usage read)?
    pub fn finished(&self) -> bool {
        self.usage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signals_and_sequences() {
        for n in ["HUP", "SIGHUP", "hup", " sighup "] {
            assert_eq!(StopSignal::parse(n).unwrap(), StopSignal(Signal::SIGHUP));
        }
        assert!(StopSignal::parse("RELOAD").is_err());
        let seq = |s: &str| {
            Stop {
                grace: Duration::ZERO,
                signal: StopSignal::parse(s).unwrap(),
            }
            .sequence()
        };
        use Signal::*;
        assert_eq!(seq("HUP"), vec![SIGHUP, SIGTERM, SIGKILL]);
        assert_eq!(seq("TERM"), vec![SIGTERM, SIGKILL]);
        assert_eq!(seq("INT"), vec![SIGINT, SIGTERM, SIGKILL]);
        assert_eq!(seq("KILL"), vec![SIGKILL]);
    }

    #[test]
    fn run_names_name_their_owner() {
        assert_eq!(parse_name("pb-12-345"), Some((12, 345)));
        assert_eq!(parse_name("pb-12-345-7-remote"), Some((12, 345)));
        assert_eq!(parse_name("pairbench-12"), None);
        assert!(!run_over(&own_name()));
        assert!(deadline(Duration::MAX) > Instant::now());
    }
}
