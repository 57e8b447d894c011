//! Changing a running testbed (docs/testbed.md, "Links" and "Hosts"): cut, heal, shape
//! and clear a host's link; stop, start, pause and resume a host; `status`; and a shell
//! inside a host.

use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;

use super::shape::LinkSpec;
use super::state::{Dir, State};
use super::{TestbedError, cgroup, shape};
use crate::config::LinkConf;

/// What to do to a link.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkChange {
    Down,
    Up,
    Shape(LinkConf),
    Clear,
}

/// What to do to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HostChange {
    Stop,
    Start,
    Pause,
    Resume,
}

impl std::fmt::Display for HostChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HostChange::Stop => "stop",
            HostChange::Start => "start",
            HostChange::Pause => "pause",
            HostChange::Resume => "resume",
        })
    }
}

/// The state of a complete testbed, or why there is none.
pub fn loaded(dir: &Dir) -> Result<State, TestbedError> {
    match dir.load()? {
        Some(st) if st.complete => Ok(st),
        Some(_) => Err(TestbedError::Invalid(format!(
            "the testbed in {} is only half made (an `up` was interrupted): run `pairbench testbed down`, then `up`",
            dir.path.display()
        ))),
        None => Err(TestbedError::NotUp(dir.path.clone())),
    }
}

fn unknown_host(st: &State, name: &str) -> TestbedError {
    let names: Vec<&str> = st.hosts.iter().map(|h| h.name.as_str()).collect();
    TestbedError::Invalid(format!(
        "no testbed host '{name}': the hosts are {}",
        names.join(", ")
    ))
}

/// With the lock held: the state and `host` in it (after checking the privileges).
fn open_host(
    dir: &Dir,
    host: &str,
    what: &str,
    verb: &str,
) -> Result<
    (
        nix::fcntl::Flock<std::fs::File>,
        State,
        super::state::HostState,
    ),
    TestbedError,
> {
    super::need_privileges(what, verb)?;
    let lock = dir.lock()?;
    let st = loaded(dir)?;
    let h = st
        .host(host)
        .ok_or_else(|| unknown_host(&st, host))?
        .clone();
    Ok((lock, st, h))
}

/// Change the link of `host`; the link as it is now (e.g. `cut`, `delay 20ms`).
pub fn link(dir: &Dir, host: &str, change: &LinkChange) -> Result<String, TestbedError> {
    let (_lock, mut st, h) = open_host(dir, host, "change links", "link")?;
    let (spec, cut) = match change {
        LinkChange::Down => (h.link, true),
        LinkChange::Up => (h.link, false),
        LinkChange::Clear => (LinkSpec::default(), h.cut),
        LinkChange::Shape(conf) => (LinkSpec::merged(h.link, conf)?, h.cut),
    };
    shape::apply(&dir.host_dir(host).join("wire.mgmt"), &spec.commands(cut))?;
    if let Some(x) = st.host_mut(host) {
        x.link = spec;
        x.cut = cut;
    }
    dir.save(&st)?;
    Ok(describe_link(&spec, cut))
}

/// Heal the link of `host` and give it its shape from `up` again.
pub fn reset_link(dir: &Dir, host: &str) -> Result<String, TestbedError> {
    let (_lock, mut st, h) = open_host(dir, host, "change links", "link")?;
    let spec = h.configured;
    shape::apply(&dir.host_dir(host).join("wire.mgmt"), &spec.commands(false))?;
    if let Some(x) = st.host_mut(host) {
        x.link = spec;
        x.cut = false;
    }
    dir.save(&st)?;
    Ok(spec.to_string())
}

fn describe_link(spec: &LinkSpec, cut: bool) -> String {
    if cut {
        format!("cut (when healed: {spec})")
    } else {
        spec.to_string()
    }
}

fn host_cgroup(st: &State, host: &str) -> Result<std::path::PathBuf, TestbedError> {
    st.cgroup
        .as_ref()
        .map(|r| r.join(format!("host-{host}")))
        .ok_or_else(|| {
            TestbedError::Failed(
                "this machine has no cgroup v2 mounted, so hosts cannot be stopped or paused: mount it (`mount -t cgroup2 none /sys/fs/cgroup/unified`) and make the testbed again".into(),
            )
        })
}

