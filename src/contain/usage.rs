//! What a side used (docs/resources.md): the resource metrics of the whole tree of
//! processes a script started, under their SPEC names, from the side's cgroup files where
//! there are some (v2 `cpu.stat`, `memory.peak`, `memory.stat`, `io.stat`; the v1 memory
//! controller's `memory.max_usage_in_bytes` and `memory.stat` on hybrid machines), and
//! from the rusage of the side's reaped processes for the rest.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The resources of one side, as metrics; `None` where nothing measured it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_user_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_sys_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rss_kib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx_switches_voluntary: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx_switches_involuntary: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major_faults: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_read_kib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_write_kib: Option<u64>,
}

/// The names of pairbench's own resource metrics, with their units.
pub const METRICS: [(&str, &str); 8] = [
    ("cpu_user_s", "s"),
    ("cpu_sys_s", "s"),
    ("max_rss_kib", "KiB"),
    ("ctx_switches_voluntary", ""),
    ("ctx_switches_involuntary", ""),
    ("major_faults", ""),
    ("io_read_kib", "KiB"),
    ("io_write_kib", "KiB"),
];

impl Usage {
    /// `(name, value, unit)` of every measured value, in [`METRICS`] order.
    pub fn metrics(&self) -> Vec<(&'static str, f64, &'static str)> {
        let n = |v: Option<u64>| v.map(|x| x as f64);
        let values = [
            self.cpu_user_s,
            self.cpu_sys_s,
            n(self.max_rss_kib),
            n(self.ctx_switches_voluntary),
            n(self.ctx_switches_involuntary),
            n(self.major_faults),
            n(self.io_read_kib),
            n(self.io_write_kib),
        ];
        METRICS
            .iter()
            .zip(values)
            .filter_map(|((name, unit), v)| Some((*name, v?, *unit)))
            .collect()
    }

    /// Values from rusage alone (the sweep, or where the cgroup has no file for them).
    pub fn from_rusage(r: &Rusage) -> Usage {
        if r.reaped == 0 {
            return Usage::default();
        }
        Usage {
            cpu_user_s: Some(r.utime_us as f64 / 1e6),
            cpu_sys_s: Some(r.stime_us as f64 / 1e6),
            max_rss_kib: Some(r.maxrss_kib),
            ctx_switches_voluntary: Some(r.nvcsw),
            ctx_switches_involuntary: Some(r.nivcsw),
            major_faults: Some(r.majflt),
            io_read_kib: Some(r.inblock / 2),
            io_write_kib: Some(r.oublock / 2),
        }
    }
}

/// The rusage of a side's reaped processes, added up (`maxrss`: the largest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rusage {
    pub utime_us: u64,
    pub stime_us: u64,
    pub maxrss_kib: u64,
    pub nvcsw: u64,
    pub nivcsw: u64,
    pub majflt: u64,
    /// 512-byte blocks.
    pub inblock: u64,
    pub oublock: u64,
    /// How many processes were added.
    pub reaped: u64,
}

impl Rusage {
    /// Add what wait4 said about one reaped process (and the children it waited for).
    pub fn add(&mut self, r: &nix::libc::rusage) {
        let us =
            |t: nix::libc::timeval| (t.tv_sec.max(0) as u64) * 1_000_000 + t.tv_usec.max(0) as u64;
        let c = |v: nix::libc::c_long| v.max(0) as u64;
        self.utime_us += us(r.ru_utime);
        self.stime_us += us(r.ru_stime);
        self.maxrss_kib = self.maxrss_kib.max(c(r.ru_maxrss));
        self.nvcsw += c(r.ru_nvcsw);
        self.nivcsw += c(r.ru_nivcsw);
        self.majflt += c(r.ru_majflt);
        self.inblock += c(r.ru_inblock);
        self.oublock += c(r.ru_oublock);
        self.reaped += 1;
    }
}

