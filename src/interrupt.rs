//! Ctrl-C (and SIGTERM, SIGHUP): the first stops starting pairs and ends the running ones (after-hooks still
//! run, the exit status is 130); the second kills every script at once and exits.

use std::sync::atomic::{AtomicU32, Ordering};

static COUNT: AtomicU32 = AtomicU32::new(0);

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
            crate::process::kill_all_now();
            crate::control::remove_all();
            std::process::exit(130);
        }
    });
}

/// Stop as a first Ctrl-C does, without a word (pairbench's stdout was closed).
pub fn request_stop() {
    let _ = COUNT.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst);
}

/// Has the user asked to stop?
pub fn requested() -> bool {
    COUNT.load(Ordering::SeqCst) > 0
}