/// Stop, start, pause or resume `host`; what it is now.
pub fn host(dir: &Dir, host: &str, change: HostChange) -> Result<String, TestbedError> {
    let (_lock, mut st, h) = open_host(dir, host, "change hosts", "host")?;
    let cg = host_cgroup(&st, host)?;
    let mut now = h.clone();
    match change {
        HostChange::Stop => {
            cgroup::kill(&cg)?;
            if h.paused {
                cgroup::freeze(&cg, false)?;
            }
            now.stopped = true;
            now.paused = false;
            now.sshd = None;
        }
        HostChange::Start => {
            if h.paused {
                cgroup::freeze(&cg, false)?;
                now.paused = false;
            }
            if h.stopped || !h.sshd.as_ref().is_some_and(|p| p.alive()) {
                now.sshd = Some(super::up::start_sshd(dir, &h, st.cgroup.as_deref())?);
            }
            now.stopped = false;
        }
        HostChange::Pause if h.stopped => {
            return Err(TestbedError::Invalid(format!(
                "host {host} is stopped: start it first (`pairbench testbed host {host} start`)"
            )));
        }
        HostChange::Pause => {
            cgroup::freeze(&cg, true)?;
            now.paused = true;
        }
        HostChange::Resume => {
            cgroup::freeze(&cg, false)?;
            now.paused = false;
        }
    }
    if let Some(x) = st.host_mut(host) {
        *x = now.clone();
    }
    dir.save(&st)?;
    Ok(host_state(&now).to_string())
}

pub fn host_state(h: &super::state::HostState) -> &'static str {
    if h.stopped {
        "stopped"
    } else if h.paused {
        "paused"
    } else {
        "running"
    }
}

/// `pairbench testbed status`: hosts, addresses, links, what runs inside.
pub fn status(dir: &Dir) -> Result<String, TestbedError> {
    let st = loaded(dir)?;
    let mut out = format!(
        "testbed {} on {} (this machine: {} on {}), state in {}\n",
        st.id,
        st.subnet,
        st.machine_addr,
        st.tap,
        dir.path.display()
    );
    for h in &st.hosts {
        out.push_str(&format!(
            "\n{}  {}  {}  slots {}\n  link: {}\n  ssh:  {}\n",
            h.name,
            h.addr,
            host_state(h),
            h.slots,
            describe_link(&h.link, h.cut),
            super::sshd::command_line(dir, &st, h)
        ));
        let procs = st
            .cgroup
            .as_ref()
            .map(|r| cgroup::procs(&r.join(format!("host-{}", h.name))))
            .unwrap_or_default();
        if procs.is_empty() {
            out.push_str("  runs: nothing\n");
        } else {
            out.push_str("  runs:\n");
            for p in procs {
                let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                let cmd: Vec<String> = cmd
                    .split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                out.push_str(&format!("    {p:>7}  {}\n", cmd.join(" ")));
            }
        }
    }
    out.push_str(&format!(
        "\nlog in with the ssh line above, or `ssh -F {} HOST`; pairbench run --remote HOST works as is\n",
        dir.ssh_config().display()
    ));
    Ok(out)
}

/// Run `cmd` (or a login shell) inside `host`: its network and its cgroup; the exit
/// status.
pub fn shell(dir: &Dir, host: &str, cmd: &[String]) -> Result<i32, TestbedError> {
    super::need_privileges("enter a host", "shell")?;
    let st = loaded(dir)?;
    let h = st.host(host).ok_or_else(|| unknown_host(&st, host))?;
    let ns_path = Path::new("/run/netns").join(&h.netns);
    let ns = std::fs::File::open(&ns_path).map_err(|e| TestbedError::io(&ns_path, "open", e))?;
    let cg = st
        .cgroup
        .as_ref()
        .map(|r| r.join(format!("host-{host}")).join("cgroup.procs"))
        .filter(|p| p.exists())
        .map(|p| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(|e| TestbedError::io(&p, "open", e))
        })
        .transpose()?;
    let (program, args): (String, Vec<String>) = match cmd.split_first() {
        Some((p, rest)) => (p.clone(), rest.to_vec()),
        None => (
            std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()),
            Vec::new(),
        ),
    };
    let mut c = std::process::Command::new(&program);
    c.args(&args)
        .env("PAIRBENCH_TESTBED_HOST", host)
        .env("PS1", format!("[testbed {host}] \\w\\$ "));
    // SAFETY: only system calls between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if let Some(f) = &cg {
                nix::unistd::write(f.as_fd(), b"0")?;
            }
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
            Ok(())
        });
    }
    let status = c
        .status()
        .map_err(|e| TestbedError::Failed(format!("cannot run {program} in {host}: {e}")))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