/// `key value` lines (cpu.stat, memory.stat): the value of `key`.
pub fn stat_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Bytes read and written in a v2 `io.stat` (`rbytes=` and `wbytes=` of every device).
pub fn io_stat(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0, 0);
    for word in text.split_whitespace() {
        if let Some(v) = word.strip_prefix("rbytes=") {
            r += v.parse::<u64>().unwrap_or(0);
        } else if let Some(v) = word.strip_prefix("wbytes=") {
            w += v.parse::<u64>().unwrap_or(0);
        }
    }
    (r, w)
}

fn read(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok()
}

/// Where each value came from, for run.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sources {
    pub cpu: String,
    pub memory: String,
    pub major_faults: String,
    pub io: String,
    pub ctx_switches: String,
}

impl Sources {
    /// Everything from rusage.
    pub fn rusage() -> Sources {
        let r = "rusage".to_string();
        Sources {
            cpu: r.clone(),
            memory: "rusage (largest process)".into(),
            major_faults: r.clone(),
            io: r.clone(),
            ctx_switches: r,
        }
    }
}

/// Which controllers' files a v2 cgroup has (`cpu.stat` it always has).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Files {
    pub memory: bool,
    pub io: bool,
}

/// A side's usage from its v2 cgroup folder `v2` (with the files `files` says it has)
/// and v1 memory cgroup `mem_v1`, with rusage `r` for what they do not hold; and where
/// each value came from.
pub fn from_cgroup(v2: &Path, files: Files, mem_v1: Option<&Path>, r: &Rusage) -> (Usage, Sources) {
    let read_if = |has: bool, name: &str| if has { read(v2, name) } else { None };
    let mut u = Usage::from_rusage(r);
    let mut s = Sources::rusage();
    if let Some(cpu) = read(v2, "cpu.stat") {
        let f = |k| stat_field(&cpu, k).map(|us| us as f64 / 1e6);
        if let (Some(user), Some(sys)) = (f("user_usec"), f("system_usec")) {
            u.cpu_user_s = Some(user);
            u.cpu_sys_s = Some(sys);
            s.cpu = "cgroup2 cpu.stat".into();
        }
    }
    let v2_peak = read_if(files.memory, "memory.peak").and_then(|t| t.trim().parse::<u64>().ok());
    let v1_peak = mem_v1.and_then(|d| {
        read(d, "memory.max_usage_in_bytes").and_then(|t| t.trim().parse::<u64>().ok())
    });
    if let Some(p) = v2_peak {
        u.max_rss_kib = Some(p / 1024);
        s.memory = "cgroup2 memory.peak".into();
    } else if let Some(p) = v1_peak {
        u.max_rss_kib = Some(p / 1024);
        s.memory = "cgroup1 memory.max_usage_in_bytes".into();
    }
    if let Some(m) = read_if(files.memory, "memory.stat").and_then(|t| stat_field(&t, "pgmajfault"))
    {
        u.major_faults = Some(m);
        s.major_faults = "cgroup2 memory.stat".into();
    } else if let Some(m) =
        mem_v1.and_then(|d| read(d, "memory.stat").and_then(|t| stat_field(&t, "total_pgmajfault")))
    {
        u.major_faults = Some(m);
        s.major_faults = "cgroup1 memory.stat".into();
    }
    if let Some(io) = read_if(files.io, "io.stat") {
        let (r, w) = io_stat(&io);
        u.io_read_kib = Some(r / 1024);
        u.io_write_kib = Some(w / 1024);
        s.io = "cgroup2 io.stat".into();
    }
    (u, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cgroup_files() {
        let cpu = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(stat_field(cpu, "user_usec"), Some(1000));
        assert_eq!(stat_field(cpu, "user"), None);
        let io = "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n8:16 rbytes=1024 wbytes=0\n";
        assert_eq!(io_stat(io), (5120, 8192));
    }

    #[test]
    fn metrics_are_the_measured_values() {
        let u = Usage {
            cpu_user_s: Some(1.5),
            max_rss_kib: Some(2048),
            ..Usage::default()
        };
        assert_eq!(
            u.metrics(),
            vec![("cpu_user_s", 1.5, "s"), ("max_rss_kib", 2048.0, "KiB")]
        );
        assert!(Usage::from_rusage(&Rusage::default()).metrics().is_empty());
    }
}
