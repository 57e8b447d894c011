//! The references of a group (docs/regression.md, "References"): `expected/` in the
//! group's folder, beside `local/` and `remote/`, one folder per pair, and below it one
//! per parameter set of a `--param` run (repetitions share their set's reference):
//!
//! ```text
//! groups/<g>/expected/<pair>[/<NAME=value,…>]/
//!   local/exit_code  local/stdout  local/out/…
//!   remote/exit_code remote/stdout remote/out/…
//!   metrics.toml     the blessed values of the gated metrics ([side] name = value)
//! ```
//!
//! A file ending in `.new` is a pending reference (written by a run that found none);
//! hidden files (`.gitkeep`) are not references. Writes go through no link and are
//! atomic per file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::outputs::{Content, Outputs, PENDING};
use crate::discover::EXPECTED_DIR;
use crate::tree::layout::SIDES;
use crate::tree::nofollow::{self, Kind};

/// The file of the blessed metric values.
pub const METRICS_FILE: &str = "metrics.toml";

/// The parameter part of a run's variant folder (`N=4/rep-2` → `N=4`): repetitions and
/// warm-ups share their parameter set's reference.
pub fn params_rel(variant: &str) -> String {
    variant
        .split('/')
        .filter(|p| p.contains('='))
        .collect::<Vec<_>>()
        .join("/")
}

/// `<pair>[/<params>]`: where a run's reference is below `expected/`.
pub fn rel(pair: &str, variant: &str) -> String {
    let p = params_rel(variant);
    if p.is_empty() {
        pair.to_string()
    } else {
        format!("{pair}/{p}")
    }
}

/// The reference folder of a run of `pair` in the group at `group_dir`.
pub fn dir(group_dir: &Path, pair: &str, variant: &str) -> PathBuf {
    group_dir.join(EXPECTED_DIR).join(rel(pair, variant))
}

/// A reference read back: its files (`<side>/<path>`, text not yet normalised) and the
/// blessed metric values.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub files: BTreeMap<String, Content>,
    /// The sides it has files for (a side without any is not compared).
    pub sides: BTreeSet<String>,
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Why a reference cannot be used or written.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error("cannot read {}: {err}", path.display())]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{} is not valid TOML of `[side] name = value` lines: {message}", path.display())]
    Metrics { path: PathBuf, message: String },
    #[error("cannot write {}: {err}", path.display())]
    Write { path: PathBuf, err: std::io::Error },
}

fn hidden_or_pending(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(PENDING)
}

/// The files below `dir` (relative, `/`-separated), pending ones or the others, never
/// through a link.
fn files_below(dir: &Path, pending: bool) -> Vec<String> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir)
        .min_depth(1)
        .max_depth(64)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .flatten()
    {
        if !e.file_type().is_file() {
            continue;
        }
        let name = e.file_name().to_string_lossy();
        if name.ends_with(PENDING) != pending {
            continue;
        }
        if let Ok(rel) = e.path().strip_prefix(dir) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    out
}

/// Read the reference in `dir`; `None` when there is none (no folder, or only pending
/// files in it).
pub fn read(dir: &Path) -> Result<Option<Reference>, RefError> {
    if nofollow::kind(dir) != Kind::Dir {
        return Ok(None);
    }
    let mut r = Reference::default();
    for side in SIDES {
        let sd = dir.join(side);
        if nofollow::kind(&sd) != Kind::Dir {
            continue;
        }
        let files = files_below(&sd, false);
        if !files.is_empty() {
            r.sides.insert(side.to_string());
        }
        for rel in files {
            let path = Path::new(side).join(&rel);
            let c = Content::read(dir, &path).map_err(|err| RefError::Read {
                path: dir.join(&path),
                err,
            })?;
            r.files.insert(format!("{side}/{rel}"), c);
        }
    }
    let mpath = dir.join(METRICS_FILE);
    let has_metrics = nofollow::kind(&mpath) == Kind::File;
    if has_metrics {
        let bytes =
            nofollow::read_beneath(dir, Path::new(METRICS_FILE)).map_err(|err| RefError::Read {
                path: mpath.clone(),
                err,
            })?;
        r.metrics = parse_metrics(&String::from_utf8_lossy(&bytes)).map_err(|message| {
            RefError::Metrics {
                path: mpath.clone(),
                message,
            }
        })?;
    }
    if r.sides.is_empty() && !has_metrics {
        return Ok(None);
    }
    Ok(Some(r))
}

fn parse_metrics(text: &str) -> Result<BTreeMap<String, BTreeMap<String, f64>>, String> {
    let t: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| e.message().to_string())?;
    let mut out = BTreeMap::new();
    for (side, v) in t {
        let Some(values) = v.as_table() else {
            return Err(format!("'{side}' is not a table"));
        };
        let mut m = BTreeMap::new();
        for (name, v) in values {
            let n = v
                .as_float()
                .or_else(|| v.as_integer().map(|i| i as f64))
                .ok_or_else(|| format!("'{side}.{name}' is not a number"))?;
            m.insert(name.clone(), n);
        }
        out.insert(side, m);
    }
    Ok(out)
}

