//! Committing a pair: after both sides are gone, pairbench looks for anything a script
//! put in pairbench's places (a marker, `pair.json`, `attempts`, a side's `exit_code`, a
//! link in place of `local/` or `remote/`), removes it and makes the pair ERROR with the
//! reason; then it writes each side's `exit_code`, `pair.json` and the marker, never
//! through a link and never over an existing file, and renames the staging folder into
//! place (an earlier attempt kept in `attempts/<n>/`). See the README, "The result tree".

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::layout::{EXIT_FILE, OWN_FILES, SIDES, Tree};
use super::nofollow::{self, Kind};
use super::record::{PairRecord, Status};
use super::walk::read_record;

/// A write of the tree that failed: the path and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("cannot write '{}': {err}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub err: std::io::Error,
}

impl WriteError {
    pub fn new(path: &Path, err: std::io::Error) -> WriteError {
        WriteError {
            path: path.to_path_buf(),
            err,
        }
    }
}

/// Put `f`'s I/O error with the path it was about.
pub fn at<T>(path: &Path, r: std::io::Result<T>) -> Result<T, WriteError> {
    r.map_err(|e| WriteError::new(path, e))
}

/// Create a fresh staging folder for a run folder `dest`, with empty `local/` and
/// `remote/` (a leftover of a crashed run removed first).
pub fn stage(dest: &Path) -> Result<PathBuf, WriteError> {
    let staging = Tree::staging(dest);
    if nofollow::kind(&staging) != Kind::Missing {
        at(&staging, remove_any(&staging))?;
    }
    if let Some(parent) = staging.parent() {
        at(parent, std::fs::create_dir_all(parent))?;
    }
    at(&staging, std::fs::create_dir(&staging))?;
    for side in SIDES {
        let d = staging.join(side);
        at(&d, std::fs::create_dir(&d))?;
    }
    Ok(staging)
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match nofollow::kind(p) {
        Kind::Missing => Ok(()),
        Kind::Dir => std::fs::remove_dir_all(p),
        _ => std::fs::remove_file(p),
    }
}

/// Remove everything a script put in pairbench's places in `staging`; one line each.
pub fn remove_planted(staging: &Path) -> Result<Vec<String>, WriteError> {
    let mut found = Vec::new();
    let dir = at(staging, nofollow::open_dir(staging))?;
    for name in OWN_FILES {
        let k = nofollow::kind_at(&dir, Path::new(name));
        if k != Kind::Missing {
            at(
                &staging.join(name),
                nofollow::remove_at(staging, &dir, Path::new(name)),
            )?;
            found.push(format!(
                "a script wrote pairbench's own file ../{name}{} (removed)",
                if k == Kind::Link { " as a link" } else { "" }
            ));
        }
    }
    for side in SIDES {
        let p = staging.join(side);
        match nofollow::kind_at(&dir, Path::new(side)) {
            Kind::Dir => {}
            Kind::Missing => at(&p, std::fs::create_dir(&p))?,
            k => {
                at(&p, nofollow::remove_at(staging, &dir, Path::new(side)))?;
                at(&p, std::fs::create_dir(&p))?;
                found.push(format!(
                    "a script replaced {side}/ with a {} (removed)",
                    if k == Kind::Link { "link" } else { "file" }
                ));
                continue;
            }
        }
        let sd = at(&p, nofollow::open_dir(&p))?;
        let k = nofollow::kind_at(&sd, Path::new(EXIT_FILE));
        if k != Kind::Missing {
            at(
                &p.join(EXIT_FILE),
                nofollow::remove_at(&p, &sd, Path::new(EXIT_FILE)),
            )?;
            found.push(format!(
                "a script wrote pairbench's own file {side}/{EXIT_FILE}{} (removed)",
                if k == Kind::Link { " as a link" } else { "" }
            ));
        }
    }
    Ok(found)
}

fn write_new(dir: &OwnedFd, dir_path: &Path, name: &str, bytes: &[u8]) -> Result<(), WriteError> {
    at(
        &dir_path.join(name),
        nofollow::create_new_at(dir, Path::new(name), bytes, 0o644),
    )
}

/// The exit files of both sides (text as in `exit_code`; `None`: nothing to tell), and
/// other files of pairbench's own at the top of the pair folder (`events.csv`), each one
/// of the layout's own names.
pub struct Exits {
    pub local: Option<String>,
    pub remote: Option<String>,
    pub pair_files: Vec<(&'static str, Vec<u8>)>,
}

/// Commit a pair: remove what scripts planted (the pair becomes ERROR, saying what), write
/// pairbench's own files and move the staging folder to `dest`. An earlier result there
/// is replaced, or, for a retry (`rec.attempt > 1`), kept as `attempts/<n>/` inside it.
pub fn commit(
    staging: &Path,
    dest: &Path,
    rec: &mut PairRecord,
    exits: &Exits,
) -> Result<(), WriteError> {
    let planted = remove_planted(staging)?;
    if !planted.is_empty() {
        rec.status = Status::Error;
        let what = planted.join("; ");
        rec.reason = if rec.reason.is_empty() {
            what
        } else {
            format!("{what}; {}", rec.reason)
        };
    }
    for (side, text) in SIDES.iter().zip([&exits.local, &exits.remote]) {
        if let Some(t) = text {
            let p = staging.join(side);
            let d = at(&p, nofollow::open_dir(&p))?;
            write_new(&d, &p, EXIT_FILE, format!("{t}\n").as_bytes())?;
        }
    }
    if rec.attempt > 1 && nofollow::is_file(&dest.join("pair.json")) {
        let attempts = Tree::attempts(staging);
        at(&attempts, std::fs::create_dir(&attempts))?;
        let old_attempts = Tree::attempts(dest);
        if nofollow::kind(&old_attempts) == Kind::Dir {
            for e in at(&old_attempts, std::fs::read_dir(&old_attempts))?.flatten() {
                let to = attempts.join(e.file_name());
                at(&to, std::fs::rename(e.path(), &to))?;
            }
            at(&old_attempts, std::fs::remove_dir(&old_attempts))?;
        }
        let earlier = read_record(dest).map_or(rec.attempt - 1, |r| r.attempt);
        let to = attempts.join(earlier.to_string());
        at(&to, std::fs::rename(dest, &to))?;
    }
    let dir = at(staging, nofollow::open_dir(staging))?;
    for (name, bytes) in &exits.pair_files {
        debug_assert!(
            OWN_FILES.contains(name),
            "{name} is not one of the tree's own names"
        );
        write_new(&dir, staging, name, bytes)?;
    }
    let json = serde_json::to_vec_pretty(&*rec)
        .map_err(|e| WriteError::new(&staging.join("pair.json"), std::io::Error::other(e)))?;
    write_new(&dir, staging, "pair.json", &json)?;
    let now = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let reason = rec.reason.replace(['\n', '\r'], " ");
    write_new(
        &dir,
        staging,
        rec.status.marker(),
        format!("{now} {reason}\n").as_bytes(),
    )?;
    if nofollow::kind(dest) != Kind::Missing {
        let old = Tree::replaced(dest);
        at(&old, remove_any(&old))?;
        at(dest, std::fs::rename(dest, &old))?;
        at(dest, std::fs::rename(staging, dest))?;
        at(&old, remove_any(&old))?;
    } else {
        at(dest, std::fs::rename(staging, dest))?;
    }
    Ok(())
}

/// Give up on a staging folder (the run was interrupted, or the pair cannot be recorded).
pub fn discard(staging: &Path) {
    let _ = remove_any(staging);
}
