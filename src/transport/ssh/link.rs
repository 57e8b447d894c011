//! One live connection to a remote host's agent, shared by every pair on that host.
//!
//! A single I/O thread owns the libssh2 session (non-blocking) and its one channel: it
//! writes queued requests, reads answers and events and hands them to whoever waits
//! (requests by id, running scripts by process id), pings the agent and watches that
//! the agent ticks back. When nothing arrives for the connect timeout, or the channel
//! ends, the connection is dead: every waiting request fails and every running script
//! is marked lost with the reason, so nothing blocks forever on a cut link.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, poll};
use ssh2::BlockDirections;

use super::connect::{Established, ping_every};
use super::proto::{Event, PackAfter, Request};
use crate::contain::Stop;
use crate::outcome::human;
use crate::process::Exit;
use crate::sockets::{Proto, Waited};
use crate::transport::{Fetched, Running, TransportError};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the pairs of one host share.
pub struct Shared {
    name: String,
    timeout: Duration,
    out: Mutex<Vec<u8>>,
    wake: OwnedFd,
    pending: Mutex<HashMap<u64, mpsc::Sender<Event>>>,
    procs: Mutex<HashMap<u64, Arc<ProcState>>>,
    dead: Mutex<Option<String>>,
    closing: AtomicBool,
    next_id: AtomicU64,
}

