//! Who may write a tag: the tag's lock (one run at a time; a report only peeks), the
//! `latest` link (pointed at a run from the moment it starts, atomically replaced), the
//! lookup of a tag or `latest`, and the removal of what a crashed run left behind.
//! See the README, "Running again on a tag".

use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::layout::Tree;
use super::nofollow::{self, Kind};

/// Why a tag cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error(
        "tag '{tag}' is in use by another pairbench run{pid}: wait for it to finish, or use another --tag"
    )]
    InUse { tag: String, pid: String },
    #[error("cannot lock tag '{}' ('{}': {err})", tag, path.display())]
    Lock {
        tag: String,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("no 'latest' run in '{}': run `pairbench run` first, or name a tag", .0.display())]
    NoLatest(PathBuf),
    #[error("no run tagged '{tag}' in '{}': see the folders there, or use 'latest'", dir.display())]
    NoTag { tag: String, dir: PathBuf },
}

/// The lock of a tag, held for a whole run.
pub struct TagLock {
    _lock: Flock<std::fs::File>,
}

/// Take the tag's lock; a second run on the same tag is refused.
pub fn lock(tree: &Tree) -> Result<TagLock, TagError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = tree.lock_file();
    let err = |err| TagError::Lock {
        tag: tree.tag.clone(),
        path: path.clone(),
        err,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&path)
        .map_err(err)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            use std::io::{Seek, Write};
            lock.set_len(0).map_err(err)?;
            lock.seek(std::io::SeekFrom::Start(0)).map_err(err)?;
            writeln!(lock, "{}", std::process::id()).map_err(err)?;
            Ok(TagLock { _lock: lock })
        }
        Err((_, _)) => {
            let pid = std::fs::read_to_string(&path).unwrap_or_default();
            let pid = pid.trim();
            Err(TagError::InUse {
                tag: tree.tag.clone(),
                pid: if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                },
            })
        }
    }
}

/// A tag's lock held shared, by a reader: no run can take it meanwhile.
pub struct ReadLock {
    _lock: Option<Flock<std::fs::File>>,
}

/// Hold the lock of `tag_dir` shared, so that no run starts writing the tag while it is
/// read; `Ok(None)` while a run holds it. A tag without a lock file holds nothing; a
/// lock file that cannot be opened (a link, no permission) or locked is an error.
pub fn read_lock(tag_dir: &Path) -> std::io::Result<Option<ReadLock>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(Tree::at(tag_dir).lock_file())
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Some(ReadLock { _lock: None }));
        }
        Err(e) => return Err(e),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(l) => Ok(Some(ReadLock { _lock: Some(l) })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e.into()),
    }
}

/// Is a `pairbench run` writing into this tag folder right now (it holds the lock)?
pub fn in_use(tag_dir: &Path) -> bool {
    // Probe only: the lock is released at once, so a run can start right after.
    matches!(read_lock(tag_dir), Ok(None))
}

/// Point `results/latest` at `tag` (atomically replaced).
pub fn link_latest(results_dir: &Path, tag: &str) -> std::io::Result<()> {
    let link = results_dir.join("latest");
    let tmp = results_dir.join(format!(".latest.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(tag, &tmp)?;
    std::fs::rename(&tmp, &link).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Resolve `latest` (or a tag) to a tag folder.
pub fn resolve(results_dir: &Path, tag: &str) -> Result<(String, PathBuf), TagError> {
    let tag = if tag == "latest" {
        std::fs::read_link(results_dir.join("latest"))
            .map_err(|_| TagError::NoLatest(results_dir.to_path_buf()))?
            .to_string_lossy()
            .into_owned()
    } else {
        tag.to_string()
    };
    let dir = results_dir.join(&tag);
    if tag.contains('/') || tag.starts_with('.') || nofollow::kind(&dir) != Kind::Dir {
        return Err(TagError::NoTag {
            tag,
            dir: results_dir.to_path_buf(),
        });
    }
    Ok((tag, dir))
}

/// Remove what crashed runs left in a tag folder (staging folders, replaced folders,
/// temporary files), never entering a run folder's sides; returns how many.
pub fn remove_leftovers(tree: &Tree) -> usize {
    let mut n = 0;
    let mut walker = walkdir::WalkDir::new(&tree.root)
        .min_depth(1)
        .max_depth(32)
        .into_iter();
    while let Some(Ok(e)) = walker.next() {
        let name = e.file_name().to_string_lossy().into_owned();
        let is_dir = e.file_type().is_dir();
        if Tree::is_leftover(&name) {
            let gone = if is_dir {
                std::fs::remove_dir_all(e.path())
            } else {
                std::fs::remove_file(e.path())
            };
            n += usize::from(gone.is_ok());
            if is_dir {
                walker.skip_current_dir();
            }
            continue;
        }
        // A run folder: its sides are the scripts' own; its earlier attempts are complete.
        if is_dir && nofollow::kind(&e.path().join("pair.json")) != Kind::Missing {
            walker.skip_current_dir();
        }
    }
    if let Some(results) = tree.root.parent()
        && let Ok(rd) = std::fs::read_dir(results)
    {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(".latest.tmp") else {
                continue;
            };
            // Another run's, between making it and renaming it to `latest`: not ours.
            let running = !pid.is_empty() && Path::new("/proc").join(pid).exists();
            if !running {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_held_for_reading_is_refused_to_a_run_and_a_run_s_to_a_reader() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = Tree::new(tmp.path(), "T");
        std::fs::create_dir(&tree.root).unwrap();
        let run = lock(&tree).unwrap();
        assert!(read_lock(&tree.root).unwrap().is_none());
        assert!(in_use(&tree.root));
        drop(run);
        let reader = read_lock(&tree.root).unwrap().unwrap();
        let again = read_lock(&tree.root).unwrap().unwrap();
        assert!(matches!(lock(&tree), Err(TagError::InUse { .. })));
        drop((reader, again));
        assert!(lock(&tree).is_ok());
    }

    #[test]
    fn a_lock_file_that_is_a_link_is_an_error_for_a_reader() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = Tree::new(tmp.path(), "T");
        std::fs::create_dir(&tree.root).unwrap();
        std::fs::write(tmp.path().join("elsewhere"), "").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), tree.lock_file()).unwrap();
        assert!(read_lock(&tree.root).is_err());
        assert!(!in_use(&tree.root));
    }
}
