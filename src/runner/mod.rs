//! A run: which pairs, in which order, on which transport; the group's hooks around its
//! pairs; the run's files at the end; the exit status (SPEC §2, §3, §7).

pub mod env;
mod group;
mod hooks;
mod interactive;
mod live;
mod pair;
mod pool;
pub mod progress;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::config::RunOptions;
use crate::control::Control;
use crate::discover::{self, Group};
use crate::hostinfo::{self, HostInfo};
use crate::plan::{self, Planned, Policy};
use crate::results::{self, CsvAppender, PairRecord, Status, Tree};
use crate::transport::{LocalTransport, Transport};
use live::Live;
use progress::{Counts, Progress};

/// What all groups of a run share.
pub struct RunCtx {
    pub opts: RunOptions,
    pub groups: Vec<Group>,
    pub tree: Tree,
    pub control: Control,
    live: Option<Live>,
    pub progress: Progress,
    pub run_id: String,
    /// The runs of each pair (parameters, repetitions).
    pub variants: Vec<plan::Variant>,
    seq: AtomicU64,
    csv: Mutex<Option<CsvAppender>>,
}

impl RunCtx {
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// A pair is done: its CSV row now (so nothing is lost), and the display.
    fn record(&self, rec: &PairRecord) {
        if let Some(csv) = self.csv.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = csv.append(rec);
        }
        self.progress.pair_done(rec);
    }
}

/// run.json.
#[derive(Serialize)]
struct Manifest<'a> {
    pairbench_version: &'a str,
    command_line: &'a [String],
    tag: &'a str,
    started_at: String,
    ended_at: Option<String>,
    options: &'a RunOptions,
    hosts: &'a [HostInfo],
    counts: Counts,
    pairs_planned: usize,
    pairs_run: usize,
    pairs_skipped: usize,
    interrupted: bool,
    /// The seed of --shuffle.
    shuffle_seed: Option<u64>,
}

/// `<group>/<pair>` plus the run's folder, as [`PairRecord::id`] writes it.
fn join_id(id: String, rel: &str) -> String {
    if rel.is_empty() {
        id
    } else {
        format!("{id}/{rel}")
    }
}

trait SortedNames {
    fn sorted_names(self) -> Vec<String>;
}

impl<I: Iterator<Item = String>> SortedNames for I {
    fn sorted_names(self) -> Vec<String> {
        let mut v: Vec<String> = self.collect();
        v.sort();
        v
    }
}

/// The start time; a run in the same second as an earlier one gets `-2`, `-3`, ...
fn default_tag(results_dir: &Path) -> String {
    let base = chrono::Local::now().format("%Y-%m-%dT%H-%M-%S").to_string();
    let mut tag = base.clone();
    let mut n = 1;
    while results_dir.join(&tag).exists() {
        n += 1;
        tag = format!("{base}-{n}");
    }
    tag
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
    Ok(pool::Pool::new(hosts, slots))
}

