//! The testbed's cgroups (v2): one for its network processes (switches, links) and one
//! per host, holding the host's sshd and everything started through it. A host is
//! paused and resumed with `cgroup.freeze`, stopped (a crash) with `cgroup.kill`, and
//! `down` empties and removes them all (docs/testbed.md, "Hosts").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::TestbedError;

/// Where cgroup v2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` beside v1).
pub fn mount_point() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mounts").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
    })
}

pub fn create(path: &Path) -> Result<(), TestbedError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(TestbedError::io(path, "create the cgroup", e)),
    }
}

fn write(path: &Path, file: &str, value: &str) -> Result<(), TestbedError> {
    let p = path.join(file);
    std::fs::write(&p, value).map_err(|e| TestbedError::io(&p, "write", e))
}

/// Pids of the processes in `path` (not its children).
pub fn procs(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

fn events(path: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path.join("cgroup.events")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ').map(str::to_string))
}

fn wait_for(path: &Path, key: &str, value: &str, what: &str) -> Result<(), TestbedError> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match events(path, key) {
            Some(v) if v == value => return Ok(()),
            None => return Ok(()),
            _ if Instant::now() >= end => {
                return Err(TestbedError::Failed(format!(
                    "the processes of {} did not {what} within 10s",
                    path.display()
                )));
            }
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Freeze (`true`) or thaw every process inside, and wait until it is done.
pub fn freeze(path: &Path, on: bool) -> Result<(), TestbedError> {
    write(path, "cgroup.freeze", if on { "1" } else { "0" })?;
    if on {
        wait_for(path, "frozen", "1", "freeze")
    } else {
        wait_for(path, "frozen", "0", "thaw")
    }
}

/// SIGKILL every process inside (frozen ones too) and wait until none is left.
pub fn kill(path: &Path) -> Result<(), TestbedError> {
    if !path.exists() {
        return Ok(());
    }
    write(path, "cgroup.kill", "1")?;
    wait_for(path, "populated", "0", "end")
}

/// SIGTERM every process inside each of `paths` (and below), and wait up to `grace` for
/// them all to end: shells run their exit traps and remove their lock files.
pub fn terminate(paths: &[PathBuf], grace: Duration) {
    fn all(path: &Path, out: &mut Vec<i32>) {
        out.extend(procs(path));
        if let Ok(rd) = std::fs::read_dir(path) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    all(&e.path(), out);
                }
            }
        }
    }
    let mut pids = Vec::new();
    for p in paths {
        let _ = std::fs::write(p.join("cgroup.freeze"), "0");
        all(p, &mut pids);
    }
    for pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let end = Instant::now() + grace;
    while Instant::now() < end
        && paths
            .iter()
            .any(|p| events(p, "populated").is_some_and(|v| v == "1"))
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kill what is inside `path` and remove it with every cgroup below it.
pub fn remove(path: &Path) -> Result<(), TestbedError> {
    if !path.exists() {
        return Ok(());
    }
    kill(path)?;
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove(&e.path())?;
            }
        }
    }
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(TestbedError::io(path, "remove the cgroup", e)),
    }
}