/// A connection and its I/O thread.
pub struct Link {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A request sent, its answer not yet read.
pub struct Pending {
    shared: Arc<Shared>,
    id: u64,
    rx: mpsc::Receiver<Event>,
}

impl Link {
    /// Take over an established connection.
    pub fn start(est: Established, name: &str, timeout: Duration) -> Result<Link, String> {
        let (wake_r, wake_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| format!("cannot create a pipe: {e}"))?;
        let shared = Arc::new(Shared {
            name: name.to_string(),
            timeout,
            out: Mutex::new(Vec::new()),
            wake: wake_w,
            pending: Mutex::default(),
            procs: Mutex::default(),
            dead: Mutex::new(None),
            closing: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ssh-{name}"))
            .spawn(move || pump(est, s, wake_r))
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(Link {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Why the connection is dead, if it is.
    pub fn dead(&self) -> Option<String> {
        lock(&self.shared.dead).clone()
    }

    /// Say goodbye: the agent sees its input end, ends whatever still runs and exits.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.wake();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn wake(&self) {
        let _ = nix::unistd::write(&self.wake, b"x");
    }

    fn dead_error(&self) -> TransportError {
        TransportError::Host(
            lock(&self.dead)
                .clone()
                .unwrap_or_else(|| format!("ssh: the connection to {} is closed", self.name)),
        )
    }

    /// Queue one request.
    pub fn send(&self, req: &Request) -> Result<(), TransportError> {
        if lock(&self.dead).is_some() {
            return Err(self.dead_error());
        }
        let mut line = serde_json::to_vec(req)
            .map_err(|e| TransportError::Io(format!("cannot encode a request: {e}")))?;
        line.push(b'\n');
        lock(&self.out).extend_from_slice(&line);
        self.wake();
        Ok(())
    }

    /// Send a request made with a fresh id; read its answer later.
    pub fn begin(
        self: &Arc<Self>,
        make: impl FnOnce(u64) -> Request,
    ) -> Result<Pending, TransportError> {
        let id = self.next_id();
        self.begin_as(id, make(id))
    }

    /// Send `req`, whose id is `id` (from [`Shared::next_id`]).
    pub fn begin_as(self: &Arc<Self>, id: u64, req: Request) -> Result<Pending, TransportError> {
        let (tx, rx) = mpsc::channel();
        {
            // Registered under the dead lock, so a connection dying now cannot miss it.
            let dead = lock(&self.dead);
            if dead.is_some() {
                drop(dead);
                return Err(self.dead_error());
            }
            lock(&self.pending).insert(id, tx);
        }
        if let Err(e) = self.send(&req) {
            lock(&self.pending).remove(&id);
            return Err(e);
        }
        Ok(Pending {
            shared: self.clone(),
            id,
            rx,
        })
    }

    /// Wait for the answer to request `id`, sent by someone else (a `pack_on_exit`).
    pub fn expect(self: &Arc<Self>, id: u64) -> Result<Pending, TransportError> {
        let (tx, rx) = mpsc::channel();
        let dead = lock(&self.dead);
        if dead.is_some() {
            drop(dead);
            return Err(self.dead_error());
        }
        lock(&self.pending).insert(id, tx);
        Ok(Pending {
            shared: self.clone(),
            id,
            rx,
        })
    }

    /// A request and its answer.
    pub fn call(
        self: &Arc<Self>,
        make: impl FnOnce(u64) -> Request,
        limit: Duration,
    ) -> Result<Event, TransportError> {
        self.begin(make)?.finish(limit, |_| Ok(()))
    }

    /// Track a script that is about to be started with request id `id`; its streamed
    /// output (if any) is appended to `mirror` (stdout, stderr files on this machine).
    pub fn track(&self, id: u64, mirror: Option<[PathBuf; 2]>) -> Arc<ProcState> {
        let st = Arc::new(ProcState {
            mirror,
            ..ProcState::default()
        });
        lock(&self.procs).insert(id, st.clone());
        st
    }

    pub fn untrack(&self, id: u64) {
        lock(&self.procs).remove(&id);
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connection is dead: fail everything that waits.
    fn die(&self, reason: String) {
        let mut dead = lock(&self.dead);
        if dead.is_none() {
            *dead = Some(reason.clone());
        }
        lock(&self.pending).clear();
        drop(dead);
        for st in lock(&self.procs).values() {
            let mut i = lock(&st.m);
            if i.lost.is_none() {
                i.lost = Some(reason.clone());
            }
            st.cv.notify_all();
        }
    }

    fn dispatch(&self, line: &[u8]) {
        let ev: Event = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(_) => return,
        };
        match ev {
            Event::Exited { proc_id, exit } => {
                if let Some(st) = lock(&self.procs).get(&proc_id) {
                    st.set_exit(Exit::parse_file_text(&exit));
                }
            }
            Event::Output {
                proc_id,
                stream,
                data,
            } => {
                let st = lock(&self.procs).get(&proc_id).cloned();
                let file = st
                    .as_ref()
                    .and_then(|st| st.mirror.as_ref())
                    .and_then(|m| m.get(usize::from(stream).wrapping_sub(1)));
                if let (Some(file), Some(bytes)) =
                    (file, crate::transport::ssh::proto::b64_decode(&data))
                {
                    let _ = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(file)
                        .and_then(|mut f| f.write_all(&bytes));
                }
            }
            ev => {
                let Some(re) = ev.re() else { return };
                let last = matches!(
                    ev,
                    Event::Done { .. } | Event::Failed { .. } | Event::Port { .. }
                );
                let mut pending = lock(&self.pending);
                if let Some(tx) = pending.get(&re) {
                    let _ = tx.send(ev);
                }
                if last {
                    pending.remove(&re);
                }
            }
        }
    }
}

impl Pending {
    /// Wait for the final answer; parts of a multi-part answer go to `each`. `limit`
    /// bounds the wait for each message.
    pub fn finish(
        self,
        limit: Duration,
        mut each: impl FnMut(Event) -> Result<(), String>,
    ) -> Result<Event, TransportError> {
        let mut first_error = None;
        loop {
            match self.rx.recv_timeout(limit) {
                Ok(ev @ (Event::Done { .. } | Event::Port { .. })) => {
                    return match first_error {
                        Some(e) => Err(TransportError::Io(e)),
                        None => Ok(ev),
                    };
                }
                Ok(Event::Failed { error, .. }) => return Err(TransportError::Host(error)),
                Ok(ev) => {
                    if let Err(e) = each(ev)
                        && first_error.is_none()
                    {
                        first_error = Some(e);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    lock(&self.shared.pending).remove(&self.id);
                    return Err(TransportError::Host(format!(
                        "ssh: no answer from the pairbench agent on {} within {}",
                        self.shared.name,
                        human(limit)
                    )));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self.shared.dead_error());
                }
            }
        }
    }
}

/// What is known about a script started on the remote host.
#[derive(Default)]
pub struct ProcState {
    m: Mutex<ProcInner>,
    cv: Condvar,
    mirror: Option<[PathBuf; 2]>,
}

#[derive(Default)]
struct ProcInner {
    exit: Option<Exit>,
    lost: Option<String>,
    terminated_by_us: bool,
    terminate_done: bool,
    stopped_by: Option<String>,
    usage: Option<crate::contain::Usage>,
}

impl ProcState {
    fn set_exit(&self, exit: Option<Exit>) {
        let mut i = lock(&self.m);
        if i.exit.is_none() {
            i.exit = exit;
        }
        self.cv.notify_all();
    }
}

/// Side folders sent back with their side's `terminate`, by remote folder: the local
/// folder they were written to, and how that went.
pub type Packed = Arc<Mutex<HashMap<PathBuf, (PathBuf, Result<Fetched, TransportError>)>>>;

/// Where a script's side folder goes back to when it is ended.
pub struct PackTo {
    pub remote: PathBuf,
    pub local: PathBuf,
    pub remove: bool,
    pub into: Packed,
}

/// A script running on the remote host.
pub struct RemoteProc {
    shared: Arc<Shared>,
    id: u64,
    st: Arc<ProcState>,
    terminating: Mutex<()>,
    pack: Option<PackTo>,
    /// The answer to its `pack_on_exit`: its folder, when it ended on its own.
    exit_pack: Mutex<Option<Pending>>,
}

impl RemoteProc {
    pub fn new(
        shared: Arc<Shared>,
        id: u64,
        st: Arc<ProcState>,
        pack: Option<PackTo>,
        exit_pack: Option<Pending>,
    ) -> RemoteProc {
        RemoteProc {
            shared,
            id,
            st,
            terminating: Mutex::new(()),
            pack,
            exit_pack: Mutex::new(exit_pack),
        }
    }

    /// Read the answer to `p`, the side's folder written into `to.local` as it comes:
    /// the answer, and how the folder came back (when it did).
    fn receive(
        &self,
        p: Pending,
        limit: Duration,
    ) -> Result<(Event, Option<Result<Fetched, TransportError>>), TransportError> {
        let mut fetched = Fetched::default();
        let mut write_error = None;
        let ev = p.finish(limit, |ev| {
            if let Some(to) = &self.pack
                && let Err(e) = super::write_entry(&to.local, ev, &mut fetched)
            {
                write_error.get_or_insert(e);
            }
            Ok(())
        })?;
        let came = match &ev {
            Event::Done {
                pack_error, packed, ..
            } if *packed != Some(false) => Some(match (pack_error, write_error) {
                (Some(e), _) => Err(TransportError::Host(e.clone())),
                (None, Some(e)) => Err(TransportError::Io(e)),
                (None, None) => Ok(fetched),
            }),
            _ => None,
        };
        Ok((ev, came))
    }

    fn keep(&self, came: Option<Result<Fetched, TransportError>>) {
        if let (Some(to), Some(result)) = (&self.pack, came) {
            lock(&to.into).insert(to.remote.clone(), (to.local.clone(), result));
        }
    }
}

impl Drop for RemoteProc {
    fn drop(&mut self) {
        self.shared.untrack(self.id);
    }
}

impl Running for RemoteProc {
    fn try_exit(&self) -> Option<Exit> {
        lock(&self.st.m).exit
    }

    fn wait_timeout(&self, timeout: Duration) -> Option<Exit> {
        let g = lock(&self.st.m);
        let (g, _) = self
            .st
            .cv
            .wait_timeout_while(g, timeout, |i| i.exit.is_none() && i.lost.is_none())
            .unwrap_or_else(|e| e.into_inner());
        g.exit
    }

    fn stop(&self, stop: Stop) {
        let _one = lock(&self.terminating);
        {
            let i = lock(&self.st.m);
            if i.terminate_done || i.lost.is_some() {
                return;
            }
        }
        let grace = stop.grace;
        let limit = grace
            .saturating_mul(3)
            .saturating_add(Duration::from_secs(15))
            .saturating_add(self.shared.timeout);
        let proc_id = self.id;
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        let signal = Some(stop.signal.name().to_string());
        // Ended on its own, nothing of it left: its folder is on its way already, and
        // there is nothing to end.
        let exited = lock(&self.st.m).exit.is_some();
        let early = if exited {
            lock(&self.exit_pack).take()
        } else {
            None
        };
        if let Some(p) = early {
            match self.receive(p, limit) {
                Ok((ev, Some(came))) => {
                    self.keep(Some(came));
                    let mut i = lock(&self.st.m);
                    if let Event::Done { usage, .. } = ev {
                        i.usage = usage;
                    }
                    i.terminate_done = true;
                    self.st.cv.notify_all();
                    return;
                }
                Ok((_, None)) => {}
                Err(e) => {
                    let mut i = lock(&self.st.m);
                    if i.lost.is_none() {
                        i.lost = Some(e.to_string());
                    }
                    self.st.cv.notify_all();
                    return;
                }
            }
        }
        // The side's folder comes back with the answer: no `pack` round trip after it.
        let pack = self.pack.as_ref().map(|p| PackAfter {
            path: p.remote.to_string_lossy().into_owned(),
            remove: p.remove,
        });
        let answer = self
            .shared
            .begin(|id| Request::Terminate {
                id,
                proc_id,
                grace_ms,
                signal,
                pack,
            })
            .and_then(|p| self.receive(p, limit));
        let answer = match answer {
            Ok((
                ev @ Event::Done {
                    packed: Some(false),
                    ..
                },
                _,
            )) if self.pack.is_some() => {
                // The folder went with the answer to its `pack_on_exit`.
                let early = lock(&self.exit_pack).take();
                match early.map(|p| self.receive(p, limit)) {
                    Some(Ok((_, came))) => {
                        self.keep(came);
                        Ok(ev)
                    }
                    Some(Err(e)) => Err(e),
                    None => Ok(ev),
                }
            }
            Ok((ev, came)) => {
                self.keep(came);
                Ok(ev)
            }
            Err(e) => Err(e),
        };
        let mut i = lock(&self.st.m);
        match answer {
            Ok(Event::Done {
                terminated,
                exit,
                stopped_by,
                usage,
                ..
            }) => {
                i.terminated_by_us = terminated.unwrap_or(false);
                i.stopped_by = stopped_by;
                i.usage = usage;
                if i.exit.is_none() {
                    i.exit = exit.as_deref().and_then(Exit::parse_file_text);
                }
                i.terminate_done = true;
            }
            Ok(_) => i.terminate_done = true,
            Err(e) => {
                if i.lost.is_none() {
                    i.lost = Some(e.to_string());
                }
            }
        }
        self.st.cv.notify_all();
    }

    fn terminated_by_us(&self) -> bool {
        lock(&self.st.m).terminated_by_us
    }

    fn wait_port(
        &self,
        port: u16,
        proto: Proto,
        open: bool,
        limit: Duration,
    ) -> Result<Waited, TransportError> {
        if let Some(why) = lock(&self.st.m).lost.clone() {
            return Err(TransportError::Host(why));
        }
        let proc_id = self.id;
        let timeout_ms = limit.as_millis() as u64;
        let answer = self.shared.call(
            |id| Request::WaitPort {
                id,
                proc_id,
                port,
                proto,
                open,
                timeout_ms,
            },
            limit + self.shared.timeout,
        )?;
        match answer {
            Event::Port { state, .. } => Waited::from_word(&state).ok_or_else(|| {
                TransportError::Host(format!("the agent answered '{state}' to a port wait"))
            }),
            _ => Err(TransportError::Host(
                "the agent did not say how the port wait ended".into(),
            )),
        }
    }

    fn stopped_by(&self) -> Option<String> {
        lock(&self.st.m).stopped_by.clone()
    }

    fn usage(&self) -> Option<crate::contain::Usage> {
        lock(&self.st.m).usage.clone()
    }

    fn failure(&self) -> Option<String> {
        lock(&self.st.m).lost.clone()
    }
}

/// The I/O thread.
fn pump(est: Established, shared: Arc<Shared>, wake_r: OwnedFd) {
    let Established {
        sess,
        sock,
        channel: mut ch,
        leftover,
        ..
    } = est;
    sess.set_blocking(false);
    let name = shared.name.clone();
    let timeout = shared.timeout;
    let ping = ping_every(timeout);
    // SSH-level keep-alives too (for middleboxes); the agent's ticks tell us it is alive.
    sess.set_keepalive(false, ping.as_secs().max(1) as u32);
    let mut inbuf = leftover;
    let mut outbuf: Vec<u8> = Vec::new();
    let mut errtail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_rx = Instant::now();
    let mut last_ping = Instant::now();
    let mut eof_sent: Option<Instant> = None;
    take_lines(&mut inbuf, &shared);
    let reason: Option<String> = 'run: loop {
        outbuf.append(&mut lock(&shared.out));
        let closing = shared.closing.load(Ordering::SeqCst);
        if last_ping.elapsed() >= ping && eof_sent.is_none() {
            outbuf.extend_from_slice(b"{\"op\":\"ping\"}\n");
            let _ = sess.keepalive_send();
            last_ping = Instant::now();
        }
        let mut blocked_out = false;
        while !outbuf.is_empty() {
            match ch.write(&outbuf) {
                Ok(0) => {
                    blocked_out = true;
                    break;
                }
                Ok(n) => {
                    outbuf.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    blocked_out = true;
                    break;
                }
                Err(e) => break 'run Some(format!("ssh: connection to {name} lost: {e}")),
            }
        }
        if closing && outbuf.is_empty() && eof_sent.is_none() && ch.send_eof().is_ok() {
            eof_sent = Some(Instant::now());
        }
        let mut eof = false;
        loop {
            match ch.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    last_rx = Instant::now();
                    inbuf.extend_from_slice(&buf[..n]);
                    take_lines(&mut inbuf, &shared);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => break 'run Some(format!("ssh: connection to {name} lost: {e}")),
            }
        }
        loop {
            match ch.stderr().read(&mut buf) {
                Ok(n) if n > 0 => {
                    errtail.extend_from_slice(&buf[..n]);
                    let cut = errtail.len().saturating_sub(2000);
                    errtail.drain(..cut);
                }
                _ => break,
            }
        }
        if eof {
            if eof_sent.is_some() {
                break 'run None;
            }
            let err = String::from_utf8_lossy(&errtail).trim().replace('\n', " ");
            break 'run Some(if err.is_empty() {
                format!("ssh: the connection to {name} was closed")
            } else {
                format!("ssh: the connection to {name} was closed: {err}")
            });
        }
        if let Some(t) = eof_sent
            && t.elapsed() > timeout.min(Duration::from_secs(10))
        {
            break 'run None;
        }
        if last_rx.elapsed() > timeout {
            break 'run Some(format!(
                "ssh: connection to {name} lost: no answer for {}",
                human(timeout)
            ));
        }
        let mut events = PollFlags::POLLIN;
        if blocked_out
            && matches!(
                sess.block_directions(),
                BlockDirections::Outbound | BlockDirections::Both
            )
        {
            events |= PollFlags::POLLOUT;
        }
        let wait = ping
            .saturating_sub(last_ping.elapsed())
            .clamp(Duration::from_millis(1), Duration::from_millis(250));
        let mut fds = [
            PollFd::new(sock.as_fd(), events),
            PollFd::new(wake_r.as_fd(), PollFlags::POLLIN),
        ];
        let _ = poll(&mut fds, wait.as_millis() as u16);
        let mut sink = [0u8; 256];
        while matches!(nix::unistd::read(&wake_r, &mut sink), Ok(n) if n > 0) {}
    };
    match reason {
        Some(r) => {
            shared.die(r);
            // A dead link: make libssh2 give up at once instead of waiting on it.
            let _ = sock.shutdown(Shutdown::Both);
        }
        None => {
            shared.die(format!("ssh: the connection to {name} is closed"));
            sess.set_blocking(true);
            sess.set_timeout(2000);
            let _ = ch.close();
            let _ = sess.disconnect(None, "pairbench is done", None);
        }
    }
    drop(ch);
    drop(sess);
}

fn take_lines(inbuf: &mut Vec<u8>, shared: &Shared) {
    let mut start = 0;
    while let Some(i) = inbuf[start..].iter().position(|&b| b == b'\n') {
        shared.dispatch(&inbuf[start..start + i]);
        start += i + 1;
    }
    inbuf.drain(..start);
}
