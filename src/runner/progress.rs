//! What a run shows while it goes: a progress bar on a terminal (pairs done, counts by
//! status, ETA), or one plain line per finished pair elsewhere, saying which repetition,
//! parameter set and attempt it was (docs/running.md, "What you see").

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::ProgressMode;
use crate::terminal::shown;
use crate::tree::{Counts, PairRecord, Status};

/// `line` with the names in it escaped for the terminal.
fn shown_line(line: String) -> String {
    shown(&line).into_owned()
}

/// What the lines of a run with repetitions, parameters or retries say.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plan {
    /// `--repeat` and `--warmup`.
    pub repeat: u32,
    pub warmup: u32,
    /// `--retries`.
    pub retries: u32,
    /// The run has several runs of a pair (repetitions or parameter sets): it counts
    /// "runs", not "pairs".
    pub variants: bool,
}

impl Plan {
    /// `pairs` or `runs`.
    pub fn word(&self) -> &'static str {
        if self.variants { "runs" } else { "pairs" }
    }

    /// Which run of its pair `rec` is: ` rep 2/3 SIZE=64`, ` warm-up 1/1`, and
    /// ` attempt 2/3` with retries; empty for a plain run.
    pub fn which(&self, rec: &PairRecord) -> String {
        let mut s = String::new();
        if let Some(n) = rec.repetition {
            if rec.warmup {
                s.push_str(&format!(" warm-up {n}/{}", self.warmup));
            } else {
                s.push_str(&format!(" rep {n}/{}", self.repeat));
            }
        }
        for (k, v) in &rec.params {
            s.push_str(&format!(" {k}={v}"));
        }
        if self.retries > 0 && (rec.attempt > 1 || rec.status != Status::Success) {
            s.push_str(&format!(" attempt {}/{}", rec.attempt, self.retries + 1));
        }
        s
    }
}

/// The run's display.
pub struct Progress {
    bar: Option<ProgressBar>,
    state: Mutex<(usize, Counts)>,
    total: usize,
    plan: Plan,
    /// Reasons of runs pairbench could not run, already shown once.
    shown_unreached: Mutex<std::collections::HashSet<String>>,
}

impl Progress {
    pub fn new(total: usize, mode: ProgressMode, verbose: bool, plan: Plan) -> Progress {
        let show_bar = match mode {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => std::io::stderr().is_terminal() && !verbose,
        };
        let bar = show_bar.then(|| {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template(&format!(
                    "{{bar:30.cyan/blue}} {{pos}}/{{len}} {}  {{msg}}  [{{elapsed_precise}}, ETA {{eta}}]",
                    plan.word()
                ))
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
            plan,
            shown_unreached: Mutex::new(Default::default()),
        }
    }

    /// A line above the bar (or plain); names in it are escaped for the terminal.
    pub fn println(&self, line: &str) {
        let line = &*shown(line);
        match &self.bar {
            Some(b) => b.println(line),
            None => {
                crate::console::line(line);
            }
        }
    }

    /// A run of a pair finished; `last`: it is not tried again (`--retries`), so it
    /// counts as done.
    pub fn pair_done(&self, rec: &PairRecord, last: bool) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // A try that is followed by another is shown with the number the run will have.
        let n = st.0 + 1;
        if last {
            st.0 += 1;
            st.1.add(rec.status);
        }
        let width = self.total.to_string().len();
        // Why no host could be reached is said once, not for every run it stops.
        let reason = if rec.unreached
            && !self
                .shown_unreached
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(rec.reason.clone())
        {
            "not run: no remote host could be reached (the reason is above)".to_string()
        } else {
            rec.reason.clone()
        };
        let line = shown_line(format!(
            "[{:>width$}/{}] {:<7} {}/{}{} ({:.2}s){}{}",
            n.min(self.total),
            self.total,
            rec.status.marker(),
            rec.group,
            rec.pair,
            self.plan.which(rec),
            rec.duration_s,
            if rec.status == Status::Success {
                String::new()
            } else {
                format!(": {reason}")
            },
            if last { "" } else { " (trying again)" }
        ));
        match &self.bar {
            Some(b) => {
                if rec.status != Status::Success {
                    b.println(&line);
                }
                b.set_message(format!(
                    "{} ok, {} failed, {} error",
                    st.1.success, st.1.failed, st.1.error
                ));
                if last {
                    b.inc(1);
                }
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
