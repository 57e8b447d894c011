//! The life of one pair (SPEC §2), as named steps: [`PairRun::start_remote`],
//! [`PairRun::start_local`], [`wait_local`], [`PairRun::end_both`] (the remote
//! test is ended if it still runs, and everything both scripts started), [`settle`] (how
//! the remote side ended, its folder copied back), the regression check of a checked
//! group (docs/regression.md) and [`PairRun::record`] (one outcome, committed by the
//! tree). See the README, "A five-minute tour".

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::env::{self, EnvInput};
use super::group::{GroupCtx, HostCtx};
use crate::outcome::{self, LocalEnd, RemoteEnd};
use crate::plan::{Planned, Variant};
use crate::process::Exit;
use crate::transport::{Launch, Running, local::start_here};
use crate::tree::commit::{self, Exits};
use crate::tree::{PairRecord, Status, WriteError};

/// How a pair's run ended for the run.
pub enum PairEnd {
    /// Its result is in the tree.
    Recorded(Box<PairRecord>),
    /// The run was interrupted before it finished (nothing kept).
    Interrupted,
    /// Its result could not be written (the run stops; the reason is kept by the run).
    NotRecorded,
}

/// One run of a pair while it goes.
struct PairRun<'a> {
    g: &'a GroupCtx<'a>,
    h: &'a HostCtx<'a>,
    variant: &'a Variant,
    local_program: PathBuf,
    rec: PairRecord,
    dest: PathBuf,
    staging: PathBuf,
    at: Option<At>,
    /// No other try follows this one, whatever its outcome (`--retries`).
    last_try: bool,
}

/// The local test while it runs.
struct Local {
    proc: Option<crate::process::Child>,
    end: LocalEnd,
}

/// Where a run sits: its slot on its host (`PAIRBENCH_SLOT`) and its port
/// (`PAIRBENCH_PORT`), docs/benchmarks.md, "Ports".
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub slot: usize,
    pub port: u16,
}

/// Which try of a run this is (`--retries`).
#[derive(Debug, Clone, Copy)]
pub struct Try {
    pub attempt: u32,
    /// An earlier try failed.
    pub failed_before: bool,
    /// No other try follows this one, whatever its outcome.
    pub last: bool,
    /// `error` says no remote host could be reached: not a result of the pair.
    pub unreached: bool,
}

