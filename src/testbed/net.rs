//! What the testbed asks of the kernel and of the programs it runs: `ip` (namespaces,
//! addresses, routes), the check that its subnet is used by no network of this machine,
//! and starting a daemon inside a host's network namespace and cgroup, detached from
//! pairbench so it outlives the command that made it (docs/testbed.md, "How it works").

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;

use super::TestbedError;
use super::state::Proc;

/// Programs the testbed runs, and the Debian package of each.
pub const TOOLS: [(&str, &str); 5] = [
    ("ip", "iproute2"),
    ("vde_switch", "vde2"),
    ("wirefilter", "vde2"),
    ("sshd", "openssh-server"),
    ("ssh-keygen", "openssh-client"),
];

/// Full path of `prog` on PATH (or in the sbin folders, where sshd lives).
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
}

/// Every tool is there, or one line naming what to install.
pub fn check_tools() -> Result<(), TestbedError> {
    let mut missing: Vec<&str> = Vec::new();
    let mut packages: Vec<&str> = Vec::new();
    for (prog, pkg) in TOOLS {
        if which(prog).is_none() {
            missing.push(prog);
            if !packages.contains(&pkg) {
                packages.push(pkg);
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(TestbedError::Failed(format!(
        "the testbed needs {} and this machine lacks it: install it with `apt-get install {}`",
        missing.join(", "),
        packages.join(" ")
    )))
}

fn tool(prog: &str) -> PathBuf {
    which(prog).unwrap_or_else(|| PathBuf::from(prog))
}

fn run(cmd: &mut Command, input: Option<&str>) -> Result<String, TestbedError> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let show = format!("{cmd:?}").replace('"', "");
    let mut child = cmd
        .spawn()
        .map_err(|e| TestbedError::Failed(format!("cannot run {show}: {e}")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(text.as_bytes());
    }
    use std::io::Read;
    let mut err_pipe = child.stderr.take();
    let errs = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_end(&mut v);
        }
        v
    });
    let mut out = Vec::new();
    if let Some(mut p) = child.stdout.take() {
        let _ = p.read_to_end(&mut out);
    }
    let stderr = errs.join().unwrap_or_default();
    let ok = match child.wait() {
        Ok(status) => status.success(),
        // Inside `pairbench run`, its reaper may collect the exit first: then the
        // command's own word (nothing on stderr) is all there is to go by.
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ECHILD as i32) => stderr.is_empty(),
        Err(e) => return Err(TestbedError::Failed(format!("{show}: {e}"))),
    };
    if !ok {
        return Err(TestbedError::Failed(format!(
            "{show} failed: {}",
            String::from_utf8_lossy(&stderr).trim().replace('\n', "; ")
        )));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `ip ARGS`.
pub fn ip(args: &[&str]) -> Result<String, TestbedError> {
    run(Command::new(tool("ip")).args(args), None)
}

/// Several `ip` commands in one process (`ip -batch -`), inside `netns` when given;
/// `force`: go on past errors (for removal, where some things may already be gone).
pub fn ip_batch(netns: Option<&str>, lines: &[String], force: bool) -> Result<(), TestbedError> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new(tool("ip"));
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    if force {
        cmd.arg("-force");
    }
    cmd.args(["-batch", "-"]);
    let text = lines.join("\n") + "\n";
    match run(&mut cmd, Some(&text)) {
        Err(_) if force => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Refuse `subnet` when an address or route of this machine overlaps it.
pub fn check_subnet(subnet: &Ipv4Net) -> Result<(), TestbedError> {
    let mut nets: Vec<(Ipv4Net, String)> = Vec::new();
    let addrs = ip(&["-j", "-4", "addr", "show"])?;
    let addrs: serde_json::Value = serde_json::from_str(&addrs).unwrap_or_default();
    for link in addrs.as_array().into_iter().flatten() {
        let dev = link["ifname"].as_str().unwrap_or("?");
        for a in link["addr_info"].as_array().into_iter().flatten() {
            if let (Some(local), Some(len)) = (a["local"].as_str(), a["prefixlen"].as_u64())
                && let Ok(n) = format!("{local}/{len}").parse::<Ipv4Net>()
            {
                nets.push((n.trunc(), format!("address {local}/{len} of {dev}")));
            }
        }
    }
    let routes = ip(&["-j", "-4", "route", "show", "table", "all"])?;
    let routes: serde_json::Value = serde_json::from_str(&routes).unwrap_or_default();
    for r in routes.as_array().into_iter().flatten() {
        let Some(dst) = r["dst"].as_str() else {
            continue;
        };
        if dst == "default" || r["type"].as_str() == Some("local") {
            continue;
        }
        let net = if dst.contains('/') {
            dst.parse::<Ipv4Net>().ok()
        } else {
            format!("{dst}/32").parse::<Ipv4Net>().ok()
        };
        if let Some(n) = net {
            nets.push((n, format!("route {dst}")));
        }
    }
    for (n, what) in nets {
        if n.contains(&subnet.network()) || subnet.contains(&n.network()) {
            return Err(TestbedError::Invalid(format!(
                "the testbed subnet {subnet} overlaps the {what} of this machine: choose a free range with --subnet or `subnet` in [testbed] of pairbench.toml"
            )));
        }
    }
    Ok(())
}

/// A daemon to start.
pub struct Daemon<'a> {
    pub program: &'a str,
    pub args: Vec<String>,
    /// Inside this network namespace (`ip netns` name).
    pub netns: Option<&'a str>,
    /// Inside this cgroup (v2 folder).
    pub cgroup: Option<&'a Path>,
    /// It writes its pid here once it is ready.
    pub pidfile: &'a Path,
    /// Its output.
    pub log: &'a Path,
    /// The daemon forks itself into the background (its first process exits).
    pub forks: bool,
}

fn open(path: &Path, write: bool) -> Result<std::fs::File, TestbedError> {
    std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .open(path)
        .map_err(|e| TestbedError::io(path, "open", e))
}

/// Start `d`, in its own session, and wait for its pid file; the running daemon.
pub fn spawn(d: &Daemon) -> Result<Proc, TestbedError> {
    let _ = std::fs::remove_file(d.pidfile);
    let ns_fd = d
        .netns
        .map(|ns| open(&Path::new("/run/netns").join(ns), false))
        .transpose()?;
    let cg_fd = d
        .cgroup
        .map(|c| open(&c.join("cgroup.procs"), true))
        .transpose()?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.log)
        .map_err(|e| TestbedError::io(d.log, "create", e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| TestbedError::io(d.log, "open", e))?;
    let mut cmd = Command::new(tool(d.program));
    cmd.args(&d.args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // SAFETY: between fork and exec the child only makes system calls (no allocation,
    // no locks): join the cgroup, enter the namespace, start a session.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(f) = &cg_fd {
                nix::unistd::write(f.as_fd(), b"0")?;
            }
            if let Some(f) = &ns_fd {
                nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
            }
            nix::unistd::setsid()?;
            Ok(())
        });
    }
    let what = || format!("{} {}", d.program, d.args.join(" "));
    let mut child = cmd
        .spawn()
        .map_err(|e| TestbedError::Failed(format!("cannot start {}: {e}", what())))?;
    let end = Instant::now() + Duration::from_secs(10);
    let first = child.id() as i32;
    loop {
        let exited = match child.try_wait() {
            Ok(Some(status)) if !d.forks || !status.success() => {
                let log = std::fs::read_to_string(d.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(3).collect();
                return Err(TestbedError::Failed(format!(
                    "{} exited ({status}) instead of starting: {}",
                    what(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("; ")
                )));
            }
            Ok(Some(_)) => true,
            _ => false,
        };
        if let Some(pid) = std::fs::read_to_string(d.pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            && (exited || !d.forks || pid != first)
            && let Some(p) = Proc::of(pid)
        {
            return Ok(p);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestbedError::Failed(format!(
                "{} did not start within 10s (no pid in {})",
                what(),
                d.pidfile.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Wait until `path` exists (a socket a daemon makes once it is ready).
pub fn wait_path(path: &Path, what: &str) -> Result<(), TestbedError> {
    let end = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        if Instant::now() >= end {
            return Err(TestbedError::Failed(format!(
                "{what} did not make {} within 10s",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
