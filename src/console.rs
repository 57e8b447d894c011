//! What pairbench prints on its standard output, a line at a time. A closed stdout
//! (`pairbench run | head -1`) is noticed once, quietly: nothing more is printed, no
//! panic, no "Broken pipe", and a run stops as if interrupted (its running pairs end, its
//! after-hooks run) and exits 141. See the README, "Exit status".

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Print one line on stdout; false once stdout is closed.
pub fn line(s: &str) -> bool {
    if CLOSED.load(Ordering::SeqCst) {
        return false;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{s}").and_then(|()| out.flush()).is_err() {
        closed_now();
        return false;
    }
    true
}

/// Print several lines at once (buffered); false once stdout is closed.
pub fn block(text: &str) -> bool {
    if CLOSED.load(Ordering::SeqCst) {
        return false;
    }
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        closed_now();
        return false;
    }
    true
}

fn closed_now() {
    if !CLOSED.swap(true, Ordering::SeqCst) {
        crate::interrupt::request_stop();
    }
}

/// Has stdout been closed?
pub fn closed() -> bool {
    CLOSED.load(Ordering::SeqCst)
}
