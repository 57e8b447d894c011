//! `-v`: both sides' output, live, each line prefixed with its side and the time it was
//! seen. Scripts write straight to files; this follows the files.

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

fn drain(w: &mut Watched, all: bool) {
    let Ok(mut f) = File::open(&w.path) else {
        return;
    };
    if f.seek(SeekFrom::Start(w.offset)).is_err() {
        return;
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return;
    }
    w.offset += buf.len() as u64;
    w.partial.extend_from_slice(&buf);
    let mut out = std::io::stdout().lock();
    let stamp = chrono::Local::now().format("%H:%M:%S%.3f");
    while let Some(nl) = w.partial.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = w.partial.drain(..=nl).collect();
        let _ = write!(out, "{} {stamp} | ", w.prefix);
        let _ = out.write_all(&line);
    }
    if all && !w.partial.is_empty() {
        let _ = write!(out, "{} {stamp} | ", w.prefix);
        let _ = out.write_all(&w.partial);
        let _ = out.write_all(b"\n");
        w.partial.clear();
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
