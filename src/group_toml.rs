//! `groups/<g>/group.toml`: what differs per group — `timeout`, `hook_timeout`,
//! `kill_grace`, `stop_signal`, `[env]`, `[metrics]` directions and `[check]` (what a
//! regression run compares, [`CheckRules`]) — merged with the run's options: the command
//! line wins over group.toml, which wins over pairbench.toml. Read for every selected
//! group before anything runs; unknown keys and bad values (a malformed regex or glob
//! included) are errors that name the file and the key. A mirage-bench groups folder
//! stays valid: group.toml is a helper file beside `local/` and `remote/`. See
//! docs/containment.md and docs/regression.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::config::{self, ConfigError, Direction, RunOptions, Source};
use crate::contain::{Stop, StopSignal};

/// The file's name in a group folder.
pub const FILE: &str = "group.toml";

const KEYS: &str =
    "timeout, hook_timeout, kill_grace, stop_signal, cpu_per, [env], [metrics], [check]";

/// What `[check] files` is when not given: the side's stdout and everything under `out/`.
pub const DEFAULT_CHECK_FILES: [&str; 2] = ["stdout", "out/**"];

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
    /// Which way each metric is better: group.toml's `[metrics]` over pairbench.toml's.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, Direction>,
    /// What a regression run compares (`[check]`, or the defaults).
    #[serde(skip)]
    pub check: CheckRules,
    /// `cpu_per`: metrics (a count a side reports, e.g. `requests`) that each side's CPU
    /// is divided by, into `cpu_us_per_<name>` (docs/resources.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpu_per: Vec<String>,
    pub sources: Sources,
}

/// `[check]` of a group.toml, compiled (docs/regression.md): the files compared per
/// side, the group's normalisation rules in order, and the metric gates.
#[derive(Debug, Clone)]
pub struct CheckRules {
    /// The globs of `files` (relative to a side's folder).
    pub file_set: globset::GlobSet,
    pub normalize: Vec<Normalize>,
    pub gates: Vec<(String, Gate)>,
    /// The group.toml has a `[check]` table (so the group is checked even before it has
    /// an `expected/` folder).
    pub given: bool,
}

/// One `[[check.normalize]]` rule: every match of `regex` is replaced by `replace`
/// (`$1`, `${name}` name its groups).
#[derive(Debug, Clone)]
pub struct Normalize {
    pub regex: regex::Regex,
    pub replace: String,
}

/// A `[check.metrics]` gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    /// `"5%"`: no worse than the blessed value by more than this percentage, in the
    /// metric's direction.
    Worse(f64),
    /// `{ min = …, max = … }`: within these bounds (either may be left out).
    Bounds { min: Option<f64>, max: Option<f64> },
}

impl Default for CheckRules {
    fn default() -> CheckRules {
        let files: Vec<String> = DEFAULT_CHECK_FILES.iter().map(|s| s.to_string()).collect();
        CheckRules {
            file_set: glob_set(&files).unwrap_or_else(|_| globset::GlobSet::empty()),
            normalize: Vec::new(),
            gates: Vec::new(),
            given: false,
        }
    }
}

