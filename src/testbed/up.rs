//! Making and removing a whole testbed (docs/testbed.md, "up and down"). `up` writes
//! each thing into the state before it makes it and starts the hosts in parallel; if a
//! step fails it removes what it made, so there is never half a network. `down` removes
//! whatever the state names, whatever is left of it.

use std::sync::Mutex;

use ipnet::Ipv4Net;

use super::net::{self, Daemon};
use super::shape::LinkSpec;
use super::state::{Dir, HostState, State};
use super::{TestbedError, cgroup, sshd};
use crate::config::TestbedConf;

/// The default subnet: a range few networks use.
pub const DEFAULT_SUBNET: &str = "10.213.0.0/24";

/// One host to make.
#[derive(Debug, Clone, PartialEq)]
pub struct HostPlan {
    pub name: String,
    pub slots: usize,
    pub link: LinkSpec,
}

/// What `up` makes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub subnet: Ipv4Net,
    pub hosts: Vec<HostPlan>,
}

/// A host name: a letter, then letters, digits, `-` or `_`; at most 32; not `local`.
pub fn validate_name(name: &str) -> Result<(), TestbedError> {
    let ok = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name != "local";
    if ok {
        Ok(())
    } else {
        Err(TestbedError::Invalid(format!(
            "bad testbed host name '{name}': start with a letter, then letters, digits, '-' or '_' (at most 32; not 'local')"
        )))
    }
}

/// The hosts of `[testbed]`, or `count` of them (the configured ones first, then
/// `server1`, `server2`, ...).
pub fn plan(
    conf: &TestbedConf,
    count: Option<usize>,
    subnet: Option<&str>,
) -> Result<Plan, TestbedError> {
    let text = subnet.or(conf.subnet.as_deref()).unwrap_or(DEFAULT_SUBNET);
    let subnet: Ipv4Net = text.parse().map_err(|_| {
        TestbedError::Invalid(format!(
            "bad testbed subnet '{text}': write an IPv4 range like 10.213.0.0/24"
        ))
    })?;
    let subnet = subnet.trunc();
    let mut hosts = Vec::new();
    for h in &conf.hosts {
        validate_name(&h.name)?;
        hosts.push(HostPlan {
            name: h.name.clone(),
            slots: h.slots.unwrap_or(1).max(1),
            link: LinkSpec::merged(LinkSpec::default(), &h.link)
                .map_err(|e| TestbedError::Invalid(format!("[[testbed.host]] {}: {e}", h.name)))?,
        });
    }
    let want = count.unwrap_or(if hosts.is_empty() { 1 } else { hosts.len() });
    if want == 0 {
        return Err(TestbedError::Invalid(
            "bad --hosts 0: a testbed has at least one host".into(),
        ));
    }
    hosts.truncate(want);
    let mut n = 1;
    while hosts.len() < want {
        let name = format!("server{n}");
        n += 1;
        if !hosts.iter().any(|h| h.name == name) {
            hosts.push(HostPlan {
                name,
                slots: 1,
                link: LinkSpec::default(),
            });
        }
    }
    for (i, h) in hosts.iter().enumerate() {
        if hosts[..i].iter().any(|o| o.name == h.name) {
            return Err(TestbedError::Invalid(format!(
                "testbed host '{}' is named twice in [[testbed.host]]",
                h.name
            )));
        }
    }
    // One address for this machine, one per host.
    let room = subnet.hosts().count();
    if hosts.len() + 1 > room {
        return Err(TestbedError::Invalid(format!(
            "the subnet {subnet} has room for {} hosts, not {}: give a larger one with --subnet",
            room.saturating_sub(1),
            hosts.len()
        )));
    }
    Ok(Plan { subnet, hosts })
}

fn same_plan(st: &State, plan: &Plan) -> bool {
    st.subnet == plan.subnet.to_string()
        && st.hosts.len() == plan.hosts.len()
        && st
            .hosts
            .iter()
            .zip(&plan.hosts)
            .all(|(h, p)| h.name == p.name)
}

