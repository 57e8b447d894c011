//! Side cgroups made ahead and removed behind, off a pair's path: a thread of the run
//! keeps a few empty side cgroups ready (v2, and v1 memory where used), so a side
//! starts without making one, and removes the cgroups of ended sides once their usage
//! has been read, so a pair is recorded without waiting for the kernel to take them
//! down. Each side still gets a cgroup of its own, fresh (its counters start at zero).
//! Making and removing them is most of what a side's cgroup costs (0.1–0.2 ms each
//! here; docs/containment.md, "What it costs").
//!
//! The thread works when the run has a moment ([`Spares::tidy_now`]: a pair waits for
//! its local test), not when a spare is taken or a side retired: then the next script
//! is starting, and on a small machine the kernel's work for the cgroups would compete
//! with it for the CPU. It works at once when fewer than [`LOW`] spares are left or
//! [`SOON`] ended sides wait, and after [`UNHURRIED`] without a moment.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::cgroup::{RunCgroup, SideCgroup, remove_side};

/// Cgroups kept ready: two per pair run at once (`-j 2`); a side that finds none makes
/// its own.
const KEEP: usize = 4;

/// Fewer spares than this left: make more at once (a side would otherwise make its own).
const LOW: usize = 2;

/// This many ended sides waiting: remove them at once.
const SOON: usize = 16;

/// Work waits no longer than this for the run to have a moment.
const UNHURRIED: std::time::Duration = std::time::Duration::from_millis(50);

/// Ended sides waiting to be removed, at most: past this, a side is removed by the
/// thread that ends it (the queue holds no descriptors, only folder names).
const BEHIND: usize = 256;

/// The run's spare side cgroups and its thread.
pub struct Spares {
    state: Arc<(Mutex<State>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    ready: Vec<SideCgroup>,
    /// Folders of ended sides (v2, v1 memory) to remove.
    doomed: Vec<(PathBuf, Option<PathBuf>)>,
    /// Making one failed: sides make their own (and say why, if they cannot either).
    cannot_make: bool,
    closing: bool,
    /// The run has a moment: do what there is to do now.
    tidy: bool,
}

impl State {
    fn can_make(&self) -> bool {
        !self.cannot_make && self.ready.len() < KEEP
    }

    /// Something is to be done, and now is the time.
    fn work_now(&self) -> bool {
        let urgent = (!self.cannot_make && self.ready.len() < LOW) || self.doomed.len() >= SOON;
        (self.tidy || urgent) && (self.can_make() || !self.doomed.is_empty())
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Spares {
    /// Start the thread that keeps spares of `run`; `None` if no thread can be started
    /// (then every side makes and removes its own cgroup).
    pub fn start(run: RunCgroup) -> Option<Spares> {
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("pairbench-cgroups".into())
            .spawn(move || keep(&run, &shared))
            .ok()?;
        Some(Spares {
            state,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A ready side cgroup, if there is one.
    pub fn take(&self) -> Option<SideCgroup> {
        self.change(|s| s.ready.pop())
    }

    /// Remove the cgroup of an ended (empty) side, soon.
    pub fn retire(&self, side: &SideCgroup) {
        let queued = self.change(|s| {
            let room = !s.closing && s.doomed.len() < BEHIND;
            if room {
                s.doomed
                    .push((side.dir().to_path_buf(), side.mem_dir().map(PathBuf::from)));
            }
            room
        });
        if !queued {
            warn_if_stays(remove_side(side.dir(), side.mem_dir()));
        }
    }

    /// The run has a moment (a pair waits for its local test): make the spares and
    /// remove the ended sides now.
    pub fn tidy_now(&self) {
        self.change(|s| s.tidy = true);
    }

    /// Apply `f` to the state, and wake the thread if that gives it work to do now.
    fn change<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (m, cv) = &*self.state;
        let mut s = lock(m);
        let r = f(&mut s);
        let wake = s.work_now();
        drop(s);
        if wake {
            cv.notify_all();
        }
        r
    }

    /// Remove every spare and every ended side's cgroup, and end the thread. Idempotent.
    pub fn close(&self) {
        let (m, cv) = &*self.state;
        lock(m).closing = true;
        cv.notify_all();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// The thread: make spares while fewer than [`KEEP`] are ready, remove ended sides; on
/// closing, remove everything.
fn keep(run: &RunCgroup, state: &(Mutex<State>, Condvar)) {
    let (m, cv) = state;
    let mut made = 0u64;
    loop {
        let mut s = lock(m);
        while !s.closing && !s.work_now() {
            // Done with this moment: the next one (or an urgent need) wakes us; work
            // left waiting is done anyway after a while without one (a run that is
            // only running hooks, or one long pair).
            s.tidy = false;
            if s.can_make() || !s.doomed.is_empty() {
                let (guard, waited) = cv
                    .wait_timeout(s, UNHURRIED)
                    .unwrap_or_else(|e| e.into_inner());
                s = guard;
                s.tidy |= waited.timed_out();
            } else {
                s = cv.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        }
        if s.closing {
            let ready = std::mem::take(&mut s.ready);
            let doomed = std::mem::take(&mut s.doomed);
            drop(s);
            for c in ready {
                warn_if_stays(remove_side(c.dir(), c.mem_dir()));
            }
            for (v2, v1) in doomed {
                warn_if_stays(remove_side(&v2, v1.as_deref()));
            }
            return;
        }
        // The next side waits for a spare; a removal waits for nobody.
        if s.can_make() {
            drop(s);
            made += 1;
            let spare = run.side(&format!("s{made}"));
            let mut s = lock(m);
            match spare {
                Ok(c) => s.ready.push(c),
                Err(_) => s.cannot_make = true,
            }
            continue;
        }
        if let Some((v2, v1)) = s.doomed.pop() {
            drop(s);
            warn_if_stays(remove_side(&v2, v1.as_deref()));
        }
    }
}

fn warn_if_stays(removed: std::io::Result<()>) {
    if let Err(e) = removed {
        eprintln!("pairbench: warning: cannot remove a side's cgroup: {e}");
    }
}
