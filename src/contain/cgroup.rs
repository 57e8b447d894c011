//! cgroup v2, as containment uses it: finding the unified hierarchy and our own cgroup
//! from `/proc/self/mountinfo` and `/proc/self/cgroup`, a run's subtree
//! (`<own cgroup>/pairbench/<run>/`), and one cgroup per side of a pair: joined before
//! the script execs, signalled pid by pid, ended with `cgroup.kill`, empty when
//! `cgroup.events` says `populated 0`, then removed. See docs/containment.md.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Folder under our own cgroup that holds the cgroups of runs.
pub const PARENT: &str = "pairbench";

/// Where the unified (v2) hierarchy is mounted: (root inside the hierarchy, mount point).
fn v2_mount(mountinfo: &str) -> Option<(String, PathBuf)> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let f: Vec<&str> = left.split_whitespace().collect();
        Some((unescape(f.get(3)?), PathBuf::from(unescape(f.get(4)?))))
    })
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the v1 memory controller is mounted: (root inside the hierarchy, mount point).
fn v1_memory_mount(mountinfo: &str) -> Option<(String, PathBuf)> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let r: Vec<&str> = right.split_whitespace().collect();
        if r.first() != Some(&"cgroup") || !r.get(2)?.split(',').any(|o| o == "memory") {
            return None;
        }
        let f: Vec<&str> = left.split_whitespace().collect();
        Some((unescape(f.get(3)?), PathBuf::from(unescape(f.get(4)?))))
    })
}

/// Our cgroup in the v1 memory hierarchy (the `N:memory:` line of /proc/self/cgroup).
fn own_v1_memory_path(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
        ctl.split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    })
}

/// The folder of our own cgroup under the v1 memory controller (hybrid machines), for
/// peak memory; `None` where there is none.
pub fn own_memory_v1() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (root, mount) = v1_memory_mount(&mountinfo)?;
    let own = own_v1_memory_path(&std::fs::read_to_string("/proc/self/cgroup").ok()?)?;
    let rel = if root == "/" {
        own.as_str()
    } else {
        own.strip_prefix(&root)?
    };
    let dir = mount.join(rel.trim_start_matches('/'));
    dir.join("memory.max_usage_in_bytes")
        .exists()
        .then_some(dir)
}

/// Our cgroup in the unified hierarchy (the `0::` line of /proc/self/cgroup).
fn own_path(cgroup: &str) -> Option<String> {
    cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end_matches(" (deleted)").to_string())
}

/// The folder of our own v2 cgroup, or why there is none.
pub fn own_cgroup() -> Result<PathBuf, String> {
    own_cgroup_and_path().map(|(dir, _)| dir)
}

/// The folder of our own v2 cgroup and its path as /proc/<pid>/cgroup writes it.
fn own_cgroup_and_path() -> Result<(PathBuf, String), String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let (root, mount) =
        v2_mount(&mountinfo).ok_or("no cgroup v2 (unified) hierarchy is mounted")?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let own = own_path(&cgroup).ok_or("this process has no cgroup v2 (no 0:: line)")?;
    let rel = if root == "/" {
        own.as_str()
    } else {
        own.strip_prefix(&root).ok_or_else(|| {
            format!(
                "our cgroup {own} is outside the cgroup v2 mount at {} (root {root})",
                mount.display()
            )
        })?
    };
    let dir = mount.join(rel.trim_start_matches('/'));
    if !dir.join("cgroup.procs").exists() {
        return Err(format!("our cgroup {} is not there", dir.display()));
    }
    Ok((dir, own))
}

fn write_file(path: &Path, text: &str) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(text.as_bytes())
}

/// Does `cgroup.events` of `dir` say a process is in it (or below it)? A cgroup that is
/// gone is empty.
pub fn populated(dir: &Path) -> bool {
    let mut buf = [0u8; 256];
    let Ok(n) = File::open(dir.join("cgroup.events")).and_then(|mut f| f.read(&mut buf)) else {
        return false;
    };
    buf[..n].split(|&b| b == b'\n').any(|l| l == b"populated 1")
}