/// Run one pair. `error`: the pair cannot run (a before-hook failed, no host is left):
/// it is recorded ERROR with that reason without starting anything.
pub fn run_pair(
    g: &GroupCtx,
    h: &HostCtx,
    planned: &Planned,
    t: Try,
    error: Option<&str>,
    at: Option<At>,
) -> PairEnd {
    let failed_before = t.failed_before;
    let mut p = match PairRun::new(g, h, planned, t, at) {
        Ok(p) => p,
        Err(e) => return not_recorded(g, planned, e),
    };
    // A second Ctrl-C removes the staging folder before exiting.
    let _partial = crate::interrupt::Partial::new(&p.staging);
    if let Some(why) = error {
        p.rec.unreached = t.unreached;
        p.rec.reason = why.to_string();
        return p.record(Exits::none());
    }
    let remote_dir = match p.remote_dir() {
        Ok(d) => d,
        Err(why) => {
            p.rec.reason = why;
            return p.record(Exits::none());
        }
    };
    p.rec.places = Some(p.places(&remote_dir));
    let remote = match p.start_remote(&remote_dir) {
        Ok(r) => r,
        Err(why) => {
            p.rec.reason = why;
            return p.record(Exits::none());
        }
    };
    let key = g.run.control.register(remote.clone(), g.settings.stop());
    let watches = p.watch_output();
    let start = Instant::now();
    let started_wall = chrono::Local::now();
    let interactive = g.run.opts.interactive.is_some();
    let mut local = p.start_local(&remote_dir, &key, interactive);
    let sampler = p.start_sampling(local.proc.as_ref(), &*remote, &remote_dir);
    // Both scripts are started: the run's cgroup work can be done meanwhile.
    crate::contain::current().tidy_now();
    if let Some(proc) = &local.proc {
        local.end = if interactive {
            super::interactive::wait(proc, &*remote)
        } else {
            wait_local(proc, &*remote, g.settings.timeout, start)
        };
    }
    p.rec.duration_s = start.elapsed().as_secs_f64();
    if let Some(s) = sampler {
        for problem in s.stop() {
            p.rec.notes.push(format!("--sample: {problem}"));
        }
    }
    let remote_at_end = remote_end_now(&*remote);
    p.end_both(&*remote, local.proc.as_ref(), &key, watches);
    p.rec.resources = resources(local.proc.as_ref().and_then(|c| c.usage()), remote.usage());
    if matches!(local.end, LocalEnd::NotRun(ref w) if w == INTERRUPTED) {
        commit::discard(&p.staging);
        return PairEnd::Interrupted;
    }
    let settled = settle(
        h,
        &*remote,
        remote_at_end,
        &remote_dir,
        &p.staging.join("remote"),
    );
    p.decide(
        &local,
        &settled,
        failed_before,
        remote.stopped_by().as_deref(),
    );
    if interactive {
        p.rec.reason = format!("{} (interactive)", p.rec.reason);
    }
    if p.rec.local_exit.is_some() || p.rec.remote_exit.is_some() {
        p.read_traces();
    }
    p.cpu_per();
    let events = p.testbed_events(started_wall);
    let mut pair_files = events.map(|e| vec![("events.csv", e)]).unwrap_or_default();
    if !interactive && let Some(diff) = p.check() {
        pair_files.push((crate::tree::layout::CHECK_DIFF, diff));
    }
    p.record(Exits {
        local: local
            .proc
            .as_ref()
            .and_then(|c| c.try_exit())
            .map(Exit::file_text),
        remote: settled.end.exit().map(Exit::file_text),
        pair_files,
    })
}

