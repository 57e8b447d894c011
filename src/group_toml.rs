//! `groups/<g>/group.toml`: what differs per group — `timeout`, `hook_timeout`,
//! `kill_grace`, `stop_signal`, `[env]` — merged with the run's options: the command
//! line wins over group.toml, which wins over pairbench.toml. Read for every selected
//! group before anything runs; unknown keys and bad values are errors that name the file
//! and the key. A mirage-bench groups folder stays valid: group.toml is a helper file
//! beside `local/` and `remote/`. See docs/containment.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::config::{self, ConfigError, RunOptions, Source};
use crate::contain::{Stop, StopSignal};

/// The file's name in a group folder.
pub const FILE: &str = "group.toml";

const KEYS: &str = "timeout, hook_timeout, kill_grace, stop_signal, [env]";

/// A group.toml that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GroupTomlError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not valid TOML: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: unknown key '{key}' (known keys: {KEYS})", .path.display())]
    Unknown { path: PathBuf, key: String },
    #[error("{}: '{key}' {what}", .path.display())]
    Bad {
        path: PathBuf,
        key: String,
        what: String,
    },
    #[error("{0}")]
    Value(#[from] ConfigError),
}

/// A group's effective settings, and where each came from.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSettings {
    #[serde(serialize_with = "human")]
    pub timeout: Duration,
    #[serde(serialize_with = "human")]
    pub hook_timeout: Duration,
    #[serde(serialize_with = "human")]
    pub kill_grace: Duration,
    pub stop_signal: StopSignal,
    /// The environment every script of the group gets (run-wide, group, command line).
    #[serde(skip)]
    pub env: Vec<(String, String)>,
    pub sources: Sources,
}

/// Where each setting came from.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Sources {
    pub timeout: Source,
    pub hook_timeout: Source,
    pub kill_grace: Source,
    pub stop_signal: Source,
}

fn human<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

impl GroupSettings {
    /// The run's settings, for a group without group.toml.
    pub fn of_run(opts: &RunOptions) -> GroupSettings {
        GroupSettings {
            timeout: opts.timeout,
            hook_timeout: opts.hook_timeout,
            kill_grace: opts.kill_grace,
            stop_signal: opts.stop_signal,
            env: opts.env.clone(),
            sources: Sources {
                timeout: opts.given.timeout,
                hook_timeout: opts.given.hook_timeout,
                kill_grace: opts.given.kill_grace,
                stop_signal: opts.given.stop_signal,
            },
        }
    }

    /// Does any setting come from the group's group.toml?
    pub fn from_group_toml(&self) -> bool {
        let s = &self.sources;
        [s.timeout, s.hook_timeout, s.kill_grace, s.stop_signal].contains(&Source::GroupToml)
    }

    /// How a side of this group is ended.
    pub fn stop(&self) -> Stop {
        Stop {
            grace: self.kill_grace,
            signal: self.stop_signal,
        }
    }

    /// Read `<group dir>/group.toml` (if there is one) over the run's options.
    pub fn load(group_dir: &Path, opts: &RunOptions) -> Result<GroupSettings, GroupTomlError> {
        let mut s = GroupSettings::of_run(opts);
        let path = group_dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(s),
            Err(source) => return Err(GroupTomlError::Read { path, source }),
        };
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| GroupTomlError::Parse {
                    path: path.clone(),
                    message: e.message().to_string(),
                })?;
        let bad = |key: &str, what: &str| GroupTomlError::Bad {
            path: path.clone(),
            key: key.to_string(),
            what: what.to_string(),
        };
        let text_of = |key: &str, v: &toml::Value| -> Result<String, GroupTomlError> {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(key, &format!("must be a string, not {}", v.type_str())))
        };
        let file = path.display().to_string();
        let given = &opts.given;
        for (key, v) in &table {
            let from_cli = |src: Source| src == Source::CommandLine;
            match key.as_str() {
                "timeout" | "hook_timeout" | "kill_grace" => {
                    let what = format!("{key} in {file}");
                    let d = config::parse_duration(&what, &text_of(key, v)?)?;
                    let (slot, src) = match key.as_str() {
                        "timeout" => (&mut s.timeout, &mut s.sources.timeout),
                        "hook_timeout" => (&mut s.hook_timeout, &mut s.sources.hook_timeout),
                        _ => (&mut s.kill_grace, &mut s.sources.kill_grace),
                    };
                    if key != "kill_grace" {
                        config::nonzero(&what, d, config::NO_ZERO_TIMEOUT)?;
                    }
                    if !from_cli(*src) {
                        *slot = d;
                        *src = Source::GroupToml;
                    }
                }
                "stop_signal" => {
                    let sig = StopSignal::parse(&text_of(key, v)?)
                        .map_err(|e| bad(key, &format!("is not a signal pairbench sends: {e}")))?;
                    if !from_cli(given.stop_signal) {
                        s.stop_signal = sig;
                        s.sources.stop_signal = Source::GroupToml;
                    }
                }
                "env" => {
                    let t = v.as_table().ok_or_else(|| {
                        bad(key, "must be a table: [env] then KEY = \"value\" lines")
                    })?;
                    for (k, val) in t {
                        let name = format!("env.{k}");
                        let val = text_of(&name, val)?;
                        config::parse_env(&format!("{k}={val}")).map_err(|_| {
                            bad(&name, "is not a variable name (letters, digits and _)")
                        })?;
                        if given.cli_env.iter().any(|c| c == k) {
                            continue;
                        }
                        s.env.retain(|(ek, _)| ek != k);
                        s.env.push((k.clone(), val));
                    }
                }
                _ => {
                    return Err(GroupTomlError::Unknown {
                        path: path.clone(),
                        key: key.clone(),
                    });
                }
            }
        }
        Ok(s)
    }
}
