//! The remote hosts of a run (SPEC §7): each with its slots (pairs it runs at once); a
//! pair takes a free slot on a host that is up and ready for the current group (hosts are
//! prepared at the same time, and each takes pairs as soon as it is ready), and a host
//! that fails is taken out so the remaining pairs go to the others.

use std::sync::{Condvar, Mutex};

use crate::transport::Transport;

struct State {
    busy: usize,
    /// Prepared for the current group: it may take pairs.
    ready: bool,
    /// Why the host is out of the pool.
    down: Option<String>,
}

/// Hosts with slots.
pub struct Pool {
    pub hosts: Vec<Box<dyn Transport>>,
    slots: Vec<usize>,
    state: Mutex<Vec<State>>,
    freed: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    /// `slots[i]` pairs at once on `hosts[i]`.
    pub fn new(hosts: Vec<Box<dyn Transport>>, slots: Vec<usize>) -> Pool {
        let state = hosts
            .iter()
            .map(|_| State {
                busy: 0,
                ready: false,
                down: None,
            })
            .collect();
        Pool {
            hosts,
            slots,
            state: Mutex::new(state),
            freed: Condvar::new(),
        }
    }

    /// Total slots of the hosts that are up.
    pub fn capacity(&self) -> usize {
        let st = lock(&self.state);
        st.iter()
            .zip(&self.slots)
            .filter(|(s, _)| s.down.is_none())
            .map(|(_, n)| *n)
            .sum()
    }

    /// A new group begins: no host takes its pairs until [`Pool::mark_ready`].
    pub fn begin_group(&self) {
        for s in lock(&self.state).iter_mut() {
            s.ready = false;
        }
    }

    /// Host `i` is prepared for the current group.
    pub fn mark_ready(&self, i: usize) {
        lock(&self.state)[i].ready = true;
        self.freed.notify_all();
    }

    /// Host `i` is ready for the current group or down.
    pub fn is_settled(&self, i: usize) -> bool {
        let st = lock(&self.state);
        st[i].ready || st[i].down.is_some()
    }

    /// Wait until host `i` is ready for the current group (true) or down (false).
    pub fn wait_settled(&self, i: usize) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st[i].down.is_some() {
                return false;
            }
            if st[i].ready {
                return true;
            }
            st = self.freed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A free slot on a host that is up and ready (the least busy), waiting for one if
    /// needed; `Err` with the reasons when every host is down.
    pub fn acquire(&self) -> Result<usize, String> {
        let mut st = lock(&self.state);
        loop {
            if st.iter().all(|s| s.down.is_some()) {
                let why: Vec<String> = st
                    .iter()
                    .zip(&self.hosts)
                    .filter_map(|(s, h)| s.down.as_ref().map(|d| format!("{}: {d}", h.name())))
                    .collect();
                return Err(format!("no remote host is left ({})", why.join("; ")));
            }
            let free = st
                .iter()
                .enumerate()
                .filter(|(i, s)| s.ready && s.down.is_none() && s.busy < self.slots[*i])
                .min_by_key(|(i, s)| (s.busy * 1000 / self.slots[*i].max(1), *i))
                .map(|(i, _)| i);
            if let Some(i) = free {
                st[i].busy += 1;
                return Ok(i);
            }
            st = self.freed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn release(&self, i: usize) {
        lock(&self.state)[i].busy -= 1;
        self.freed.notify_all();
    }

    /// Take host `i` out of the pool.
    pub fn mark_down(&self, i: usize, why: &str) {
        let mut st = lock(&self.state);
        if st[i].down.is_none() {
            st[i].down = Some(why.to_string());
        }
        drop(st);
        self.freed.notify_all();
    }

    /// End every host's connection, all at the same time.
    pub fn close(self) {
        std::thread::scope(|s| {
            for h in self.hosts {
                s.spawn(move || drop(h));
            }
        });
    }

    pub fn is_down(&self, i: usize) -> Option<String> {
        lock(&self.state)[i].down.clone()
    }
}