/// Both sides' usage as pairbench's own metrics (side → name → value).
fn resources(
    local: Option<crate::contain::Usage>,
    remote: Option<crate::contain::Usage>,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>> {
    let mut out = std::collections::BTreeMap::new();
    for (side, u) in [("local", local), ("remote", remote)] {
        let Some(u) = u else { continue };
        let m: std::collections::BTreeMap<String, f64> = u
            .metrics()
            .into_iter()
            .map(|(n, v, _)| (n.to_string(), v))
            .collect();
        if !m.is_empty() {
            out.insert(side.to_string(), m);
        }
    }
    out
}

fn not_recorded(g: &GroupCtx, planned: &Planned, e: WriteError) -> PairEnd {
    let id = planned.pair.id(&g.run.groups);
    g.run.not_recorded(&id, e);
    PairEnd::NotRecorded
}

const INTERRUPTED: &str = "interrupted";

impl<'a> PairRun<'a> {
    /// The record to fill in, and a fresh staging folder to run in.
    fn new(
        g: &'a GroupCtx<'a>,
        h: &'a HostCtx<'a>,
        planned: &Planned,
        t: Try,
        at: Option<At>,
    ) -> Result<PairRun<'a>, WriteError> {
        let attempt = t.attempt;
        let groups = &g.run.groups;
        let pair = &planned.pair;
        let (l, r) = (pair.local_test(groups), pair.remote_test(groups));
        let tree = &g.run.tree;
        let name = pair.name(groups);
        let variant = &g.run.variants[planned.variant as usize];
        let rel_dir = variant.rel();
        let dest = tree.run_dir(&g.group.name, &name, &rel_dir);
        let staging = commit::stage(&dest)?;
        let rec = PairRecord {
            tag: tree.tag.clone(),
            group: g.group.name.clone(),
            local_test: l.name.clone(),
            remote_test: r.name.clone(),
            pair: name,
            status: Status::Error,
            reason: String::new(),
            local_exit: None,
            remote_exit: None,
            remote_ended: None,
            started_at: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            duration_s: 0.0,
            remote_host: h.transport.name().to_string(),
            attempt,
            scripts_hash: planned.hash.to_string(),
            flaky: false,
            variant: rel_dir,
            params: variant.params.iter().cloned().collect(),
            repetition: variant.repetition,
            warmup: variant.warmup,
            notes: Vec::new(),
            places: None,
            check: None,
            unreached: false,
            resources: Default::default(),
        };
        Ok(PairRun {
            g,
            h,
            variant,
            local_program: l.path.clone(),
            rec,
            dest,
            staging,
            at,
            last_try: t.last,
        })
    }

    /// The remote side's folder on the remote host.
    fn remote_dir(&self) -> Result<PathBuf, String> {
        let rel = Path::new(&self.rec.pair)
            .join(&self.rec.variant)
            .join("remote");
        self.h
            .transport
            .side_dir(&self.h.remote_paths, &rel, &self.staging.join("remote"))
            .map_err(|e| format!("cannot prepare the remote folder: {e}"))
    }

    fn env_for(&self, side: &str, dir: &Path, remote_dir: &Path) -> Vec<(String, String)> {
        let (g, h) = (self.g, self.h);
        let mut e = env::build(&EnvInput {
            tag: &g.run.tree.tag,
            group: &g.group.name,
            side,
            result_dir: dir,
            local_paths: &g.local_paths,
            remote_paths: &h.remote_paths,
            remote_host: &h.remote_host,
            local_host: &h.local_host,
            remote_user: &h.remote_user,
            remote_port: h.remote_port,
            user_env: &g.settings.env,
            pair: Some((
                &self.rec.pair,
                &self.rec.local_test,
                &self.rec.remote_test,
                &self.staging.join("local"),
                remote_dir,
            )),
        });
        for (k, v) in &self.variant.params {
            e.push((format!("PAIRBENCH_PARAM_{k}"), v.clone()));
        }
        if let Some(at) = self.at {
            e.push(("PAIRBENCH_SLOT".into(), at.slot.to_string()));
            e.push(("PAIRBENCH_PORT".into(), at.port.to_string()));
        }
        if let Some(n) = self.variant.repetition {
            e.push(("PAIRBENCH_REPETITION".into(), n.to_string()));
        }
        e.push((
            "PAIRBENCH_WARMUP".into(),
            if self.variant.warmup { "1" } else { "0" }.into(),
        ));
        e
    }

    /// `--sample`: the sides on this machine sampled while the pair runs (a remote host's
    /// side is sampled by its agent).
    fn start_sampling(
        &self,
        local: Option<&crate::process::Child>,
        remote: &dyn Running,
        remote_dir: &Path,
    ) -> Option<crate::sample::Sampler> {
        let every = self.g.run.opts.sample?;
        let mut targets = vec![crate::sample::Target {
            dir: self.staging.join("local"),
            cgroup: local.and_then(|c| c.cgroup_dir()),
        }];
        if self.h.transport.runs_here() {
            targets.push(crate::sample::Target {
                dir: remote_dir.to_path_buf(),
                cgroup: remote.cgroup_dir(),
            });
        }
        Some(crate::sample::Sampler::start(every, targets))
    }

    /// group.toml's `cpu_per`: each side's CPU (user + system) per unit of a metric the
    /// scripts reported (e.g. `requests`), as `cpu_us_per_<name>` (docs/resources.md).
    fn cpu_per(&mut self) {
        let names = &self.g.settings.cpu_per;
        if names.is_empty() {
            return;
        }
        // What the scripts reported (the local side's value first).
        let mut reported: std::collections::BTreeMap<String, f64> = Default::default();
        for side in ["remote", "local"] {
            let rel = Path::new(side).join("metrics.csv");
            if let Ok(bytes) = crate::tree::nofollow::read_beneath(&self.staging, &rel) {
                let (rows, _) = crate::tree::tables::parse_side_metrics(&bytes);
                for (name, v, _) in rows {
                    reported.insert(name, v);
                }
            }
        }
        for name in names {
            let Some(count) = reported.get(name).copied().filter(|c| *c > 0.0) else {
                continue;
            };
            for values in self.rec.resources.values_mut() {
                let (Some(u), Some(s)) = (values.get("cpu_user_s"), values.get("cpu_sys_s")) else {
                    continue;
                };
                let per = (u + s) * 1e6 / count;
                values.insert(format!("{}{name}", crate::tree::record::CPU_PER), per);
            }
        }
    }

    /// The tracer `side` runs under (`--trace`, `--trace-side`), if any (`--interactive`
    /// hands the local side to a shell: it is not traced).
    fn trace_for(&self, side: &str) -> Option<crate::config::Trace> {
        let o = &self.g.run.opts;
        let interactive_shell = side == "local" && o.interactive.is_some();
        o.trace
            .clone()
            .filter(|_| o.trace_side.covers(side) && !interactive_shell)
    }

    /// What the traces of both sides tell, once they are back: metrics with the
    /// resources, problems as notes (docs/resources.md).
    fn read_traces(&mut self) {
        for side in ["local", "remote"] {
            let Some(t) = self.trace_for(side) else {
                continue;
            };
            let dir = self.staging.join(side);
            let (metrics, problems) = crate::trace::finish(&t, &dir);
            if !metrics.is_empty() {
                self.rec
                    .resources
                    .entry(side.to_string())
                    .or_default()
                    .extend(metrics);
            }
            for p in problems {
                self.rec.notes.push(format!("{side} trace: {p}"));
            }
        }
    }

    fn marker(&self, side: &str) -> String {
        format!(
            "{}-{}-{side}",
            self.g.run.marker_prefix,
            self.g.run.next_seq()
        )
    }

    /// Start the remote test, in its folder on its host.
    fn start_remote(&self, remote_dir: &Path) -> Result<Arc<dyn Running>, String> {
        let (g, h) = (self.g, self.h);
        let mut renv = self.env_for("remote", remote_dir, remote_dir);
        if h.transport.runs_here() {
            renv.push((
                "PATH".into(),
                crate::helpers::path_with(g.run.control.bin(), &renv),
            ));
        }
        let launch = Launch {
            program: h
                .remote_paths
                .scripts
                .join("remote")
                .join(&self.rec.remote_test),
            cwd: remote_dir.to_path_buf(),
            env: renv,
            stdout: remote_dir.join("stdout"),
            stderr: remote_dir.join("stderr"),
            marker: self.marker("remote"),
            trace: self.trace_for("remote"),
            sample: self.g.run.opts.sample,
        };
        h.transport
            .start(&launch)
            .map(Arc::from)
            .map_err(|e| format!("remote test could not start: {e}"))
    }

    /// Start the local test, with the helpers on its PATH (`interactive`: a shell on this
    /// terminal in its place).
    fn start_local(&self, remote_dir: &Path, key: &str, interactive: bool) -> Local {
        let g = self.g;
        let local_dir = self.staging.join("local");
        let mut lenv = self.env_for("local", &local_dir, remote_dir);
        lenv.push((
            "PATH".into(),
            crate::helpers::path_with(g.run.control.bin(), &lenv),
        ));
        lenv.push((
            "PAIRBENCH_CONTROL".into(),
            g.run.control.socket().to_string_lossy().into_owned(),
        ));
        lenv.push(("PAIRBENCH_PAIR_KEY".into(), key.to_string()));
        lenv.push((
            "PAIRBENCH_WAIT_TIMEOUT".into(),
            format!("{}ms", g.run.opts.wait_timeout.as_millis()),
        ));
        // testbed_link / testbed_host: their testbed, default host and events file.
        lenv.extend(crate::testbed::events::pair_env(
            &g.run.opts.testbed_dir,
            &local_dir,
            self.h.transport.name(),
        ));
        if interactive {
            lenv.extend(super::interactive::env(&self.rec.pair, &self.local_program));
        }
        let launch = Launch {
            program: self.local_program.clone(),
            cwd: local_dir.clone(),
            env: lenv,
            stdout: local_dir.join("stdout"),
            stderr: local_dir.join("stderr"),
            marker: self.marker("local"),
            trace: self.trace_for("local"),
            sample: None,
        };
        let started = if interactive {
            super::interactive::start(&launch)
        } else {
            start_here(&launch)
        };
        match started {
            Ok(c) => Local {
                proc: Some(c),
                end: LocalEnd::NotRun(String::new()),
            },
            Err(e) => Local {
                proc: None,
                end: LocalEnd::NotRun(format!("local test could not start: {e}")),
            },
        }
    }

    /// With `-v`, follow both sides' output (the remote's where it is on this machine:
    /// the same files for `local`, a live copy for SSH).
    fn watch_output(&self) -> Option<[u64; 4]> {
        let live = self.g.run.live.as_ref()?;
        let (l, r) = (self.staging.join("local"), self.staging.join("remote"));
        Some([
            live.watch("local ", l.join("stdout")),
            live.watch("local ", l.join("stderr")),
            live.watch("remote", r.join("stdout")),
            live.watch("remote", r.join("stderr")),
        ])
    }

    /// End everything both sides started, at the same time.
    fn end_both(
        &self,
        remote: &dyn Running,
        local: Option<&crate::process::Child>,
        key: &str,
        watches: Option<[u64; 4]>,
    ) {
        let stop = self.g.settings.stop();
        match local {
            // The usual end: the local test left nothing running, so its side ends at
            // once; no thread is needed to end the remote side meanwhile.
            Some(local) if local.side_gone(Duration::ZERO) => {
                local.stop(stop);
                remote.stop(stop);
            }
            _ => std::thread::scope(|s| {
                s.spawn(|| remote.stop(stop));
                if let Some(local) = local {
                    local.stop(stop);
                }
            }),
        }
        self.g.run.control.unregister(key);
        if let (Some(live), Some(ids)) = (&self.g.run.live, watches) {
            for id in ids {
                live.unwatch(id);
            }
        }
    }

    /// The outcome, from how both sides ended and what came back.
    /// `stopped_by`: the signal that ended the remote test, when pairbench ended it.
    fn decide(
        &mut self,
        local: &Local,
        settled: &Settled,
        failed_before: bool,
        stopped_by: Option<&str>,
    ) {
        let rec = &mut self.rec;
        rec.local_exit = match &local.end {
            LocalEnd::Exited(e) => e.code(),
            _ => None,
        };
        rec.remote_exit = settled.end.exit().and_then(Exit::code);
        rec.remote_ended = settled.end.ended();
        let (status, reason) = outcome::decide(&local.end, &settled.end, stopped_by);
        rec.status = status;
        rec.reason = reason;
        rec.notes = settled.notes.clone();
        if let Some(e) = &settled.error {
            rec.status = Status::Error;
            if !rec.reason.contains(e.as_str()) {
                rec.reason = format!("{e}; {}", rec.reason);
            }
        }
        if failed_before && rec.status == Status::Success {
            rec.flaky = true;
            rec.reason
                .push_str(" (flaky: passed after an earlier attempt failed)");
        }
    }

    /// What the scripts were told about where they ran (kept in the record, so their
    /// output can be normalised after the run).
    fn places(&self, remote_dir: &Path) -> crate::tree::record::Places {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let (l, r) = (&self.g.local_paths, &self.h.remote_paths);
        crate::tree::record::Places {
            local_dir: s(&self.staging.join("local")),
            remote_dir: s(remote_dir),
            local_group_dir: s(&l.scripts),
            remote_group_dir: s(&r.scripts),
            local_root: s(&l.root),
            remote_root: s(&r.root),
            local_results: s(&l.results),
            remote_results: s(&r.results),
            remote_host: self.h.remote_host.clone(),
            local_host: self.h.local_host.clone(),
        }
    }

    /// The regression check of a run of a checked group (docs/regression.md): its
    /// `check.diff` when its output differs from its reference.
    fn check(&mut self) -> Option<Vec<u8>> {
        let at = crate::check::RunAt {
            dir: &self.staging,
            final_dir: &self.dest,
            tag: &self.g.run.tree.tag,
        };
        let (diff, warnings) = crate::check::at_run_end(
            self.g.settings,
            &self.g.group.dir,
            &mut self.rec,
            &at,
            self.g.run.ci,
        );
        for w in warnings {
            self.g.run.progress.println(&format!(
                "pairbench: warning: {}",
                crate::terminal::shown(&w)
            ));
        }
        diff
    }

    /// The testbed events the pair's helpers recorded (the pair's `events.csv`), with the
    /// hosts they changed restored.
    fn testbed_events(&self, started: chrono::DateTime<chrono::Local>) -> Option<Vec<u8>> {
        let testbed = crate::testbed::Dir::new(self.g.run.opts.testbed_dir.clone());
        let local_dir = self.staging.join("local");
        let (events, problems) = crate::testbed::events::finish_pair(&testbed, &local_dir, started);
        for p in problems {
            self.g.run.progress.println(&format!(
                "pairbench: warning: {}: {p}",
                crate::terminal::shown(&self.rec.id())
            ));
        }
        events
    }

    /// Commit the pair (pairbench's own files last), then its results.csv row.
    fn record(mut self, exits: Exits) -> PairEnd {
        match commit::commit(&self.staging, &self.dest, &mut self.rec, &exits) {
            Ok(()) => {
                let last =
                    self.last_try || self.rec.status == Status::Success || self.g.run.stopping();
                self.g.run.record(&self.rec, last);
                PairEnd::Recorded(Box::new(self.rec))
            }
            Err(e) => {
                commit::discard(&self.staging);
                self.g.run.not_recorded(&self.rec.id(), e);
                PairEnd::NotRecorded
            }
        }
    }
}

