//! A real OpenSSH `sshd` for tests, started by the test itself: generated host and user
//! keys, its own sshd_config, listening on a free port of 127.0.0.1 (or on port 22 of a
//! private network namespace, so the remote side has its own network stack), and a
//! client HOME whose `~/.ssh` belongs to the test. Killed (with its sessions and its
//! namespace) on drop.
//!
//! Outside CI a test skips with a loud line when sshd (or root, for namespaces) is
//! missing; with PAIRBENCH_REQUIRE_SSHD=1 it fails instead.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// sshd_config lines that make the remote user's login shell plain: with SHLVL set, bash
/// reads no ~/.bashrc for the command sshd runs. The test hosts then behave like plain
/// accounts whatever this machine's ~/.bashrc does (here it runs `pyenv init`, whose
/// rehash lock, left behind when a host is killed mid-login, stalls every later login).
pub const PLAIN_LOGIN: &str = "SetEnv SHLVL=1 PYENV_REHASH_TIMEOUT=0\n";

fn required() -> bool {
    std::env::var("PAIRBENCH_REQUIRE_SSHD").is_ok_and(|v| v == "1")
}

/// True when SSH tests can run here; otherwise says why loudly (or panics in CI).
pub fn sshd_available() -> bool {
    let missing: Vec<&str> = [SSHD, "/usr/bin/ssh-keygen"]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "SSH TEST SKIPPED: {} not found: install it with `apt-get install openssh-server openssh-client`",
        missing.join(", ")
    );
    if required() {
        panic!("{msg} (PAIRBENCH_REQUIRE_SSHD=1 forbids skipping)");
    }
    eprintln!("\n!!!!!!!!!! {msg} !!!!!!!!!!\n");
    false
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// True when network-namespace tests can run here.
pub fn netns_available() -> bool {
    if !sshd_available() {
        return false;
    }
    let problem = if !is_root() {
        Some("it needs root (ip netns add)")
    } else if !Path::new("/usr/sbin/ip").exists() && !Path::new("/sbin/ip").exists() {
        Some("`ip` not found: install it with `apt-get install iproute2`")
    } else {
        None
    };
    let Some(p) = problem else { return true };
    let msg = format!("SSH NETWORK-NAMESPACE TEST SKIPPED: {p}");
    if required() {
        panic!("{msg} (PAIRBENCH_REQUIRE_SSHD=1 forbids skipping)");
    }
    eprintln!("\n!!!!!!!!!! {msg} !!!!!!!!!!\n");
    false
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key pair of type `kind` (`ed25519`, `ecdsa`) at `path` and `path.pub`.
pub fn keygen_type(path: &Path, kind: &str) {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "pairbench-test", "-f"])
        .arg(path));
}

pub fn keygen(path: &Path) {
    keygen_type(path, "ed25519");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A private network namespace joined to this one by a veth pair.
pub struct Netns {
    pub name: String,
    /// The veth end on this machine's side.
    pub host_if: String,
    pub host_addr: String,
    pub ns_addr: String,
    peer_if: String,
    subnet: String,
}

impl Netns {
    pub fn create() -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{:x}{n}", pid & 0xffff);
        let subnet = 1 + (pid.wrapping_mul(7).wrapping_add(n * 13) % 250);
        let peer = format!("pb{tag}n");
        let ns = Netns {
            name: format!("pbtest-{tag}"),
            host_if: format!("pb{tag}h"),
            host_addr: format!("10.231.{subnet}.1"),
            ns_addr: format!("10.231.{subnet}.2"),
            peer_if: peer.clone(),
            subnet: format!("10.231.{subnet}.0/24"),
        };
        // Whatever happens to the link, packets for this subnet never leave the machine.
        run(Command::new("ip").args(["route", "add", "unreachable", &ns.subnet, "metric", "4000"]));
        run(Command::new("ip").args(["netns", "add", &ns.name]));
        run(Command::new("ip").args([
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ]));
        run(Command::new("ip").args(["link", "set", &peer, "netns", &ns.name]));
        run(Command::new("ip").args([
            "addr",
            "add",
            &format!("{}/24", ns.host_addr),
            "dev",
            &ns.host_if,
        ]));
        run(Command::new("ip").args(["link", "set", &ns.host_if, "up"]));
        let inside = |args: &[&str]| {
            run(Command::new("ip")
                .args(["netns", "exec", &ns.name, "ip"])
                .args(args));
        };
        inside(&["addr", "add", &format!("{}/24", ns.ns_addr), "dev", &peer]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        ns
    }

    /// Cut the link (the cable pulled: nothing is closed, packets just stop): the far
    /// end goes down, so packets from here are dropped on the veth.
    pub fn cut(&self) {
        run(Command::new("ip").args([
            "netns",
            "exec",
            &self.name,
            "ip",
            "link",
            "set",
            &self.peer_if,
            "down",
        ]));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args([
                "route",
                "del",
                "unreachable",
                &self.subnet,
                "metric",
                "4000",
            ])
            .output();
    }
}

/// A running sshd and the client HOME that can log in to it.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    /// Client HOME: `.ssh/id_ed25519` is authorized; `known_hosts` is empty until `trust`.
    pub home: PathBuf,
    pub host: String,
    pub port: u16,
    pub user: String,
    child: Option<Child>,
    pub netns: Option<Netns>,
}