/// Who logs in to the hosts: the user behind sudo, else this one.
fn login_user() -> (String, u32, u32) {
    use nix::unistd::{User, getuid};
    let sudo = std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty() && u != "root")
        .and_then(|u| User::from_name(&u).ok().flatten());
    let me = || User::from_uid(getuid()).ok().flatten();
    match sudo.or_else(me) {
        Some(u) => (u.name, u.uid.as_raw(), u.gid.as_raw()),
        None => ("root".into(), 0, 0),
    }
}

/// What `up` did.
pub enum Outcome {
    Made,
    AlreadyUp,
}

/// Make the testbed of `plan` in `dir`.
pub fn up(dir: &Dir, plan: &Plan) -> Result<Outcome, TestbedError> {
    super::need_privileges("make network namespaces", "up")?;
    net::check_tools()?;
    let _lock = dir.lock()?;
    if let Some(st) = dir.load()? {
        if st.complete && same_plan(&st, plan) {
            return Ok(Outcome::AlreadyUp);
        }
        if st.complete {
            return Err(TestbedError::Invalid(format!(
                "a testbed of {} hosts on {} is already up in {}: use it, or run `pairbench testbed down` first",
                st.hosts.len(),
                st.subnet,
                dir.path.display()
            )));
        }
        eprintln!("pairbench: an earlier `testbed up` did not finish: removing what it made first");
        remove(dir, &st)?;
    }
    match make(dir, plan) {
        Ok(()) => Ok(Outcome::Made),
        Err(e) => {
            if let Ok(Some(st)) = dir.load() {
                let _ = remove(dir, &st);
            }
            Err(e)
        }
    }
}

