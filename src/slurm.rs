//! `pairbench slurm script|submit` (docs/scaling-out.md): a run split into N shards as a
//! Slurm job array, one task per shard (`pairbench run --shard K/N --tag T`, each into a
//! results folder of its own), and a job that waits for all of them (`afterany`) and
//! merges their trees into one tag. `script` prints a bash script that submits both;
//! `submit` submits them itself. With `--nodes 2`, a task's second node is its remote
//! host. Every value that reaches a shell is quoted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::config::{self, FileConfig};

/// What to do with the jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Print a bash script that submits the jobs
    Script,
    /// Submit the jobs with sbatch
    Submit,
}

#[derive(Debug, clap::Args)]
pub struct SlurmArgs {
    /// `script` prints the submission, `submit` runs it
    #[arg(value_enum)]
    pub action: Action,
    /// Number of shards (array tasks)
    #[arg(long, value_name = "N")]
    pub shards: u64,
    /// Nodes per task: 1, or 2 (the second node is the task's remote host)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub nodes: u32,
    /// One more argument for both sbatch calls, e.g. --sbatch=--partition=lab (repeatable)
    #[arg(long = "sbatch", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch: Vec<String>,
    /// The tag the shards run under and are merged into [default: the current time]
    #[arg(short = 't', long)]
    pub tag: Option<String>,
    /// Where the merged tag goes [default: results, or results_dir of the run's config]
    #[arg(short = 'o', long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    /// The pairbench executable as the nodes see it [default: this one]
    #[arg(long, value_name = "PATH")]
    pub pairbench: Option<PathBuf>,
    /// Arguments of `pairbench run` for every shard (after `--`)
    #[arg(last = true, value_name = "RUN-ARGS")]
    pub run_args: Vec<String>,
}

/// Everything the two jobs need, resolved and checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub shards: u64,
    pub nodes: u32,
    pub sbatch: Vec<String>,
    pub tag: String,
    /// Absolute: where the merged tag goes.
    pub results: PathBuf,
    /// Absolute: the folder the jobs run in (where `pairbench slurm` was called).
    pub cwd: PathBuf,
    pub exe: PathBuf,
    pub run_args: Vec<String>,
}

/// What `pairbench slurm` must know of the `pairbench run` arguments after `--` (the
/// command line parses them, so this module never depends on it).
#[derive(Debug, Default, Clone)]
pub struct RunFacts {
    pub shard: bool,
    pub tag: bool,
    pub results_dir: bool,
    pub resume: bool,
    /// `--remote` or `--inventory` given.
    pub hosts: bool,
    /// `-c FILE`.
    pub config: Option<PathBuf>,
}

const SHARD_END: &str = "PAIRBENCH_SHARD_JOB";
const MERGE_END: &str = "PAIRBENCH_MERGE_JOB";

fn q(word: &str) -> anyhow::Result<String> {
    shlex::try_quote(word)
        .map(|c| c.into_owned())
        .map_err(|_| anyhow::anyhow!("cannot quote '{word}' for the shell (NUL byte)"))
}

fn qp(p: &Path) -> anyhow::Result<String> {
    q(&p.to_string_lossy())
}

fn quote_all(words: &[String]) -> anyhow::Result<String> {
    let q: Vec<String> = words.iter().map(|w| q(w)).collect::<Result<_, _>>()?;
    Ok(q.join(" "))
}

