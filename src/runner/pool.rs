//! The remote hosts of a run (SPEC §7): each with its slots (pairs it runs at once); a
//! pair takes a free slot on a host that is up and ready for the current group (hosts are
//! prepared at the same time, and each takes pairs as soon as it is ready), and a host
//! that fails is taken out so the remaining pairs go to the others. A run holds one
//! numbered slot of its host (`PAIRBENCH_SLOT`) and a TCP port no other run in flight
//! holds and that was free on its host (`PAIRBENCH_PORT`, docs/benchmarks.md, "Ports").

use std::collections::HashSet;
use std::sync::{Condvar, Mutex};

use crate::transport::Transport;

struct State {
    busy: usize,
    /// Which of the host's numbered slots are held.
    held: Vec<bool>,
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
    /// Ports of the runs in flight, on every host.
    ports: Mutex<HashSet<u16>>,
    /// The ports runs are given: `first`, `span` of them.
    port_first: u16,
    port_span: u16,
    /// Where in them this run starts (at random when no range was given, so two
    /// pairbench runs at the same time seldom try the same ones).
    port_base: u16,
    /// Each host's folder under a remote hook's `hooks/<name>/`, when there is more than
    /// one host (each host runs the hook: their logs must not meet).
    hook_folders: Option<Vec<String>>,
}

/// A slot a run holds: its host, and which of that host's slots.
#[derive(Debug, Clone, Copy)]
pub struct Seat {
    pub host: usize,
    pub slot: usize,
}

/// The ports runs are given unless `--ports` says: `PORT_FIRST` up to `PORT_FIRST +
/// PORT_SPAN`, below the kernel's usual range for outgoing connections (32768 and up).
pub const PORT_FIRST: u16 = 20000;
pub const PORT_SPAN: u16 = 10000;
/// Ports tried for one run before it is an ERROR.
const PORT_TRIES: usize = 64;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    /// Host `i`'s folder under a remote hook's `hooks/<name>/`, in a pool of more than
    /// one host.
    pub fn hook_folder(&self, i: usize) -> Option<&str> {
        self.hook_folders.as_ref().map(|f| f[i].as_str())
    }

    /// `slots[i]` pairs at once on `hosts[i]`.
    /// `ports`: the range of `PAIRBENCH_PORT` (first, last), if given.
    pub fn new(
        hosts: Vec<Box<dyn Transport>>,
        slots: Vec<usize>,
        ports: Option<(u16, u16)>,
    ) -> Pool {
        let (port_first, port_span, port_base) = match ports {
            Some((a, b)) => (a, (b - a).saturating_add(1).max(1), 0),
            None => (PORT_FIRST, PORT_SPAN, rand::random_range(0..PORT_SPAN)),
        };
        let state = hosts
            .iter()
            .zip(&slots)
            .map(|(_, n)| State {
                busy: 0,
                held: vec![false; (*n).max(1)],
                ready: false,
                down: None,
            })
            .collect();
        let hook_folders = (hosts.len() > 1).then(|| {
            let names: Vec<&str> = hosts.iter().map(|h| h.name()).collect();
            hook_folders(&names)
        });
        Pool {
            hook_folders,
            hosts,
            slots,
            state: Mutex::new(state),
            freed: Condvar::new(),
            ports: Mutex::new(HashSet::new()),
            port_first,
            port_span,
            port_base,
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
    pub fn acquire(&self) -> Result<Seat, String> {
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
                let slot = st[i].held.iter().position(|h| !h).unwrap_or(0);
                if let Some(h) = st[i].held.get_mut(slot) {
                    *h = true;
                }
                return Ok(Seat { host: i, slot });
            }
            st = self.freed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn release(&self, seat: Seat) {
        let mut st = lock(&self.state);
        st[seat.host].busy -= 1;
        if let Some(h) = st[seat.host].held.get_mut(seat.slot) {
            *h = false;
        }
        drop(st);
        self.freed.notify_all();
    }

    /// A TCP port for a run in `seat`: none of the runs in flight holds it, and the
    /// host's socket tables show no socket on it (when the host can tell). Held until
    /// [`Pool::free_port`]. The first port tried is the run's base plus its slot, so a
    /// slot keeps its port from run to run while that port stays free.
    pub fn take_port(&self, seat: Seat) -> Result<u16, String> {
        let stride = self.slots.iter().copied().max().unwrap_or(1).max(1);
        let span = self.port_span as usize;
        let mut seen = Vec::new();
        // The slot's own ports first (slot, slot + stride, ...), then any of the range.
        let own = (seat.slot..span).step_by(stride);
        let mut checked = 0;
        for off in own.chain(0..span) {
            if checked == PORT_TRIES {
                break;
            }
            let off = (self.port_base as usize + off) % span;
            let port = self.port_first + off as u16;
            if !lock(&self.ports).insert(port) {
                continue;
            }
            checked += 1;
            match self.hosts[seat.host].port_taken(port) {
                Ok(true) => {
                    lock(&self.ports).remove(&port);
                    seen.push(port);
                }
                // A host that cannot tell: the port is at least unique among the runs.
                Ok(false) | Err(_) => return Ok(port),
            }
        }
        let last = self.port_first as usize + span - 1;
        Err(format!(
            "no free TCP port for PAIRBENCH_PORT on {} in {}-{last}: every one tried is in use \
             or held by another run (taken: {:?}); widen --ports",
            self.hosts[seat.host].name(),
            self.port_first,
            &seen[..seen.len().min(5)]
        ))
    }

    /// The run that held `port` is over.
    pub fn free_port(&self, port: u16) {
        lock(&self.ports).remove(&port);
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

/// A file-name-safe folder for each host of a pool, by position: the host's name when it
/// is one, else `host-<i+1>`; a folder already taken (the same host given twice, or a
/// host named `host-2`) gets `-<i+1>` added until it is free.
fn hook_folders(names: &[&str]) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let safe = !name.is_empty()
                && name.len() <= 100
                && !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
            let mut folder = if safe {
                name.to_string()
            } else {
                format!("host-{}", i + 1)
            };
            while !taken.insert(folder.clone()) {
                folder = format!("{folder}-{}", i + 1);
            }
            folder
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_host_gets_a_folder_of_its_own() {
        assert_eq!(
            hook_folders(&["host-2", "a b", "a", "a", ".x"]),
            ["host-2", "host-2-2", "a", "a-4", "host-5"]
        );
    }
}
