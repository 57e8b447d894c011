//! What a run shows while it goes: a progress bar on a terminal (pairs done, counts by
//! status, ETA), or one plain line per finished pair elsewhere.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::ProgressMode;
use crate::tree::{Counts, PairRecord, Status};

/// The run's display.
pub struct Progress {
    bar: Option<ProgressBar>,
    state: Mutex<(usize, Counts)>,
    total: usize,
}

impl Progress {
    pub fn new(total: usize, mode: ProgressMode, verbose: bool) -> Progress {
        let show_bar = match mode {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => std::io::stderr().is_terminal() && !verbose,
        };
        let bar = show_bar.then(|| {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} pairs  {msg}  [{elapsed_precise}, ETA {eta}]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            if mode == ProgressMode::Always {
                b.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
            }
            b
        });
        Progress {
            bar,
            state: Mutex::new((0, Counts::default())),
            total,
        }
    }

    /// A line above the bar (or plain).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => {
                crate::console::line(line);
            }
        }
    }

    /// A pair finished.
    pub fn pair_done(&self, rec: &PairRecord) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0 += 1;
        st.1.add(rec.status);
        let width = self.total.to_string().len();
        let line = format!(
            "[{:>width$}/{}] {:<7} {}/{} ({:.2}s){}",
            st.0,
            self.total,
            rec.status.marker(),
            rec.group,
            rec.pair,
            rec.duration_s,
            if rec.status == Status::Success {
                String::new()
            } else {
                format!(": {}", rec.reason)
            }
        );
        match &self.bar {
            Some(b) => {
                if rec.status != Status::Success {
                    b.println(&line);
                }
                b.set_message(format!(
                    "{} ok, {} failed, {} error",
                    st.1.success, st.1.failed, st.1.error
                ));
                b.inc(1);
            }
            None => {
                crate::console::line(&line);
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
