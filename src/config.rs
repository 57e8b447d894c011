//! Typed run options: `pairbench.toml` merged with command-line flags (the command line
//! wins), validated once so the rest of the program never sees a bad value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use nix::sys::signal::Signal;

/// A configuration or flag value that cannot be used; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file '{path}': {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("config file '{path}' is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("bad duration '{value}' for {what}: write it like 500ms, 30s or 10m")]
    Duration { what: String, value: String },
    #[error("bad duration '{value}' for {what}: the longest pairbench accepts is 365d")]
    TooLong { what: String, value: String },
    #[error("bad {what} 0: {instead}")]
    Zero { what: String, instead: String },
    #[error("bad --env '{0}': write it as KEY=VALUE, KEY made of letters, digits and _")]
    Env(String),
    #[error(
        "bad tag '{0}': a tag is a plain folder name (no '/', not '.', '..' or 'latest', not starting with '.')"
    )]
    Tag(String),
    #[error("bad --shard '{0}': write it as K/N with 1 <= K <= N, e.g. 2/4")]
    Shard(String),
    #[error("bad --filter '{glob}': {message}")]
    Filter { glob: String, message: String },
    #[error("{0}")]
    Other(String),
}

/// One `[[remote]]` entry of pairbench.toml.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteDef {
    pub name: String,
    pub host: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<String>,
    pub workdir: Option<String>,
    pub slots: Option<usize>,
    /// A pairbench executable built for the remote host, when its OS or CPU differs.
    pub agent: Option<String>,
    /// The known_hosts file to check its host key against [default: ~/.ssh/known_hosts].
    pub known_hosts: Option<String>,
}

/// A link's shape as written in pairbench.toml (`link = { delay = "10ms", ... }`) or given
/// to `pairbench testbed link HOST shape`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinkConf {
    pub delay: Option<String>,
    pub jitter: Option<String>,
    pub loss: Option<String>,
    pub rate: Option<String>,
}

/// One `[[testbed.host]]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TestbedHostConf {
    pub name: String,
    pub slots: Option<usize>,
    #[serde(default)]
    pub link: LinkConf,
}

/// `[testbed]` of pairbench.toml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TestbedConf {
    /// Addresses of the testbed: a range no network of this machine uses.
    pub subnet: Option<String>,
    /// Where the testbed keeps what it made [default: /run/pairbench/testbed].
    pub state_dir: Option<PathBuf>,
    #[serde(default, rename = "host")]
    pub hosts: Vec<TestbedHostConf>,
}

/// pairbench.toml as written by the user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub groups_dir: Option<PathBuf>,
    pub results_dir: Option<PathBuf>,
    pub timeout: Option<String>,
    pub hook_timeout: Option<String>,
    pub wait_timeout: Option<String>,
    pub kill_grace: Option<String>,
    /// The first signal of the grace sequence (`HUP`, `TERM`, ...).
    pub stop_signal: Option<String>,
    pub connect_timeout: Option<String>,
    /// `"FIRST-LAST"`: the TCP ports runs are given as `PAIRBENCH_PORT`.
    pub ports: Option<String>,
    pub jobs: Option<usize>,
    pub retries: Option<u32>,
    pub repeat: Option<u32>,
    pub warmup: Option<u32>,
    /// `NAME = ["a", "b"]`: parameters, as with `--param NAME=a,b`.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// `NAME = "higher"` or `"lower"`: which way a metric is better (`compare`).
    #[serde(default)]
    pub metrics: BTreeMap<String, Direction>,
    #[serde(default)]
    pub remotes: Vec<String>,
    /// `["hosts.ini", "lab.yml:web"]`: Ansible inventories, as with `--inventory`.
    #[serde(default)]
    pub inventory: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub remote: Vec<RemoteDef>,
    #[serde(default)]
    pub testbed: TestbedConf,
}

impl FileConfig {
    /// Load `path`; a missing default file is an empty config, a missing named one an error.
    pub fn load(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("pairbench.toml"), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileConfig::default());
            }
            Err(err) => return Err(ConfigError::Read { path, err }),
        };
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path,
            message: toml_error(&text, &e),
        })
    }
}

