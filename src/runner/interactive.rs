//! `pairbench run --interactive GROUP/PAIR` (docs/testbed.md, "By hand"): the remote test
//! starts as usual, and instead of the local test a shell opens on this terminal, in the
//! local side's folder, with the pair's whole environment and helpers; leaving it ends
//! the pair as usual (the remote test is terminated, the results kept).

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use crate::outcome::LocalEnd;
use crate::process::{self, Child};
use crate::transport::{Launch, Running, TransportError};

/// The interactive run may start: one pair, and a terminal to talk on.
pub fn check(pairs_to_run: usize, wanted: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "--interactive {wanted} needs a terminal: run it from a shell, not a pipe or a script"
        );
    }
    if pairs_to_run != 1 {
        anyhow::bail!(
            "--interactive {wanted} matches {pairs_to_run} pairs to run: name exactly one as GROUP/LOCAL_x_REMOTE (see `pairbench list`)"
        );
    }
    Ok(())
}

/// What the shell gets besides the pair's environment.
pub fn env(pair: &str, script: &Path) -> Vec<(String, String)> {
    vec![
        (
            "PAIRBENCH_LOCAL_SCRIPT".into(),
            script.to_string_lossy().into_owned(),
        ),
        ("PAIRBENCH_INTERACTIVE".into(), "1".into()),
        ("PS1".into(), format!("[pairbench {pair}] \\w\\$ ")),
    ]
}

/// Open the shell (bash without rc files, so the prompt names the pair; else `sh`).
pub fn start(launch: &Launch) -> Result<Child, TransportError> {
    let bash = ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    let (program, args) = match bash {
        Some(b) => (b.into(), vec!["--norc".to_string(), "-i".to_string()]),
        None => ("/bin/sh".into(), vec!["-i".to_string()]),
    };
    eprintln!(
        "pairbench: the remote test runs; this shell stands in for the local test ($PAIRBENCH_LOCAL_SCRIPT runs it). Leave it (exit) to end the pair."
    );
    // The shell talks to the terminal: its side's stdout and stderr stay empty.
    for f in [&launch.stdout, &launch.stderr] {
        std::fs::File::create(f)
            .map_err(|e| TransportError::Io(format!("{}: {e}", f.display())))?;
    }
    Ok(process::spawn_on_terminal(&process::Spec {
        program,
        args,
        cwd: launch.cwd.clone(),
        env: launch.env.clone(),
        stdout: launch.stdout.clone(),
        stderr: launch.stderr.clone(),
        marker: launch.marker.clone(),
    })?)
}

/// Wait for the user to leave the shell (no time limit), then take the terminal back.
pub fn wait(shell: &Child, remote: &dyn Running) -> LocalEnd {
    let mut told = false;
    let end = loop {
        if let Some(e) = shell.wait_timeout(Duration::from_millis(200)) {
            break LocalEnd::Exited(e);
        }
        if !told && let Some(why) = remote.failure() {
            eprintln!(
                "\npairbench: the remote side is lost ({why}); leave the shell to end the pair"
            );
            told = true;
        }
    };
    process::take_terminal_back();
    end
}