/// `pairbench run`: returns the exit status (0, 1, 2 or 130).
pub fn run(opts: RunOptions, command_line: Vec<String>) -> anyhow::Result<i32> {
    let started = Instant::now();
    let started_at = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    crate::interrupt::install();
    let all = discover::discover(&opts.groups_dir)?;
    let groups = discover::select(all, &opts.groups, &opts.groups_dir)?;
    for g in &groups {
        for h in g.inert_hooks() {
            eprintln!(
                "pairbench: warning: {}/{h} is not executable, so it will not run (chmod +x to enable it)",
                g.name
            );
        }
    }
    let mut pairs = plan::pairs(&groups, &opts.filters)?;
    if let Some(shard) = opts.shard {
        pairs.retain(|p| plan::in_shard(&p.id(&groups), shard));
    }

    let results_dir = opts.results_dir.clone();
    let tag = if opts.resume {
        results::resolve_tag(&results_dir, "latest")
            .map_err(anyhow::Error::msg)
            .context("--resume continues the latest run")?
            .0
    } else {
        opts.tag
            .clone()
            .unwrap_or_else(|| default_tag(&results_dir))
    };
    let tree = Tree::new(&results_dir, &tag);
    let policy = Policy {
        recheck: opts.recheck,
        always: opts.always_run,
    };
    let variants = plan::variants(&opts.params, opts.repeat, opts.warmup);
    let mut planned = plan::decide(pairs, &variants, &groups, &tree, policy);
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
        return Ok(0);
    }
    let mut opts = opts;
    if let Some(wanted) = &opts.interactive {
        interactive::check(planned.iter().filter(|p| p.decision.runs()).count(), wanted)?;
        opts.progress = crate::config::ProgressMode::Never;
    }

    std::fs::create_dir_all(&tree.root)
        .with_context(|| format!("cannot create result folder '{}'", tree.root.display()))?;
    let results_dir = std::fs::canonicalize(&results_dir)
        .with_context(|| format!("cannot resolve '{}'", results_dir.display()))?;
    let tree = Tree::new(&results_dir, &tag);
    let _lock = lock_tag(&tree)?;
    remove_partials(&tree, &groups);
    clear_plain_results(&tree, &groups, &planned, &variants);

    let pool = make_pool(&opts)?;
    let control = Control::start().context("cannot start the helpers' control socket")?;
    let to_run = planned.iter().filter(|p| p.decision.runs()).count();
    let skipped = planned.len() - to_run;
    let mut hosts = vec![hostinfo::this_machine("local", "local", "127.0.0.1")];
    hosts.extend(pool.hosts.iter().map(|t| t.host_info()));
    let ctx = RunCtx {
        live: opts.verbose.then(Live::start),
        progress: Progress::new(to_run, opts.progress, opts.verbose),
        groups,
        tree: tree.clone(),
        control,
        run_id: format!(
            "{}-{}",
            std::process::id(),
            started_at.replace([':', '.'], "")
        ),
        variants,
        seq: AtomicU64::new(0),
        csv: Mutex::new(
            CsvAppender::open(
                &tree.root.join("results.csv"),
                opts.params.iter().map(|(n, _)| n.clone()).sorted_names(),
            )
            .ok(),
        ),
        opts,
    };
    let mut manifest = Manifest {
        pairbench_version: env!("CARGO_PKG_VERSION"),
        command_line: &command_line,
        tag: &tag,
        started_at,
        ended_at: None,
        options: &ctx.opts,
        hosts: &hosts,
        counts: Counts::default(),
        pairs_planned: planned.len(),
        pairs_run: to_run,
        pairs_skipped: skipped,
        interrupted: false,
        shuffle_seed: ctx.opts.shuffle.then_some(seed),
    };
    write_manifest(&tree, &manifest);
    if skipped > 0 {
        ctx.progress.println(&format!(
            "pairbench: {skipped} of {} pairs already have an up-to-date result in '{tag}' (use --recheck or -B to rerun them)",
            planned.len()
        ));
    }

    for (gi, group) in ctx.groups.iter().enumerate() {
        if crate::interrupt::requested() {
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

    // The run's files, from the tree itself.
    let records = results::collect_records(&tree.root);
    let _ = results::write_results_csv(&tree.root.join("results.csv"), &records);
    let metrics = results::collect_metrics(&tree.root);
    let stats = crate::stats::compute(&tree.root);
    if let Err(e) = crate::stats::write_csv(&tree.root.join("stats.csv"), &stats) {
        eprintln!("pairbench: warning: cannot write stats.csv: {e}");
    }
    let _ = results::write_metrics_csv(&tree.root.join("metrics.csv"), &metrics);
    let interrupted = crate::interrupt::requested();
    let wanted: std::collections::HashSet<String> = planned
        .iter()
        .map(|p| {
            join_id(
                p.pair.id(&ctx.groups),
                &ctx.variants[p.variant as usize].rel(),
            )
        })
        .collect();
    let mut counts = Counts::default();
    for r in latest_attempts(&records, &wanted) {
        counts.add(r.status);
    }
    manifest.counts = counts;
    manifest.ended_at =
        Some(chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    manifest.interrupted = interrupted;
    write_manifest(&tree, &manifest);
    if let Err(e) = results::link_latest(&results_dir, &tag) {
        eprintln!("pairbench: warning: cannot update results/latest: {e}");
    }
    for w in crate::report::write_all(&tree.root) {
        eprintln!("pairbench: warning: {w}");
    }

    print_summary(
        &records,
        &wanted,
        counts,
        planned.len() - counts.total(),
        started,
        &tree,
        interrupted,
    );
    Ok(if interrupted {
        130
    } else if counts.error > 0 {
        2
    } else if counts.failed > 0 {
        1
    } else {
        0
    })
}

/// The last attempt of each wanted pair.
fn latest_attempts<'r>(
    records: &'r [PairRecord],
    wanted: &std::collections::HashSet<String>,
) -> Vec<&'r PairRecord> {
    let mut last: std::collections::BTreeMap<String, &PairRecord> = Default::default();
    for r in records.iter().filter(|r| wanted.contains(&r.id())) {
        let e = last.entry(r.id()).or_insert(r);
        if r.attempt >= e.attempt {
            *e = r;
        }
    }
    last.into_values().collect()
}