impl Exits {
    fn none() -> Exits {
        Exits {
            local: None,
            remote: None,
            pair_files: Vec::new(),
        }
    }
}

/// What the remote test was doing when the local test ended.
fn remote_end_now(remote: &dyn Running) -> RemoteEnd {
    if remote.terminated_by_us() {
        return RemoteEnd::Terminated(None);
    }
    match remote.try_exit() {
        Some(e) => RemoteEnd::Own(e),
        None => RemoteEnd::Terminated(None),
    }
}

/// The remote side once everything is gone.
struct Settled {
    end: RemoteEnd,
    /// Why nothing (or not everything) came back.
    error: Option<String>,
    notes: Vec<String>,
}

/// How the remote test ended, and its folder copied back.
fn settle(
    h: &HostCtx,
    remote: &dyn Running,
    at_end: RemoteEnd,
    remote_dir: &Path,
    local_remote_dir: &Path,
) -> Settled {
    let end = match at_end {
        // Found already gone when we came to end it, on a host whose exit may still have
        // been on its way when the local test ended: it ended on its own.
        RemoteEnd::Terminated(_)
            if h.transport.exit_may_lag()
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
    let mut error = remote.failure();
    let mut notes = Vec::new();
    if error.is_none() {
        match h.transport.fetch(remote_dir, local_remote_dir) {
            Ok(f) => notes = f.notes,
            Err(e) => error = Some(format!("copying the remote folder back failed: {e}")),
        }
    }
    Settled { end, error, notes }
}

fn wait_local(
    local: &crate::process::Child,
    remote: &dyn Running,
    timeout: Duration,
    start: Instant,
) -> LocalEnd {
    let deadline = start
        .checked_add(timeout)
        .unwrap_or_else(|| crate::contain::deadline(timeout));
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