impl Sshd {
    /// On 127.0.0.1; `None` (after a loud line) when sshd is not installed.
    pub fn start() -> Option<Sshd> {
        if !sshd_available() {
            return None;
        }
        Some(Sshd::spawn(None, PLAIN_LOGIN))
    }

    /// Inside a fresh network namespace, port 22; `None` when that cannot be done here.
    pub fn start_in_netns() -> Option<Sshd> {
        if !netns_available() {
            return None;
        }
        Sshd::start_in_netns_with(PLAIN_LOGIN)
    }

    /// Like [`Sshd::start_in_netns`], with these lines at the end of its sshd_config
    /// (in place of [`PLAIN_LOGIN`]).
    pub fn start_in_netns_with(extra_config: &str) -> Option<Sshd> {
        if !netns_available() {
            return None;
        }
        Some(Sshd::spawn(Some(Netns::create()), extra_config))
    }

    fn spawn(netns: Option<Netns>, extra_config: &str) -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("pairbench-sshd")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        let home = d.join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        keygen(&d.join("host_ed25519"));
        keygen_type(&d.join("host_ecdsa"), "ecdsa");
        keygen(&home.join(".ssh/id_ed25519"));
        std::fs::copy(home.join(".ssh/id_ed25519.pub"), d.join("authorized_keys")).unwrap();
        let (host, port) = match &netns {
            Some(ns) => (ns.ns_addr.clone(), 22),
            None => ("127.0.0.1".to_string(), free_port()),
        };
        let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .expect("current user");
        let config = format!(
            "Port {port}\nListenAddress {host}\nHostKey {d}/host_ed25519\nHostKey {d}/host_ecdsa\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nAllowUsers {user}\nSubsystem sftp internal-sftp\n\
             MaxStartups 100\nMaxSessions 100\nClientAliveInterval 2\nClientAliveCountMax 3\n\
             LogLevel VERBOSE\n{extra_config}",
            d = d.display()
        );
        // (SetEnv: a login shell that runs `pyenv rehash` from its rc file must not wait
        // a minute on a lock that a killed shell left behind.)
        std::fs::write(d.join("sshd_config"), config).unwrap();
        if is_root() {
            // sshd's privilege separation folder.
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let mut cmd = match &netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.name, SSHD]);
                c
            }
            None => Command::new(SSHD),
        };
        cmd.args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn().expect("start sshd");
        let s = Sshd {
            home,
            host,
            port,
            user,
            child: Some(child),
            netns,
            dir,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        let addr = format!("{}:{}", self.host, self.port);
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(a) = addr.parse()
                && TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sshd did not start on {addr}:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// `[host]:port` (or `host` on port 22), as known_hosts names it.
    pub fn known_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }

    /// The host's public key: `ssh-ed25519 AAAA...`.
    pub fn host_key(&self) -> String {
        self.host_key_of("ed25519")
    }

    /// The host's public key of type `kind` (`ed25519`, `ecdsa`).
    pub fn host_key_of(&self, kind: &str) -> String {
        let pubkey =
            std::fs::read_to_string(self.dir.path().join(format!("host_{kind}.pub"))).unwrap();
        let mut f = pubkey.split_whitespace();
        format!("{} {}", f.next().unwrap(), f.next().unwrap())
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.home.join(".ssh/known_hosts")
    }

    /// Put the host key in the client's known_hosts (plain entry).
    pub fn trust(&self) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.known_hosts())
            .unwrap();
        writeln!(f, "{} {}", self.known_name(), self.host_key()).unwrap();
    }

    /// `user@host:port`.
    pub fn spec(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// Make the client's pairbench command use this HOME and no ssh-agent.
    pub fn client(&self, cmd: &mut Command) {
        cmd.env("HOME", &self.home).env_remove("SSH_AUTH_SOCK");
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// One client HOME (the first host's) that knows every host, and whose key all accept.
pub fn one_client(hosts: &[&Sshd]) {
    let first = hosts[0];
    let mut kh = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(first.known_hosts())
        .unwrap();
    for h in hosts {
        if !std::ptr::eq(*h, first) {
            std::fs::copy(
                first.home.join(".ssh/id_ed25519.pub"),
                h.dir.path().join("authorized_keys"),
            )
            .unwrap();
        }
        writeln!(kh, "{} {}", h.known_name(), h.host_key()).unwrap();
    }
}

/// Children (and their children) of `pid`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(rd) = std::fs::read_dir("/proc") else {
            break;
        };
        for e in rd.flatten() {
            let Some(c) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(format!("/proc/{c}/status")) else {
                continue;
            };
            let ppid = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .and_then(|v| v.trim().parse::<u32>().ok());
            if ppid == Some(p) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let all = descendants(child.id());
            let _ = child.kill();
            for p in all {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait();
        }
    }
}

/// An ssh-agent holding some keys, killed on drop.
pub struct Agent {
    pub socket: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Agent {
    pub fn start(keys: &[&Path]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let end = Instant::now() + Duration::from_secs(10);
        while !socket.exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        for k in keys {
            run(Command::new("ssh-add")
                .arg(k)
                .env("SSH_AUTH_SOCK", &socket)
                .stdin(Stdio::null()));
        }
        Agent {
            socket,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