/// `FIRST-LAST` (`--ports`, `ports` of pairbench.toml): a range of TCP ports, 1024 or
/// above.
pub fn parse_ports(what: &str, v: &str) -> Result<(u16, u16), String> {
    let bad = |why: &str| format!("bad {what} '{v}': {why} (write FIRST-LAST, e.g. 20000-20999)");
    let (a, b) = v.split_once('-').ok_or_else(|| bad("not a range"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<u16>()
            .map_err(|_| bad(&format!("'{x}' is not a port")))
    };
    let (a, b) = (num(a)?, num(b)?);
    if a < 1024 {
        return Err(bad("ports below 1024 need root"));
    }
    if a > b {
        return Err(bad("the first port is above the last"));
    }
    Ok((a, b))
}

/// A TOML error as one line that names where it is: `line 3, 'slots' in [[remote]]:
/// invalid type: string "x", expected usize` (the key is read from the line the error's
/// span points at, the table from the header above it).
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else { return msg };
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or(l).trim().to_string());
    let mut at = format!("line {line_no}");
    if let Some(k) = key {
        at.push_str(&format!(", '{k}'"));
        if let Some(t) = table {
            at.push_str(&format!(" in {t}"));
        }
    }
    format!("{at}: {msg}")
}

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Lower,
    Higher,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ProgressMode {
    #[default]
    Auto,
    Always,
    Never,
}

/// A tracer a side's script runs under (`--trace`; docs/resources.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tool", rename_all = "kebab-case")]
pub enum Trace {
    /// `strace -f -ff` (one file per process), with extra arguments.
    Strace { args: Vec<String> },
    /// `perf stat`: its counters become metrics.
    PerfStat,
    /// `perf record`, with extra arguments; a text report beside `perf.data`.
    PerfRecord { args: Vec<String> },
}

impl Trace {
    /// Parse `strace[:ARGS]`, `perf-stat` or `perf-record[:ARGS]` (ARGS split like a
    /// shell would, never run by one).
    pub fn parse(s: &str) -> Result<Trace, String> {
        let (tool, args) = match s.split_once(':') {
            Some((t, a)) => (t, Some(a)),
            None => (s, None),
        };
        let split = |a: Option<&str>| -> Result<Vec<String>, String> {
            match a {
                None => Ok(Vec::new()),
                Some(a) => shlex::split(a).ok_or_else(|| {
                    format!("bad --trace '{s}': unbalanced quotes in its arguments")
                }),
            }
        };
        match tool.trim() {
            "strace" => Ok(Trace::Strace { args: split(args)? }),
            "perf-stat" if args.is_none() => Ok(Trace::PerfStat),
            "perf-record" => Ok(Trace::PerfRecord { args: split(args)? }),
            _ => Err(format!(
                "bad --trace '{s}': use strace[:ARGS], perf-stat or perf-record[:ARGS]"
            )),
        }
    }

    /// The program that traces, and the Debian package that has it.
    pub fn tool(&self) -> (&'static str, &'static str) {
        match self {
            Trace::Strace { .. } => ("strace", "strace"),
            Trace::PerfStat | Trace::PerfRecord { .. } => ("perf", "linux-perf"),
        }
    }
}

/// Which sides `--trace` traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TraceSide {
    Local,
    Remote,
    #[default]
    Both,
}

impl TraceSide {
    /// Is side `side` (`local` or `remote`) traced?
    pub fn covers(self, side: &str) -> bool {
        match self {
            TraceSide::Both => true,
            TraceSide::Local => side == "local",
            TraceSide::Remote => side == "remote",
        }
    }
}

/// Serialise an optional duration as humantime text.
mod humantime_serde_compat_opt {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}