fn metrics_text(metrics: &BTreeMap<String, BTreeMap<String, f64>>) -> String {
    let mut s = String::from(
        "# The blessed values of the metrics group.toml's [check.metrics] gates (pairbench bless).\n",
    );
    for (side, values) in metrics {
        s.push_str(&format!("\n[{side}]\n"));
        for (name, v) in values {
            let key = toml::Value::String(name.clone()).to_string();
            let bare = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            s.push_str(&format!(
                "{} = {}\n",
                if bare { name.clone() } else { key },
                toml::Value::Float(*v)
            ));
        }
    }
    s
}

/// Write `bytes` at `rel` below `root` (folders made, none of them a link), atomically.
fn put(root: &Path, rel: &Path, bytes: &[u8]) -> Result<(), RefError> {
    let path = root.join(rel);
    let err = |err| RefError::Write {
        path: path.clone(),
        err,
    };
    if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        nofollow::create_dirs_beneath(root, parent).map_err(err)?;
    }
    nofollow::write_atomic(&path, bytes).map_err(err)
}

fn remove(path: &Path) -> Result<(), RefError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(RefError::Write {
            path: path.to_path_buf(),
            err,
        }),
    }
}

/// Remove the folders left empty below `dir` (and `dir` itself if it is empty).
fn remove_empty_dirs(dir: &Path) {
    let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .contents_first(true)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_dir())
        .map(|e| e.path().to_path_buf())
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let _ = std::fs::remove_dir(&d);
    }
}

/// One pending write at a time in this process (repetitions of a run share a reference).
static WRITING: Mutex<()> = Mutex::new(());

/// Put `files` (`<side>/<path>` → bytes) and `metrics` in place as the reference in
/// `dir` (below `group_dir`): files that are the same stay untouched, reference files
/// not among them and pending files are removed. Returns the files that changed.
pub fn replace(
    group_dir: &Path,
    dir: &Path,
    files: &BTreeMap<String, Vec<u8>>,
    metrics: &BTreeMap<String, BTreeMap<String, f64>>,
) -> Result<Vec<String>, RefError> {
    let _one = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let rel = dir.strip_prefix(group_dir).unwrap_or(dir);
    let mut changed = Vec::new();
    for (key, bytes) in files {
        let on_disk = nofollow::read_beneath(dir, Path::new(key)).ok();
        if on_disk.as_deref() != Some(bytes.as_slice()) {
            put(group_dir, &rel.join(key), bytes)?;
            changed.push(key.clone());
        }
    }
    for side in SIDES {
        let sd = dir.join(side);
        if nofollow::kind(&sd) != Kind::Dir {
            continue;
        }
        for f in files_below(&sd, false) {
            let key = format!("{side}/{f}");
            if !files.contains_key(&key) {
                remove(&sd.join(&f))?;
                changed.push(key);
            }
        }
    }
    let mpath = dir.join(METRICS_FILE);
    if metrics.is_empty() {
        if nofollow::kind(&mpath) == Kind::File {
            remove(&mpath)?;
            changed.push(METRICS_FILE.into());
        }
    } else {
        let text = metrics_text(metrics);
        if nofollow::read_beneath(dir, Path::new(METRICS_FILE))
            .ok()
            .as_deref()
            != Some(text.as_bytes())
        {
            put(group_dir, &rel.join(METRICS_FILE), text.as_bytes())?;
            changed.push(METRICS_FILE.into());
        }
    }
    remove_pending_locked(dir)?;
    remove_empty_dirs(dir);
    Ok(changed)
}

/// Write a run's output as the pending reference of `dir` (`<file>.new`), in place of
/// any earlier pending one.
pub fn write_pending(group_dir: &Path, dir: &Path, outputs: &Outputs) -> Result<(), RefError> {
    let _one = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    remove_pending_locked(dir)?;
    let rel = dir.strip_prefix(group_dir).unwrap_or(dir);
    for (key, c) in &outputs.files {
        let to = rel.join(format!("{key}{PENDING}"));
        let bytes = c.bytes().map_err(|err| RefError::Read {
            path: to.clone(),
            err,
        })?;
        put(group_dir, &to, &bytes)?;
    }
    if !outputs.metrics.is_empty() {
        put(
            group_dir,
            &rel.join(format!("{METRICS_FILE}{PENDING}")),
            metrics_text(&outputs.metrics).as_bytes(),
        )?;
    }
    Ok(())
}

