//! A run: which pairs, in which order, on which transport; the group's hooks around its
//! pairs; the run's tables at the end; the exit status (SPEC §2, §3, §7). The tree module
//! owns every path and file of the result tree; the cli draws the report afterwards.
//! See the README, "A five-minute tour" and "Running again on a tag".

pub mod env;
mod group;
mod hooks;
mod interactive;
mod live;
mod pair;
mod pool;
pub mod progress;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;

use crate::config::RunOptions;
use crate::control::Control;
use crate::discover::{self, Group};
use crate::exit_status::ExitStatus;
use crate::hostinfo;
use crate::plan::{self, Planned, Policy};
use crate::transport::{LocalTransport, Transport};
use crate::tree::manifest::{self, Invocation, Manifest, RunPlan};
use crate::tree::tables::{self, Appender};
use crate::tree::walk::{self, Walked};
use crate::tree::{Counts, PairRecord, Status, Tree, WriteError, layout, lock};
use live::Live;
use progress::Progress;

/// What all groups of a run share.
pub struct RunCtx {
    pub opts: RunOptions,
    pub groups: Vec<Group>,
    pub tree: Tree,
    pub control: Control,
    live: Option<Live>,
    pub progress: Progress,
    /// Prefix of the markers of the processes this run starts (pid and start time).
    pub marker_prefix: String,
    /// The runs of each pair (parameters, repetitions).
    pub variants: Vec<plan::Variant>,
    /// Each group's settings (its group.toml over the run's options), by group index.
    pub settings: Vec<crate::group_toml::GroupSettings>,
    /// The run happens under CI: a pair of a checked group without a reference fails.
    pub ci: bool,
    seq: AtomicU64,
    csv: Mutex<Appender>,
    /// Results that could not be written; the first one stops the run.
    unrecorded: Mutex<Vec<String>>,
}

