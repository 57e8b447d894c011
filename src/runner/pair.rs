//! The life of one pair (SPEC §2): start the remote test, start the local test, wait for
//! the local test (or its time limit), end the remote test if it still runs, end
//! everything both scripts started, copy the remote folder back, record one outcome.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::env::{self, EnvInput};
use super::group::{GroupCtx, HostCtx};
use crate::outcome::{self, LocalEnd, RemoteEnd};
use crate::plan::Planned;
use crate::process::Exit;
use crate::results::{self, PairRecord};
use crate::transport::{Launch, Running, local::start_here};

/// Run one pair; `None` when the run was interrupted before it finished (nothing kept).
/// `error`: the pair cannot run (a before-hook failed, no host is left): it is recorded
/// ERROR with that reason without starting anything.
pub fn run_pair(
    g: &GroupCtx,
    h: &HostCtx,
    planned: &Planned,
    attempt: u32,
    failed_before: bool,
    error: Option<&str>,
) -> Option<PairRecord> {
    let groups = &g.run.groups;
    let pair = &planned.pair;
    let (l, r) = (pair.local_test(groups), pair.remote_test(groups));
    let tree = &g.run.tree;
    let name = pair.name(groups);
    let variant = &g.run.variants[planned.variant as usize];
    let rel_dir = variant.rel();
    let dest = tree.pair(&g.group.name, &name).join(&rel_dir);
    let staging = crate::results::Tree::staging(&dest);
    let started_at = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut rec = PairRecord {
        tag: tree.tag.clone(),
        group: g.group.name.clone(),
        local_test: l.name.clone(),
        remote_test: r.name.clone(),
        pair: name.clone(),
        status: crate::results::Status::Error,
        reason: String::new(),
        local_exit: None,
        remote_exit: None,
        remote_ended: None,
        started_at,
        duration_s: 0.0,
        remote_host: h.transport.name().to_string(),
        attempt,
        scripts_hash: planned.hash.to_string(),
        flaky: false,
        variant: rel_dir.clone(),
        params: variant.params.iter().cloned().collect(),
        repetition: variant.repetition,
        warmup: variant.warmup,
    };

    let _ = std::fs::remove_dir_all(&staging);
    let local_dir = staging.join("local");
    let local_remote_dir = staging.join("remote");
    if let Err(e) = std::fs::create_dir_all(&local_dir) {
        rec.reason = format!("cannot create {}: {e}", local_dir.display());
        return finish(g, &staging, &dest, rec);
    }
    let _ = std::fs::create_dir_all(&local_remote_dir);

    // Ends before anything started (a before-hook failed, the host is down).
    if let Some(why) = error {
        rec.reason = why.to_string();
        return finish(g, &staging, &dest, rec);
    }

    let rel = Path::new(&name).join(&rel_dir).join("remote");
    let remote_dir = match h
        .transport
        .side_dir(&h.remote_paths, &rel, &local_remote_dir)
    {
        Ok(d) => d,
        Err(e) => {
            rec.reason = format!("cannot prepare the remote folder: {e}");
            return finish(g, &staging, &dest, rec);
        }
    };
    let marker_base = format!("{}-{}", g.run.run_id, g.run.next_seq());
    let env_for = |side: &str, dir: &Path| {
        let mut e = env::build(&EnvInput {
            tag: &tree.tag,
            group: &g.group.name,
            side,
            result_dir: dir,
            local_paths: &g.local_paths,
            remote_paths: &h.remote_paths,
            remote_host: &h.remote_host,
            local_host: &h.local_host,
            remote_user: &h.remote_user,
            remote_port: h.remote_port,
            user_env: &g.run.opts.env,
            pair: Some((&name, &l.name, &r.name, &local_dir, &remote_dir)),
        });
        for (k, v) in &variant.params {
            e.push((format!("PAIRBENCH_PARAM_{k}"), v.clone()));
        }
        if let Some(n) = variant.repetition {
            e.push(("PAIRBENCH_REPETITION".into(), n.to_string()));
        }
        e.push((
            "PAIRBENCH_WARMUP".into(),
            if variant.warmup { "1" } else { "0" }.into(),
        ));
        e
    };

    // The remote test first.
    let mut renv = env_for("remote", &remote_dir);
    if h.transport.name() == "local" {
        renv.push(("PATH".into(), env::path_with(g.run.control.bin(), &renv)));
    }
    let rlaunch = Launch {
        program: h.remote_paths.scripts.join("remote").join(&r.name),
        cwd: remote_dir.clone(),
        env: renv,
        stdout: remote_dir.join("stdout"),
        stderr: remote_dir.join("stderr"),
        marker: format!("{marker_base}-remote"),
    };
    let remote: Arc<dyn Running> = match h.transport.start(&rlaunch) {
        Ok(r) => Arc::from(r),
        Err(e) => {
            rec.reason = format!("remote test could not start: {e}");
            return finish(g, &staging, &dest, rec);
        }
    };
    let key = g
        .run
        .control
        .register(remote.clone(), g.run.opts.kill_grace);

    // Then the local test, with the helpers on its PATH.
    let mut lenv = env_for("local", &local_dir);
    lenv.push(("PATH".into(), env::path_with(g.run.control.bin(), &lenv)));
    lenv.push((
        "PAIRBENCH_CONTROL".into(),
        g.run.control.socket().to_string_lossy().into_owned(),
    ));
    lenv.push(("PAIRBENCH_PAIR_KEY".into(), key.clone()));
    lenv.push((
        "PAIRBENCH_WAIT_TIMEOUT".into(),
        format!("{}ms", g.run.opts.wait_timeout.as_millis()),
    ));
    // testbed_link / testbed_host: their testbed, default host and events file.
    lenv.extend(crate::testbed::events::pair_env(
        &g.run.opts.testbed_dir,
        &local_dir,
        h.transport.name(),
    ));
    let interactive = g.run.opts.interactive.is_some();
    if interactive {
        lenv.extend(super::interactive::env(&name, &l.path));
    }
    let llaunch = Launch {
        program: l.path.clone(),
        cwd: local_dir.clone(),
        env: lenv,
        stdout: local_dir.join("stdout"),
        stderr: local_dir.join("stderr"),
        marker: format!("{marker_base}-local"),
    };
    let watches = g.run.live.as_ref().map(|live| {
        [
            live.watch("local ", llaunch.stdout.clone()),
            live.watch("local ", llaunch.stderr.clone()),
            // Where the remote output is on this machine (the same files for `local`; a
            // live copy for SSH).
            live.watch("remote", local_remote_dir.join("stdout")),
            live.watch("remote", local_remote_dir.join("stderr")),
        ]
    });
    let start = Instant::now();
    let grace = g.run.opts.kill_grace;
    let started_wall = chrono::Local::now();
    let started = if interactive {
        super::interactive::start(&llaunch)
    } else {
        start_here(&llaunch)
    };
    let (local_end, local_proc) = match started {
        Err(e) => (
            LocalEnd::NotRun(format!("local test could not start: {e}")),
            None,
        ),
        Ok(local) => {
            let end = if interactive {
                super::interactive::wait(&local, &*remote)
            } else {
                wait_local(&local, &*remote, g.run.opts.timeout, start)
            };
            (end, Some(local))
        }
    };
    rec.duration_s = start.elapsed().as_secs_f64();

    // What the remote test was doing when the local test ended.
    let remote_end_now = if remote.terminated_by_us() {
        RemoteEnd::Terminated(None)
    } else {
        match remote.try_exit() {
            Some(e) => RemoteEnd::Own(e),
            None => RemoteEnd::Terminated(None),
        }
    };
    // End everything both sides started, at the same time.
    std::thread::scope(|s| {
        s.spawn(|| remote.terminate(grace));
        if let Some(local) = &local_proc {
            local.terminate(grace);
        }
    });
    g.run.control.unregister(&key);
    if let (Some(live), Some(ids)) = (&g.run.live, watches) {
        for id in ids {
            live.unwatch(id);
        }
    }

    let interrupted = matches!(local_end, LocalEnd::NotRun(ref w) if w == INTERRUPTED);
    if interrupted {
        let _ = std::fs::remove_dir_all(&staging);
        return None;
    }

    let remote_end = match remote_end_now {
        // On a remote host, found already gone when we came to end it: its exit was still
        // on its way when the local test ended, so it ended on its own.
        RemoteEnd::Terminated(_)
            if h.transport.name() != "local"
                && !remote.terminated_by_us()
                && remote.try_exit().is_some() =>
        {
            remote
                .try_exit()
                .map_or(RemoteEnd::Terminated(None), RemoteEnd::Own)
        }
        RemoteEnd::Terminated(_) => RemoteEnd::Terminated(remote.try_exit()),
        other => other,
    };
    // Nothing can come back from a host whose connection died: that is the reason.
    let lost = remote.failure();
    let mut fetch_error = lost.clone();
    if lost.is_none()
        && let Err(e) = h.transport.fetch(&remote_dir, &local_remote_dir)
    {
        fetch_error = Some(format!("copying the remote folder back failed: {e}"));
    }
    write_exit(&local_dir, local_proc.as_ref().and_then(|p| p.try_exit()));
    write_exit(&local_remote_dir, remote_end.exit());

    rec.local_exit = match &local_end {
        LocalEnd::Exited(e) => e.code(),
        _ => None,
    };
    rec.remote_exit = remote_end.exit().and_then(Exit::code);
    rec.remote_ended = remote_end.ended();
    let (status, reason) = outcome::decide(&local_end, &remote_end);
    rec.status = status;
    rec.reason = reason;
    if let Some(e) = fetch_error {
        rec.status = crate::results::Status::Error;
        if !rec.reason.contains(&e) {
            rec.reason = format!("{e}; {}", rec.reason);
        }
    }
    if interactive {
        rec.reason = if rec.reason.is_empty() {
            "interactive".into()
        } else {
            format!("{} (interactive)", rec.reason)
        };
    }
    let testbed = crate::testbed::Dir::new(g.run.opts.testbed_dir.clone());
    for p in crate::testbed::events::finish_pair(&testbed, &local_dir, &staging, started_wall) {
        g.run
            .progress
            .println(&format!("pairbench: warning: {name}: {p}"));
    }
    if failed_before && rec.status == crate::results::Status::Success {
        rec.flaky = true;
        rec.reason
            .push_str(" (flaky: passed after an earlier attempt failed)");
    }
    finish(g, &staging, &dest, rec)
}

