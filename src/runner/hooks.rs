//! Group hooks (SPEC §2): `before_first_test_*` and `after_last_test_*`, each run with
//! cwd = the group's result folder on its machine, its output in `hooks/<name>/` — or, for
//! a remote hook in a pool of hosts, `hooks/<name>/<host>/`: every host runs it.

use std::path::Path;
use std::time::{Duration, Instant};

use super::env::{self, EnvInput};
use super::group::{GroupCtx, HostCtx};
use crate::outcome::human;
use crate::transport::{Launch, Running, local::start_here};

/// What became of a hook that ran.
pub struct HookResult {
    pub ok: bool,
    pub reason: String,
}

/// Run hook `name` on its side if the group has it; `None` when it has not.
pub fn run(g: &GroupCtx, h: &HostCtx, name: &str) -> Option<HookResult> {
    g.group.hook(name)?;
    let remote_side = name.ends_with("_remote");
    let tree = &g.run.tree;
    // Where its logs go, under the group's hooks folder.
    let mut rel = std::path::PathBuf::from(name);
    if remote_side && let Some(host) = &h.hook_folder {
        rel.push(host);
    }
    let local_out = tree.hooks(&g.group.name).join(&rel);
    if let Err(e) = std::fs::create_dir_all(&local_out) {
        return Some(fail(format!(
            "{name}: cannot create {}: {e}",
            local_out.display()
        )));
    }
    let (out, cwd, program) = if remote_side {
        match h
            .transport
            .side_dir(&h.remote_paths, &Path::new("hooks").join(&rel), &local_out)
        {
            Ok(d) => (
                d,
                h.remote_paths.results.clone(),
                h.remote_paths.scripts.join(name),
            ),
            Err(e) => return Some(fail(format!("{name}: {e}"))),
        }
    } else {
        (
            local_out.clone(),
            g.local_paths.results.clone(),
            g.group.dir.join(name),
        )
    };
    let side = if remote_side { "remote" } else { "local" };
    let mut envv = env::build(&EnvInput {
        tag: &tree.tag,
        group: &g.group.name,
        side,
        result_dir: &cwd,
        local_paths: &g.local_paths,
        remote_paths: &h.remote_paths,
        remote_host: &h.remote_host,
        local_host: &h.local_host,
        remote_user: &h.remote_user,
        remote_port: h.remote_port,
        user_env: &g.settings.env,
        pair: None,
    });
    if !remote_side || h.transport.runs_here() {
        envv.push((
            "PATH".into(),
            crate::helpers::path_with(g.run.control.bin(), &envv),
        ));
    }
    if !remote_side {
        envv.extend(crate::testbed::events::hook_env(
            &g.run.opts.testbed_dir,
            h.transport.name(),
        ));
    }
    let launch = Launch {
        program,
        cwd,
        env: envv,
        stdout: out.join("stdout"),
        stderr: out.join("stderr"),
        marker: format!("{}-{}-{name}", g.run.marker_prefix, g.run.next_seq()),
        trace: None,
        sample: None,
    };
    let started: Result<Box<dyn Running>, _> = if remote_side {
        h.transport.start(&launch)
    } else {
        start_here(&launch).map(|c| Box::new(c) as Box<dyn Running>)
    };
    let proc = match started {
        Ok(p) => p,
        Err(e) => return Some(fail(format!("{name} could not start: {e}"))),
    };
    let limit = g.settings.hook_timeout;
    let deadline = crate::contain::deadline(limit);
    let exit = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(e) = proc.wait_timeout(left.min(Duration::from_millis(100))) {
            break Some(e);
        }
        if Instant::now() >= deadline || proc.failure().is_some() {
            break None;
        }
    };
    proc.stop(g.settings.stop());
    if remote_side && let Err(e) = h.transport.fetch(&out, &local_out) {
        g.run.progress.println(&format!(
            "pairbench: warning: {name}: copying its logs back failed: {e}"
        ));
    }
    if let Some(e) = exit.or_else(|| proc.try_exit()) {
        // Never through a link a hook left there.
        let written = crate::tree::nofollow::create_beneath(
            &tree.hooks(&g.group.name),
            &rel.join(crate::tree::layout::EXIT_FILE),
            false,
            0o644,
        )
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, format!("{}\n", e.file_text()).as_bytes())
        });
        if let Err(err) = written {
            g.run.not_recorded(
                &format!("{}/hooks/{}", g.group.name, rel.display()),
                crate::tree::WriteError::new(&local_out.join("exit_code"), err),
            );
        }
    }
    Some(match exit {
        None if proc.failure().is_some() => {
            fail(format!("{name}: {}", proc.failure().unwrap_or_default()))
        }
        None => fail(format!("{name} timed out after {}", human(limit))),
        Some(e) if e.code() == Some(0) => HookResult {
            ok: true,
            reason: String::new(),
        },
        Some(e) => fail(format!(
            "{name} {e} (see {}/hooks/{}/stderr)",
            g.group.name,
            rel.display()
        )),
    })
}

fn fail(reason: String) -> HookResult {
    HookResult { ok: false, reason }
}
