//! Typed run options: `pairbench.toml` merged with command-line flags (the command line
//! wins), validated once so the rest of the program never sees a bad value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A configuration or flag value that cannot be used; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file '{path}': {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file '{path}' is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("bad duration '{value}' for {what}: write it like 500ms, 30s or 10m")]
    Duration { what: String, value: String },
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
    pub connect_timeout: Option<String>,
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
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path,
            message: e.message().to_string(),
        })
    }
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
    pub env: Vec<(String, String)>,
    pub verbose: bool,
    pub progress: ProgressMode,
    pub jobs: usize,
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
    /// Randomise the order of runs (seeded).
    pub shuffle: bool,
    pub seed: Option<u64>,
    /// One pair run by hand: a shell in its local folder instead of its local test.
    pub interactive: Option<String>,
    /// The testbed's state folder: its helpers and `--remote HOST` use that testbed.
    pub testbed_dir: PathBuf,
}

/// Durations in run.json, written the way users write them.
mod humantime_serde_compat {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
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
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(err());
    }
    humantime::parse_duration(v).map_err(|_| err())
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