const INTERRUPTED: &str = "interrupted";

fn wait_local(
    local: &crate::process::Child,
    remote: &dyn Running,
    timeout: Duration,
    start: Instant,
) -> LocalEnd {
    let deadline = start + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(e) = local.wait_timeout(left.min(Duration::from_millis(100))) {
            return LocalEnd::Exited(e);
        }
        // The remote side is lost (dead SSH connection): the pair cannot end well.
        if let Some(why) = remote.failure() {
            return LocalEnd::NotRun(why);
        }
        if crate::interrupt::requested() {
            return LocalEnd::NotRun(INTERRUPTED.into());
        }
        if Instant::now() >= deadline {
            return LocalEnd::TimedOut(timeout);
        }
    }
}

/// Write a side's `exit_code` file (nothing when there is no exit to tell).
pub fn write_exit(dir: &Path, exit: Option<Exit>) {
    if let Some(e) = exit {
        let _ = std::fs::write(dir.join("exit_code"), format!("{}\n", e.file_text()));
    }
}

/// Write the record and marker, move the folder into place, append the CSV row.
fn finish(g: &GroupCtx, staging: &Path, dest: &Path, rec: PairRecord) -> Option<PairRecord> {
    if let Err(e) = results::commit_pair(staging, dest, &rec) {
        g.run.progress.println(&format!(
            "pairbench: warning: cannot write the result of {}/{}: {e}",
            rec.group, rec.pair
        ));
    }
    g.run.record(&rec);
    Some(rec)
}
