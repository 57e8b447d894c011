//! One group of a run: prepare its hosts, run its before-hooks, spread its pairs over the
//! hosts' slots (`-j`), then the after-hooks, which always run (SPEC §2, §7).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

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
    /// The host's own folder under a remote hook's `hooks/<name>/`, when the pool has
    /// more than one host (each host runs the hook: their logs must not meet).
    pub hook_folder: Option<String>,
    /// The group's folders exist on the host.
    prepared: bool,
    /// The remote before-hook's result on this host, once it ran (`Err(reason)`).
    before: Mutex<Option<Result<(), String>>>,
}

impl<'a> HostCtx<'a> {
    fn new(pool: &'a Pool, i: usize, remote_paths: GroupPaths, prepared: bool) -> HostCtx<'a> {
        let t = pool.hosts[i].as_ref();
        HostCtx {
            hook_folder: pool.hook_folder(i).map(str::to_string),
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

/// "The remote" of the group's local hooks and of pairs that end before they start: the
/// first host, in the order given, that is up. Found when first asked for, waiting for
/// the hosts before it to be ready or down, so no pair waits for it.
struct Primary<'s, 'a> {
    pool: &'a Pool,
    slots: &'s [OnceLock<HostCtx<'a>>],
    index: OnceLock<Option<usize>>,
    /// When no host is up (made when needed: making one asks the host for its address,
    /// which waits for its connection).
    fallback: OnceLock<HostCtx<'a>>,
    local_paths: &'s GroupPaths,
}

impl<'s, 'a> Primary<'s, 'a> {
    fn get(&self) -> &HostCtx<'a> {
        let index = self
            .index
            .get_or_init(|| (0..self.slots.len()).find(|&i| self.pool.wait_settled(i)));
        index.and_then(|i| self.slots[i].get()).unwrap_or_else(|| {
            self.fallback
                .get_or_init(|| HostCtx::new(self.pool, 0, self.local_paths.clone(), false))
        })
    }
}

/// Marks host `i` down when its preparation ends without marking it (a panic), so no
/// pair waits for it forever.
struct Settle<'p> {
    pool: &'p Pool,
    i: usize,
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        if !self.pool.is_settled(self.i) {
            self.pool
                .mark_down(self.i, "pairbench: preparing the host failed unexpectedly");
        }
    }
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
    // Every host is prepared at the same time (uploads can be slow), and takes pairs as
    // soon as it is ready: a slow host does not hold up the others.
    pool.begin_group();
    let slots: Vec<OnceLock<HostCtx>> = pool.hosts.iter().map(|_| OnceLock::new()).collect();
    let primary = Primary {
        pool,
        slots: &slots,
        index: OnceLock::new(),
        fallback: OnceLock::new(),
        local_paths: &g.local_paths,
    };
    std::thread::scope(|s| {
        for (i, t) in pool.hosts.iter().enumerate() {
            let (g, slots, local_results) = (&g, &slots, &local_results);
            s.spawn(move || {
                // Whatever happens here, the host ends ready or down, never pending.
                let _settle = Settle { pool, i };
                let unprepared = || HostCtx::new(pool, i, g.local_paths.clone(), false);
                if pool.is_down(i).is_some() {
                    let _ = slots[i].set(unprepared());
                    return;
                }
                match t.prepare_group(group, &ctx.tree.tag, local_results) {
                    Ok(p) => {
                        let _ = slots[i].set(HostCtx::new(pool, i, p, true));
                        pool.mark_ready(i);
                    }
                    Err(e) => {
                        let _ = slots[i].set(unprepared());
                        pool.mark_down(i, &format!("remote host {}: {e}", t.name()));
                    }
                }
            });
        }
        let mut local_error = None;
        if group.hook("before_first_test_local").is_some()
            && let Some(h) = hooks::run(&g, primary.get(), "before_first_test_local")
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
        // Workers start now: each takes a slot on a host as soon as one is ready.
        std::thread::scope(|w| {
            for _ in 0..workers {
                w.spawn(|| {
                    while !ctx.stopping() {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(p) = mine.get(i) else { break };
                        let error = local_error.as_deref();
                        if !run_with_retries(&g, &slots, &primary, pool, p, error) {
                            break;
                        }
                    }
                });
            }
        });
    });
    let primary_index = primary.index.get().copied().flatten();
    drop(primary);
    let hosts: Vec<HostCtx> = slots
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            h.into_inner()
                .unwrap_or_else(|| HostCtx::new(pool, i, g.local_paths.clone(), false))
        })
        .collect();

    let primary = primary_index
        .or_else(|| hosts.iter().position(|h| h.prepared))
        .unwrap_or(0);
    // After-hooks always run: on each host the group used, or at least on the primary one;
    // every host at the same time, each then copying its results back.
    let any_used = hosts.iter().any(HostCtx::used);
    std::thread::scope(|s| {
        for (i, h) in hosts.iter().enumerate() {
            if !h.prepared || !(h.used() || (i == primary && !any_used)) {
                continue;
            }
            let (g, local_results) = (&g, &local_results);
            s.spawn(move || {
                if let Some(why) = pool.is_down(i) {
                    warn(
                        ctx,
                        group,
                        &format!("skipping the remote after-hook: {why}"),
                    );
                    return;
                }
                if let Some(r) = hooks::run(g, h, "after_last_test_remote")
                    && !r.ok
                {
                    warn(ctx, group, &r.reason);
                }
                if let Err(e) = h.transport.finish_group(&h.remote_paths, local_results) {
                    let name = h.transport.name();
                    warn(
                        ctx,
                        group,
                        &format!("copying results back from {name} failed: {e}"),
                    );
                }
            });
        }
    });
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
    hosts: &[OnceLock<HostCtx>],
    primary: &Primary,
    pool: &Pool,
    p: &Planned,
    local_error: Option<&str>,
) -> bool {
    let mut attempt = 1;
    let mut failed_before = false;
    loop {
        let t = pair::Try {
            attempt,
            failed_before,
            last: attempt > g.run.opts.retries || local_error.is_some(),
            unreached: false,
        };
        let down = pair::Try {
            unreached: true,
            last: true,
            ..t
        };
        let outcome = match local_error {
            Some(why) => pair::run_pair(g, primary.get(), p, t, Some(why), None),
            None => match pool.acquire() {
                Err(why) => pair::run_pair(g, primary.get(), p, down, Some(&why), None),
                Ok(seat) => {
                    let i = seat.host;
                    // A ready host's context is set before it is marked ready.
                    let rec = match hosts[i].get() {
                        Some(h) => {
                            let before = remote_before(g, h);
                            let port = match before {
                                Ok(()) => pool.take_port(seat),
                                Err(why) => Err(why),
                            };
                            let why = port.as_ref().err().cloned();
                            let at = port.ok().map(|port| pair::At {
                                slot: seat.slot,
                                port,
                            });
                            let rec = pair::run_pair(g, h, p, t, why.as_deref(), at);
                            if let Some(at) = at {
                                pool.free_port(at.port);
                            }
                            rec
                        }
                        None => {
                            let why = "the host was not prepared for the group";
                            pair::run_pair(g, primary.get(), p, down, Some(why), None)
                        }
                    };
                    if let Err(why) = pool.hosts[i].healthy() {
                        pool.mark_down(i, &why);
                    }
                    pool.release(seat);
                    rec
                }
            },
        };
        let pair::PairEnd::Recorded(rec) = outcome else {
            return false;
        };
        let done = rec.status == Status::Success
            || rec.unreached
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