/// Wait until `dir` is empty, up to `limit`; true when it is.
pub fn wait_empty(dir: &Path, limit: Duration) -> bool {
    let end = crate::contain::deadline(limit);
    // A side usually empties within a fraction of a millisecond of its last exit: look
    // again soon, then less and less often.
    let mut pause = Duration::from_micros(50);
    loop {
        if !populated(dir) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The pids in `dir` and every cgroup below it.
pub fn pids_below(dir: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if e.file_type().is_dir() {
            out.extend(pids_in(e.path()));
        }
    }
    out
}

/// The pids directly in cgroup `dir`.
pub fn pids_in(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Remove `dir` and the cgroups below it (they must be empty), deepest first.
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for e in walkdir::WalkDir::new(dir).contents_first(true) {
        let e = e.map_err(io::Error::other)?;
        if e.file_type().is_dir() {
            rmdir_retry(e.path())?;
        }
    }
    Ok(())
}

/// rmdir, waiting briefly while the kernel finishes taking the last process out.
fn rmdir_retry(dir: &Path) -> io::Result<()> {
    let end = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// End every process in `dir` and below at once (`cgroup.kill`), wait until it is
/// empty (up to `limit`), then remove the cgroups. Returns how many processes were in it.
pub fn kill_tree(dir: &Path, limit: Duration) -> io::Result<usize> {
    if !dir.exists() {
        return Ok(0);
    }
    let n = pids_below(dir).len();
    if populated(dir) {
        write_file(&dir.join("cgroup.kill"), "1")?;
        if !wait_empty(dir, limit) {
            return Err(io::Error::other(format!(
                "{} still holds processes after cgroup.kill",
                dir.display()
            )));
        }
    }
    remove_tree(dir)?;
    Ok(n)
}

/// A run's cgroup: `<own cgroup>/pairbench/<run name>`.
#[derive(Debug, Clone)]
pub struct RunCgroup {
    dir: PathBuf,
    /// Its path as /proc/<pid>/cgroup writes it (`0::<path>`).
    path: String,
    /// The run's cgroup under the v1 memory controller, where there is one we can use.
    mem_v1: Option<PathBuf>,
    /// Which controllers' files its sides have.
    files: super::usage::Files,
}

impl RunCgroup {
    /// Make the run's cgroup below our own, or say why it cannot be used.
    pub fn create(name: &str) -> Result<RunCgroup, String> {
        let (own, own_path) = own_cgroup_and_path()?;
        let own = own.as_path();
        let path = format!("{}/{PARENT}/{name}", own_path.trim_end_matches('/'));
        let parent = own.join(PARENT);
        match std::fs::create_dir(&parent) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(cannot_create(&parent, &e)),
        }
        let dir = parent.join(name);
        std::fs::create_dir(&dir).map_err(|e| cannot_create(&dir, &e))?;
        let fail = |why: String| {
            let _ = std::fs::remove_dir(&dir);
            Err(why)
        };
        if !dir.join("cgroup.kill").exists() {
            return fail(format!(
                "{} has no cgroup.kill (it needs Linux 5.14 or later)",
                own.display()
            ));
        }
        // Moving a process in needs write access to the cgroup.procs files involved.
        for f in [own.join("cgroup.procs"), dir.join("cgroup.procs")] {
            if let Err(e) = OpenOptions::new().write(true).open(&f) {
                return fail(format!("cannot write {}: {e}", f.display()));
            }
        }
        // Exact memory and I/O where the controllers can be had (docs/resources.md).
        let controllers =
            std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        let wanted: Vec<String> = ["memory", "io"]
            .iter()
            .filter(|c| controllers.split_whitespace().any(|x| x == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if !wanted.is_empty() {
            let _ = write_file(&dir.join("cgroup.subtree_control"), &wanted.join(" "));
        }
        // What the sides get: their files of the other controllers do not exist.
        let enabled =
            std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        let has = |c: &str| enabled.split_whitespace().any(|x| x == c);
        let files = super::usage::Files {
            memory: has("memory"),
            io: has("io"),
        };
        let mem_v1 = own_memory_v1().and_then(|own| {
            let parent = own.join(PARENT);
            let _ = std::fs::create_dir(&parent);
            let d = parent.join(name);
            std::fs::create_dir(&d).ok()?;
            Some(d)
        });
        Ok(RunCgroup {
            dir,
            path,
            mem_v1,
            files,
        })
    }

    /// The run's cgroup under the v1 memory controller, if one is used.
    pub fn mem_v1(&self) -> Option<&Path> {
        self.mem_v1.as_deref()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new cgroup for one side of a pair (or a hook), ready to be joined.
    pub fn side(&self, name: &str) -> io::Result<SideCgroup> {
        let dir = self.dir.join(name);
        std::fs::create_dir(&dir)?;
        let procs = OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(dir.join("cgroup.procs"))
            .inspect_err(|_| {
                let _ = std::fs::remove_dir(&dir);
            })?;
        let dir_fd = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
            .open(&dir)?;
        let mem = self.mem_v1.as_ref().and_then(|m| {
            let d = m.join(name);
            std::fs::create_dir(&d).ok()?;
            // `tasks`, not `cgroup.procs`: the child (one thread) moves itself, which
            // the kernel does without its global threadgroup lock and the RCU grace
            // period that taking it waits for (Linux 6.0, "cgroup: Optimize single
            // thread migration"): 0.04 instead of ~1 ms per spawn here.
            match OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_CLOEXEC)
                .open(d.join("tasks"))
            {
                Ok(f) => Some((d, OwnedFd::from(f))),
                Err(_) => {
                    let _ = std::fs::remove_dir(&d);
                    None
                }
            }
        });
        Ok(SideCgroup {
            dir,
            files: self.files,
            path: format!("{}/{name}", self.path),
            procs: procs.into(),
            dir_fd: dir_fd.into(),
            mem,
        })
    }
}

fn cannot_create(dir: &Path, e: &io::Error) -> String {
    let hint = if e.kind() == io::ErrorKind::PermissionDenied {
        " (run as root, or inside a delegated cgroup, e.g. `systemd-run --user --scope -p Delegate=yes pairbench run ...`)"
    } else {
        ""
    };
    format!("cannot create {}: {e}{hint}", dir.display())
}

/// The cgroup of one side: every process the script starts stays in it.
#[derive(Debug)]
pub struct SideCgroup {
    dir: PathBuf,
    /// Which controllers' files it has.
    files: super::usage::Files,
    /// Its path as /proc/<pid>/cgroup writes it (`0::<path>`).
    path: String,
    /// `cgroup.procs`, open for writing: the child writes "0" to it before it execs
    /// (where it cannot be born in the cgroup).
    procs: OwnedFd,
    /// The cgroup's folder, for clone3's CLONE_INTO_CGROUP.
    dir_fd: OwnedFd,
    /// The side's v1 memory cgroup and its `tasks`, open for writing: the child writes
    /// "0" to it before it execs (peak memory on hybrid machines).
    mem: Option<(PathBuf, OwnedFd)>,
}

impl SideCgroup {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its path as /proc/<pid>/cgroup writes it, for a process in it (`0::<path>`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The descriptor a child writes "0" to (in `pre_exec`) to join this cgroup.
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// The cgroup's folder, for clone3's CLONE_INTO_CGROUP.
    pub fn dir_fd(&self) -> RawFd {
        self.dir_fd.as_raw_fd()
    }

    pub fn populated(&self) -> bool {
        populated(&self.dir)
    }

    pub fn pids(&self) -> Vec<i32> {
        pids_below(&self.dir)
    }

    /// `cgroup.kill`: SIGKILL to every process in it, at once.
    pub fn kill(&self) -> io::Result<()> {
        write_file(&self.dir.join("cgroup.kill"), "1")
    }

    pub fn wait_empty(&self, limit: Duration) -> bool {
        wait_empty(&self.dir, limit)
    }

    /// The descriptor of the side's v1 memory `tasks`, if it has one.
    pub fn mem_procs_fd(&self) -> Option<RawFd> {
        self.mem.as_ref().map(|(_, fd)| fd.as_raw_fd())
    }

    /// What the side used: its cgroup files, and `r` (the rusage of its reaped
    /// processes) for the rest.
    pub fn usage(&self, r: &super::usage::Rusage) -> (super::usage::Usage, super::usage::Sources) {
        super::usage::from_cgroup(&self.dir, self.files, self.mem_dir(), r)
    }

    /// The side's v1 memory cgroup, if it has one.
    pub fn mem_dir(&self) -> Option<&Path> {
        self.mem.as_ref().map(|(d, _)| d.as_path())
    }

    /// Remove the (empty) cgroup and any below it, and its v1 memory cgroup.
    pub fn remove(&self) -> io::Result<()> {
        remove_side(&self.dir, self.mem_dir())
    }
}

/// Remove an ended side's (empty) cgroup `v2` and any below it, and its v1 memory
/// cgroup `v1`: both are tried; an error names the folder that stayed.
pub fn remove_side(v2: &Path, v1: Option<&Path>) -> io::Result<()> {
    let named = |d: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", d.display()));
    let mem = match v1 {
        Some(d) => rmdir_retry(d).map_err(|e| named(d, e)),
        None => Ok(()),
    };
    // Mostly it has no cgroup below it (a script may make some): then one rmdir does.
    match std::fs::remove_dir(v2) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(_) => remove_tree(v2).map_err(|e| named(v2, e))?,
    }
    mem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_v2_mount_beside_v1_controllers() {
        let mi = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                  41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            v2_mount(mi),
            Some(("/".to_string(), PathBuf::from("/sys/fs/cgroup/unified")))
        );
        let odd = "41 31 0:38 /sub /mnt/my\\040cg rw - cgroup2 none rw\n";
        assert_eq!(
            v2_mount(odd),
            Some(("/sub".to_string(), PathBuf::from("/mnt/my cg")))
        );
        assert_eq!(v2_mount("1 2 0:1 / / rw - ext4 /dev/x rw\n"), None);
    }

    #[test]
    fn finds_the_v1_memory_controller() {
        let mi = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                  41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            v1_memory_mount(mi),
            Some(("/".to_string(), PathBuf::from("/sys/fs/cgroup/memory")))
        );
        let c = "5:devices:/\n4:memory:/process_api/93c9\n0::/\n";
        assert_eq!(own_v1_memory_path(c).as_deref(), Some("/process_api/93c9"));
        assert_eq!(own_v1_memory_path("0::/\n"), None);
    }

    #[test]
    fn own_cgroup_is_the_0_line() {
        let c = "9:name=systemd:/\n4:memory:/x\n0::/user.slice/a.scope\n";
        assert_eq!(own_path(c).as_deref(), Some("/user.slice/a.scope"));
        assert_eq!(own_path("4:memory:/x\n"), None);
    }
}