impl RunCtx {
    /// The settings of `group` (one of the run's groups).
    pub fn settings_of(&self, group: &Group) -> &crate::group_toml::GroupSettings {
        let i = self
            .groups
            .iter()
            .position(|g| g.name == group.name)
            .unwrap_or(0);
        &self.settings[i]
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// A pair is committed: its results.csv row now (so nothing is lost), and the display.
    fn record(&self, rec: &PairRecord, last: bool) {
        let mut csv = self.csv.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = csv.append(rec) {
            drop(csv);
            self.not_recorded(
                &rec.id(),
                WriteError::new(&self.tree.file("results.csv"), e),
            );
        }
        self.progress.pair_done(rec, last);
    }

    /// Something of the run could not be written: the run stops starting pairs and
    /// exits 2.
    pub fn not_recorded(&self, what: &str, e: WriteError) {
        let mut u = self.unrecorded.lock().unwrap_or_else(|e| e.into_inner());
        if u.is_empty() {
            self.progress.println(&format!(
                "pairbench: cannot record {what}: {e}; stopping the run"
            ));
        }
        u.push(format!("{what}: {e}"));
    }

    /// Stop starting pairs (interrupted, stdout closed, or a result not recorded).
    pub fn stopping(&self) -> bool {
        crate::interrupt::requested()
            || !self
                .unrecorded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
    }
}

/// What a run left for the cli: its status, and the tree to draw the report from.
pub struct RunEnd {
    pub status: ExitStatus,
    /// `None` for a dry run.
    pub tag_dir: Option<PathBuf>,
    pub walked: Walked,
}

/// One remote host, as the user named it.
fn make_transport(opts: &RunOptions, remote: &str) -> anyhow::Result<Box<dyn Transport>> {
    match remote {
        "local" => Ok(Box::new(LocalTransport)),
        other => Ok(Box::new(crate::transport::SshTransport::new(other, opts)?)),
    }
}

/// The run's remote hosts with their slots (`local` has as many as `--jobs`).
fn make_pool(opts: &RunOptions) -> anyhow::Result<pool::Pool> {
    let names: Vec<String> = if opts.remotes.is_empty() {
        vec!["local".to_string()]
    } else {
        opts.remotes.clone()
    };
    let mut hosts = Vec::new();
    let mut slots = Vec::new();
    for n in &names {
        let t = make_transport(opts, n)?;
        slots.push(t.slots().unwrap_or(opts.jobs).max(1));
        hosts.push(t);
    }
    Ok(pool::Pool::new(hosts, slots, opts.ports))
}

fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Which existing tag this run continues (`--resume`, `--tag`); `None` for a new tag
/// named by the start time, claimed once the run is sure to start.
fn chosen_tag(opts: &RunOptions) -> anyhow::Result<Option<String>> {
    if opts.resume {
        let (tag, _) = lock::resolve(&opts.results_dir, "latest")
            .context("--resume continues the latest run")?;
        return Ok(Some(tag));
    }
    Ok(opts.tag.clone())
}

/// The run plan of this run, against the one the tag was made with. `--resume` without
/// plan options reuses the tag's plan; any other difference is refused (nothing of the
/// tag is deleted), unless `-B` asks to redo the tag with the new plan.
fn settle_plan(
    opts: &mut RunOptions,
    stored: Option<&Manifest>,
    tag: &str,
) -> anyhow::Result<bool> {
    let now = RunPlan {
        repeat: opts.repeat,
        warmup: opts.warmup,
        params: opts.params.clone(),
    };
    let Some(old) = stored.and_then(|m| m.plan.clone()) else {
        return Ok(false);
    };
    if opts.resume && !opts.plan_given {
        opts.repeat = old.repeat;
        opts.warmup = old.warmup;
        opts.params = old.params;
        return Ok(false);
    }
    match old.differs(&now) {
        None => Ok(false),
        Some(_) if opts.always_run => Ok(true),
        Some((option, was, is)) => anyhow::bail!(
            "tag '{tag}' was run with {option} {was}, this run asks for {option} {is}: run it with the tag's options ({}; `--resume` reuses them), redo the tag with the new ones (-B), or use a new --tag",
            old.describe()
        ),
    }
}

/// `pairbench run`: runs the pairs and writes the tables; the cli draws the report.
pub fn run(mut opts: RunOptions, command_line: Vec<String>) -> anyhow::Result<RunEnd> {
    let started = Instant::now();
    let started_at = now();
    crate::interrupt::install();
    let all = discover::discover(&opts.groups_dir)?;
    let groups = discover::select(all, &opts.groups, &opts.groups_dir)?;
    discover::refuse_unnamed(&groups)?;
    for g in &groups {
        for h in g.inert_hooks() {
            eprintln!(
                "pairbench: warning: {}/{h} is not executable, so it will not run (chmod +x to enable it)",
                crate::terminal::shown(&g.name)
            );
        }
    }
    let settings = groups
        .iter()
        .map(|g| crate::group_toml::GroupSettings::load(&g.dir, &opts))
        .collect::<Result<Vec<_>, _>>()?;
    for (g, s) in groups.iter().zip(&settings) {
        if crate::check::is_checked(s, &g.dir) {
            for w in crate::check::stray_references(&g.name, &g.dir) {
                eprintln!("pairbench: warning: {}", crate::terminal::shown(&w));
            }
        }
    }
    let mut pairs = plan::pairs(&groups, &opts.filters)?;
    let nothing_selected = pairs.is_empty();
    let mut suite_pairs = Vec::new();
    if let Some(shard) = opts.shard {
        suite_pairs = plan::pair_plans(&pairs, &groups);
        pairs.retain(|p| plan::in_shard(&p.id(&groups), shard));
    }

    for g in &groups {
        layout::check_group_name(&g.name).map_err(plan::PlanError::from)?;
    }
    let chosen = chosen_tag(&opts)?;
    let tag = chosen
        .clone()
        .unwrap_or_else(|| layout::time_tag(chrono::Local::now()));
    let tree = Tree::new(&opts.results_dir, &tag);
    let exists = chosen.is_some() && tree.root.is_dir();
    if nothing_selected {
        // Refused before anything is made; what dead runs left is still cleaned up.
        tidy_after_dead_runs(&tree, exists)?;
        anyhow::bail!("{}", empty_selection(&groups, &opts.filters));
    }
    let stored = if exists {
        manifest::read(&tree.root).unwrap_or_else(|e| {
            eprintln!("pairbench: warning: tag '{tag}': {e}; its earlier invocations are not kept");
            None
        })
    } else {
        None
    };
    let replan = settle_plan(&mut opts, stored.as_ref(), &tag)?;
    // Counted before anything is made, so a huge --repeat is refused, not allocated.
    let per_pair = plan::runs_per_pair(&opts.params, opts.repeat, opts.warmup);
    let total = per_pair.saturating_mul(pairs.len() as u64);
    if total > plan::MAX_RUNS {
        anyhow::bail!(
            "this run would make {total} runs ({} pairs × {per_pair} runs each: --repeat, --warmup and --param multiply): at most {} runs are planned at once; run fewer (or split it with --shard)",
            pairs.len(),
            plan::MAX_RUNS
        );
    }
    let variants = plan::variants(&opts.params, opts.repeat, opts.warmup);
    plan::check_names(&groups, &variants)?;
    let existing = if exists {
        walk::walk(&tree.root)
    } else {
        Walked::default()
    };
    let policy = Policy {
        recheck: opts.recheck,
        always: opts.always_run,
    };
    let mut planned = plan::decide(pairs, &variants, &groups, &existing, policy);
    if stored.as_ref().and_then(|m| m.plan.as_ref()).is_none()
        && !opts.always_run
        && let Some(why) = mixed_layout(&existing, &planned, &groups, &variants)
    {
        anyhow::bail!(
            "tag '{tag}' holds {why}: run it with the options it was made with, redo the tag with the new ones (-B), or use a new --tag"
        );
    }
    let seed = opts.seed.unwrap_or_else(rand::random);
    if opts.shuffle {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // Groups keep their order (their hooks wrap their pairs); runs within a group mix.
        planned.shuffle(&mut rng);
        planned.sort_by_key(|p| p.pair.group);
    }

    if opts.dry_run {
        print_dry_run(&planned, &groups, &variants);
        return Ok(RunEnd {
            status: ExitStatus::SUCCESS,
            tag_dir: None,
            walked: Walked::default(),
        });
    }
    let mut opts = opts;
    if let Some(wanted) = &opts.interactive {
        interactive::check(planned.iter().filter(|p| p.decision.runs()).count(), wanted)?;
        opts.progress = crate::config::ProgressMode::Never;
    }

    let tag = match chosen {
        Some(t) => {
            std::fs::create_dir_all(&tree.root).map_err(|e| WriteError::new(&tree.root, e))?;
            t
        }
        None => layout::claim_time_tag(&opts.results_dir, chrono::Local::now())
            .map_err(|e| WriteError::new(&opts.results_dir, e))?,
    };
    let results_dir = std::fs::canonicalize(&opts.results_dir)
        .with_context(|| format!("cannot resolve '{}'", opts.results_dir.display()))?;
    let tree = Tree::new(&results_dir, &tag);
    let _lock = lock::lock(&tree)?;
    let containment = crate::contain::init().map_err(anyhow::Error::msg)?;
    let mut cleaned = crate::contain::leftovers::clean_dead_runs(&std::env::temp_dir());
    cleaned.partials = lock::remove_leftovers(&tree);
    cleaned.tag = tag.clone();
    if let Some(line) = cleaned.line() {
        eprintln!("{line}");
    }
    if replan {
        clear_for_new_plan(&tree, &groups, &planned)?;
    }
    // From now on `latest` is this run, so `--resume` continues it even after a kill -9.
    lock::link_latest(&results_dir, &tag)
        .map_err(|e| WriteError::new(&results_dir.join("latest"), e))?;

    let to_run = planned.iter().filter(|p| p.decision.runs()).count();
    let skipped = planned.len() - to_run;
    let csv = Appender::open(
        &tree.file("results.csv"),
        tables::param_names(existing.all_records())
            .into_iter()
            .chain(opts.params.iter().map(|(n, _)| n.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    )
    .map_err(|e| WriteError::new(&tree.file("results.csv"), e))?;
    let pool = make_pool(&opts)?;
    let control =
        Control::start(containment.name()).context("cannot start the helpers' control socket")?;
    if let Some(cg) = containment.cgroup_dir() {
        // What the next run needs to clean up if this one and its keeper both die.
        let _ = std::fs::write(control.dir().join("cgroup"), cg.display().to_string());
    }
    if let Err(e) = crate::contain::keeper::start(
        containment.name(),
        containment.cgroup_dir(),
        &[control.dir().to_path_buf()],
    ) {
        eprintln!(
            "pairbench: warning: cannot start the keeper that ends this run's processes if pairbench dies: {e}"
        );
    }
    let mut here = hostinfo::this_machine("local", "local", "127.0.0.1");
    here.containment = Some(containment.description().to_string());
    here.accounting = serde_json::to_value(containment.accounting()).ok();
    // The remote hosts join run.json at the end: asking them now would wait for every
    // connection before the first pair.
    let this_machine = vec![here];

    let mut manifest = stored.unwrap_or_default();
    manifest.pairbench_version = env!("CARGO_PKG_VERSION").to_string();
    manifest.tag = tag.clone();
    manifest.command_line = command_line.clone();
    manifest
        .started_at
        .get_or_insert_with(|| started_at.clone());
    manifest.ended_at = None;
    manifest.options = serde_json::to_value(&opts).unwrap_or_default();
    manifest.plan = Some(RunPlan {
        repeat: opts.repeat,
        warmup: opts.warmup,
        params: opts.params.clone(),
    });
    manifest.hosts = this_machine.clone();
    manifest.containment = serde_json::to_value(containment.description()).ok();
    let changed: std::collections::BTreeMap<&str, &crate::group_toml::GroupSettings> = groups
        .iter()
        .zip(&settings)
        .filter(|(_, s)| s.from_group_toml())
        .map(|(g, s)| (g.name.as_str(), s))
        .collect();
    manifest.group_settings = (!changed.is_empty())
        .then(|| serde_json::to_value(&changed).ok())
        .flatten();
    manifest.pairs_planned = planned.len();
    manifest.pairs_run = to_run;
    manifest.pairs_skipped = skipped;
    manifest.interrupted = false;
    manifest.shuffle_seed = opts.shuffle.then_some(seed);
    manifest.planned_pairs = plan::group_plans(&planned, &groups);
    manifest.shard = opts.shard.map(|(k, n)| manifest::Shard { k, n });
    manifest.suite_pairs = suite_pairs;
    manifest.invocations.push(Invocation {
        command_line,
        started_at: started_at.clone(),
        ended_at: None,
        interrupted: false,
        pairs_run: to_run,
        counts: None,
    });
    manifest::write(&tree, &manifest)?;

    let progress_plan = progress::Plan {
        repeat: opts.repeat,
        warmup: opts.warmup,
        retries: opts.retries,
        variants: variants.iter().any(|v| !v.rel().is_empty()),
    };
    let ctx = RunCtx {
        live: opts.verbose.then(Live::start),
        progress: Progress::new(to_run, opts.progress, opts.verbose, progress_plan),
        groups,
        tree: tree.clone(),
        control,
        marker_prefix: containment.name().to_string(),
        variants,
        settings,
        ci: crate::check::under_ci(),
        seq: AtomicU64::new(0),
        csv: Mutex::new(csv),
        unrecorded: Mutex::new(Vec::new()),
        opts,
    };
    if skipped > 0 {
        ctx.progress.println(&format!(
            "pairbench: {skipped} of {} pairs already have an up-to-date result in '{tag}' (use --recheck or -B to rerun them)",
            planned.len()
        ));
    }

    for (gi, group) in ctx.groups.iter().enumerate() {
        if ctx.stopping() {
            break;
        }
        let mine: Vec<&Planned> = planned
            .iter()
            .filter(|p| p.pair.group as usize == gi && p.decision.runs())
            .collect();
        if mine.is_empty() {
            continue;
        }
        group::run_group(&ctx, group, &pool, &mine);
    }
    ctx.progress.finish();
    let mut hosts = this_machine;
    hosts.extend(pool.hosts.iter().map(|t| t.host_info()));
    // The remote side is measured by the first remote host's agent (or here).
    let remote_acct = pool
        .hosts
        .iter()
        .zip(hosts.iter().skip(1))
        .find_map(|(t, h)| {
            if t.runs_here() {
                hosts[0].accounting.clone()
            } else {
                h.accounting.clone()
            }
        })
        .or_else(|| hosts[0].accounting.clone());
    manifest.accounting = Some(serde_json::json!({
        "local": hosts[0].accounting.clone(),
        "remote": remote_acct,
    }));
    manifest.hosts = hosts;
    pool.close();
    // Nothing of the run runs any more; the keeper can go.
    containment.finish();

    // The run's tables, from the tree itself.
    let walked = walk::walk(&tree.root);
    write_tables(&ctx, &walked);
    let interrupted = crate::interrupt::requested();
    // A stdout closed while pairs ran stopped the run; one closed only for the summary
    // below did not.
    let stdout_closed = crate::console::closed();
    let wanted: HashSet<String> = planned
        .iter()
        .map(|p| {
            let rel = ctx.variants[p.variant as usize].rel();
            crate::tree::record::run_id(
                &ctx.groups[p.pair.group as usize].name,
                &p.pair.name(&ctx.groups),
                &rel,
            )
        })
        .collect();
    let mine: Vec<&PairRecord> = walked
        .latest()
        .filter(|r| wanted.contains(&r.id()))
        .collect();
    let counts = Counts::of(mine.iter().copied());
    manifest.counts = counts;
    let ended = now();
    manifest.ended_at = Some(ended.clone());
    manifest.interrupted = interrupted;
    if let Some(inv) = manifest.invocations.last_mut() {
        inv.ended_at = Some(ended);
        inv.interrupted = interrupted;
        inv.counts = Some(counts);
    }
    if let Err(e) = manifest::write(&tree, &manifest) {
        ctx.not_recorded("run.json", e);
    }

    print_summary(
        &mine,
        counts,
        planned.len() - counts.total(),
        started,
        &tree,
        interrupted,
        progress_plan,
    );
    let pending = mine
        .iter()
        .filter(|r| {
            r.check
                .as_ref()
                .is_some_and(|c| c.result == crate::tree::record::CheckResult::Pending)
        })
        .count();
    if pending > 0 {
        crate::console::line(&format!(
            "pairbench: {pending} pair{} of checked groups had no reference: {} output is pending as expected/<pair>/…/*.new (`pairbench review` or `pairbench bless` accepts it)",
            if pending == 1 { "" } else { "s" },
            if pending == 1 { "its" } else { "their" }
        ));
    }
    let unrecorded = ctx
        .unrecorded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if unrecorded.len() > 1 {
        // The first was printed when it happened.
        eprintln!(
            "pairbench: {} writes of the result tree failed (the first is above)",
            unrecorded.len()
        );
    }
    let status = if stdout_closed {
        ExitStatus::STDOUT_CLOSED
    } else if interrupted {
        ExitStatus::INTERRUPTED
    } else if !unrecorded.is_empty() {
        ExitStatus::ERROR
    } else {
        ExitStatus::of_counts(counts)
    };
    Ok(RunEnd {
        status,
        tag_dir: Some(tree.root.clone()),
        walked,
    })
}

/// results.csv, metrics.csv and stats.csv of the tree.
fn write_tables(ctx: &RunCtx, walked: &Walked) {
    for (name, e) in crate::stats::write_tables(&ctx.tree, walked) {
        ctx.not_recorded(name, e);
    }
}

/// What dead runs left: their cgroups, control folders and processes, and (`exists`)
/// the unfinished folders of this tag; one line says what went.
fn tidy_after_dead_runs(tree: &Tree, exists: bool) -> anyhow::Result<()> {
    let mut cleaned = crate::contain::leftovers::clean_dead_runs(&std::env::temp_dir());
    if exists {
        let _lock = lock::lock(tree)?;
        cleaned.partials = lock::remove_leftovers(tree);
        cleaned.tag = tree.tag.clone();
    }
    if let Some(line) = cleaned.line() {
        eprintln!("{line}");
    }
    Ok(())
}

/// Why a selection has no pairs, in one line.
fn empty_selection(groups: &[Group], filters: &[String]) -> String {
    use crate::terminal::shown;
    if groups.is_empty() {
        return "no groups to run: the groups folder has none (`pairbench new NAME` makes one)"
            .into();
    }
    if !filters.is_empty() {
        let example = groups
            .iter()
            .find(|g| !g.local.is_empty() && !g.remote.is_empty())
            .map(|g| {
                format!(
                    "; pair ids look like {}/{}_x_{}",
                    g.name, g.local[0].name, g.remote[0].name
                )
            })
            .unwrap_or_default();
        return shown(&format!(
            "no pair matches -f {}{example} (`pairbench list` shows them)",
            filters.join(" -f ")
        ))
        .into_owned();
    }
    let why: Vec<String> = groups
        .iter()
        .map(|g| {
            let side = match (g.local.is_empty(), g.remote.is_empty()) {
                (true, true) => "no executable tests in local/ or remote/",
                (true, false) => "no executable tests in local/",
                _ => "no executable tests in remote/",
            };
            format!("{}: {side}", g.name)
        })
        .collect();
    shown(&format!(
        "nothing to run: the selected groups have no pairs ({}; chmod +x a test to enable it)",
        why.join("; ")
    ))
    .into_owned()
}

/// On a tag made before run plans were kept: does it hold plain results of pairs that
/// now run in variant folders (or the other way round)?
fn mixed_layout(
    existing: &Walked,
    planned: &[Planned],
    groups: &[Group],
    variants: &[plan::Variant],
) -> Option<String> {
    let plain_now = variants.iter().all(|v| v.rel().is_empty());
    let planned_pairs: HashSet<String> = planned.iter().map(|p| p.pair.id(groups)).collect();
    existing
        .latest()
        .filter(|r| planned_pairs.contains(&crate::tree::record::run_id(&r.group, &r.pair, "")))
        .find(|r| r.variant.is_empty() != plain_now)
        .map(|r| {
            if plain_now {
                format!(
                    "runs with --repeat/--warmup/--param ({}), this run has none",
                    r.id()
                )
            } else {
                format!(
                    "a plain result of {} and this run asks for --repeat/--warmup/--param",
                    r.id()
                )
            }
        })
}

/// `-B` with a new run plan: the planned pairs' folders go, so old and new runs never mix.
fn clear_for_new_plan(tree: &Tree, groups: &[Group], planned: &[Planned]) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    for p in planned.iter().filter(|p| p.decision.runs()) {
        let g = &groups[p.pair.group as usize].name;
        let dir = tree.pair(g, &p.pair.name(groups));
        if seen.insert(dir.clone()) && dir.is_dir() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove '{}' to redo it (-B)", dir.display()))?;
        }
    }
    Ok(())
}

fn print_dry_run(planned: &[Planned], groups: &[Group], variants: &[plan::Variant]) {
    let mut text = String::new();
    let mut n = 0;
    for p in planned {
        let verb = if p.decision.runs() {
            n += 1;
            "run "
        } else {
            "skip"
        };
        let id = crate::tree::record::run_id(
            &groups[p.pair.group as usize].name,
            &p.pair.name(groups),
            &variants[p.variant as usize].rel(),
        );
        text.push_str(&format!("{verb}  {id}  ({})\n", p.decision));
    }
    text.push_str(&format!(
        "dry run: {n} of {} pairs would run; nothing was run\n",
        planned.len()
    ));
    crate::console::block(&text);
}

fn print_summary(
    mine: &[&PairRecord],
    counts: Counts,
    missing: usize,
    started: Instant,
    tree: &Tree,
    interrupted: bool,
    plan: progress::Plan,
) {
    let mut text = String::new();
    // Runs no host could be reached for: each reason once, with how many it stopped.
    let mut unreached: Vec<(&str, usize)> = Vec::new();
    for r in mine.iter().filter(|r| r.unreached) {
        match unreached.iter_mut().find(|(why, _)| *why == r.reason) {
            Some((_, n)) => *n += 1,
            None => unreached.push((&r.reason, 1)),
        }
    }
    for (why, n) in &unreached {
        let line = format!(
            "ERROR   {n} {} not run: {why} (a later run of the tag runs them again)",
            plan.word()
        );
        text.push_str(&crate::terminal::shown(&line));
        text.push('\n');
    }
    for r in mine
        .iter()
        .filter(|r| r.status != Status::Success && !r.unreached)
    {
        let line = format!(
            "{:<7} {}{}: {}",
            r.status.marker(),
            crate::tree::record::run_id(&r.group, &r.pair, ""),
            plan.which(r),
            r.reason
        );
        // Names escaped for the terminal.
        text.push_str(&crate::terminal::shown(&line));
        text.push('\n');
    }
    let mut line = format!(
        "pairbench: {} {}: {} SUCCESS, {} FAILED, {} ERROR",
        counts.total(),
        plan.word(),
        counts.success,
        counts.failed,
        counts.error
    );
    if missing > 0 {
        line.push_str(&format!(", {missing} not run"));
    }
    line.push_str(&format!(" in {:.2}s", started.elapsed().as_secs_f64()));
    if interrupted {
        line.push_str(" (interrupted: `pairbench run --resume` runs what is missing)");
    }
    text.push_str(&line);
    text.push('\n');
    text.push_str(&format!("results: {}\n", display_path(&tree.root)));
    crate::console::block(&text);
}

fn display_path(p: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    p.strip_prefix(&cwd)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.display().to_string())
}