impl Plan {
    /// Check the arguments and resolve the paths.
    pub fn new(args: &SlurmArgs, run: &RunFacts) -> anyhow::Result<Plan> {
        if args.shards == 0 {
            bail!("bad --shards 0: split the run into 1 shard or more");
        }
        if !(1..=2).contains(&args.nodes) {
            bail!(
                "bad --nodes {}: a task has 1 node, or 2 (the second is its remote host)",
                args.nodes
            );
        }
        let own = |what: &str, flag: &str| {
            anyhow::anyhow!(
                "{what} is set by `pairbench slurm` for each shard: give it as `pairbench slurm {flag}` before --, not in the run arguments"
            )
        };
        if run.shard {
            bail!(
                "--shard is set by `pairbench slurm` for each task: leave it out of the run arguments"
            );
        }
        if run.tag {
            return Err(own("--tag", "--tag T"));
        }
        if run.results_dir {
            return Err(own("--results-dir", "-o DIR"));
        }
        if run.resume {
            bail!(
                "--resume continues the latest tag of one results folder, which shards do not share: rerun with the same --tag instead"
            );
        }
        if args.nodes == 2 && run.hosts {
            bail!(
                "with --nodes 2 each task's second node is its remote host: leave --remote and --inventory out of the run arguments"
            );
        }
        for a in args.run_args.iter().chain(&args.sbatch) {
            if a.lines().any(|l| l == SHARD_END || l == MERGE_END) {
                bail!(
                    "an argument holds a line '{SHARD_END}' or '{MERGE_END}', which ends a job script: remove it"
                );
            }
        }
        let tag = match &args.tag {
            Some(t) => {
                config::validate_tag(t)?;
                t.clone()
            }
            None => chrono::Local::now().format("%Y-%m-%dT%H-%M-%S").to_string(),
        };
        let cwd = std::env::current_dir().context("cannot find the current folder")?;
        let file = FileConfig::load(run.config.as_deref())?;
        let results = args
            .results_dir
            .clone()
            .or(file.results_dir)
            .unwrap_or_else(|| "results".into());
        let exe = match &args.pairbench {
            Some(p) => p.clone(),
            None => std::env::current_exe().context("cannot find the pairbench executable")?,
        };
        Ok(Plan {
            shards: args.shards,
            nodes: args.nodes,
            sbatch: args.sbatch.clone(),
            tag,
            results: cwd.join(results),
            exe: cwd.join(exe),
            cwd,
            run_args: args.run_args.clone(),
        })
    }

    /// `<results>/.shards/<tag>`: the shards' results folders (`1/`, `2/`, ...) and the
    /// jobs' output. A tag never starts with `.`, so this is never a tag.
    pub fn shard_root(&self) -> PathBuf {
        self.results.join(".shards").join(&self.tag)
    }

    /// The tree of shard `k`, as `pairbench merge` takes it.
    pub fn shard_tree(&self, k: u64) -> PathBuf {
        self.shard_root().join(k.to_string()).join(&self.tag)
    }

    fn job_name(&self) -> String {
        let t: String = self
            .tag
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("pairbench-{t}")
    }

    /// sbatch's arguments for the array of shards.
    pub fn array_sbatch(&self) -> Vec<String> {
        let mut a = vec![
            "--parsable".to_string(),
            format!("--job-name={}", self.job_name()),
            format!("--array=1-{}", self.shards),
            format!("--nodes={}", self.nodes),
            format!(
                "--output={}",
                self.shard_root().join("slurm-%A_%a.out").display()
            ),
        ];
        a.extend(self.sbatch.iter().cloned());
        a
    }

    /// sbatch's arguments for the merge (its dependency added when the array's id is known).
    pub fn merge_sbatch(&self) -> Vec<String> {
        let mut a = vec![
            "--parsable".to_string(),
            format!("--job-name={}-merge", self.job_name()),
            "--nodes=1".to_string(),
            format!(
                "--output={}",
                self.shard_root().join("slurm-merge-%j.out").display()
            ),
        ];
        a.extend(self.sbatch.iter().cloned());
        a
    }

    /// The job script of each array task.
    pub fn shard_script(&self) -> anyhow::Result<String> {
        let n = self.shards;
        let mut s = String::new();
        s.push_str("#!/bin/bash\n");
        s.push_str(&format!(
            "# One shard of {n} of `pairbench run` (tag {}), made by `pairbench slurm`.\n",
            q(&self.tag)?
        ));
        s.push_str("set -euo pipefail\n");
        s.push_str(&format!("cd -- {}\n", qp(&self.cwd)?));
        s.push_str(
            "shard=\"${SLURM_ARRAY_TASK_ID:?this script runs as a task of a Slurm job array}\"\n",
        );
        s.push_str("remote=()\n");
        if self.nodes == 2 {
            s.push_str(
                "second=\"$(scontrol show hostnames \"${SLURM_JOB_NODELIST:?}\" | sed -n 2p)\"\n",
            );
            s.push_str("if [ -z \"$second\" ]; then\n  echo \"pairbench slurm: task $shard has one node ($SLURM_JOB_NODELIST), not two: submit with --nodes 2\" >&2\n  exit 2\nfi\n");
            s.push_str("remote=(--remote \"$second\")\n");
        }
        s.push_str(&format!(
            "exec {} run --shard \"$shard/{n}\" --tag {} --results-dir {}/\"$shard\" \"${{remote[@]}}\"",
            qp(&self.exe)?,
            q(&self.tag)?,
            qp(&self.shard_root())?
        ));
        if !self.run_args.is_empty() {
            s.push(' ');
            s.push_str(&quote_all(&self.run_args)?);
        }
        s.push('\n');
        Ok(s)
    }

