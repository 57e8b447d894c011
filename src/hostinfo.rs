//! What a host is (kernel, CPU model and count, memory), for run.json.

use serde::{Deserialize, Serialize};

/// Metadata of one machine of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HostInfo {
    /// `local`, or the remote's name as the user gave it.
    pub name: String,
    /// `local` (this machine) or `remote`.
    pub role: String,
    pub address: String,
    pub hostname: String,
    pub kernel: String,
    pub arch: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_bytes: u64,
    /// How scripts are contained there (`cgroup2 at …`, `sweep (why)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containment: Option<String>,
    /// Where its sides' resource metrics come from (docs/resources.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounting: Option<serde_json::Value>,
}

/// Parse `uname -snrm`-like facts and /proc files of a Linux host.
pub fn from_parts(uname: &str, cpuinfo: &str, meminfo: &str) -> HostInfo {
    let mut f = uname.split_whitespace();
    let (sys, host, rel, arch) = (f.next(), f.next(), f.next(), f.next());
    let cpu_model = cpuinfo
        .lines()
        .find(|l| {
            l.starts_with("model name") || l.starts_with("Model") || l.starts_with("Hardware")
        })
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let memory_bytes = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    HostInfo {
        hostname: host.unwrap_or_default().to_string(),
        kernel: format!("{} {}", sys.unwrap_or_default(), rel.unwrap_or_default())
            .trim()
            .to_string(),
        arch: arch.unwrap_or_default().to_string(),
        cpu_model,
        cpus,
        memory_bytes,
        ..HostInfo::default()
    }
}

/// This machine.
pub fn this_machine(name: &str, role: &str, address: &str) -> HostInfo {
    let u = nix::sys::utsname::uname().ok();
    let s = |f: Option<&std::ffi::OsStr>| {
        f.map(|x| x.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let uname = format!(
        "{} {} {} {}",
        s(u.as_ref().map(|u| u.sysname())),
        s(u.as_ref().map(|u| u.nodename())),
        s(u.as_ref().map(|u| u.release())),
        s(u.as_ref().map(|u| u.machine())),
    );
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mut h = from_parts(&uname, &cpuinfo, &meminfo);
    if h.cpus == 0 {
        h.cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    }
    h.name = name.to_string();
    h.role = role.to_string();
    h.address = address.to_string();
    h
}
