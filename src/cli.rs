//! The command line (clap): parses arguments, merges them with pairbench.toml into typed
//! options and calls the library. Errors come back as one line and exit status 2.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{self, FileConfig, ProgressMode, RunOptions};

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
    /// Hosts, links and faults on this machine: a testbed of network namespaces
    Testbed(crate::testbed::command::TestbedArgs),
    /// The remote end of an SSH transport (started by pairbench over SSH)
    #[command(hide = true)]
    Agent(crate::transport::ssh::agent::AgentArgs),
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
    /// Only pairs whose id <group>/<L>_x_<R> matches this glob (repeatable)
    #[arg(short = 'f', long = "filter", value_name = "GLOB")]
    pub filters: Vec<String>,
    /// Time limit of a local test [default: 10m]
    #[arg(long, value_name = "D")]
    pub timeout: Option<String>,
    /// Time limit of a hook [default: 10m]
    #[arg(long, value_name = "D")]
    pub hook_timeout: Option<String>,
    /// Default time limit of the waiting helpers [default: 60s]
    #[arg(long, value_name = "D")]
    pub wait_timeout: Option<String>,
    /// Time between SIGHUP, SIGTERM and SIGKILL [default: 2s]
    #[arg(long, value_name = "D")]
    pub kill_grace: Option<String>,
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

fn dur(
    what: &str,
    flag: &Option<String>,
    file: &Option<String>,
    default: &str,
) -> Result<std::time::Duration, config::ConfigError> {
    let v = flag.as_deref().or(file.as_deref()).unwrap_or(default);
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
        let repeat = self.repeat.or(file.repeat).unwrap_or(1);
        if repeat == 0 {
            anyhow::bail!("bad --repeat 0: run each pair at least once (--repeat 1 or more)");
        }
        let mut params: Vec<(String, Vec<String>)> = file.params.into_iter().collect();
        for p in &self.params {
            let (name, values) = config::parse_param(p)?;
            params.retain(|(n, _)| n != &name);
            params.push((name, values));
        }
        if let Some((name, _)) = params.iter().find(|(_, v)| v.is_empty()) {
            anyhow::bail!("parameter '{name}' has no values: give it at least one");
        }
        let remotes = if self.remotes.is_empty() {
            file.remotes
        } else {
            self.remotes
        };
        // The hosts of a testbed that is up, by name (a [[remote]] of the same name wins).
        let mut remote_defs = file.remote;
        let testbed = crate::testbed::state_dir(None, &file.testbed);
        for d in crate::testbed::remote_defs(&testbed) {
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
            timeout: dur("--timeout", &self.timeout, &file.timeout, "10m")?,
            hook_timeout: dur(
                "--hook-timeout",
                &self.hook_timeout,
                &file.hook_timeout,
                "10m",
            )?,
            wait_timeout: dur(
                "--wait-timeout",
                &self.wait_timeout,
                &file.wait_timeout,
                "60s",
            )?,
            kill_grace: dur("--kill-grace", &self.kill_grace, &file.kill_grace, "2s")?,
            connect_timeout: dur(
                "--connect-timeout",
                &self.connect_timeout,
                &file.connect_timeout,
                "30s",
            )?,
            env,
            verbose: self.verbose,
            progress: self.progress,
            jobs,
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
            shuffle: self.shuffle,
            seed: self.seed,
            interactive: self.interactive,
            testbed_dir: testbed.path,
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
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match dispatch(cli, &args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pairbench: {}", one_line(&e));
            2
        }
    }
}

/// An error and its causes, on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

fn dispatch(cli: Cli, args: &[String]) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(run) => {
            let (testbed, config) = (run.testbed, run.common.config.clone());
            let opts = (*run).into_options()?;
            match testbed {
                None => crate::runner::run(opts, args.to_vec()),
                Some(hosts) => {
                    let file = FileConfig::load(config.as_deref())?;
                    crate::testbed::auto::run_on_testbed(opts, hosts, &file.testbed, |o| {
                        crate::runner::run(o, args.to_vec())
                    })
                }
            }
        }
        Command::List(list) => {
            let dir = groups_dir(&list.common)?;
            crate::list::list(&dir, &list.groups)?;
            Ok(0)
        }
        Command::New(new) => {
            let dir = groups_dir(&new.common)?;
            let path = crate::skeleton::create(&dir, &new.name)
                .with_context(|| format!("cannot create group '{}'", new.name))?;
            println!(
                "created group '{}' in {}\nrun it with: pairbench run {}",
                new.name,
                path.display(),
                new.name
            );
            Ok(0)
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
        Command::Compare(c) => {
            let file = FileConfig::load(c.config.as_deref())?;
            let results = c
                .results_dir
                .or(file.results_dir)
                .unwrap_or_else(|| "results".into());
            crate::compare::command(&results, &c.a, &c.b, &c.threshold, &file.metrics)
        }
        Command::Testbed(t) => crate::testbed::command::run(&t),
        Command::Helper { name, args } => Ok(crate::helpers::main(&name, &args)),
        Command::Agent(a) => Ok(crate::transport::ssh::agent::main(&a)),
    }
}