fn make(dir: &Dir, plan: &Plan) -> Result<(), TestbedError> {
    net::check_subnet(&plan.subnet)?;
    let id = dir.id();
    let (user, uid, gid) = login_user();
    let mut addrs = plan.subnet.hosts();
    let machine = addrs.next().unwrap_or(plan.subnet.network());
    let prefix = plan.subnet.prefix_len();
    let cg_root = cgroup::mount_point().map(|m| m.join(format!("pairbench-testbed-{id}")));
    let st = State {
        version: 1,
        id: id.clone(),
        subnet: plan.subnet.to_string(),
        machine_addr: machine.to_string(),
        tap: format!("pbtb-{id}"),
        user,
        uid,
        gid,
        route: true,
        cgroup: cg_root.clone(),
        hub: None,
        hosts: plan
            .hosts
            .iter()
            .zip(addrs)
            .map(|(p, a)| HostState {
                name: p.name.clone(),
                netns: format!("pbtb-{id}-{}", p.name),
                addr: a.to_string(),
                slots: p.slots,
                link: p.link,
                configured: p.link,
                cut: false,
                paused: false,
                stopped: false,
                switch: None,
                wire: None,
                sshd: None,
            })
            .collect(),
        complete: false,
        created_at: chrono::Local::now().to_rfc3339(),
    };
    dir.create()?;
    std::fs::create_dir_all(dir.path.join("hosts"))
        .map_err(|e| TestbedError::io(&dir.path, "create hosts/ in", e))?;
    dir.save(&st)?;
    let st = Mutex::new(st);
    let save = |f: &dyn Fn(&mut State)| -> Result<(), TestbedError> {
        let mut g = st.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
        dir.save(&g)
    };
    let (tap, subnet_s, hosts) = {
        let g = st.lock().unwrap_or_else(|e| e.into_inner());
        (g.tap.clone(), g.subnet.clone(), g.hosts.clone())
    };

    // Whatever happens to the links, packets for the subnet never leave this machine.
    net::ip(&["route", "add", "unreachable", &subnet_s, "metric", "4000"])?;
    if let Some(root) = &cg_root {
        cgroup::create(root)?;
        cgroup::create(&root.join("net"))?;
        for h in &hosts {
            cgroup::create(&root.join(format!("host-{}", h.name)))?;
        }
    }
    let net_cg = cg_root.as_ref().map(|r| r.join("net"));
    let adds: Vec<String> = hosts
        .iter()
        .map(|h| format!("netns add {}", h.netns))
        .collect();
    net::ip_batch(None, &adds, false)?;

    std::thread::scope(|s| -> Result<(), TestbedError> {
        let client = s.spawn(|| sshd::keygen(&dir.client_key(), "pairbench-testbed-client"));
        // The hub, with this machine's TAP on it.
        let hub = Daemon {
            program: "vde_switch",
            args: vec![
                "-d".into(),
                "-s".into(),
                dir.hub_sock().to_string_lossy().into_owned(),
                "-t".into(),
                tap.clone(),
                "-p".into(),
                dir.hub_pid().to_string_lossy().into_owned(),
            ],
            netns: None,
            cgroup: net_cg.as_deref(),
            pidfile: &dir.hub_pid(),
            log: &dir.path.join("hub.log"),
            forks: true,
        };
        let p = net::spawn(&hub)?;
        save(&|g| g.hub = Some(p.clone()))?;
        net::wait_path(&dir.hub_sock().join("ctl"), "the hub vde_switch")?;
        net::ip_batch(
            None,
            &[
                format!("addr add {machine}/{prefix} dev {tap}"),
                format!("link set {tap} up"),
            ],
            false,
        )?;
        client
            .join()
            .map_err(|_| TestbedError::Failed("making the client key failed".into()))??;
        let workers: Vec<_> = hosts
            .iter()
            .map(|h| {
                let save = &save;
                let net_cg = net_cg.as_deref();
                let cg_root = cg_root.as_deref();
                let st = &st;
                s.spawn(move || make_host(dir, st, h, prefix, net_cg, cg_root, save))
            })
            .collect();
        let mut first_err = None;
        for w in workers {
            let r = w
                .join()
                .unwrap_or_else(|_| Err(TestbedError::Failed("a host thread failed".into())));
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    })?;

    let mut g = st.into_inner().unwrap_or_else(|e| e.into_inner());
    sshd::write_client_files(dir, &g)?;
    for f in [dir.client_key(), dir.client_key().with_extension("pub")] {
        std::os::unix::fs::chown(&f, Some(g.uid), Some(g.gid))
            .map_err(|e| TestbedError::io(&f, "hand over", e))?;
    }
    g.complete = true;
    dir.save(&g)
}

type Save<'a> = dyn Fn(&dyn Fn(&mut State)) -> Result<(), TestbedError> + Sync + 'a;

fn make_host(
    dir: &Dir,
    st: &Mutex<State>,
    h: &HostState,
    prefix: u8,
    net_cg: Option<&std::path::Path>,
    cg_root: Option<&std::path::Path>,
    save: &Save,
) -> Result<(), TestbedError> {
    let hd = dir.host_dir(&h.name);
    std::fs::create_dir_all(&hd).map_err(|e| TestbedError::io(&hd, "create", e))?;
    let s = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    let key = std::thread::scope(|sc| {
        let k = sc.spawn(|| sshd::keygen(&sshd::host_key(dir, &h.name), &h.name));
        // The host's own switch, its TAP `eth0` inside the namespace.
        let sw = net::spawn(&Daemon {
            program: "vde_switch",
            args: vec![
                "-d".into(),
                "-s".into(),
                s(hd.join("switch.sock")),
                "-t".into(),
                "eth0".into(),
                "-p".into(),
                s(hd.join("switch.pid")),
            ],
            netns: Some(&h.netns),
            cgroup: net_cg,
            pidfile: &hd.join("switch.pid"),
            log: &hd.join("switch.log"),
            forks: true,
        })?;
        save(&|g| {
            if let Some(x) = g.host_mut(&h.name) {
                x.switch = Some(sw.clone());
            }
        })?;
        net::wait_path(&hd.join("switch.sock").join("ctl"), "the host's vde_switch")?;
        net::ip_batch(
            Some(&h.netns),
            &[
                "link set lo up".into(),
                format!("addr add {}/{prefix} dev eth0", h.addr),
                "link set eth0 up".into(),
            ],
            false,
        )?;
        // The link: a wirefilter between the host's switch and the hub.
        let wire = net::spawn(&Daemon {
            program: "wirefilter",
            args: vec![
                "-v".into(),
                format!(
                    "{}:{}",
                    dir.hub_sock().display(),
                    hd.join("switch.sock").display()
                ),
                "-M".into(),
                s(hd.join("wire.mgmt")),
                "--daemon".into(),
                "--pidfile".into(),
                s(hd.join("wire.pid")),
            ],
            netns: None,
            cgroup: net_cg,
            pidfile: &hd.join("wire.pid"),
            log: &hd.join("wire.log"),
            forks: true,
        })?;
        save(&|g| {
            if let Some(x) = g.host_mut(&h.name) {
                x.wire = Some(wire.clone());
            }
        })?;
        net::wait_path(&hd.join("wire.mgmt"), "wirefilter")?;
        if h.link != LinkSpec::default() {
            super::shape::apply(&hd.join("wire.mgmt"), &h.link.commands(false))?;
        }
        k.join()
            .map_err(|_| TestbedError::Failed("making a host key failed".into()))?
    });
    key?;
    let g = st.lock().unwrap_or_else(|e| e.into_inner()).clone();
    sshd::write_config(dir, &g, h)?;
    let p = start_sshd(dir, h, cg_root)?;
    save(&|g| {
        if let Some(x) = g.host_mut(&h.name) {
            x.sshd = Some(p.clone());
        }
    })
}

/// Start the host's sshd inside its namespace and cgroup.
pub fn start_sshd(
    dir: &Dir,
    h: &HostState,
    cg_root: Option<&std::path::Path>,
) -> Result<super::state::Proc, TestbedError> {
    let hd = dir.host_dir(&h.name);
    let _ = std::fs::create_dir_all("/run/sshd");
    let cg = cg_root.map(|r| r.join(format!("host-{}", h.name)));
    let sshd_bin = net::which("sshd").unwrap_or_else(|| "/usr/sbin/sshd".into());
    net::spawn(&Daemon {
        program: &sshd_bin.to_string_lossy(),
        args: vec![
            "-f".into(),
            hd.join("sshd_config").to_string_lossy().into_owned(),
            "-E".into(),
            hd.join("sshd.log").to_string_lossy().into_owned(),
        ],
        netns: Some(&h.netns),
        cgroup: cg.as_deref(),
        pidfile: &hd.join("sshd.pid"),
        log: &hd.join("sshd.out"),
        forks: true,
    })
}

/// Remove the testbed in `dir`; false when there was none.
pub fn down(dir: &Dir) -> Result<bool, TestbedError> {
    super::need_privileges("remove network namespaces", "down")?;
    let _lock = dir.lock()?;
    let removed = match dir.load()? {
        Some(st) => {
            remove(dir, &st)?;
            true
        }
        None => false,
    };
    // The folder goes too, when nothing else is in it.
    let _ = std::fs::remove_file(dir.path.join("lock"));
    let _ = std::fs::remove_dir(&dir.path);
    Ok(removed)
}

/// Remove everything `st` names (already gone is fine), then the state itself.
fn remove(dir: &Dir, st: &State) -> Result<(), TestbedError> {
    let mut problems: Vec<String> = Vec::new();
    // Every process: by cgroup (everything inside, sshd's sessions too), then by the
    // recorded pid and start time, then by pid file (for a kill -9 before it was saved).
    if let Some(root) = &st.cgroup
        && let Ok(rd) = std::fs::read_dir(root)
    {
        let groups: Vec<std::path::PathBuf> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        // What runs on the hosts gets a moment to end cleanly (a shell killed in its
        // startup files can leave a lock behind for every later login), then SIGKILL.
        let hosts: Vec<std::path::PathBuf> = groups
            .iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("host-"))
            })
            .cloned()
            .collect();
        cgroup::terminate(&hosts, std::time::Duration::from_millis(500));
        for g in &groups {
            let _ = std::fs::write(g.join("cgroup.kill"), "1");
        }
    }
    let mut procs: Vec<super::state::Proc> = st.hub.iter().cloned().collect();
    for h in &st.hosts {
        procs.extend([&h.switch, &h.wire, &h.sshd].into_iter().flatten().cloned());
    }
    let mut pidfiles = vec![dir.hub_pid()];
    for h in &st.hosts {
        let hd = dir.host_dir(&h.name);
        pidfiles.extend(["switch.pid", "wire.pid", "sshd.pid"].map(|f| hd.join(f)));
    }
    for f in pidfiles {
        if let Some(p) = std::fs::read_to_string(&f)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .and_then(super::state::Proc::of)
            && owned_by_testbed(p.pid, dir)
        {
            procs.push(p);
        }
    }
    for p in &procs {
        p.kill();
    }
    let dels: Vec<String> = st
        .hosts
        .iter()
        .filter(|h| std::path::Path::new("/run/netns").join(&h.netns).exists())
        .map(|h| format!("netns del {}", h.netns))
        .collect();
    if let Err(e) = net::ip_batch(None, &dels, true) {
        problems.push(e.to_string());
    }
    if st.route {
        let _ = net::ip(&["route", "del", "unreachable", &st.subnet, "metric", "4000"]);
    }
    if !st.tap.is_empty()
        && std::path::Path::new("/sys/class/net")
            .join(&st.tap)
            .exists()
    {
        let _ = net::ip(&["link", "del", &st.tap]);
    }
    if let Some(root) = &st.cgroup
        && let Err(e) = cgroup::remove(root)
    {
        problems.push(e.to_string());
    }
    for p in &procs {
        if p.alive() {
            problems.push(format!("process {} is still running", p.pid));
        }
    }
    for h in &st.hosts {
        if std::path::Path::new("/run/netns").join(&h.netns).exists() {
            problems.push(format!("namespace {} is still there", h.netns));
        }
    }
    if !problems.is_empty() {
        return Err(TestbedError::Failed(format!(
            "the testbed in {} could not be removed whole: {}; run `pairbench testbed down` again",
            dir.path.display(),
            problems.join("; ")
        )));
    }
    let _ = std::fs::remove_dir_all(dir.path.join("hosts"));
    for f in [
        dir.client_key(),
        dir.client_key().with_extension("pub"),
        dir.known_hosts(),
        dir.ssh_config(),
        dir.hub_pid(),
        dir.path.join("hub.log"),
    ] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir_all(dir.hub_sock());
    std::fs::remove_file(dir.state_file())
        .map_err(|e| TestbedError::io(&dir.state_file(), "remove", e))
}

