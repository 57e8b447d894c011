//! File access in the result tree that never follows a link: scripts and remote hosts
//! write into run folders, so a link there must never make pairbench read or write
//! anywhere else. Reads open paths below a trusted folder with `openat2`
//! (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), or, where the kernel lacks it, one
//! component at a time with `O_NOFOLLOW`; writes create files with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` in a folder opened without following links.
//! See the README, "The result tree".

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Open a folder (the last component not followed if it is a link).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err)
}

/// The plain names of `rel`, or an error when it has `..`, `/` or `.`.
fn names(rel: &Path) -> io::Result<Vec<&std::ffi::OsStr>> {
    rel.components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("'{}' leaves its folder", rel.display()),
            )),
        })
        .collect()
}

/// Open `rel` below the folder `dir` without following any link on the way.
fn open_at_beneath(dir: &OwnedFd, rel: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::{OpenHow, ResolveFlag, openat2};
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        match openat2(dir.as_fd(), rel, how) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOSYS) | Err(Errno::EPERM) => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    let parts = names(rel)?;
    let Some((last, parents)) = parts.split_last() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
    };
    let mut cur: Option<OwnedFd> = None;
    for p in parents {
        let at = cur.as_ref().unwrap_or(dir);
        let next = openat(
            at.as_fd(),
            *p,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err)?;
        cur = Some(next);
    }
    let at = cur.as_ref().unwrap_or(dir);
    openat(at.as_fd(), *last, flags, Mode::empty()).map_err(io_err)
}

/// Open the file `rel` below `root` for reading, never through a link.
pub fn open_beneath(root: &Path, rel: &Path) -> io::Result<File> {
    let dir = open_dir(root)?;
    Ok(File::from(open_at_beneath(&dir, rel, OFlag::O_RDONLY)?))
}

/// Read the file `rel` below `root`, never through a link.
pub fn read_beneath(root: &Path, rel: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    open_beneath(root, rel)?.read_to_end(&mut buf)?;
    Ok(buf)
}

/// What is at `path`, the last component not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    File,
    Dir,
    Link,
    Other,
}

pub fn kind(path: &Path) -> Kind {
    match std::fs::symlink_metadata(path) {
        Err(_) => Kind::Missing,
        Ok(m) if m.file_type().is_symlink() => Kind::Link,
        Ok(m) if m.is_dir() => Kind::Dir,
        Ok(m) if m.is_file() => Kind::File,
        Ok(_) => Kind::Other,
    }
}

/// What is at `name` in the folder `dir`, not followed.
pub fn kind_at(dir: &OwnedFd, name: &Path) -> Kind {
    match fstatat(dir.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(_) => Kind::Missing,
        Ok(st) => match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFLNK => Kind::Link,
            SFlag::S_IFDIR => Kind::Dir,
            SFlag::S_IFREG => Kind::File,
            _ => Kind::Other,
        },
    }
}

/// Remove whatever is at `name` in `dir` (a folder with everything in it), never
/// following a link.
pub fn remove_at(dir_path: &Path, dir: &OwnedFd, name: &Path) -> io::Result<()> {
    match kind_at(dir, name) {
        Kind::Missing => Ok(()),
        Kind::Dir => std::fs::remove_dir_all(dir_path.join(name)),
        _ => unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir).map_err(io_err),
    }
}

/// Create the file `name` in `dir` with `bytes`; refuses to replace anything or to
/// follow a link.
pub fn create_new_at(dir: &OwnedFd, name: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let fd = openat(
        dir.as_fd(),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )
    .map_err(io_err)?;
    File::from(fd).write_all(bytes)
}

/// Open (creating them) the folders `rel` below `root`, never through a link; returns
/// the last one.
pub fn create_dirs_beneath(root: &Path, rel: &Path) -> io::Result<OwnedFd> {
    let mut cur = open_dir(root)?;
    for p in names(rel)? {
        match mkdirat(cur.as_fd(), p, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(io_err(e)),
        }
        cur = openat(
            cur.as_fd(),
            p,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "'{}' is a link or a file, not a folder",
                    p.to_string_lossy()
                ),
            ),
            e => io_err(e),
        })?;
    }
    Ok(cur)
}

/// Open the file `rel` below `root` for writing, its folders created, never through a
/// link: a fresh file (whatever was there removed first, a link included), or, with
/// `append`, the end of the file pairbench created before.
pub fn create_beneath(root: &Path, rel: &Path, append: bool, mode: u32) -> io::Result<File> {
    let parts = names(rel)?;
    let Some((last, parents)) = parts.split_last() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
    };
    let parent_rel: std::path::PathBuf = parents.iter().collect();
    let dir = create_dirs_beneath(root, &parent_rel)?;
    let last = Path::new(last);
    let mode = Mode::from_bits_truncate(mode & 0o777);
    let base = OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_CREAT;
    let fd = if append {
        openat(dir.as_fd(), last, base | OFlag::O_APPEND, mode).map_err(io_err)?
    } else {
        if kind_at(&dir, last) != Kind::Missing {
            remove_at(&root.join(&parent_rel), &dir, last)?;
        }
        openat(dir.as_fd(), last, base | OFlag::O_EXCL, mode).map_err(io_err)?
    };
    Ok(File::from(fd))
}

/// Write `contents` to `path` atomically: a temporary file beside it (removed again if
/// anything fails), then a rename, which replaces a link rather than following it.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc_nofollow())
            .open(&tmp)?;
        f.write_all(contents)?;
        f.flush()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

use std::os::unix::fs::OpenOptionsExt;

fn libc_nofollow() -> i32 {
    OFlag::O_NOFOLLOW.bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("pair");
        std::fs::create_dir_all(root.join("local")).unwrap();
        std::fs::write(d.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), root.join("local/stdout")).unwrap();
        std::os::unix::fs::symlink(d.path(), root.join("up")).unwrap();
        assert!(read_beneath(&root, Path::new("local/stdout")).is_err());
        assert!(read_beneath(&root, Path::new("up/secret")).is_err());
        assert!(read_beneath(&root, Path::new("../secret")).is_err());
        std::fs::write(root.join("local/ok"), "fine").unwrap();
        assert_eq!(read_beneath(&root, Path::new("local/ok")).unwrap(), b"fine");
        // Writing over a link replaces the link, never the file it points at.
        let mut f = create_beneath(&root, Path::new("local/stdout"), false, 0o644).unwrap();
        f.write_all(b"new").unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("secret")).unwrap(),
            "s"
        );
        assert!(create_beneath(&root, Path::new("up/x"), false, 0o644).is_err());
        assert!(!d.path().join("x").exists());
    }
}