fn write_manifest(tree: &Tree, m: &Manifest) {
    if let Ok(json) = serde_json::to_vec_pretty(m) {
        let _ = results::write_atomic(&tree.root.join("run.json"), &json);
    }
}

/// Hold the tag's lock for the whole run; a second run on the same tag is refused.
fn lock_tag(tree: &Tree) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    let path = tree.lock_file();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .read(true)
        .open(&path)
        .with_context(|| format!("cannot open lock file '{}'", path.display()))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            use std::io::{Seek, Write};
            let _ = lock.set_len(0);
            let _ = lock.seek(std::io::SeekFrom::Start(0));
            let _ = writeln!(lock, "{}", std::process::id());
            Ok(lock)
        }
        Err((_, _)) => {
            let pid = std::fs::read_to_string(&path).unwrap_or_default();
            bail!(
                "tag '{}' is in use by another pairbench run (pid {}): wait for it to finish, or use another --tag",
                tree.tag,
                pid.trim()
            )
        }
    }
}

/// Leftovers of an earlier run that died mid-pair (at any level of a pair folder).
fn remove_partials(tree: &Tree, groups: &[Group]) {
    for g in groups {
        let mut walker = walkdir::WalkDir::new(tree.group(&g.name))
            .min_depth(1)
            .max_depth(4)
            .into_iter();
        while let Some(Ok(e)) = walker.next() {
            let n = e.file_name().to_string_lossy().into_owned();
            if !e.file_type().is_dir() {
                continue;
            }
            if n.starts_with('.') && (n.ends_with(".partial") || n.ends_with(".old")) {
                let _ = std::fs::remove_dir_all(e.path());
                walker.skip_current_dir();
            } else if n == "hooks" || n == "local" || n == "remote" {
                walker.skip_current_dir();
            }
        }
    }
}

/// A pair that now runs in several folders (parameters, repetitions) replaces an earlier
/// plain result of the same pair, so the two never mix.
fn clear_plain_results(
    tree: &Tree,
    groups: &[Group],
    planned: &[Planned],
    variants: &[plan::Variant],
) {
    if variants.iter().all(|v| v.rel().is_empty()) {
        return;
    }
    for p in planned.iter().filter(|p| p.decision.runs()) {
        let dir = tree.pair(&groups[p.pair.group as usize].name, &p.pair.name(groups));
        if dir.join("pair.json").exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn print_dry_run(planned: &[Planned], groups: &[Group], variants: &[plan::Variant]) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut n = 0;
    for p in planned {
        let verb = if p.decision.runs() {
            n += 1;
            "run "
        } else {
            "skip"
        };
        let id = join_id(p.pair.id(groups), &variants[p.variant as usize].rel());
        let _ = writeln!(out, "{verb}  {id}  ({})", p.decision);
    }
    let _ = writeln!(
        out,
        "dry run: {n} of {} pairs would run; nothing was run",
        planned.len()
    );
}

fn print_summary(
    records: &[PairRecord],
    wanted: &std::collections::HashSet<String>,
    counts: Counts,
    missing: usize,
    started: Instant,
    tree: &Tree,
    interrupted: bool,
) {
    for r in latest_attempts(records, wanted) {
        if r.status != Status::Success {
            println!(
                "{:<7} {}/{}: {}",
                r.status.marker(),
                r.group,
                r.pair,
                r.reason
            );
        }
    }
    let mut line = format!(
        "pairbench: {} pairs: {} SUCCESS, {} FAILED, {} ERROR",
        counts.total(),
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
    println!("{line}");
    println!("results: {}", display_path(&tree.root));
}

fn display_path(p: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    p.strip_prefix(&cwd)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.display().to_string())
}
