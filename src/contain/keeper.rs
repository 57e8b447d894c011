//! The keeper: a small process per run (`pairbench keeper`, hidden) that outlives
//! pairbench only to clean up after it. pairbench holds the write end of a pipe that is
//! the keeper's stdin; when it ends without saying `done` (killed with SIGKILL, a crash),
//! the keeper sees end-of-file and ends the run's processes — `cgroup.kill` on the run's
//! cgroup, or, under the sweep, the process trees pairbench told it about — and removes
//! the run's temporary folders. See docs/containment.md.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{SigHandler, Signal, signal};

use super::{cgroup, procfs, sweep};

/// Options of `pairbench keeper`.
#[derive(Debug, Clone, clap::Args)]
pub struct KeeperArgs {
    /// The run's name (its scripts' markers start with it)
    #[arg(long)]
    pub name: String,
    /// The run's cgroup, ended with cgroup.kill
    #[arg(long)]
    pub cgroup: Option<PathBuf>,
    /// A folder to remove (repeatable)
    #[arg(long)]
    pub remove: Vec<PathBuf>,
}

static PIPE: Mutex<Option<std::fs::File>> = Mutex::new(None);

fn pipe() -> std::sync::MutexGuard<'static, Option<std::fs::File>> {
    PIPE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Start the keeper of this process's run.
pub fn start(
    name: &str,
    cgroup: Option<&std::path::Path>,
    remove: &[PathBuf],
) -> std::io::Result<()> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("keeper").arg("--name").arg(name);
    if let Some(c) = cgroup {
        cmd.arg("--cgroup").arg(c);
    }
    for p in remove {
        cmd.arg("--remove").arg(p);
    }
    cmd.stdin(Stdio::from(r))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        // Not in the terminal's foreground group: Ctrl-C is for pairbench.
        .process_group(0);
    use std::os::unix::process::CommandExt;
    // Started before any script, so no reaper races std for its exec status; its exit
    // is reaped with the scripts' (or when pairbench ends).
    drop(cmd.spawn()?);
    *pipe() = Some(std::fs::File::from(w));
    Ok(())
}

/// Tell the keeper about a process to end if pairbench dies (the sweep's roots).
pub fn note(pid: i32, start: u64) {
    if let Some(f) = pipe().as_mut() {
        let _ = writeln!(f, "pid {pid} {start}");
    }
}

/// pairbench ends normally (or has ended everything itself): the keeper just exits.
pub fn done() {
    if let Some(mut f) = pipe().take() {
        let _ = f.write_all(b"done\n");
    }
}

/// `pairbench keeper`: wait for the end of stdin; clean up unless told `done`.
pub fn main(args: &KeeperArgs) -> i32 {
    // SAFETY: setting a signal to "ignore" runs no code of ours in a handler.
    unsafe {
        let _ = signal(Signal::SIGINT, SigHandler::SigIgn);
        let _ = signal(Signal::SIGHUP, SigHandler::SigIgn);
    }
    let owner = nix::unistd::getppid();
    let mut roots: Vec<(i32, u64)> = Vec::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let mut w = line.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some("done"), _, _) => return 0,
            (Some("pid"), Some(p), Some(s)) => {
                if let (Ok(p), Ok(s)) = (p.parse(), s.parse()) {
                    roots.push((p, s));
                }
            }
            _ => {}
        }
    }
    let mut ended = 0;
    if let Some(cg) = &args.cgroup {
        match cgroup::kill_tree(cg, Duration::from_secs(5)) {
            Ok(n) => ended += n,
            Err(e) => eprintln!("pairbench keeper: {e}"),
        }
    }
    ended += end_trees(&roots, &format!("{}-", args.name), Duration::from_secs(5));
    let mut removed = Vec::new();
    for p in &args.remove {
        let gone = if p.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        };
        if gone.is_ok() {
            removed.push(p.display().to_string());
        }
    }
    eprintln!(
        "pairbench: the run (pid {owner}) ended without cleaning up: its keeper ended {ended} processes{}",
        if removed.is_empty() {
            String::new()
        } else {
            format!(" and removed {}", removed.join(", "))
        }
    );
    0
}

/// End (bounded by `limit`) the trees below `roots` (those that are still the same
/// processes), their process groups and sessions, and the processes whose marker starts
/// with `marker_prefix`. Returns how many were ended.
pub fn end_trees(roots: &[(i32, u64)], marker_prefix: &str, limit: Duration) -> usize {
    let live: Vec<i32> = roots
        .iter()
        .filter(|(p, s)| procfs::same_alive(*p, *s))
        .map(|(p, _)| *p)
        .collect();
    let heads: HashSet<i32> = live.iter().copied().collect();
    sweep::freeze_and_kill(
        &live,
        |all| {
            let mut extra: HashSet<i32> = all
                .iter()
                .filter(|s| heads.contains(&s.pgrp) || heads.contains(&s.session))
                .map(|s| s.pid)
                .collect();
            extra.extend(procfs::find_marked_prefix(marker_prefix));
            extra
        },
        limit,
    )
}
