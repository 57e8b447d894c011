//! What `/proc` says about processes: state, parent, process group, session, start time,
//! and the environment marker of escaped processes (see docs/containment.md).

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;

/// Environment variable that carries the per-script marker used to find escaped processes.
pub const MARKER_VAR: &str = "PAIRBENCH_MARKER";

/// The fields of `/proc/<pid>/stat` that containment needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub state: u8,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Clock ticks after boot: with the pid, names one process for good.
    pub start: u64,
}

impl Stat {
    /// Alive and not a zombie.
    pub fn alive(&self) -> bool {
        self.state != b'Z' && self.state != b'X'
    }
}

/// Parse one `/proc/<pid>/stat` line.
pub fn parse_stat(line: &[u8]) -> Option<Stat> {
    // "pid (comm) S ppid pgrp session ..." — comm may hold anything, so split after the
    // last ')'.
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    let pid = std::str::from_utf8(&line[..open])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let rest = std::str::from_utf8(line.get(close + 2..)?).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After comm: state(0) ppid(1) pgrp(2) session(3) ... starttime(19).
    Some(Stat {
        pid,
        state: *f.first()?.as_bytes().first()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// `/proc/<pid>/stat`, if the process exists.
pub fn stat(pid: i32) -> Option<Stat> {
    let mut buf = [0u8; 1024];
    let n = File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read(&mut buf)
        .ok()?;
    parse_stat(&buf[..n])
}

/// Alive and not a zombie.
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| s.alive())
}

/// Is the process `pid` that started at `start` still running (not a zombie)?
pub fn same_alive(pid: i32, start: u64) -> bool {
    stat(pid).is_some_and(|s| s.alive() && s.start == start)
}

/// Every pid in `/proc`.
pub fn pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| parse_pid(&e.file_name()))
        .collect()
}

/// Every process there is, but this one.
pub fn all() -> Vec<Stat> {
    let me = std::process::id() as i32;
    pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter_map(stat)
        .collect()
}

fn parse_pid(name: &OsStr) -> Option<i32> {
    let b = name.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Every live process that carries a marker, with its marker.
pub fn marked() -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let prefix = format!("{MARKER_VAR}=").into_bytes();
    let mut buf = Vec::with_capacity(8192);
    let mut found = Vec::new();
    for p in pids() {
        if p == me {
            continue;
        }
        buf.clear();
        let Ok(mut f) = File::open(format!("/proc/{p}/environ")) else {
            continue;
        };
        if f.read_to_end(&mut buf).is_err() {
            continue;
        }
        if let Some(v) = buf
            .split(|&b| b == 0)
            .find_map(|e| e.strip_prefix(&prefix[..]))
            && alive(p)
        {
            found.push((p, String::from_utf8_lossy(v).into_owned()));
        }
    }
    found
}

/// Every live process whose marker starts with `prefix` (the scripts of one run).
pub fn find_marked_prefix(prefix: &str) -> Vec<i32> {
    marked()
        .into_iter()
        .filter(|(_, m)| m.starts_with(prefix))
        .map(|(p, _)| p)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_after_odd_comm() {
        let line = b"12 (a) b) S 1 12 12 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 777 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            (s.pid, s.state, s.ppid, s.pgrp, s.session),
            (12, b'S', 1, 12, 12)
        );
        assert_eq!(s.start, 777);
        assert!(s.alive());
        let z = parse_stat(b"13 (x) Z 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0").unwrap();
        assert!(!z.alive());
        assert!(parse_stat(b"garbage").is_none());
    }

    #[test]
    fn this_process_has_a_start_time() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(same_alive(me, s.start));
        assert!(!same_alive(me, s.start + 1));
    }
}