/// The globs of `[check] files`, `*` not crossing a `/`.
fn glob_set(globs: &[String]) -> Result<globset::GlobSet, (String, globset::Error)> {
    let mut b = globset::GlobSetBuilder::new();
    for g in globs {
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| (g.clone(), e))?;
        b.add(glob);
    }
    b.build().map_err(|e| (globs.join(", "), e))
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
            metrics: opts.metrics.clone(),
            check: CheckRules::default(),
            cpu_per: Vec::new(),
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
        GroupSettings::of_run(opts).read_over(group_dir, &opts.given)
    }

    /// The settings of a group for a command that runs nothing (`bless`, `check`,
    /// `review`): its `[check]` and `[metrics]` (over pairbench.toml's `directions`)
    /// matter; the whole file is checked all the same.
    pub fn load_for_check(
        group_dir: &Path,
        directions: &BTreeMap<String, Direction>,
    ) -> Result<GroupSettings, GroupTomlError> {
        let zero = Duration::ZERO;
        let base = GroupSettings {
            timeout: zero,
            hook_timeout: zero,
            kill_grace: zero,
            stop_signal: config::StopSignal::DEFAULT,
            env: Vec::new(),
            metrics: directions.clone(),
            check: CheckRules::default(),
            cpu_per: Vec::new(),
            sources: Sources::default(),
        };
        base.read_over(group_dir, &config::Given::default())
    }

    /// `<group dir>/group.toml` (if there is one) over these settings.
    fn read_over(
        self,
        group_dir: &Path,
        given: &config::Given,
    ) -> Result<GroupSettings, GroupTomlError> {
        let mut s = self;
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
                    message: crate::config::toml_error(&text, &e),
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
                "metrics" => {
                    let t = v.as_table().ok_or_else(|| {
                        bad(
                            key,
                            "must be a table: [metrics] then NAME = \"higher\" or \"lower\" lines",
                        )
                    })?;
                    for (name, dir) in t {
                        let d = match dir.as_str() {
                            Some("higher") => Direction::Higher,
                            Some("lower") => Direction::Lower,
                            _ => {
                                return Err(bad(
                                    &format!("metrics.{name}"),
                                    "must be \"higher\" or \"lower\" (which way the metric is better)",
                                ));
                            }
                        };
                        s.metrics.insert(name.clone(), d);
                    }
                }
                "check" => s.check = check_rules(v, &bad)?,
                "cpu_per" => {
                    let names: Vec<String> = match v {
                        toml::Value::String(n) => vec![n.clone()],
                        toml::Value::Array(a) => a
                            .iter()
                            .map(|n| n.as_str().map(str::to_string))
                            .collect::<Option<_>>()
                            .ok_or_else(|| bad(key, "must be a metric name or a list of them"))?,
                        _ => return Err(bad(key, "must be a metric name or a list of them")),
                    };
                    if let Some(n) = names.iter().find(|n| {
                        n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    }) {
                        return Err(bad(
                            key,
                            &format!("names '{n}': use a metric name of letters, digits and _"),
                        ));
                    }
                    s.cpu_per = names;
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

/// `[check]`: `files`, `[[check.normalize]]`, `[check.metrics]` (docs/regression.md).
fn check_rules(
    v: &toml::Value,
    bad: &dyn Fn(&str, &str) -> GroupTomlError,
) -> Result<CheckRules, GroupTomlError> {
    let t = v
        .as_table()
        .ok_or_else(|| bad("check", "must be a table: [check]"))?;
    let mut rules = CheckRules {
        given: true,
        ..CheckRules::default()
    };
    for (key, v) in t {
        match key.as_str() {
            "files" => {
                let list = v.as_array().ok_or_else(|| {
                    bad(
                        "check.files",
                        "must be a list of globs, e.g. [\"stdout\", \"out/**\"]",
                    )
                })?;
                let mut globs = Vec::new();
                for g in list {
                    let g = g.as_str().ok_or_else(|| {
                        bad(
                            "check.files",
                            "must be a list of strings (globs relative to a side's folder)",
                        )
                    })?;
                    globs.push(g.to_string());
                }
                rules.file_set = glob_set(&globs).map_err(|(g, e)| {
                    bad(
                        "check.files",
                        &format!("has a bad glob '{g}': {}", e.kind()),
                    )
                })?;
            }
            "normalize" => {
                let list = v.as_array().ok_or_else(|| {
                    bad("check.normalize", "must be a list of rules: [[check.normalize]] then regex = \"…\" and replace = \"…\"")
                })?;
                for (i, r) in list.iter().enumerate() {
                    let at = format!("check.normalize[{}]", i + 1);
                    let r = r
                        .as_table()
                        .ok_or_else(|| bad(&at, "must be a table with regex and replace"))?;
                    let mut regex = None;
                    let mut replace = String::new();
                    for (k, val) in r {
                        let text = val
                            .as_str()
                            .ok_or_else(|| bad(&format!("{at}.{k}"), "must be a string"))?;
                        match k.as_str() {
                            "regex" => {
                                regex = Some(regex::Regex::new(text).map_err(|e| {
                                    let why = e.to_string().replace('\n', " ");
                                    bad(
                                        &format!("{at}.regex"),
                                        &format!(
                                            "is not a valid regex ({})",
                                            why.split_whitespace().collect::<Vec<_>>().join(" ")
                                        ),
                                    )
                                })?)
                            }
                            "replace" => replace = text.to_string(),
                            _ => {
                                return Err(bad(
                                    &format!("{at}.{k}"),
                                    "is not a key of a rule (regex, replace)",
                                ));
                            }
                        }
                    }
                    let regex = regex.ok_or_else(|| bad(&at, "has no regex"))?;
                    rules.normalize.push(Normalize { regex, replace });
                }
            }
            "metrics" => {
                let gates = v.as_table().ok_or_else(|| {
                    bad("check.metrics", "must be a table: [check.metrics] then NAME = \"5%\" or NAME = { min = …, max = … }")
                })?;
                for (name, g) in gates {
                    let at = format!("check.metrics.{name}");
                    rules.gates.push((name.clone(), gate(&at, g, bad)?));
                }
            }
            _ => {
                return Err(bad(
                    &format!("check.{key}"),
                    "is not a key of [check] (files, normalize, metrics)",
                ));
            }
        }
    }
    Ok(rules)
}

/// One gate: `"5%"` or `{ min = …, max = … }`.
fn gate(
    at: &str,
    v: &toml::Value,
    bad: &dyn Fn(&str, &str) -> GroupTomlError,
) -> Result<Gate, GroupTomlError> {
    let how = "must be a percentage like \"5%\" (no worse than the blessed value by more) or a table { min = …, max = … }";
    if let Some(text) = v.as_str() {
        let pct = text
            .trim()
            .strip_suffix('%')
            .map(str::trim)
            .and_then(|n| n.parse::<f64>().ok());
        return match pct {
            Some(p) if p.is_finite() && p >= 0.0 => Ok(Gate::Worse(p)),
            _ => Err(bad(at, how)),
        };
    }
    let t = v.as_table().ok_or_else(|| bad(at, how))?;
    let number = |k: &str, v: &toml::Value| -> Result<f64, GroupTomlError> {
        v.as_float()
            .or_else(|| v.as_integer().map(|i| i as f64))
            .filter(|f| f.is_finite())
            .ok_or_else(|| bad(&format!("{at}.{k}"), "must be a number"))
    };
    let (mut min, mut max) = (None, None);
    for (k, val) in t {
        match k.as_str() {
            "min" => min = Some(number(k, val)?),
            "max" => max = Some(number(k, val)?),
            _ => return Err(bad(&format!("{at}.{k}"), "is not a bound (min, max)")),
        }
    }
    if min.is_none() && max.is_none() {
        return Err(bad(at, "needs min, max or both"));
    }
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        return Err(bad(at, "has min above max"));
    }
    Ok(Gate::Bounds { min, max })
}
