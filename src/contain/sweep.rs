//! The sweep: containment where no cgroup can be used. Each side gets a *holder*: the
//! process pairbench forks for the side, which makes itself a child subreaper, blocks
//! the stop signals, forks the script (which execs) and then only reaps. While the
//! holder lives, every process the script starts — daemons after `env -i`, `setsid`,
//! double forks — stays below it (an orphan goes to the nearest living subreaper), and
//! the holder exits by itself once nothing is left below it. So:
//! - the side's members are the tree below its holder (and anything in its process
//!   group);
//! - "gone" is the holder gone;
//! - the script's exit status comes from the holder through a pipe.
//!
//! See docs/containment.md.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::procfs::{self, Stat};

/// Holders of the sides that are not over (for an instant stop of everything).
static HOLDERS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn holders() -> MutexGuard<'static, Vec<i32>> {
    HOLDERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// One side under the sweep.
#[derive(Debug, Default)]
pub struct SweepSide {
    holder: Mutex<Option<i32>>,
}

impl SweepSide {
    pub fn new() -> SweepSide {
        SweepSide::default()
    }

    /// The side's holder started (called with the reaper's table locked).
    pub fn started(&self, holder: i32) {
        *self.holder.lock().unwrap_or_else(|e| e.into_inner()) = Some(holder);
        holders().push(holder);
        let start = procfs::stat(holder).map_or(0, |s| s.start);
        super::keeper::note(holder, start);
    }

    pub fn holder(&self) -> Option<i32> {
        *self.holder.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every live process of this side but the holder.
    pub fn members(&self) -> Vec<i32> {
        let Some(h) = self.holder() else {
            return Vec::new();
        };
        let all = procfs::all();
        let mut set = tree_below(&all, &[h]);
        set.extend(all.iter().filter(|s| s.pgrp == h).map(|s| s.pid));
        set.remove(&h);
        let alive: HashSet<i32> = all.iter().filter(|s| s.alive()).map(|s| s.pid).collect();
        let mut out: Vec<i32> = set.into_iter().filter(|p| alive.contains(p)).collect();
        out.sort_unstable();
        out
    }

    /// Is the holder (so: anything of the side) still there?
    pub fn holder_alive(&self) -> bool {
        self.holder().is_some_and(procfs::alive)
    }

    /// SIGKILL everything below the holder at once (frozen first, so nothing forks
    /// away), then wait for the holder to leave by itself; it is killed too after
    /// `limit`.
    pub fn kill_all(&self, limit: Duration) {
        let Some(h) = self.holder() else { return };
        if !procfs::alive(h) {
            return;
        }
        let end = super::deadline(limit);
        // A process that forked just before it stopped may leave a child below the
        // holder: again until the holder, with nothing left below it, is gone.
        while procfs::alive(h) && Instant::now() < end {
            let members = self.members();
            freeze_and_kill(
                &members,
                |all| {
                    let mut s = tree_below(all, &[h]);
                    s.extend(all.iter().filter(|st| st.pgrp == h).map(|st| st.pid));
                    s.remove(&h);
                    s
                },
                end.saturating_duration_since(Instant::now()),
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        if procfs::alive(h) {
            let _ = kill(Pid::from_raw(h), Signal::SIGKILL);
        }
    }

    /// The side is over.
    pub fn forget(&self) {
        if let Some(h) = self.holder() {
            holders().retain(|p| *p != h);
        }
    }
}

/// `roots` and everything below them, by parent pid.
pub fn tree_below(all: &[Stat], roots: &[i32]) -> HashSet<i32> {
    let mut children: std::collections::HashMap<i32, Vec<i32>> = Default::default();
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

/// Every process below every holder, holders included (the second Ctrl-C).
pub fn all_members() -> Vec<i32> {
    let all = procfs::all();
    let roots = holders().clone();
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
        let live: Vec<&Stat> = all
            .iter()
            .filter(|s| s.alive() && s.pid != me && targets.contains(&s.pid))
            .collect();
        let new: Vec<i32> = live
            .iter()
            .map(|s| s.pid)
            .filter(|p| !stopped.contains(p))
            .collect();
        // Done when nothing new appeared and every one signalled has really stopped
        // (until then it may still fork).
        let settled = live.iter().all(|s| s.state == b'T' || s.state == b't');
        if (new.is_empty() && settled) || Instant::now() >= end {
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

/// The holder's life, between fork and exec of the side's first process: become a
/// subreaper that the stop signals do not reach, fork the script (which returns to exec,
/// with the signal mask it had), then reap until nothing is left, reporting the
/// script's wait status on `status_fd`. Only async-signal-safe calls.
///
/// # Safety
/// To be called only in a freshly forked child (a `pre_exec` closure).
pub unsafe fn become_holder(status_fd: std::os::fd::RawFd) -> std::io::Result<()> {
    use nix::libc;
    // SAFETY: plain system calls on this process, as the caller guarantees it is a
    // fresh child; no allocation, no locks.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        let mut block: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut block);
        for s in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGPIPE,
        ] {
            libc::sigaddset(&mut block, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &block, &mut old);
        let script = libc::fork();
        if script < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if script == 0 {
            // The script: back to the signal mask it would have had, then exec.
            libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            return Ok(());
        }
        // The holder: keep only the status pipe (and the side's stdio), so it holds no
        // socket, lock or pipe of pairbench's.
        if status_fd > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, (status_fd - 1) as u32, 0u32);
        }
        libc::syscall(
            libc::SYS_close_range,
            (status_fd + 1) as u32,
            u32::MAX,
            0u32,
        );
        loop {
            let mut st: libc::c_int = 0;
            let r = libc::waitpid(-1, &mut st, 0);
            if r == script {
                let bytes = st.to_ne_bytes();
                libc::write(status_fd, bytes.as_ptr().cast(), bytes.len());
                libc::close(status_fd);
            } else if r < 0 {
                if *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                // Nothing is left below: the side is gone.
                libc::_exit(0);
            }
        }
    }
}
