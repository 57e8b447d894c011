//! The command line (clap): parses arguments, merges them with pairbench.toml into typed
//! options and calls the library; after a run it draws the run's report. Errors come
//! back as one line and exit status 2 (see [`ExitStatus`]).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{self, FileConfig, ProgressMode, RunOptions};
use crate::exit_status::ExitStatus;

#[derive(Debug, Parser)]
#[command(
    name = "pairbench",
    version,
    about = "Run every local x remote pair of client/server test scripts, and keep the results"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pairs (all groups when none is named)
    Run(Box<RunArgs>),
    /// Show groups, enabled and disabled tests, and the pair matrix
    List(ListArgs),
    /// Create a working group skeleton to start from
    New(NewArgs),
    /// Redraw tables, plots and pages of a stored run (default: latest)
    Report(ReportArgs),
    /// Show each pair's change between two runs; exit 1 where something got worse
    Compare(CompareArgs),
    /// Store a run's output as the references of its pairs (groups/<g>/expected/)
    Bless(BlessArgs),
    /// Compare a stored run with today's references (offline); exit 1 on a difference
    Check(CheckArgs),
    /// Walk each difference and pending reference on a terminal: accept, reject, skip
    Review(CheckArgs),
    /// Show the hosts that Ansible inventories give (as `--inventory` would use them)
    Inventory(InventoryArgs),
    /// Fold the trees of shards (`run --shard K/N`) into one tag, with one set of tables and reports
    Merge(MergeArgs),
    /// Run as N shards on a Slurm cluster (a job array), then merge them into one tag
    Slurm(Box<crate::slurm::SlurmArgs>),
    /// Hosts, links and faults on this machine: a testbed of network namespaces
    Testbed(crate::testbed::command::TestbedArgs),
    /// The remote end of an SSH transport (started by pairbench over SSH)
    #[command(hide = true)]
    Agent(crate::transport::ssh::agent::AgentArgs),
    /// Ends a run's processes if pairbench dies (started by pairbench)
    #[command(hide = true)]
    Keeper(crate::contain::keeper::KeeperArgs),
    /// Run a helper (wait_for_remote, kill_remote, ...) by name
    #[command(hide = true)]
    Helper {
        name: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct Common {
    /// Folder of groups [default: groups]
    #[arg(short = 'g', long, value_name = "DIR")]
    pub groups_dir: Option<PathBuf>,
    /// Configuration file [default: pairbench.toml when present]
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Groups to run (all when none is named)
    pub groups: Vec<String>,
    #[command(flatten)]
    pub common: Common,
    /// Where results go [default: results]
    #[arg(short = 'o', long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    /// Name of the result folder [default: the start time]
    #[arg(short = 't', long)]
    pub tag: Option<String>,
    /// Where remote tests run: local, [user@]host[:port], an ~/.ssh/config alias or a [[remote]] name (repeatable)
    #[arg(long = "remote", value_name = "HOST")]
    pub remotes: Vec<String>,
    /// Hosts of an Ansible inventory (INI or YAML), all or one group's, as the pool (repeatable)
    #[arg(long = "inventory", value_name = "FILE[:GROUP]")]
    pub inventories: Vec<String>,
    /// Only pairs whose id <group>/<L>_x_<R> matches this glob (repeatable)
    #[arg(short = 'f', long = "filter", value_name = "GLOB")]
    pub filters: Vec<String>,
    /// TCP ports given to runs as PAIRBENCH_PORT, FIRST-LAST [default: a random range in 20000-29999]
    #[arg(long, value_name = "FIRST-LAST")]
    pub ports: Option<String>,
    /// Time limit of a local test [default: 10m]
    #[arg(long, value_name = "D")]
    pub timeout: Option<String>,
    /// Time limit of a hook [default: 10m]
    #[arg(long, value_name = "D")]
    pub hook_timeout: Option<String>,
    /// Default time limit of the waiting helpers [default: 60s]
    #[arg(long, value_name = "D")]
    pub wait_timeout: Option<String>,
    /// Time between the stop signal, SIGTERM and SIGKILL [default: 2s]
    #[arg(long, value_name = "D")]
    pub kill_grace: Option<String>,
    /// First signal that ends a remote test: HUP, TERM, INT, QUIT, KILL, ... [default: HUP]
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// SSH connect and keep-alive time limit [default: 30s]
    #[arg(long, value_name = "D")]
    pub connect_timeout: Option<String>,
    /// Extra environment for every script (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Stream both sides' output live
    #[arg(short, long)]
    pub verbose: bool,
    /// Progress bar on a terminal (auto), always, or never
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Run up to N pairs at once [default: 1]
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// On an existing tag, also rerun FAILED and ERROR pairs
    #[arg(long)]
    pub recheck: bool,
    /// Rerun every pair, even those with a result
    #[arg(short = 'B', long)]
    pub always_run: bool,
    /// Continue the latest tag
    #[arg(long, conflicts_with = "tag")]
    pub resume: bool,
    /// Print each pair that would run and why; run nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Take shard K of N of the pairs (stable)
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Rerun a FAILED or ERROR pair up to N times
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Keep the remote work folder after the run
    #[arg(long)]
    pub keep_remote: bool,
    /// Add unknown SSH host keys to ~/.ssh/known_hosts instead of refusing them
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Measured runs of each pair [default: 1]
    #[arg(long, value_name = "N")]
    pub repeat: Option<u32>,
    /// Warm-up runs of each pair before the measured ones [default: 0]
    #[arg(long, value_name = "N")]
    pub warmup: Option<u32>,
    /// Run each pair once per value (repeatable: every combination); scripts see PAIRBENCH_PARAM_NAME
    #[arg(long = "param", value_name = "NAME=a,b,c")]
    pub params: Vec<String>,
    /// Randomise the order of the runs (the seed is kept in run.json)
    #[arg(long)]
    pub shuffle: bool,
    /// Seed for --shuffle [default: random]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Make a testbed of N hosts (default: those of [testbed]), run over them, remove it
    #[arg(long, value_name = "N", num_args = 0..=1)]
    pub testbed: Option<Option<usize>>,
    /// Run one pair GROUP/PAIR by hand: a shell instead of its local test
    #[arg(long, value_name = "GROUP/PAIR")]
    pub interactive: Option<String>,
    /// Run the scripts under a tracer: strace[:ARGS], perf-stat or perf-record[:ARGS]; output in <side>/trace/
    #[arg(long, value_name = "TOOL[:ARGS]")]
    pub trace: Option<String>,
    /// Which sides --trace traces
    #[arg(long, value_enum, default_value_t = config::TraceSide::Both)]
    pub trace_side: config::TraceSide,
    /// Sample both hosts from /proc this often while a pair runs (e.g. 100ms): <side>/samples.csv
    #[arg(long, value_name = "D")]
    pub sample: Option<String>,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Inventory files, each with an optional group: hosts.ini, hosts.yml:web
    #[arg(required = true, value_name = "FILE[:GROUP]")]
    pub inventories: Vec<String>,
    /// Print each file's groups and host variables as `ansible-inventory --list` does (JSON)
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Groups to show (all when none is named)
    pub groups: Vec<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Name of the new group
    pub name: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run to redraw: a tag or `latest`
    #[arg(default_value = "latest")]
    pub tag: String,
    /// Where results are [default: results]
    #[arg(short = 'o', long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' trees: tag folders, or results folders whose `latest` is one
    #[arg(value_name = "TREE", required = true)]
    pub trees: Vec<PathBuf>,
    /// Where the merged tag goes [default: results]
    #[arg(short = 'o', long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    /// The merged tag (a new one)
    #[arg(short = 't', long)]
    pub tag: String,
    /// Configuration file [default: pairbench.toml when present]
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The earlier run (a tag, or `latest`)
    pub a: String,
    /// The later run (a tag, or `latest`)
    pub b: String,
    /// How much worse counts as a regression
    #[arg(long, default_value = "5%")]
    pub threshold: String,
    /// Where results are [default: results]
    #[arg(short = 'o', long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    /// Configuration file (for `[metrics]` directions) [default: pairbench.toml when present]
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// What `check` and `review` are given.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The run: a tag or `latest`
    #[arg(default_value = "latest")]
    pub tag: String,
    /// Only pairs whose id <group>/<L>_x_<R> matches this glob (repeatable)
    #[arg(short = 'f', long = "filter", value_name = "GLOB")]
    pub filters: Vec<String>,
    /// Where results are [default: results]
    #[arg(short = 'o', long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct BlessArgs {
    #[command(flatten)]
    pub run: CheckArgs,
    /// Also remove the references of pairs that no longer exist
    #[arg(long)]
    pub prune: bool,
    /// Also bless FAILED and ERROR pairs
    #[arg(long)]
    pub force: bool,
}

/// What a command that reads a stored run (`bless`, `check`, `review`) needs of the
/// configuration: the results folder and the metric directions.
struct StoredRunConfig {
    results_dir: PathBuf,
    directions: std::collections::BTreeMap<String, config::Direction>,
}

impl CheckArgs {
    fn config(&self) -> anyhow::Result<StoredRunConfig> {
        let file = FileConfig::load(self.common.config.as_deref())?;
        Ok(StoredRunConfig {
            results_dir: self
                .results_dir
                .clone()
                .or(file.results_dir)
                .unwrap_or_else(|| "results".into()),
            directions: file.metrics,
        })
    }

    /// The stored run these arguments name (`-g` only when given: otherwise the groups
    /// folder the run used).
    fn which<'a>(&'a self, c: &'a StoredRunConfig) -> crate::check::stored::Which<'a> {
        crate::check::stored::Which {
            results_dir: &c.results_dir,
            tag: &self.tag,
            groups_dir: self.common.groups_dir.as_deref(),
            filters: &self.filters,
            directions: &c.directions,
        }
    }
}

fn dur(
    what: &str,
    flag: &Option<String>,
    file: &Option<String>,
    default: &str,
) -> Result<std::time::Duration, config::ConfigError> {
    let v = flag.as_deref().or(file.as_deref()).unwrap_or(default);
    if flag.is_none() && file.is_some() {
        let key = what.trim_start_matches("--").replace('-', "_");
        return config::parse_duration(&format!("{key} in the config file"), v);
    }
    config::parse_duration(what, v)
}

impl RunArgs {
    /// Merge with the config file into validated options.
    pub fn into_options(self) -> anyhow::Result<RunOptions> {
        let file = FileConfig::load(self.common.config.as_deref())?;
        if let Some(t) = &self.tag {
            config::validate_tag(t)?;
        }
        let mut env: Vec<(String, String)> = file.env.into_iter().collect();
        for e in &self.env {
            let (k, v) = config::parse_env(e)?;
            env.retain(|(ek, _)| ek != &k);
            env.push((k, v));
        }
        let mut filters = self.filters.clone();
        if let Some(p) = &self.interactive {
            filters.push(globset::escape(p));
        }
        for f in &filters {
            globset::Glob::new(f).map_err(|e| config::ConfigError::Filter {
                glob: f.clone(),
                message: e.kind().to_string(),
            })?;
        }
        let shard = self.shard.as_deref().map(config::parse_shard).transpose()?;
        let jobs = self.jobs.or(file.jobs).unwrap_or(1);
        if jobs == 0 {
            anyhow::bail!("bad --jobs 0: run at least one pair at a time (-j 1 or more)");
        }
        let ports = match (&self.ports, &file.ports) {
            (Some(v), _) => Some(config::parse_ports("--ports", v).map_err(anyhow::Error::msg)?),
            (None, Some(v)) => Some(
                config::parse_ports("ports in the config file", v).map_err(anyhow::Error::msg)?,
            ),
            (None, None) => None,
        };
        let repeat = self.repeat.or(file.repeat).unwrap_or(1);
        if repeat == 0 {
            anyhow::bail!("bad --repeat 0: run each pair at least once (--repeat 1 or more)");
        }
        let file_params_given = !file.params.is_empty();
        let mut params: Vec<(String, Vec<String>)> = file.params.into_iter().collect();
        let mut given: Vec<String> = Vec::new();
        for p in &self.params {
            let (name, values) = config::parse_param(p)?;
            // Twice on the command line is a mistake, not a list (docs/running.md).
            if given.contains(&name) {
                anyhow::bail!(
                    "--param {name} is given twice: give all its values at once (--param {name}=a,b,c)"
                );
            }
            given.push(name.clone());
            params.retain(|(n, _)| n != &name);
            params.push((name, values));
        }
        if let Some((name, _)) = params.iter().find(|(_, v)| v.is_empty()) {
            anyhow::bail!("parameter '{name}' has no values: give it at least one");
        }
        let plan_given = self.repeat.is_some()
            || self.warmup.is_some()
            || !self.params.is_empty()
            || file.repeat.is_some()
            || file.warmup.is_some()
            || file_params_given;
        let stop_signal = match self.stop_signal.as_deref() {
            Some(v) => config::parse_stop_signal("--stop-signal", v)?,
            None => match file.stop_signal.as_deref() {
                Some(v) => config::parse_stop_signal("stop_signal in the config file", v)?,
                None => config::StopSignal::DEFAULT,
            },
        };
        let given = config::Given {
            timeout: config::Source::of(&self.timeout, &file.timeout),
            hook_timeout: config::Source::of(&self.hook_timeout, &file.hook_timeout),
            kill_grace: config::Source::of(&self.kill_grace, &file.kill_grace),
            stop_signal: config::Source::of(&self.stop_signal, &file.stop_signal),
            cli_env: self
                .env
                .iter()
                .filter_map(|e| e.split_once('=').map(|(k, _)| k.to_string()))
                .collect(),
        };
        let timeout = config::nonzero(
            "--timeout",
            dur("--timeout", &self.timeout, &file.timeout, "10m")?,
            config::NO_ZERO_TIMEOUT,
        )?;
        let hook_timeout = config::nonzero(
            "--hook-timeout",
            dur(
                "--hook-timeout",
                &self.hook_timeout,
                &file.hook_timeout,
                "10m",
            )?,
            config::NO_ZERO_TIMEOUT,
        )?;
        let connect_timeout = config::nonzero(
            "--connect-timeout",
            dur(
                "--connect-timeout",
                &self.connect_timeout,
                &file.connect_timeout,
                "30s",
            )?,
            "a connection needs time to be made; give e.g. 30s",
        )?;
        // The command line's hosts (--remote, then --inventory) replace the file's.
        let (mut remotes, inventories) = if self.remotes.is_empty() && self.inventories.is_empty() {
            (file.remotes, file.inventory)
        } else {
            (self.remotes, self.inventories)
        };
        let (from_inventories, inventory_defs) = crate::inventory::pool(&inventories)?;
        for name in from_inventories {
            if !remotes.contains(&name) {
                remotes.push(name);
            }
        }
        // A [[remote]] of pairbench.toml wins over a testbed host or an inventory host of
        // the same name; the hosts of a testbed that is up are known by name.
        let mut remote_defs = file.remote;
        let testbed = crate::testbed::state_dir(None, &file.testbed);
        for d in crate::testbed::remote_defs(&testbed) {
            if !remote_defs.iter().any(|r| r.name == d.name) {
                remote_defs.push(d);
            }
        }
        for d in inventory_defs {
            if !remote_defs.iter().any(|r| r.name == d.name) {
                remote_defs.push(d);
            }
        }
        Ok(RunOptions {
            groups_dir: self
                .common
                .groups_dir
                .or(file.groups_dir)
                .unwrap_or_else(|| "groups".into()),
            results_dir: self
                .results_dir
                .or(file.results_dir)
                .unwrap_or_else(|| "results".into()),
            tag: self.tag,
            groups: self.groups,
            remotes,
            remote_defs,
            filters,
            timeout,
            hook_timeout,
            wait_timeout: dur(
                "--wait-timeout",
                &self.wait_timeout,
                &file.wait_timeout,
                "60s",
            )?,
            kill_grace: dur("--kill-grace", &self.kill_grace, &file.kill_grace, "2s")?,
            connect_timeout,
            stop_signal,
            env,
            verbose: self.verbose,
            progress: self.progress,
            jobs,
            ports,
            recheck: self.recheck,
            always_run: self.always_run,
            resume: self.resume,
            dry_run: self.dry_run,
            shard,
            retries: self.retries.or(file.retries).unwrap_or(0),
            keep_remote: self.keep_remote,
            accept_new_host_keys: self.accept_new_host_keys,
            repeat,
            warmup: self.warmup.or(file.warmup).unwrap_or(0),
            params,
            plan_given,
            shuffle: self.shuffle,
            seed: self.seed,
            given,
            interactive: self.interactive,
            testbed_dir: testbed.path,
            metrics: file.metrics,
            trace: self
                .trace
                .as_deref()
                .map(config::Trace::parse)
                .transpose()
                .map_err(anyhow::Error::msg)?,
            trace_side: self.trace_side,
            sample: match self.sample.as_deref() {
                None => None,
                Some(s) => {
                    let d = config::parse_duration("--sample", s)?;
                    if d < std::time::Duration::from_millis(10) {
                        anyhow::bail!("bad --sample '{s}': sample at most every 10ms");
                    }
                    Some(d)
                }
            },
        })
    }
}

fn groups_dir(common: &Common) -> anyhow::Result<PathBuf> {
    let file = FileConfig::load(common.config.as_deref())?;
    Ok(common
        .groups_dir
        .clone()
        .or(file.groups_dir)
        .unwrap_or_else(|| "groups".into()))
}

/// Run the command line; returns the process exit status.
pub fn main(args: Vec<String>) -> ExitStatus {
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitStatus::ERROR
            } else {
                ExitStatus::SUCCESS
            };
            let _ = e.print();
            return code;
        }
    };
    match dispatch(cli, &args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pairbench: {}", one_line(&e));
            ExitStatus::ERROR
        }
    }
}