/// The pending files of `dir` (relative to it).
pub fn pending(dir: &Path) -> Vec<String> {
    if nofollow::kind(dir) != Kind::Dir {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    if nofollow::kind(&dir.join(format!("{METRICS_FILE}{PENDING}"))) == Kind::File {
        out.push(format!("{METRICS_FILE}{PENDING}"));
    }
    for side in SIDES {
        let sd = dir.join(side);
        if nofollow::kind(&sd) == Kind::Dir {
            out.extend(
                files_below(&sd, true)
                    .into_iter()
                    .map(|f| format!("{side}/{f}")),
            );
        }
    }
    out
}

/// Remove the pending files of `dir`; how many there were.
pub fn remove_pending(dir: &Path) -> Result<usize, RefError> {
    let _one = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let n = remove_pending_locked(dir)?;
    if nofollow::kind(dir) == Kind::Dir {
        remove_empty_dirs(dir);
    }
    Ok(n)
}

fn remove_pending_locked(dir: &Path) -> Result<usize, RefError> {
    let found = pending(dir);
    for f in &found {
        remove(&dir.join(f))?;
    }
    Ok(found.len())
}

/// What is in a group's `expected/` that no pair of the group can use: folders named for
/// no pair of `pairs` (every local × remote test name, disabled ones included), and
/// files that are not a pair's folder. (name, why) each.
pub fn strays(group_dir: &Path, pairs: &BTreeSet<String>) -> Vec<(String, &'static str)> {
    let exp = group_dir.join(EXPECTED_DIR);
    let Ok(rd) = std::fs::read_dir(&exp) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if hidden_or_pending(&name) {
            continue;
        }
        match nofollow::kind(&e.path()) {
            Kind::Dir if pairs.contains(&name) => {}
            Kind::Dir => out.push((name, "no pair of the group has this name")),
            _ => out.push((name, "is not a pair's folder")),
        }
    }
    out.sort();
    out
}

/// Remove the reference folder of a pair that no longer exists.
pub fn prune(group_dir: &Path, name: &str) -> Result<(), RefError> {
    let path = group_dir.join(EXPECTED_DIR).join(name);
    let r = match nofollow::kind(&path) {
        Kind::Dir => std::fs::remove_dir_all(&path),
        Kind::Missing => Ok(()),
        _ => std::fs::remove_file(&path),
    };
    r.map_err(|err| RefError::Write { path, err })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_share_their_parameter_set() {
        assert_eq!(params_rel("N=4/rep-2"), "N=4");
        assert_eq!(params_rel("rep-3"), "");
        assert_eq!(params_rel("A=1,B=x%2Fy/warmup-1"), "A=1,B=x%2Fy");
        assert_eq!(rel("a_x_b", "N=4/rep-2"), "a_x_b/N=4");
        assert_eq!(rel("a_x_b", ""), "a_x_b");
    }

    #[test]
    fn metrics_round_trip() {
        let mut m = BTreeMap::new();
        m.insert(
            "remote".to_string(),
            BTreeMap::from([("rps".to_string(), 1019.5), ("odd name".to_string(), 2.0)]),
        );
        let text = metrics_text(&m);
        assert_eq!(parse_metrics(&text).unwrap(), m, "{text}");
        assert!(parse_metrics("[remote]\nrps = 12\n").unwrap()["remote"]["rps"] == 12.0);
        assert!(parse_metrics("rps = 1").is_err());
    }

    #[test]
    fn replace_writes_only_what_changed_and_clears_pending() {
        let d = tempfile::tempdir().unwrap();
        let g = d.path();
        let dir = g.join("expected/a_x_b");
        let mut outs = Outputs::default();
        outs.files
            .insert("remote/stdout".into(), Content::Text("hi\n".into()));
        write_pending(g, &dir, &outs).unwrap();
        assert_eq!(pending(&dir), ["remote/stdout.new"]);
        assert!(read(&dir).unwrap().is_none());
        let files = BTreeMap::from([
            ("remote/stdout".to_string(), b"hi\n".to_vec()),
            ("remote/exit_code".to_string(), b"0\n".to_vec()),
        ]);
        let changed = replace(g, &dir, &files, &BTreeMap::new()).unwrap();
        assert_eq!(changed, ["remote/exit_code", "remote/stdout"]);
        assert!(pending(&dir).is_empty());
        let again = replace(g, &dir, &files, &BTreeMap::new()).unwrap();
        assert!(again.is_empty());
        let fewer = BTreeMap::from([("remote/exit_code".to_string(), b"0\n".to_vec())]);
        assert_eq!(
            replace(g, &dir, &fewer, &BTreeMap::new()).unwrap(),
            ["remote/stdout"]
        );
        let r = read(&dir).unwrap().unwrap();
        assert_eq!(r.files.keys().collect::<Vec<_>>(), ["remote/exit_code"]);
        // A link in the way is not followed.
        std::fs::create_dir_all(g.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(g.join("elsewhere"), dir.join("local")).unwrap();
        let through = BTreeMap::from([("local/stdout".to_string(), b"x".to_vec())]);
        assert!(replace(g, &dir, &through, &BTreeMap::new()).is_err());
        assert!(!g.join("elsewhere/stdout").exists());
    }
}
