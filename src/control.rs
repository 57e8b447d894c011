//! The control socket: how helpers (`wait_for_remote`, `kill_remote`, ...) running inside a
//! local test talk to the pairbench run that started it. One Unix socket per run, in a
//! private temporary folder that also holds the helpers' executables (links to pairbench).
//!
//! Protocol: one request line, one answer line.
//! - `STATUS <key>` → `RUNNING` | `EXITED <exit>`
//! - `WAIT <key> <ms>` → `EXITED <exit>` | `TIMEOUT`
//! - `KILL <key>` → `KILLED` | `EXITED <exit>`
//! - `PORT <key> <port> <tcp|udp> <open|close> <ms>` → `REACHED` | `EXITED <exit>` |
//!   `TIMEOUT`: the pair's transport reads the socket tables on the remote host (it
//!   never connects); `EXITED` when the remote test exited before the port opened.
//!
//! `<exit>` is written like an `exit_code` file; unknown keys get `ERR <message>`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::contain::Stop;
use crate::helpers::NAMES;
use crate::sockets::{Proto, Waited};
use crate::transport::Running;

/// A pair's remote side, as helpers see it.
struct Entry {
    remote: Arc<dyn Running>,
    stop: Stop,
}

type Table = Arc<Mutex<HashMap<String, Entry>>>;

/// Control folders of this process, removed on an abrupt exit too.
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Remove every control folder (for exits that skip destructors).
pub fn remove_all() {
    for d in lock(&DIRS).drain(..) {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The run's control server.
pub struct Control {
    dir: PathBuf,
    socket: PathBuf,
    bin: PathBuf,
    table: Table,
    counter: AtomicU64,
    stop: Arc<AtomicBool>,
}

impl Control {
    /// Create the private folder (named after the run, see
    /// [`crate::contain::leftovers::control_dir_name`]), the helper links and the socket,
    /// and start serving.
    pub fn start(run_name: &str) -> std::io::Result<Control> {
        let base = std::env::temp_dir();
        let dir = base.join(crate::contain::leftovers::control_dir_name(run_name));
        std::fs::create_dir(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let bin = dir.join("bin");
        std::fs::create_dir(&bin)?;
        let exe = std::env::current_exe()?;
        for name in NAMES.iter().chain(&crate::testbed::command::HELPERS) {
            std::os::unix::fs::symlink(&exe, bin.join(name))?;
        }
        lock(&DIRS).push(dir.clone());
        let socket = dir.join("control.sock");
        let listener = UnixListener::bind(&socket)?;
        let table: Table = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        {
            let table = table.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("pairbench-control".into())
                .spawn(move || serve(listener, table, stop))?;
        }
        Ok(Control {
            dir,
            socket,
            bin,
            table,
            counter: AtomicU64::new(0),
            stop,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The folder to put first on a local test's PATH.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Make a pair's remote side reachable by helpers; returns its key.
    /// The run's control folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn register(&self, remote: Arc<dyn Running>, stop: Stop) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let key = format!("p{n}");
        lock(&self.table).insert(key.clone(), Entry { remote, stop });
        key
    }

    pub fn unregister(&self, key: &str) {
        lock(&self.table).remove(key);
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = UnixStream::connect(&self.socket);
        let _ = std::fs::remove_dir_all(&self.dir);
        lock(&DIRS).retain(|d| d != &self.dir);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn serve(listener: UnixListener, table: Table, stop: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let table = table.clone();
        let _ = std::thread::Builder::new()
            .name("pairbench-helper".into())
            .spawn(move || handle(conn, table));
    }
}

fn handle(conn: UnixStream, table: Table) {
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let reader = BufReader::new(conn);
    for line in reader.lines() {
        let Ok(line) = line else { return };
        let answer = answer(&line, &table);
        if writer.write_all(format!("{answer}\n").as_bytes()).is_err() {
            return;
        }
    }
}

fn lookup(table: &Table, key: &str) -> Option<(Arc<dyn Running>, Stop)> {
    lock(table).get(key).map(|e| (e.remote.clone(), e.stop))
}

fn answer(line: &str, table: &Table) -> String {
    let mut words = line.split_whitespace();
    let (verb, key) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let Some((remote, stop)) = lookup(table, key) else {
        return "ERR this pair is over (unknown pair key)".into();
    };
    match verb {
        "STATUS" => match remote.try_exit() {
            Some(e) => format!("EXITED {}", e.file_text()),
            None => "RUNNING".into(),
        },
        "WAIT" => {
            let ms: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(60_000);
            let deadline = crate::contain::deadline(Duration::from_millis(ms));
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if let Some(e) = remote.wait_timeout(left.min(Duration::from_millis(250))) {
                    return format!("EXITED {}", e.file_text());
                }
                if Instant::now() >= deadline {
                    return "TIMEOUT".into();
                }
                if lookup(table, key).is_none() {
                    return "ERR this pair is over".into();
                }
            }
        }
        "KILL" => {
            if let Some(e) = remote.try_exit() {
                // Already gone on its own; still end whatever it left behind.
                remote.stop(stop);
                return format!("EXITED {}", e.file_text());
            }
            remote.stop(stop);
            "KILLED".into()
        }
        "PORT" => {
            let port = words.next().and_then(|w| w.parse::<u16>().ok());
            let proto = words.next().and_then(Proto::from_word);
            let open = match words.next() {
                Some("open") => Some(true),
                Some("close") => Some(false),
                _ => None,
            };
            let ms: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(60_000);
            let (Some(port), Some(proto), Some(open)) = (port, proto, open) else {
                return "ERR usage: PORT <key> <port> <tcp|udp> <open|close> <ms>".into();
            };
            wait_port(
                &*remote,
                port,
                proto,
                open,
                Duration::from_millis(ms),
                || lookup(table, key).is_some(),
            )
        }
        _ => format!("ERR unknown request '{verb}'"),
    }
}

/// Wait for a port through the remote side's transport, in slices, so that a wait ends
/// soon after its pair does (`alive` turns false).
fn wait_port(
    remote: &dyn Running,
    port: u16,
    proto: Proto,
    open: bool,
    limit: Duration,
    alive: impl Fn() -> bool,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match remote.wait_port(port, proto, open, left.min(Duration::from_millis(250))) {
            Err(e) => return format!("ERR {}", e.to_string().replace('\n', " ")),
            Ok(Waited::Reached) => return "REACHED".into(),
            Ok(Waited::Exited) => {
                // Over SSH the exit's own message may come just after this answer.
                return match remote.wait_timeout(Duration::from_secs(2)) {
                    Some(e) => format!("EXITED {}", e.file_text()),
                    None => "EXITED unknown".into(),
                };
            }
            Ok(Waited::TimedOut) => {}
        }
        if Instant::now() >= deadline {
            return "TIMEOUT".into();
        }
        if !alive() {
            return "ERR this pair is over".into();
        }
    }
}