/// An error and its causes, on one line. Each error says its cause either in its message
/// or as its source, never both, so the chain is joined as it is.
pub fn one_line(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    parts.join(": ").replace('\n', " ")
}

/// `pairbench run`, then its report (drawn by the cli, from what the run's walk found).
fn run_and_report(opts: RunOptions, args: &[String]) -> anyhow::Result<ExitStatus> {
    let end = crate::runner::run(opts, args.to_vec())?;
    let Some(tag_dir) = end.tag_dir else {
        return Ok(end.status);
    };
    let drawn = crate::report::after_run(&tag_dir, end.walked);
    for w in drawn.warnings.iter().chain(&drawn.not_written) {
        eprintln!("pairbench: warning: {}", crate::terminal::shown(w));
    }
    let failed_write = !drawn.not_written.is_empty();
    Ok(match end.status {
        s if failed_write && s.code() < 2 => ExitStatus::ERROR,
        s => s,
    })
}

fn dispatch(cli: Cli, args: &[String]) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Run(run) => {
            let (testbed, config) = (run.testbed, run.common.config.clone());
            let opts = (*run).into_options()?;
            match testbed {
                None => run_and_report(opts, args),
                Some(hosts) => {
                    let file = FileConfig::load(config.as_deref())?;
                    crate::testbed::auto::run_on_testbed(opts, hosts, &file.testbed, |o| {
                        run_and_report(o, args)
                    })
                }
            }
        }
        Command::List(list) => {
            let dir = groups_dir(&list.common)?;
            crate::list::list(&dir, &list.groups)?;
            Ok(ExitStatus::SUCCESS)
        }
        Command::New(new) => {
            let dir = groups_dir(&new.common)?;
            let path = crate::skeleton::create(&dir, &new.name)
                .with_context(|| format!("cannot create group '{}'", new.name))?;
            crate::console::line(&format!(
                "created group '{}' in {}\nrun it with: pairbench run {}",
                crate::terminal::shown(&new.name),
                crate::terminal::shown(&path.display().to_string()),
                crate::terminal::shell_word(&new.name)
            ));
            Ok(ExitStatus::SUCCESS)
        }
        Command::Report(rep) => {
            let file = FileConfig::load(rep.common.config.as_deref())?;
            let results = rep
                .results_dir
                .or(file.results_dir)
                .unwrap_or_else(|| "results".into());
            let groups = rep
                .common
                .groups_dir
                .or(file.groups_dir)
                .unwrap_or_else(|| "groups".into());
            crate::report::command(&results, &rep.tag, &groups)
        }
        Command::Merge(m) => {
            let file = FileConfig::load(m.config.as_deref())?;
            let results = m
                .results_dir
                .or(file.results_dir)
                .unwrap_or_else(|| "results".into());
            let end = crate::merge::merge(&results, &m.tag, &m.trees, args.to_vec())?;
            let drawn = crate::report::after_run(&end.tag_dir, end.walked);
            for w in &drawn.not_written {
                eprintln!("pairbench: warning: {}", crate::terminal::shown(w));
            }
            Ok(if drawn.not_written.is_empty() {
                end.status
            } else {
                ExitStatus::ERROR
            })
        }
        Command::Compare(c) => {
            let file = FileConfig::load(c.config.as_deref())?;
            let results = c
                .results_dir
                .or(file.results_dir)
                .unwrap_or_else(|| "results".into());
            crate::compare::command(&results, &c.a, &c.b, &c.threshold, &file.metrics)
        }
        Command::Bless(b) => {
            let c = b.run.config()?;
            crate::check::bless::command(&b.run.which(&c), b.prune, b.force)
        }
        Command::Check(a) => crate::check::recheck::command(&a.which(&a.config()?)),
        Command::Review(a) => crate::check::review::command(&a.which(&a.config()?)),
        Command::Testbed(t) => crate::testbed::command::run(&t).map(ExitStatus::from_code),
        Command::Slurm(s) => {
            let facts = slurm_run_facts(&s.run_args)?;
            crate::slurm::command(&s, &facts).map(ExitStatus::from_code)
        }
        Command::Inventory(inv) => {
            crate::inventory::command(&inv.inventories, inv.list).map(ExitStatus::from_code)
        }
        Command::Helper { name, args } => {
            Ok(ExitStatus::from_code(crate::helpers::main(&name, &args)))
        }
        Command::Agent(a) => Ok(ExitStatus::from_code(crate::transport::ssh::agent::main(
            &a,
        ))),
        Command::Keeper(k) => Ok(ExitStatus::from_code(crate::contain::keeper::main(&k))),
    }
}

/// The facts `pairbench slurm` needs of the run arguments after `--`, checked as
/// `pairbench run` would check them.
fn slurm_run_facts(run_args: &[String]) -> anyhow::Result<crate::slurm::RunFacts> {
    let mut argv = vec!["pairbench".to_string(), "run".to_string()];
    argv.extend(run_args.iter().cloned());
    let run = match Cli::try_parse_from(&argv) {
        Ok(Cli {
            command: Command::Run(r),
        }) => r,
        Ok(_) => anyhow::bail!("the arguments after -- must be those of `pairbench run`"),
        Err(e) => {
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or_default();
            anyhow::bail!(
                "the run arguments after -- are not valid for `pairbench run`: {}",
                first.trim_start_matches("error: ")
            );
        }
    };
    Ok(crate::slurm::RunFacts {
        shard: run.shard.is_some(),
        tag: run.tag.is_some(),
        results_dir: run.results_dir.is_some(),
        resume: run.resume,
        hosts: !(run.remotes.is_empty() && run.inventories.is_empty()),
        config: run.common.config,
    })
}