/// A pid from a pid file is only ours if its command line names this state folder.
fn owned_by_testbed(pid: i32, dir: &Dir) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let needle = dir.path.as_os_str().as_encoded_bytes();
    cmdline.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LinkConf, TestbedHostConf};

    #[test]
    fn names() {
        for ok in ["server1", "db-2", "A_b"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1st", "a b", "a/b", "local", "-x", &"x".repeat(33)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plans() {
        let conf = TestbedConf {
            subnet: Some("10.213.7.0/24".into()),
            state_dir: None,
            hosts: vec![TestbedHostConf {
                name: "db".into(),
                slots: Some(2),
                link: LinkConf {
                    delay: Some("10ms".into()),
                    ..LinkConf::default()
                },
            }],
        };
        let p = plan(&conf, None, None).unwrap();
        assert_eq!(p.hosts.len(), 1);
        assert_eq!((p.hosts[0].slots, p.hosts[0].link.delay_ms), (2, 10.0));
        let p = plan(&conf, Some(3), None).unwrap();
        let names: Vec<&str> = p.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["db", "server1", "server2"]);
        let p = plan(&TestbedConf::default(), None, None).unwrap();
        assert_eq!(p.subnet.to_string(), DEFAULT_SUBNET);
        assert_eq!(p.hosts.len(), 1);
        assert!(plan(&conf, Some(0), None).is_err());
        assert!(plan(&conf, Some(3), Some("10.0.0.0/30")).is_err());
        assert!(plan(&conf, None, Some("nonsense")).is_err());
        let twice = TestbedConf {
            hosts: vec![conf.hosts[0].clone(), conf.hosts[0].clone()],
            ..conf.clone()
        };
        assert!(plan(&twice, None, None).is_err());
    }
}
