//! `-v`: both sides' output, live, each line prefixed with its side and the time it was
//! seen. Scripts write straight to files; this follows the files, in bounded pieces
//! (docs/running.md, "What you see").

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Watched {
    prefix: String,
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    /// The last piece printed ended inside a line.
    continued: bool,
}

/// The follower of output files.
pub struct Live {
    files: Arc<Mutex<HashMap<u64, Watched>>>,
    next: AtomicU64,
    stop: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Read at most this much at a time, and hold at most this much of a line: a longer
/// line is printed in pieces as it comes (each continuation marked `+`), so a script
/// that writes a 200 MB line never makes pairbench hold it.
const CHUNK: usize = 64 * 1024;

fn drain(w: &mut Watched, all: bool) {
    let Ok(mut f) = File::open(&w.path) else {
        return;
    };
    if f.seek(SeekFrom::Start(w.offset)).is_err() {
        return;
    }
    let mut buf = vec![0u8; CHUNK];
    let mut out = std::io::stdout().lock();
    let stamp = chrono::Local::now().format("%H:%M:%S%.3f");
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        w.offset += n as u64;
        w.partial.extend_from_slice(&buf[..n]);
        while let Some(nl) = w.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = w.partial.drain(..=nl).collect();
            let _ = write!(out, "{} {stamp} {} ", w.prefix, w.mark());
            let _ = out.write_all(&line);
            w.continued = false;
        }
        if w.partial.len() >= CHUNK {
            // A piece of a long line: out now, the rest follows.
            let _ = write!(out, "{} {stamp} {} ", w.prefix, w.mark());
            let _ = out.write_all(&w.partial);
            let _ = out.write_all(b"\n");
            w.partial.clear();
            w.continued = true;
        }
    }
    if all && !w.partial.is_empty() {
        let _ = write!(out, "{} {stamp} {} ", w.prefix, w.mark());
        let _ = out.write_all(&w.partial);
        let _ = out.write_all(b"\n");
        w.partial.clear();
    }
}

impl Watched {
    /// `|` before a line, `+` before the continuation of a long one.
    fn mark(&self) -> char {
        if self.continued { '+' } else { '|' }
    }
}

impl Live {
    pub fn start() -> Live {
        let files: Arc<Mutex<HashMap<u64, Watched>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        {
            let files = files.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for w in lock(&files).values_mut() {
                        drain(w, false);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
        Live {
            files,
            next: AtomicU64::new(0),
            stop,
        }
    }

    /// Follow `path`, printing its lines after `prefix` (`local ` or `remote`).
    pub fn watch(&self, prefix: &str, path: PathBuf) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.files).insert(
            id,
            Watched {
                prefix: prefix.to_string(),
                path,
                offset: 0,
                partial: Vec::new(),
                continued: false,
            },
        );
        id
    }

    /// Print what is left of a file and stop following it.
    pub fn unwatch(&self, id: u64) {
        if let Some(mut w) = lock(&self.files).remove(&id) {
            drain(&mut w, true);
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
