//! The outcome of a pair (SPEC §2): which marker, and the one-line reason.
//!
//! ERROR (exit 2 on either side, or pairbench could not run the pair) wins over FAILED
//! (the local test failed or timed out, or the remote test failed on its own), which
//! wins over SUCCESS.

use std::time::Duration;

use crate::process::Exit;
use crate::tree::{Ended, Status};

/// How the local test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalEnd {
    Exited(Exit),
    TimedOut(Duration),
    /// Could not be started (the reason).
    NotRun(String),
}

/// How the remote test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteEnd {
    /// Exited on its own.
    Own(Exit),
    /// Terminated by pairbench; its exit after the signal, if known.
    Terminated(Option<Exit>),
    NotRun(String),
}

impl RemoteEnd {
    pub fn ended(&self) -> Option<Ended> {
        match self {
            RemoteEnd::Own(_) => Some(Ended::OnItsOwn),
            RemoteEnd::Terminated(_) => Some(Ended::Terminated),
            RemoteEnd::NotRun(_) => None,
        }
    }
    pub fn exit(&self) -> Option<Exit> {
        match self {
            RemoteEnd::Own(e) => Some(*e),
            RemoteEnd::Terminated(e) => *e,
            RemoteEnd::NotRun(_) => None,
        }
    }
}

/// Write a duration the way users write them (`10m`, `1m 30s`, `500ms`).
pub fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Decide the status and reason of a pair; `stopped_by` is the signal that ended the
/// remote test when pairbench ended it (`SIGTERM`).
pub fn decide(local: &LocalEnd, remote: &RemoteEnd, stopped_by: Option<&str>) -> (Status, String) {
    let mut errors = Vec::new();
    let mut failures = Vec::new();
    match local {
        LocalEnd::Exited(Exit::Code(0)) => {}
        LocalEnd::Exited(Exit::Code(2)) => errors.push("local exited 2".to_string()),
        LocalEnd::Exited(e) => failures.push(format!("local {e}")),
        LocalEnd::TimedOut(d) => failures.push(format!("local timed out after {}", human(*d))),
        LocalEnd::NotRun(why) => errors.push(why.clone()),
    }
    match remote {
        RemoteEnd::Own(Exit::Code(0)) | RemoteEnd::Terminated(_) => {}
        RemoteEnd::Own(Exit::Code(2)) => errors.push("remote exited 2".to_string()),
        RemoteEnd::Own(e) => failures.push(format!("remote {e}")),
        RemoteEnd::NotRun(why) => errors.push(why.clone()),
    }
    if !errors.is_empty() {
        errors.extend(failures);
        return (Status::Error, errors.join("; "));
    }
    if !failures.is_empty() {
        return (Status::Failed, failures.join("; "));
    }
    let remote_part = match (remote, stopped_by) {
        (RemoteEnd::Terminated(_), Some(sig)) => format!("remote terminated by {sig}"),
        (RemoteEnd::Terminated(_), None) => "remote terminated".to_string(),
        _ => "remote exited 0".to_string(),
    };
    (Status::Success, format!("local exited 0, {remote_part}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use LocalEnd as L;
    use RemoteEnd as R;

    fn c(n: i32) -> Exit {
        Exit::Code(n)
    }

    #[test]
    fn table() {
        let cases = [
            (
                L::Exited(c(0)),
                R::Own(c(0)),
                Status::Success,
                "local exited 0, remote exited 0",
            ),
            (
                L::Exited(c(0)),
                R::Terminated(None),
                Status::Success,
                "local exited 0, remote terminated",
            ),
            (
                L::Exited(c(1)),
                R::Terminated(None),
                Status::Failed,
                "local exited 1",
            ),
            (
                L::TimedOut(Duration::from_secs(600)),
                R::Own(c(0)),
                Status::Failed,
                "local timed out after 10m",
            ),
            (
                L::Exited(c(0)),
                R::Own(c(3)),
                Status::Failed,
                "remote exited 3",
            ),
            (
                L::Exited(Exit::Signal(11)),
                R::Own(c(0)),
                Status::Failed,
                "local killed by SIGSEGV",
            ),
            (
                L::Exited(c(2)),
                R::Own(c(0)),
                Status::Error,
                "local exited 2",
            ),
            (
                L::Exited(c(0)),
                R::Own(c(2)),
                Status::Error,
                "remote exited 2",
            ),
            (
                L::Exited(c(1)),
                R::Own(c(2)),
                Status::Error,
                "remote exited 2; local exited 1",
            ),
            (
                L::Exited(c(0)),
                R::Terminated(Some(c(2))),
                Status::Success,
                "local exited 0, remote terminated",
            ),
            (
                L::NotRun("x".into()),
                R::NotRun("y".into()),
                Status::Error,
                "x; y",
            ),
        ];
        for (l, r, st, reason) in cases {
            assert_eq!(
                decide(&l, &r, None),
                (st, reason.to_string()),
                "{l:?} {r:?}"
            );
        }
        assert_eq!(
            decide(&L::Exited(c(0)), &R::Terminated(None), Some("SIGTERM")).1,
            "local exited 0, remote terminated by SIGTERM"
        );
    }
}