/// Everything `pairbench run` needs, validated.
#[derive(Debug, Clone, Serialize)]
pub struct RunOptions {
    pub groups_dir: PathBuf,
    pub results_dir: PathBuf,
    pub tag: Option<String>,
    pub groups: Vec<String>,
    pub remotes: Vec<String>,
    pub remote_defs: Vec<RemoteDef>,
    pub filters: Vec<String>,
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub hook_timeout: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub wait_timeout: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub kill_grace: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub connect_timeout: Duration,
    /// The first signal that ends a remote test (and what a side left running).
    pub stop_signal: StopSignal,
    pub env: Vec<(String, String)>,
    pub verbose: bool,
    pub progress: ProgressMode,
    pub jobs: usize,
    /// The TCP ports runs are given as `PAIRBENCH_PORT` (first, last); `None`: a range
    /// picked at random in 20000–29999.
    pub ports: Option<(u16, u16)>,
    pub recheck: bool,
    pub always_run: bool,
    pub resume: bool,
    pub dry_run: bool,
    pub shard: Option<(u64, u64)>,
    pub retries: u32,
    pub keep_remote: bool,
    pub accept_new_host_keys: bool,
    /// Measured runs of each pair (and parameter set).
    pub repeat: u32,
    /// Warm-up runs before them, kept apart and left out of statistics.
    pub warmup: u32,
    /// Parameters: each pair runs once per combination of values.
    pub params: Vec<(String, Vec<String>)>,
    /// `--repeat`, `--warmup` or `--param` was given (on the command line or in the
    /// file); otherwise `--resume` reuses the tag's run plan.
    pub plan_given: bool,
    /// Randomise the order of runs (seeded).
    pub shuffle: bool,
    pub seed: Option<u64>,
    /// One pair run by hand: a shell in its local folder instead of its local test.
    pub interactive: Option<String>,
    /// The testbed's state folder: its helpers and `--remote HOST` use that testbed.
    pub testbed_dir: PathBuf,
    /// Which way each metric is better (`[metrics]` of pairbench.toml): the regression
    /// check's gates use it.
    pub metrics: BTreeMap<String, Direction>,
    /// `--trace`: the tracer the scripts run under (docs/resources.md).
    pub trace: Option<Trace>,
    /// `--trace-side`: which sides are traced.
    pub trace_side: TraceSide,
    /// `--sample D`: both hosts sampled this often while a pair runs.
    #[serde(with = "humantime_serde_compat_opt")]
    pub sample: Option<Duration>,
    /// Where the values a group.toml may override came from.
    #[serde(skip)]
    pub given: Given,
}

/// Where a setting came from (the command line wins over group.toml, which wins over
/// pairbench.toml, which wins over the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Default,
    Config,
    GroupToml,
    CommandLine,
}

impl Source {
    /// From a flag and a config-file value.
    pub fn of<T>(flag: &Option<T>, file: &Option<T>) -> Source {
        if flag.is_some() {
            Source::CommandLine
        } else if file.is_some() {
            Source::Config
        } else {
            Source::Default
        }
    }
}

/// The sources of the settings a group.toml can override.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub timeout: Source,
    pub hook_timeout: Source,
    pub kill_grace: Source,
    pub stop_signal: Source,
    /// Keys set with `--env` (a group's `[env]` does not override them).
    pub cli_env: Vec<String>,
}

/// Durations in run.json, written the way users write them.
mod humantime_serde_compat {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// The longest duration pairbench accepts anywhere (a year): far beyond any test, and
/// far from the overflow of a clock reading.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The first signal of the grace sequence, as the user named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSignal(pub Signal);

impl StopSignal {
    pub const DEFAULT: StopSignal = StopSignal(Signal::SIGHUP);

    /// `HUP`, `SIGTERM`, `int`, ...
    pub fn parse(name: &str) -> Result<StopSignal, String> {
        let up = name.trim().to_ascii_uppercase();
        let bare = up.strip_prefix("SIG").unwrap_or(&up);
        let sig = match bare {
            "HUP" => Signal::SIGHUP,
            "TERM" => Signal::SIGTERM,
            "INT" => Signal::SIGINT,
            "QUIT" => Signal::SIGQUIT,
            "KILL" => Signal::SIGKILL,
            "USR1" => Signal::SIGUSR1,
            "USR2" => Signal::SIGUSR2,
            _ => {
                return Err(format!(
                    "bad stop signal '{name}': use HUP, TERM, INT, QUIT, KILL, USR1 or USR2"
                ));
            }
        };
        Ok(StopSignal(sig))
    }

    pub fn name(self) -> &'static str {
        self.0.as_str()
    }
}

impl Serialize for StopSignal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Parse `500ms`, `30s`, `10m`, `1h 30m`; a bare number is seconds.
pub fn parse_duration(what: &str, value: &str) -> Result<Duration, ConfigError> {
    let v = value.trim();
    let err = || ConfigError::Duration {
        what: what.to_string(),
        value: value.to_string(),
    };
    if v.is_empty() {
        return Err(err());
    }
    let too_long = || ConfigError::TooLong {
        what: what.to_string(),
        value: value.to_string(),
    };
    let d = if let Ok(secs) = v.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return Err(err());
        }
        Duration::try_from_secs_f64(secs).map_err(|_| too_long())?
    } else {
        humantime::parse_duration(v).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => too_long(),
            _ => err(),
        })?
    };
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

