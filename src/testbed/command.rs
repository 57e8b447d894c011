//! `pairbench testbed ...` and the script helpers `testbed_link` and `testbed_host`
//! (the same arguments, HOST defaulting to the pair's remote host). A helper also writes
//! each change it made, with its time, to the events file pairbench gave it
//! (`$PAIRBENCH_TESTBED_EVENTS`); pairbench gathers that into the pair's `events.csv`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::ops::{self, HostChange, LinkChange};
use super::{Dir, TestbedError, up};
use crate::config::{FileConfig, LinkConf};

#[derive(Debug, Args)]
pub struct TestbedArgs {
    #[command(subcommand)]
    pub command: TestbedCommand,
    /// Where the testbed keeps what it made [default: $PAIRBENCH_TESTBED_DIR, [testbed] state_dir, /run/pairbench/testbed]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Configuration file [default: pairbench.toml when present]
    #[arg(short = 'c', long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TestbedCommand {
    /// Make the hosts of [testbed] in pairbench.toml (or N plain ones: server1, server2, ...)
    Up {
        /// How many hosts
        #[arg(long, value_name = "N")]
        hosts: Option<usize>,
        /// Their addresses [default: [testbed] subnet, or 10.213.0.0/24]
        #[arg(long, value_name = "CIDR")]
        subnet: Option<String>,
    },
    /// Remove everything the testbed made
    Down,
    /// Hosts, addresses, link settings and what runs inside
    Status,
    /// A shell (or CMD) inside a host
    Shell {
        host: String,
        #[arg(last = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// Cut, heal, shape or clear a host's link
    Link {
        host: String,
        #[command(subcommand)]
        action: LinkAction,
    },
    /// Stop (a crash), start, pause (freeze) or resume a host
    Host {
        host: String,
        #[arg(value_enum)]
        action: HostChange,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum LinkAction {
    /// Cut the link: every packet is lost, both ways
    Down,
    /// Heal it: back to its shape
    Up,
    /// Shape it (values not given stay as they are)
    Shape(ShapeArgs),
    /// Remove every shape (a cut stays cut)
    Clear,
}

#[derive(Debug, Clone, Args)]
pub struct ShapeArgs {
    /// One-way delay, each direction (e.g. 20ms)
    #[arg(long, value_name = "D")]
    pub delay: Option<String>,
    /// The delay varies within ± this (e.g. 2ms)
    #[arg(long, value_name = "D")]
    pub jitter: Option<String>,
    /// Packets lost, each direction (e.g. 1%)
    #[arg(long, value_name = "P%")]
    pub loss: Option<String>,
    /// Bandwidth on the wire (e.g. 50mbit)
    #[arg(long, value_name = "R")]
    pub rate: Option<String>,
}

impl LinkAction {
    fn change(&self) -> LinkChange {
        match self {
            LinkAction::Down => LinkChange::Down,
            LinkAction::Up => LinkChange::Up,
            LinkAction::Clear => LinkChange::Clear,
            LinkAction::Shape(a) => LinkChange::Shape(LinkConf {
                delay: a.delay.clone(),
                jitter: a.jitter.clone(),
                loss: a.loss.clone(),
                rate: a.rate.clone(),
            }),
        }
    }

    /// As written on a command line, for events.
    fn describe(&self) -> String {
        match self {
            LinkAction::Down => "down".into(),
            LinkAction::Up => "up".into(),
            LinkAction::Clear => "clear".into(),
            LinkAction::Shape(a) => {
                let mut s = String::from("shape");
                for (k, v) in [
                    ("delay", &a.delay),
                    ("jitter", &a.jitter),
                    ("loss", &a.loss),
                    ("rate", &a.rate),
                ] {
                    if let Some(v) = v {
                        s.push_str(&format!(" --{k} {v}"));
                    }
                }
                s
            }
        }
    }
}

fn dir_of(args: &TestbedArgs) -> Result<(Dir, FileConfig), anyhow::Error> {
    let file = FileConfig::load(args.config.as_deref())?;
    Ok((
        super::state_dir(args.state_dir.as_deref(), &file.testbed),
        file,
    ))
}

/// Run `pairbench testbed ...`; the exit status.
pub fn run(args: &TestbedArgs) -> anyhow::Result<i32> {
    let (dir, file) = dir_of(args)?;
    match &args.command {
        TestbedCommand::Up { hosts, subnet } => {
            let plan = up::plan(&file.testbed, *hosts, subnet.as_deref())?;
            let t = std::time::Instant::now();
            match up::up(&dir, &plan)? {
                up::Outcome::AlreadyUp => {
                    println!(
                        "the testbed is already up ({} hosts on {}): nothing to do",
                        plan.hosts.len(),
                        plan.subnet
                    );
                }
                up::Outcome::Made => {
                    let names: Vec<&str> = plan.hosts.iter().map(|h| h.name.as_str()).collect();
                    println!(
                        "testbed up in {:.2}s: {} on {}; use them with `pairbench run --remote {}`; details: `pairbench testbed status`",
                        t.elapsed().as_secs_f64(),
                        names.join(", "),
                        plan.subnet,
                        names[0]
                    );
                }
            }
            Ok(0)
        }
        TestbedCommand::Down => {
            let t = std::time::Instant::now();
            if up::down(&dir)? {
                println!("testbed down in {:.2}s", t.elapsed().as_secs_f64());
            } else {
                println!(
                    "no testbed is up in {}: nothing to remove",
                    dir.path.display()
                );
            }
            Ok(0)
        }
        TestbedCommand::Status => {
            print!("{}", ops::status(&dir)?);
            Ok(0)
        }
        TestbedCommand::Shell { host, cmd } => Ok(ops::shell(&dir, host, cmd)?),
        TestbedCommand::Link { host, action } => {
            let now = ops::link(&dir, host, &action.change())?;
            println!("{host}: link {now}");
            Ok(0)
        }
        TestbedCommand::Host { host, action } => {
            let now = ops::host(&dir, host, *action)?;
            println!("{host}: {now}");
            Ok(0)
        }
    }
}

/// Names of the script helpers.
pub const HELPERS: [&str; 2] = ["testbed_link", "testbed_host"];

#[derive(Debug, Parser)]
struct LinkHelper {
    host: String,
    #[command(subcommand)]
    action: LinkAction,
}

#[derive(Debug, Parser)]
struct HostHelper {
    host: String,
    #[arg(value_enum)]
    action: HostChange,
}

/// The variable naming the file a helper appends its events to.
pub const EVENTS_ENV: &str = "PAIRBENCH_TESTBED_EVENTS";
/// The variable naming the pair's remote testbed host (the helpers' default HOST).
pub const HOST_ENV: &str = "PAIRBENCH_TESTBED_HOST";

/// Run helper `name` (`testbed_link` or `testbed_host`) with `args`; its exit status.
pub fn helper(name: &str, args: &[String]) -> i32 {
    match helper_inner(name, args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{name}: {e}");
            2
        }
    }
}

fn helper_inner(name: &str, args: &[String]) -> Result<(), String> {
    let actions: &[&str] = if name == "testbed_link" {
        &["down", "up", "shape", "clear"]
    } else {
        &["stop", "start", "pause", "resume"]
    };
    let mut argv = vec![name.to_string()];
    if args.first().is_some_and(|a| actions.contains(&a.as_str())) {
        let host = std::env::var(HOST_ENV).map_err(|_| {
            format!(
                "no HOST given and {HOST_ENV} is not set: name the host, e.g. `{name} server1 ...`"
            )
        })?;
        argv.push(host);
    }
    argv.extend(args.iter().cloned());
    let file = FileConfig::load(None).map_err(|e| e.to_string())?;
    let dir = super::state_dir(None, &file.testbed);
    let (host, what, now) = if name == "testbed_link" {
        let a = LinkHelper::try_parse_from(&argv).map_err(|e| one_line(&e.to_string()))?;
        let now = ops::link(&dir, &a.host, &a.action.change()).map_err(|e| e.to_string())?;
        (a.host, format!("link {}", a.action.describe()), now)
    } else {
        let a = HostHelper::try_parse_from(&argv).map_err(|e| one_line(&e.to_string()))?;
        let now = ops::host(&dir, &a.host, a.action).map_err(|e| e.to_string())?;
        (a.host, format!("host {}", a.action), now)
    };
    eprintln!("{name}: {host}: {what} -> {now}");
    if let Ok(path) = std::env::var(EVENTS_ENV) {
        record_event(&PathBuf::from(path), &host, &what, &now)
            .map_err(|e| format!("the change was made, but cannot record it: {e}"))?;
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.trim().replace('\n', " ")
}

/// Columns of an events file (the helper's, and the pair's `events.csv` after them).
pub const EVENT_COLUMNS: &str = "time,host,change,now";

fn record_event(
    path: &std::path::Path,
    host: &str,
    what: &str,
    now: &str,
) -> Result<(), TestbedError> {
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TestbedError::io(path, "open", e))?;
    let time = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    if new {
        let _ = w.write_record(EVENT_COLUMNS.split(','));
    }
    w.write_record([time.as_str(), host, what, now])
        .map_err(|e| TestbedError::Failed(e.to_string()))?;
    let bytes = w
        .into_inner()
        .map_err(|e| TestbedError::Failed(e.to_string()))?;
    f.write_all(&bytes)
        .map_err(|e| TestbedError::io(path, "write", e))
}
