//! Ctrl-C (and SIGTERM, SIGHUP): the first stops starting pairs and ends the running ones (after-hooks still
//! run, the exit status is 130); the second ends every process of the run at once
//! (escaped ones included: see docs/containment.md), removes the unfinished pair
//! folders and exits 130 (`latest` already points at the run).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNT: AtomicU32 = AtomicU32::new(0);

/// Pair folders being written (`.partial`), removed by a second Ctrl-C.
static PARTIALS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Install the SIGINT/SIGTERM handler (once).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            eprintln!(
                "\npairbench: interrupted: ending running pairs, then the after-hooks (Ctrl-C again to stop at once)"
            );
        } else {
            eprintln!("\npairbench: stopping at once");
            stop_at_once();
            std::process::exit(130);
        }
    });
}

/// End everything now and leave the tree as an interrupted run.
fn stop_at_once() {
    crate::process::kill_all_now();
    for p in lock(&PARTIALS).drain(..) {
        let _ = std::fs::remove_dir_all(p);
    }
    crate::control::remove_all();
    crate::contain::current().finish();
}

/// Stop as a first Ctrl-C does, without a word (pairbench's stdout was closed).
pub fn request_stop() {
    let _ = COUNT.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst);
}

/// Has the user asked to stop?
pub fn requested() -> bool {
    COUNT.load(Ordering::SeqCst) > 0
}

/// A pair folder being written; a second Ctrl-C removes it while this lives.
pub struct Partial(PathBuf);

impl Partial {
    pub fn new(path: &Path) -> Partial {
        lock(&PARTIALS).push(path.to_path_buf());
        Partial(path.to_path_buf())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        lock(&PARTIALS).retain(|p| p != &self.0);
    }
}
