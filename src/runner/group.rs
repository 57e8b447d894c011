//! One group of a run: prepare its hosts, run its before-hooks, spread its pairs over the
//! hosts' slots (`-j`), then the after-hooks, which always run (SPEC §2, §7).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::pool::Pool;
use super::{RunCtx, hooks, pair};
use crate::discover::Group;
use crate::plan::Planned;
use crate::transport::{GroupPaths, Transport};
use crate::tree::Status;

/// What the pairs of one group share.
pub struct GroupCtx<'a> {
    pub run: &'a RunCtx,
    pub group: &'a Group,
    pub local_paths: GroupPaths,
    /// The run's options with the group's group.toml over them.
    pub settings: &'a crate::group_toml::GroupSettings,
}

/// A group on one remote host.
pub struct HostCtx<'a> {
    pub transport: &'a dyn Transport,
    pub remote_paths: GroupPaths,
    pub remote_host: String,
    pub local_host: String,
    pub remote_user: String,
    pub remote_port: u16,
    /// The group's folders exist on the host.
    prepared: bool,
    /// The remote before-hook's result on this host, once it ran (`Err(reason)`).
    before: Mutex<Option<Result<(), String>>>,
}

impl<'a> HostCtx<'a> {
    fn new(t: &'a dyn Transport, remote_paths: GroupPaths, prepared: bool) -> HostCtx<'a> {
        HostCtx {
            transport: t,
            remote_paths,
            remote_host: t.address(),
            local_host: t.local_address(),
            remote_user: t.user(),
            remote_port: t.port(),
            prepared,
            before: Mutex::new(None),
        }
    }

    fn used(&self) -> bool {
        self.before
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

fn warn(ctx: &RunCtx, group: &Group, what: &str) {
    ctx.progress
        .println(&format!("pairbench: warning: {}: {what}", group.name));
}

/// Run the group's planned pairs with its hooks around them.
pub fn run_group(ctx: &RunCtx, group: &Group, pool: &Pool, mine: &[&Planned]) {
    let local_results = ctx.tree.group(&group.name);
    if let Err(e) = std::fs::create_dir_all(&local_results) {
        ctx.not_recorded(&group.name, crate::tree::WriteError::new(&local_results, e));
        return;
    }
    let g = GroupCtx {
        run: ctx,
        settings: ctx.settings_of(group),
        group,
        local_paths: GroupPaths {
            scripts: group.dir.clone(),
            root: group.root.clone(),
            results: local_results.clone(),
        },
    };
    // Prepare every host that is up, at the same time (uploads can be slow).
    let hosts: Vec<HostCtx> = std::thread::scope(|s| {
        let handles: Vec<_> = pool
            .hosts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let g = &g;
                let local_results = &local_results;
                s.spawn(move || {
                    if pool.is_down(i).is_some() {
                        return HostCtx::new(t.as_ref(), g.local_paths.clone(), false);
                    }
                    match t.prepare_group(group, &ctx.tree.tag, local_results) {
                        Ok(p) => HostCtx::new(t.as_ref(), p, true),
                        Err(e) => {
                            pool.mark_down(i, &format!("remote host {}: {e}", t.name()));
                            HostCtx::new(t.as_ref(), g.local_paths.clone(), false)
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(pool.hosts.iter())
            .map(|(h, t)| {
                h.join()
                    .unwrap_or_else(|_| HostCtx::new(t.as_ref(), g.local_paths.clone(), false))
            })
            .collect()
    });
    // Local hooks see the first host that is up as "the remote".
    let primary = hosts.iter().position(|h| h.prepared).unwrap_or(0);

    let mut local_error = None;
    if let Some(h) = hooks::run(&g, &hosts[primary], "before_first_test_local")
        && !h.ok
    {
        ctx.progress
            .println(&format!("pairbench: {}: {}", group.name, h.reason));
        local_error = Some(h.reason);
    }

    let next = AtomicUsize::new(0);
    let workers = ctx
        .opts
        .jobs
        .min(mine.len())
        .min(pool.capacity().max(1))
        .max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while !ctx.stopping() {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(p) = mine.get(i) else { break };
                    if !run_with_retries(&g, &hosts, primary, pool, p, local_error.as_deref()) {
                        break;
                    }
                }
            });
        }
    });

    // After-hooks always run: on each host the group used, or at least on the primary one.
    let any_used = hosts.iter().any(HostCtx::used);
    for (i, h) in hosts.iter().enumerate() {
        if !h.prepared || !(h.used() || (i == primary && !any_used)) {
            continue;
        }
        if let Some(why) = pool.is_down(i) {
            warn(
                ctx,
                group,
                &format!("skipping the remote after-hook: {why}"),
            );
            continue;
        }
        if let Some(r) = hooks::run(&g, h, "after_last_test_remote")
            && !r.ok
        {
            warn(ctx, group, &r.reason);
        }
        if let Err(e) = h.transport.finish_group(&h.remote_paths, &local_results) {
            warn(
                ctx,
                group,
                &format!(
                    "copying results back from {} failed: {e}",
                    h.transport.name()
                ),
            );
        }
    }
    if let Some(r) = hooks::run(&g, &hosts[primary], "after_last_test_local")
        && !r.ok
    {
        warn(ctx, group, &r.reason);
    }
}

/// Run one planned pair (with `--retries`); false when the run stops (interrupted, or a
/// result could not be recorded).
fn run_with_retries(
    g: &GroupCtx,
    hosts: &[HostCtx],
    primary: usize,
    pool: &Pool,
    p: &Planned,
    local_error: Option<&str>,
) -> bool {
    let mut attempt = 1;
    let mut failed_before = false;
    loop {
        let outcome = match local_error {
            Some(why) => pair::run_pair(g, &hosts[primary], p, attempt, failed_before, Some(why)),
            None => match pool.acquire() {
                Err(why) => {
                    pair::run_pair(g, &hosts[primary], p, attempt, failed_before, Some(&why))
                }
                Ok(i) => {
                    let h = &hosts[i];
                    let before = remote_before(g, h);
                    let rec =
                        pair::run_pair(g, h, p, attempt, failed_before, before.err().as_deref());
                    if let Err(why) = h.transport.healthy() {
                        pool.mark_down(i, &why);
                    }
                    pool.release(i);
                    rec
                }
            },
        };
        let pair::PairEnd::Recorded(rec) = outcome else {
            return false;
        };
        let done = rec.status == Status::Success
            || attempt > g.run.opts.retries
            || local_error.is_some()
            || g.run.stopping();
        if done {
            return true;
        }
        failed_before = true;
        attempt += 1;
    }
}

/// The remote before-hook on host `h`, run the first time one of the group's pairs lands
/// there; its result is kept for the group's other pairs on that host.
fn remote_before(g: &GroupCtx, h: &HostCtx) -> Result<(), String> {
    let mut before = h.before.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = before.as_ref() {
        return r.clone();
    }
    let r = match hooks::run(g, h, "before_first_test_remote") {
        Some(res) if !res.ok => {
            g.run
                .progress
                .println(&format!("pairbench: {}: {}", g.group.name, res.reason));
            Err(res.reason)
        }
        _ => Ok(()),
    };
    *before = Some(r.clone());
    r
}
