//! A run: which pairs, in which order, on which transport; the group's hooks around its
//! pairs; the run's files at the end; the exit status (SPEC §2, §3, §7).

mod env;
mod hooks;
mod live;
mod pair;
pub mod progress;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::config::RunOptions;
use crate::control::Control;
use crate::discover::{self, Group};
use crate::hostinfo::{self, HostInfo};
use crate::plan::{self, Planned, Policy};
use crate::results::{self, CsvAppender, PairRecord, Status, Tree};
use crate::transport::{GroupPaths, LocalTransport, Transport};
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

/// What the pairs of one group share.
pub struct GroupCtx<'a> {
    pub run: &'a RunCtx,
    pub group: &'a Group,
    pub transport: &'a dyn Transport,
    pub local_paths: GroupPaths,
    pub remote_paths: GroupPaths,
    pub remote_host: String,
    pub local_host: String,
    pub remote_user: String,
    pub remote_port: u16,
    /// Set when the group's pairs cannot run (a before-hook failed, the host is down).
    pub pairs_error: Option<String>,
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

fn make_transport(opts: &RunOptions) -> anyhow::Result<Box<dyn Transport>> {
    match opts.remotes.as_slice() {
        [] => Ok(Box::new(LocalTransport)),
        [one] if one == "local" => Ok(Box::new(LocalTransport)),
        [one] => Ok(Box::new(crate::transport::SshTransport::new(one, opts)?)),
        _ => bail!("several --remote hosts (a pool) are not available in this build yet"),
    }
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
    let planned = plan::decide(pairs, &groups, &tree, policy);

    if opts.dry_run {
        print_dry_run(&planned, &groups);
        return Ok(0);
    }

    std::fs::create_dir_all(&tree.root)
        .with_context(|| format!("cannot create result folder '{}'", tree.root.display()))?;
    let results_dir = std::fs::canonicalize(&results_dir)
        .with_context(|| format!("cannot resolve '{}'", results_dir.display()))?;
    let tree = Tree::new(&results_dir, &tag);
    let _lock = lock_tag(&tree)?;
    remove_partials(&tree, &groups);

    let transport = make_transport(&opts)?;
    let control = Control::start().context("cannot start the helpers' control socket")?;
    let to_run = planned.iter().filter(|p| p.decision.runs()).count();
    let skipped = planned.len() - to_run;
    let hosts = vec![
        hostinfo::this_machine("local", "local", "127.0.0.1"),
        transport.host_info(),
    ];
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
        seq: AtomicU64::new(0),
        csv: Mutex::new(CsvAppender::open(&tree.root.join("results.csv")).ok()),
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
        run_group(&ctx, group, transport.as_ref(), &mine);
    }
    ctx.progress.finish();

    // The run's files, from the tree itself.
    let records = results::collect_records(&tree.root);
    let _ = results::write_results_csv(&tree.root.join("results.csv"), &records);
    let metrics = results::collect_metrics(&tree.root, &records);
    let _ = results::write_metrics_csv(&tree.root.join("metrics.csv"), &metrics);
    let interrupted = crate::interrupt::requested();
    let wanted: std::collections::HashSet<String> =
        planned.iter().map(|p| p.pair.id(&ctx.groups)).collect();
    let mut counts = Counts::default();
    for r in records.iter().filter(|r| wanted.contains(&r.id())) {
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

fn run_group(ctx: &RunCtx, group: &Group, transport: &dyn Transport, mine: &[&Planned]) {
    let local_results = ctx.tree.group(&group.name);
    let _ = std::fs::create_dir_all(&local_results);
    let local_paths = GroupPaths {
        scripts: group.dir.clone(),
        root: group.root.clone(),
        results: local_results.clone(),
    };
    let (remote_paths, mut pairs_error) =
        match transport.prepare_group(group, &ctx.tree.tag, &local_results) {
            Ok(p) => (p, None),
            Err(e) => (
                local_paths.clone(),
                Some(format!("remote host {}: {e}", transport.name())),
            ),
        };
    let prepared = pairs_error.is_none();
    let mut g = GroupCtx {
        run: ctx,
        group,
        transport,
        local_paths,
        remote_paths,
        remote_host: transport.address(),
        local_host: transport.local_address(),
        remote_user: transport.user(),
        remote_port: transport.port(),
        pairs_error: None,
    };
    if prepared {
        for name in ["before_first_test_local", "before_first_test_remote"] {
            if let Some(h) = hooks::run(&g, name)
                && !h.ok
            {
                ctx.progress
                    .println(&format!("pairbench: {}: {}", group.name, h.reason));
                pairs_error = Some(h.reason);
                break;
            }
        }
    }
    g.pairs_error = pairs_error;

    let next = AtomicUsize::new(0);
    let workers = ctx.opts.jobs.min(mine.len()).max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    if crate::interrupt::requested() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(p) = mine.get(i) else { break };
                    if pair::run_pair(&g, p, 1).is_none() {
                        break;
                    }
                }
            });
        }
    });

    if prepared {
        if let Some(h) = hooks::run(&g, "after_last_test_remote")
            && !h.ok
        {
            ctx.progress
                .println(&format!("pairbench: warning: {}: {}", group.name, h.reason));
        }
        if let Err(e) = transport.finish_group(&g.remote_paths, &local_results) {
            ctx.progress.println(&format!(
                "pairbench: warning: {}: copying results back from {} failed: {e}",
                group.name,
                transport.name()
            ));
        }
    }
    if let Some(h) = hooks::run(&g, "after_last_test_local")
        && !h.ok
    {
        ctx.progress
            .println(&format!("pairbench: warning: {}: {}", group.name, h.reason));
    }
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

/// Leftovers of an earlier run that died mid-pair.
fn remove_partials(tree: &Tree, groups: &[Group]) {
    for g in groups {
        let Ok(rd) = std::fs::read_dir(tree.group(&g.name)) else {
            continue;
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with('.') && (n.ends_with(".partial") || n.ends_with(".old")) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn print_dry_run(planned: &[Planned], groups: &[Group]) {
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
        let _ = writeln!(out, "{verb}  {}  ({})", p.pair.id(groups), p.decision);
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
    for r in records.iter().filter(|r| wanted.contains(&r.id())) {
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
