//! The sweep: containment where no cgroup can be used. A side's processes are found by
//! ancestry, not by anything a script can clear (`env -i`):
//! - the script's main process is made a child subreaper before it execs, so while it
//!   lives every process it started stays below it, daemons included;
//! - when it (or a process adopted for it) exits, its orphans come to pairbench (the
//!   subreaper above it); the reaper adopts them for the same side before reaping the
//!   dead one ([`adopt_orphans`]);
//! - members are the trees below the main process and the adopted ones, plus every
//!   process in the main process's process group or session, plus the processes that
//!   carry the side's marker in their environment.
//!
//! See docs/containment.md for what this cannot see.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::procfs::{self, Stat};

/// Known roots of side trees: pid → (side, start time).
static ROOTS: Mutex<Option<HashMap<i32, (u64, u64)>>> = Mutex::new(None);
static NEXT: AtomicU64 = AtomicU64::new(1);
/// pairbench's own helpers (the keeper): children of pairbench that belong to no side.
static EXEMPT: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// `pid` is pairbench's own child, never a side's orphan.
pub fn exempt(pid: i32) {
    EXEMPT.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

fn roots() -> MutexGuard<'static, Option<HashMap<i32, (u64, u64)>>> {
    ROOTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// One side under the sweep.
#[derive(Debug)]
pub struct SweepSide {
    id: u64,
    leader: Mutex<Option<i32>>,
}

impl SweepSide {
    pub fn new() -> SweepSide {
        SweepSide {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            leader: Mutex::new(None),
        }
    }

    /// The script's main process started (called with the reaper's table locked, so
    /// its exit cannot be seen before this).
    pub fn started(&self, pid: i32) {
        *self.leader.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid);
        let start = procfs::stat(pid).map_or(0, |s| s.start);
        roots()
            .get_or_insert_with(HashMap::new)
            .insert(pid, (self.id, start));
        super::keeper::note(pid, start);
    }

    fn leader(&self) -> Option<i32> {
        *self.leader.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every live process of this side (never pairbench itself).
    pub fn members(&self, marker: &str) -> Vec<i32> {
        let all = procfs::all();
        let mut mine: Vec<i32> = roots()
            .as_ref()
            .map(|r| {
                r.iter()
                    .filter(|(_, (side, _))| *side == self.id)
                    .map(|(pid, _)| *pid)
                    .collect()
            })
            .unwrap_or_default();
        let leader = self.leader();
        mine.extend(leader);
        let mut set = tree_below(&all, &mine);
        if let Some(l) = leader {
            set.extend(
                all.iter()
                    .filter(|s| s.pgrp == l || s.session == l)
                    .map(|s| s.pid),
            );
        }
        set.extend(procfs::find_marked(marker));
        let alive: HashSet<i32> = all.iter().filter(|s| s.alive()).map(|s| s.pid).collect();
        let mut out: Vec<i32> = set.into_iter().filter(|p| alive.contains(p)).collect();
        out.sort_unstable();
        out
    }

    /// The side is over: forget its roots.
    pub fn forget(&self) {
        if let Some(r) = roots().as_mut() {
            r.retain(|_, (side, _)| *side != self.id);
        }
    }
}

impl Default for SweepSide {
    fn default() -> Self {
        SweepSide::new()
    }
}

/// `roots` and everything below them, by parent pid.
pub fn tree_below(all: &[Stat], roots: &[i32]) -> HashSet<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for s in all {
        children.entry(s.ppid).or_default().push(s.pid);
    }
    let mut seen: HashSet<i32> = HashSet::new();
    let mut todo: Vec<i32> = roots.to_vec();
    while let Some(p) = todo.pop() {
        if !seen.insert(p) {
            continue;
        }
        if let Some(c) = children.get(&p) {
            todo.extend(c);
        }
    }
    seen
}

/// Process `dead` (a child of pairbench) has exited and is not reaped yet: its children
/// were just handed to pairbench. Adopt them for the side `dead` belonged to, before the
/// ancestry is lost. A no-op for processes of no side.
pub fn adopt_orphans(dead: i32) {
    let mut guard = roots();
    let Some(r) = guard.as_mut() else { return };
    let Some((side, _)) = r.remove(&dead) else {
        return;
    };
    let me = std::process::id() as i32;
    let exempt = EXEMPT.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for s in procfs::all() {
        if s.ppid == me && !r.contains_key(&s.pid) && !exempt.contains(&s.pid) {
            r.insert(s.pid, (side, s.start));
            super::keeper::note(s.pid, s.start);
        }
    }
}

/// Is anyone under the sweep at all (so the reaper must adopt)?
pub fn active() -> bool {
    roots().as_ref().is_some_and(|r| !r.is_empty())
}

/// Every process of every side, for an instant stop (the second Ctrl-C).
pub fn all_members() -> Vec<i32> {
    let all = procfs::all();
    let roots: Vec<i32> = roots()
        .as_ref()
        .map(|r| r.keys().copied().collect())
        .unwrap_or_default();
    let alive: HashSet<i32> = all.iter().filter(|s| s.alive()).map(|s| s.pid).collect();
    tree_below(&all, &roots)
        .into_iter()
        .filter(|p| alive.contains(p))
        .collect()
}

/// Stop (SIGSTOP) every process below `roots` and every one `extra` names, again and
/// again until no new one appears (a stopped process cannot fork, and its children keep
/// it as their parent), then SIGKILL them all and wait (up to `limit`) until they are
/// gone. Returns how many were ended. Never touches pairbench itself.
pub fn freeze_and_kill(
    roots: &[i32],
    extra: impl Fn(&[Stat]) -> HashSet<i32>,
    limit: Duration,
) -> usize {
    let me = std::process::id() as i32;
    let end = super::deadline(limit);
    let mut known: Vec<i32> = roots.to_vec();
    let mut stopped: HashSet<i32> = HashSet::new();
    loop {
        let all = procfs::all();
        let mut targets = tree_below(&all, &known);
        targets.extend(extra(&all));
        let new: Vec<i32> = all
            .iter()
            .filter(|s| s.alive() && s.pid != me && targets.contains(&s.pid))
            .map(|s| s.pid)
            .filter(|p| !stopped.contains(p))
            .collect();
        if new.is_empty() || Instant::now() >= end {
            break;
        }
        for p in new {
            let _ = kill(Pid::from_raw(p), Signal::SIGSTOP);
            stopped.insert(p);
            known.push(p);
        }
    }
    for p in &stopped {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    while stopped.iter().any(|p| procfs::alive(*p)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(2));
    }
    stopped.len()
}
