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

/// A regular file, not a link to one.
pub fn is_file(path: &Path) -> bool {
    kind(path) == Kind::File
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

/// Open the folder `rel` below `root` (`root` itself when `rel` is empty), never through a
/// link.
pub fn open_dir_beneath(root: &Path, rel: &Path) -> io::Result<OwnedFd> {
    let dir = open_dir(root)?;
    if rel.as_os_str().is_empty() {
        return Ok(dir);
    }
    open_at_beneath(&dir, rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
}

/// The names in the open folder `dir` and what each is (links not followed), sorted.
pub fn entries(dir: &OwnedFd) -> io::Result<Vec<(std::ffi::OsString, Kind)>> {
    use std::os::fd::AsRawFd;
    // The folder as opened, not whatever its path names by now.
    let mut out: Vec<(std::ffi::OsString, Kind)> =
        std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?
            .map(|e| {
                let name = e?.file_name();
                let k = kind_at(dir, Path::new(&name));
                Ok((name, k))
            })
            .collect::<io::Result<_>>()?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Copy the entry `name` of the folder `src` to `dst_name` in the folder `dst`: a file
/// (its mode kept), a folder with everything in it, or a link as a link (never followed).
/// Never replaces anything at `dst_name`. Entries that are none of these (a fifo, a
/// socket) are left out, one line each in `left_out` (`shown` is where `name` is, for it).
pub fn copy_at(
    src: &OwnedFd,
    name: &Path,
    dst: &OwnedFd,
    dst_name: &Path,
    shown: &Path,
    left_out: &mut Vec<String>,
) -> io::Result<()> {
    let st =
        fstatat(src.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io_err)?;
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => {
            let from = openat(
                src.as_fd(),
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
                Mode::empty(),
            )
            .map_err(io_err)?;
            let to = openat(
                dst.as_fd(),
                dst_name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                mode & Mode::from_bits_truncate(0o777),
            )
            .map_err(io_err)?;
            let mut from = File::from(from);
            let mut to = File::from(to);
            io::copy(&mut from, &mut to)?;
            to.flush()
        }
        SFlag::S_IFLNK => {
            let target = nix::fcntl::readlinkat(src.as_fd(), name).map_err(io_err)?;
            nix::unistd::symlinkat(target.as_os_str(), dst.as_fd(), dst_name).map_err(io_err)
        }
        SFlag::S_IFDIR => {
            mkdirat(dst.as_fd(), dst_name, Mode::from_bits_truncate(0o755)).map_err(io_err)?;
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let from = openat(src.as_fd(), name, flags, Mode::empty()).map_err(io_err)?;
            let to = openat(dst.as_fd(), dst_name, flags, Mode::empty()).map_err(io_err)?;
            for (child, _) in entries(&from)? {
                let child = Path::new(&child);
                copy_at(&from, child, &to, child, &shown.join(child), left_out)?;
            }
            Ok(())
        }
        _ => {
            left_out.push(format!(
                "'{}' is not a file, folder or link; not copied",
                shown.display()
            ));
            Ok(())
        }
    }
}

/// Write `contents` to `path` atomically: a temporary file beside it (removed again if
/// anything fails), then a rename, which replaces a link rather than following it.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(contents))
}

/// Write to `path` atomically what `fill` writes to the file, as [`write_atomic`] does:
/// a large table is streamed to its file, never held whole in memory.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
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
        fill(&mut f)?;
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
    fn copies_keep_links_as_links() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("a/b")).unwrap();
        std::fs::write(d.path().join("secret"), "s").unwrap();
        std::fs::write(src.join("a/b/f"), "f").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), src.join("a/link")).unwrap();
        std::os::unix::fs::symlink(d.path(), src.join("a/up")).unwrap();
        std::fs::create_dir(d.path().join("dst")).unwrap();
        let (s, t) = (
            open_dir(&src).unwrap(),
            open_dir(&d.path().join("dst")).unwrap(),
        );
        let mut left = Vec::new();
        let a = Path::new("a");
        copy_at(&s, a, &t, a, a, &mut left).unwrap();
        let out = d.path().join("dst/a");
        assert_eq!(std::fs::read_to_string(out.join("b/f")).unwrap(), "f");
        assert_eq!(kind(&out.join("link")), Kind::Link);
        assert_eq!(kind(&out.join("up")), Kind::Link);
        assert!(left.is_empty());
        // Never over what is there.
        assert!(copy_at(&s, a, &t, a, a, &mut left).is_err());
        // A link as the folder to copy is copied as a link, not entered.
        std::os::unix::fs::symlink(d.path(), src.join("ln")).unwrap();
        let ln = Path::new("ln");
        copy_at(&s, ln, &t, ln, ln, &mut left).unwrap();
        assert_eq!(kind(&d.path().join("dst/ln")), Kind::Link);
        assert!(open_dir_beneath(&src, Path::new("ln")).is_err());
    }

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