/// A time limit that must not be zero: `instead` says what to write.
pub fn nonzero(what: &str, d: Duration, instead: &str) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::Zero {
            what: what.to_string(),
            instead: instead.to_string(),
        });
    }
    Ok(d)
}

/// What to write instead of a zero `--timeout`.
pub const NO_ZERO_TIMEOUT: &str =
    "a test needs time to run; for no practical limit give a long one, e.g. 365d (the longest)";

/// Parse a stop signal (`HUP`, `SIGTERM`, ...) for `what`.
pub fn parse_stop_signal(what: &str, value: &str) -> Result<StopSignal, ConfigError> {
    StopSignal::parse(value).map_err(|e| ConfigError::Other(format!("{what}: {e}")))
}

/// Parse `KEY=VALUE`.
pub fn parse_env(s: &str) -> Result<(String, String), ConfigError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| ConfigError::Env(s.into()))?;
    valid_env_key(k)
        .then(|| (k.to_string(), v.to_string()))
        .ok_or_else(|| ConfigError::Env(s.into()))
}

fn valid_env_key(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A tag must be a plain folder name inside the results folder.
pub fn validate_tag(tag: &str) -> Result<(), ConfigError> {
    let bad = tag.is_empty()
        || tag == "latest"
        || tag.starts_with('.')
        || tag.contains('/')
        || tag.contains('\0')
        || tag.len() > 200;
    if bad {
        Err(ConfigError::Tag(tag.into()))
    } else {
        Ok(())
    }
}

/// Parse `NAME=a,b,c`.
pub fn parse_param(s: &str) -> Result<(String, Vec<String>), ConfigError> {
    let err = || {
        ConfigError::Other(format!(
            "bad --param '{s}': write it as NAME=a,b,c (NAME made of letters, digits and _, at least one value)"
        ))
    };
    let (name, values) = s.split_once('=').ok_or_else(err)?;
    let values: Vec<String> = values
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    if !valid_env_key(name) || values.is_empty() {
        return Err(err());
    }
    Ok((name.to_string(), values))
}

/// Parse `K/N`.
pub fn parse_shard(s: &str) -> Result<(u64, u64), ConfigError> {
    let err = || ConfigError::Shard(s.into());
    let (k, n) = s.split_once('/').ok_or_else(err)?;
    let k: u64 = k.trim().parse().map_err(|_| err())?;
    let n: u64 = n.trim().parse().map_err(|_| err())?;
    if k == 0 || n == 0 || k > n {
        return Err(err());
    }
    Ok((k, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("t", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("t", "10m").unwrap(),
            Duration::from_secs(600)
        );
        assert_eq!(parse_duration("t", "2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("t", "soon").is_err());
        assert!(parse_duration("t", "-1").is_err());
        for huge in [
            "9223372036854775808s",
            "1e30",
            "18446744073709551615s",
            "366d",
        ] {
            let e = parse_duration("--timeout", huge).unwrap_err().to_string();
            assert!(e.contains("365d"), "{huge}: {e}");
        }
        assert_eq!(
            parse_duration("t", "365d").unwrap(),
            Duration::from_secs(365 * 86400)
        );
        assert!(nonzero("--timeout", Duration::ZERO, NO_ZERO_TIMEOUT).is_err());
    }

    #[test]
    fn env_pairs() {
        assert_eq!(
            parse_env("A_1=x=y").unwrap(),
            ("A_1".to_string(), "x=y".to_string())
        );
        assert!(parse_env("noequals").is_err());
        assert!(parse_env("1A=x").is_err());
        assert!(parse_env("A-B=x").is_err());
    }

    #[test]
    fn params() {
        assert_eq!(
            parse_param("SIZE=1k, 4k,").unwrap(),
            ("SIZE".to_string(), vec!["1k".to_string(), "4k".to_string()])
        );
        assert!(parse_param("SIZE=").is_err());
        assert!(parse_param("SIZE").is_err());
        assert!(parse_param("A B=1").is_err());
    }

    #[test]
    fn tags_and_shards() {
        assert!(validate_tag("nightly-1").is_ok());
        for t in ["", "..", ".x", "a/b", "latest"] {
            assert!(validate_tag(t).is_err(), "{t}");
        }
        assert_eq!(parse_shard("2/4").unwrap(), (2, 4));
        assert!(parse_shard("0/4").is_err());
        assert!(parse_shard("5/4").is_err());
    }
}