    /// The job script that merges the shards' trees into one tag.
    pub fn merge_script(&self) -> anyhow::Result<String> {
        let trees: Vec<String> = (1..=self.shards)
            .map(|k| self.shard_tree(k).to_string_lossy().into_owned())
            .collect();
        Ok(format!(
            "#!/bin/bash\n# Merges the {} shards of tag {} into {}, made by `pairbench slurm`.\nset -euo pipefail\ncd -- {}\nexec {} merge -o {} --tag {} {}\n",
            self.shards,
            q(&self.tag)?,
            qp(&self.results.join(&self.tag))?,
            qp(&self.cwd)?,
            qp(&self.exe)?,
            qp(&self.results)?,
            q(&self.tag)?,
            quote_all(&trees)?
        ))
    }

    /// A bash script that submits both jobs (what `submit` does).
    pub fn driver(&self) -> anyhow::Result<String> {
        let mut s = String::new();
        s.push_str("#!/bin/bash\n");
        s.push_str(&format!(
            "# Submits `pairbench run` as {} shards (a Slurm job array), then a job that merges\n# them into {} once all have ended. Made by `pairbench slurm script`.\n",
            self.shards,
            qp(&self.results.join(&self.tag))?
        ));
        s.push_str("set -euo pipefail\n");
        s.push_str(&format!("mkdir -p -- {}\n", qp(&self.shard_root())?));
        s.push_str(&format!(
            "array=$(sbatch {} <<'{SHARD_END}'\n{}{SHARD_END}\n)\narray=${{array%%;*}}\n",
            quote_all(&self.array_sbatch())?,
            self.shard_script()?
        ));
        s.push_str(&format!(
            "merge=$(sbatch {} --dependency=afterany:\"$array\" <<'{MERGE_END}'\n{}{MERGE_END}\n)\nmerge=${{merge%%;*}}\n",
            quote_all(&self.merge_sbatch())?,
            self.merge_script()?
        ));
        s.push_str(&format!(
            "echo \"submitted {} shards as job array $array and their merge as job $merge (after all of them); results: \"{}\n",
            self.shards,
            qp(&self.results.join(&self.tag))?
        ));
        Ok(s)
    }
}

/// Run sbatch with `args`, the job script on its standard input; the job id.
fn sbatch(args: &[String], script: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = Command::new("sbatch")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "sbatch not found: run this where Slurm's commands are (a login node), or print the script with `pairbench slurm script`"
                )
            } else {
                anyhow::anyhow!("cannot run sbatch: {e}")
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .context("cannot give sbatch its job script")?;
    }
    let out = child.wait_with_output().context("sbatch did not finish")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "sbatch {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " ")
        );
    }
    let id = stdout.trim().split(';').next().unwrap_or_default().trim();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("sbatch said '{}', not a job id", stdout.trim());
    }
    Ok(id.to_string())
}

/// `pairbench slurm script|submit`.
pub fn command(args: &SlurmArgs, run: &RunFacts) -> anyhow::Result<i32> {
    let plan = Plan::new(args, run)?;
    match args.action {
        Action::Script => {
            print!("{}", plan.driver()?);
            Ok(0)
        }
        Action::Submit => {
            let root = plan.shard_root();
            std::fs::create_dir_all(&root)
                .with_context(|| format!("cannot create '{}'", root.display()))?;
            let array = sbatch(&plan.array_sbatch(), &plan.shard_script()?)?;
            let mut margs = plan.merge_sbatch();
            margs.push(format!("--dependency=afterany:{array}"));
            let merge = sbatch(&margs, &plan.merge_script()?)?;
            println!(
                "submitted {} shards as job array {array} and their merge as job {merge} (after all of them); results: {}",
                plan.shards,
                plan.results.join(&plan.tag).display()
            );
            Ok(0)
        }
    }
}
