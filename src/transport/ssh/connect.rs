//! Opening an SSH connection the way OpenSSH does, in bounded time: TCP connect and
//! handshake with `--connect-timeout`, the host key checked against
//! `~/.ssh/known_hosts` or the remote's own `known_hosts` file (plain, hashed and
//! `[host]:port` entries), login with ssh-agent
//! then identity files (never a password prompt), then the pairbench agent: uploaded
//! over SFTP once per build (cached by content hash) and started on one exec channel.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use ssh2::{
    Channel, CheckResult, HostKeyType, KnownHostFileKind, MethodType, OpenFlags, OpenType,
    RenameFlags, Session,
};

use super::proto::{self, Event};
use super::target::Target;
use crate::outcome::human;

/// How to connect.
#[derive(Debug, Clone)]
pub struct Opts {
    pub connect_timeout: Duration,
    pub accept_new_host_keys: bool,
    pub kill_grace: Duration,
    /// The run's folder name under `<workdir>/runs/` (the agent locks and removes it).
    pub run_id: String,
    /// `--keep-remote`: the agent leaves the run's folder.
    pub keep_remote: bool,
}

/// Why a connection could not be made; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("ssh: cannot resolve host name '{host}': {err}")]
    Resolve { host: String, err: std::io::Error },
    #[error("ssh: connection refused ({0}): is sshd running and listening on that port?")]
    Refused(SocketAddr),
    #[error("ssh: host unreachable ({addr}): {why}")]
    Unreachable { addr: SocketAddr, why: String },
    #[error("ssh: cannot connect to {addr}: {err}")]
    Connect {
        addr: SocketAddr,
        err: std::io::Error,
    },
    #[error("ssh: no SSH handshake with {addr} within {within}: {why}")]
    Handshake {
        addr: SocketAddr,
        within: String,
        why: String,
    },
    #[error(
        "ssh: the host key of {name} is not known ({kind} {fp}) and was refused: check it is the right host, then run again with --accept-new-host-keys to add it to {}, or add it yourself (`ssh-keyscan -p {port} {host} >> {}`)",
        file.display(), file.display()
    )]
    UnknownHostKey {
        name: String,
        kind: &'static str,
        fp: String,
        file: PathBuf,
        host: String,
        port: u16,
    },
    #[error(
        "ssh: the host key of {name} has CHANGED ({kind} {fp}) and does not match {}: refusing to connect. Someone may be intercepting the connection, or the host was reinstalled; if you know it was, remove the old key with `ssh-keygen -R '{name}'` and run again",
        file.display()
    )]
    ChangedHostKey {
        name: String,
        kind: &'static str,
        fp: String,
        file: PathBuf,
    },
    #[error(
        "ssh: login refused for {user}@{host}:{port}: no key was accepted ({tried}); add your public key to ~/.ssh/authorized_keys of {user} on the remote, or name the right key with IdentityFile in ~/.ssh/config or identity_file in [[remote]]"
    )]
    Login {
        user: String,
        host: String,
        port: u16,
        tried: String,
    },
    #[error(
        "ssh: {name} runs {remote}, but this pairbench is built for {local}: build pairbench for that system and name it with agent = \"/path/to/pairbench\" in a [[remote]] of pairbench.toml"
    )]
    System {
        name: String,
        remote: String,
        local: String,
    },
    #[error(
        "ssh: the agent on {name} is pairbench {theirs}, but this is pairbench {ours}: build the same version for that host and name it with agent = \"...\" in its [[remote]]"
    )]
    Version {
        name: String,
        theirs: String,
        ours: String,
    },
    /// Channels, SFTP, files: the message says which.
    #[error("{0}")]
    Setup(String),
}

use ConnectError::Setup;

/// A logged-in session with the agent running on its channel.
pub struct Established {
    pub sess: Session,
    /// The socket under the session (a clone), for polling.
    pub sock: TcpStream,
    pub addr: SocketAddr,
    pub channel: Channel,
    /// Bytes the agent sent after its hello line.
    pub leftover: Vec<u8>,
    pub hello: Event,
    /// The remote work folder (absolute).
    pub workdir: PathBuf,
}

/// Host key algorithms, most preferred first, grouped by the key type they use.
const HOST_KEY_ALGOS: [(&str, &[&str]); 5] = [
    ("ssh-ed25519", &["ssh-ed25519"]),
    ("ecdsa-sha2-nistp256", &["ecdsa-sha2-nistp256"]),
    ("ecdsa-sha2-nistp384", &["ecdsa-sha2-nistp384"]),
    ("ecdsa-sha2-nistp521", &["ecdsa-sha2-nistp521"]),
    ("ssh-rsa", &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]),
];

/// TCP and the SSH handshake, offering the host key algorithms of key types not in
/// `skip`.
fn handshake(
    t: &Target,
    o: &Opts,
    skip: &[&str],
) -> Result<(Session, TcpStream, SocketAddr), ConnectError> {
    let (stream, addr) = tcp(t, o.connect_timeout)?;
    let sock = stream
        .try_clone()
        .map_err(|e| Setup(format!("ssh: {addr}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let mut sess =
        Session::new().map_err(|e| Setup(format!("ssh: cannot start a session: {e}")))?;
    sess.set_timeout(ms(o.connect_timeout));
    sess.set_tcp_stream(stream);
    let algos: Vec<&str> = HOST_KEY_ALGOS
        .iter()
        .filter(|(kind, _)| !skip.contains(kind))
        .flat_map(|(_, a)| a.iter().copied())
        .collect();
    let _ = sess.method_pref(MethodType::HostKey, &algos.join(","));
    sess.handshake().map_err(|e| ConnectError::Handshake {
        addr,
        within: human(o.connect_timeout),
        why: e.message().to_string(),
    })?;
    Ok((sess, sock, addr))
}

/// Connect, check, log in, start the agent.
pub fn establish(t: &Target, o: &Opts) -> Result<Established, ConnectError> {
    // Like OpenSSH, a host is checked with a key type known_hosts has for it: when the
    // key offered first is of another type, ask again without that type. A key that
    // differs from a known one of its own type is a changed key.
    let mut skip: Vec<&str> = Vec::new();
    let mut changed: Option<ConnectError> = None;
    let (sess, sock, addr) = loop {
        let (sess, sock, addr) = match handshake(t, o, &skip) {
            Ok(x) => x,
            Err(e) => return Err(changed.unwrap_or(e)),
        };
        match check_host_key(&sess, t, o.accept_new_host_keys) {
            Ok(()) => break (sess, sock, addr),
            Err(e @ ConnectError::ChangedHostKey { kind, .. }) => {
                skip.push(kind);
                let first = changed.take().unwrap_or(e);
                if skip.len() == HOST_KEY_ALGOS.len() {
                    return Err(first);
                }
                changed = Some(first);
            }
            Err(e) => return Err(e),
        }
    };
    login(&sess, t)?;
    let (workdir, remote_exe) = upload_agent(&sess, t)?;
    let grace = ms(o.kill_grace);
    let timeout = ms(o.connect_timeout);
    let run_dir = workdir.join("runs").join(&o.run_id);
    let cmd = format!(
        "exec {} agent --idle-timeout-ms {timeout} --ping-ms {} --grace-ms {grace} --run-dir {}{}",
        quote(&remote_exe.to_string_lossy()).map_err(Setup)?,
        ping_every(o.connect_timeout).as_millis(),
        quote(&run_dir.to_string_lossy()).map_err(Setup)?,
        if o.keep_remote { " --keep" } else { "" }
    );
    let mut channel = sess
        .channel_session()
        .map_err(|e| Setup(format!("ssh: cannot open a channel to {}: {e}", t.name)))?;
    channel.exec(&cmd).map_err(|e| {
        Setup(format!(
            "ssh: cannot start the pairbench agent on {}: {e}",
            t.name
        ))
    })?;
    let (line, leftover) = read_line(&mut channel).map_err(|e| {
        let mut err = String::new();
        let _ = channel.stderr().read_to_string(&mut err);
        Setup(format!(
            "ssh: the pairbench agent did not start on {} ({e}){}; it is {}: if that folder cannot run programs (noexec), set another workdir in its [[remote]]",
            t.name,
            if err.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", err.trim().replace('\n', " "))
            },
            remote_exe.display()
        ))
    })?;
    let hello: Event = serde_json::from_slice(&line).map_err(|e| {
        Setup(format!(
            "ssh: the pairbench agent on {} said something else ({e})",
            t.name
        ))
    })?;
    let ours = env!("CARGO_PKG_VERSION");
    if let Event::Hello { version, .. } = &hello
        && version != ours
    {
        return Err(ConnectError::Version {
            name: t.name.clone(),
            theirs: version.clone(),
            ours: ours.into(),
        });
    }
    Ok(Established {
        sess,
        sock,
        addr,
        channel,
        leftover,
        hello,
        workdir,
    })
}

/// How often each side says it is alive.
pub fn ping_every(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(5))
}

fn ms(d: Duration) -> u32 {
    d.as_millis().clamp(1, u128::from(u32::MAX)) as u32
}

/// Quote one word for the remote shell.
pub fn quote(word: &str) -> Result<String, String> {
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .map_err(|_| format!("ssh: cannot quote '{word}' for the remote shell (NUL byte)"))
}

fn tcp(t: &Target, timeout: Duration) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let addrs: Vec<SocketAddr> = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|err| ConnectError::Resolve {
            host: t.host.clone(),
            err,
        })?
        .collect();
    let mut last = Setup(format!("ssh: '{}' has no address", t.host));
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok((s, a)),
            Err(e) => last = connect_error(a, e, timeout),
        }
    }
    Err(last)
}

fn connect_error(addr: SocketAddr, e: std::io::Error, timeout: Duration) -> ConnectError {
    use std::io::ErrorKind as K;
    let code = e.raw_os_error();
    let is = |n: nix::errno::Errno| code == Some(n as i32);
    if e.kind() == K::ConnectionRefused {
        ConnectError::Refused(addr)
    } else if e.kind() == K::TimedOut || e.kind() == K::WouldBlock {
        ConnectError::Unreachable {
            addr,
            why: format!(
                "no answer within {} (host down, or a firewall drops the packets)",
                human(timeout)
            ),
        }
    } else if is(nix::errno::Errno::EHOSTUNREACH) || is(nix::errno::Errno::ENETUNREACH) {
        ConnectError::Unreachable {
            addr,
            why: e.to_string(),
        }
    } else {
        ConnectError::Connect { addr, err: e }
    }
}

fn key_type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// `SHA256:...` as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    format!(
        "SHA256:{}",
        proto::b64_encode(&digest).trim_end_matches('=')
    )
}

fn check_host_key(sess: &Session, t: &Target, accept_new: bool) -> Result<(), ConnectError> {
    let other = Setup;
    let (key, ktype) = sess
        .host_key()
        .ok_or_else(|| other(format!("ssh: {} sent no host key", t.name)))?;
    let kind = key_type_name(ktype);
    let fp = fingerprint(key);
    // OpenSSH's name for the host in known_hosts.
    let name = if t.port == 22 {
        t.host.clone()
    } else {
        format!("[{}]:{}", t.host, t.port)
    };
    let path = t.known_hosts.clone();
    let mut kh = sess
        .known_hosts()
        .map_err(|e| other(format!("ssh: cannot check host keys: {e}")))?;
    let offered = proto::b64_encode(key);
    // A @cert-authority line that names this host: (file) — host certificates are not
    // checked, which the refusal says.
    let mut ca_for_host: Option<PathBuf> = None;
    for file in [path.as_path(), Path::new("/etc/ssh/ssh_known_hosts")] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        // Line by line, so one line libssh2 does not understand (a @cert-authority, a
        // key type it lacks) does not hide the others.
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if let Some(rest) = l.strip_prefix("@revoked") {
                // `@revoked PATTERNS TYPE KEY`: that key is never accepted, for any host.
                let words: Vec<&str> = rest.split_whitespace().collect();
                if words.get(2) == Some(&offered.as_str()) {
                    return Err(other(format!(
                        "ssh: the host key of {name} ({kind} {fp}) is marked @revoked in {}: refusing to connect (--accept-new-host-keys never adds a revoked key); if the host has a new key, add that one",
                        file.display()
                    )));
                }
                continue;
            }
            if let Some(rest) = l.strip_prefix("@cert-authority") {
                let patterns = rest.split_whitespace().next().unwrap_or("");
                if known_hosts_pattern_matches(patterns, &name) {
                    ca_for_host.get_or_insert_with(|| file.to_path_buf());
                }
                continue;
            }
            if l.starts_with('@') {
                continue;
            }
            let _ = kh.read_str(l, KnownHostFileKind::OpenSSH);
        }
    }
    match kh.check(&name, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => Err(ConnectError::ChangedHostKey {
            name,
            kind,
            fp,
            file: path,
        }),
        CheckResult::NotFound if accept_new => {
            let line = format!("{name} {kind} {offered}\n");
            append_known_host(&path, &line).map_err(|e| {
                other(format!(
                    "ssh: cannot add the host key of {name} to {}: {e}",
                    path.display()
                ))
            })?;
            // As OpenSSH says it.
            eprintln!(
                "Warning: Permanently added '{name}' ({}) to the list of known hosts.",
                short_key_type(kind)
            );
            Ok(())
        }
        CheckResult::NotFound if ca_for_host.is_some() => Err(other(format!(
            "ssh: {name} is to be checked by a @cert-authority line in {}, but pairbench does not check host certificates: add the host's own key to {} (`ssh-keyscan -p {} {} >> {}`), or run once with --accept-new-host-keys",
            ca_for_host.as_deref().unwrap_or(&path).display(),
            path.display(),
            t.port,
            t.host,
            path.display()
        ))),
        CheckResult::NotFound => Err(ConnectError::UnknownHostKey {
            name,
            kind,
            fp,
            file: path,
            host: t.host.clone(),
            port: t.port,
        }),
        CheckResult::Failure => Err(other(format!("ssh: cannot check the host key of {name}"))),
    }
}

/// OpenSSH's short name of a key type, as in "Permanently added 'h' (ED25519)".
fn short_key_type(kind: &str) -> &'static str {
    match kind {
        "ssh-ed25519" => "ED25519",
        "ssh-rsa" => "RSA",
        "ssh-dss" => "DSA",
        k if k.starts_with("ecdsa-") => "ECDSA",
        _ => "UNKNOWN",
    }
}

/// Does a known_hosts pattern list (`a.example,*.lab,!bad.lab`, `[h]:2222`) name `host`?
/// Hashed entries (`|1|…`) do not name anyone here.
fn known_hosts_pattern_matches(patterns: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let mut hit = false;
    for p in patterns.split(',') {
        let p = p.to_ascii_lowercase();
        if let Some(neg) = p.strip_prefix('!') {
            if super::target::glob_match(neg.as_bytes(), host.as_bytes()) {
                return false;
            }
        } else if super::target::glob_match(p.as_bytes(), host.as_bytes()) {
            hit = true;
        }
    }
    hit
}

fn append_known_host(path: &Path, line: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(line.as_bytes())
}

fn login(sess: &Session, t: &Target) -> Result<(), ConnectError> {
    let user = &t.user;
    let mut tried: Vec<String> = Vec::new();
    if std::env::var_os("SSH_AUTH_SOCK").is_some()
        && let Ok(mut agent) = sess.agent()
        && agent.connect().is_ok()
    {
        let ids = agent
            .list_identities()
            .and_then(|_| agent.identities())
            .unwrap_or_default();
        for id in &ids {
            if agent.userauth(user, id).is_ok() && sess.authenticated() {
                return Ok(());
            }
        }
        tried.push(format!("ssh-agent ({} keys)", ids.len()));
        let _ = agent.disconnect();
    }
    for f in &t.identity_files {
        if !f.is_file() {
            continue;
        }
        match sess.userauth_pubkey_file(user, None, f, None) {
            Ok(()) if sess.authenticated() => return Ok(()),
            Ok(()) => tried.push(f.display().to_string()),
            Err(e) => {
                let why = e.message().to_lowercase();
                if why.contains("passphrase") || why.contains("unable to extract") {
                    tried.push(format!(
                        "{} (cannot be read without a passphrase: add it to ssh-agent with ssh-add)",
                        f.display()
                    ));
                } else {
                    tried.push(f.display().to_string());
                }
            }
        }
    }
    let tried = if tried.is_empty() {
        format!(
            "no ssh-agent and none of these key files exist: {}",
            t.identity_files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!("tried {}", tried.join(", "))
    };
    Err(ConnectError::Login {
        user: user.clone(),
        host: t.host.clone(),
        port: t.port,
        tried,
    })
}

/// Run one command on the remote (only at connect time); its stdout.
fn exec_output(sess: &Session, cmd: &str) -> Result<String, ConnectError> {
    let mut ch = sess
        .channel_session()
        .map_err(|e| Setup(format!("ssh: cannot open a channel: {e}")))?;
    ch.exec(cmd)
        .map_err(|e| Setup(format!("ssh: cannot run `{cmd}`: {e}")))?;
    let mut out = String::new();
    ch.read_to_string(&mut out)
        .map_err(|e| Setup(format!("ssh: reading the output of `{cmd}`: {e}")))?;
    let _ = ch.wait_close();
    Ok(out)
}

/// This machine's `uname -sm`.
fn local_system() -> String {
    nix::sys::utsname::uname()
        .map(|u| {
            format!(
                "{} {}",
                u.sysname().to_string_lossy(),
                u.machine().to_string_lossy()
            )
        })
        .unwrap_or_default()
}

/// Refuse a remote host whose system differs from this machine's.
fn check_system(sess: &Session, t: &Target) -> Result<(), ConnectError> {
    let remote = exec_output(sess, "uname -sm")?.trim().to_string();
    let local = local_system();
    if remote != local {
        return Err(ConnectError::System {
            name: t.name.clone(),
            remote,
            local,
        });
    }
    Ok(())
}

/// Upload pairbench (or the `agent` of the `[[remote]]`) to
/// `<workdir>/bin/pairbench-<hash>` unless it is there already. Only a new upload checks
/// the remote system (an exec, which costs a login shell).
fn upload_agent(sess: &Session, t: &Target) -> Result<(PathBuf, PathBuf), ConnectError> {
    let exe = match &t.agent {
        Some(a) => a.clone(),
        None => std::env::current_exe()
            .map_err(|e| Setup(format!("cannot find the pairbench executable: {e}")))?,
    };
    let sftp = sess
        .sftp()
        .map_err(|e| Setup(format!("ssh: cannot start SFTP on {}: {e}", t.name)))?;
    let home = sftp.realpath(Path::new(".")).map_err(|e| {
        Setup(format!(
            "ssh: cannot find the home folder on {}: {e}",
            t.name
        ))
    })?;
    let workdir = if t.workdir.starts_with('/') {
        PathBuf::from(&t.workdir)
    } else if let Some(rest) = t.workdir.strip_prefix("~/") {
        home.join(rest)
    } else {
        home.join(&t.workdir)
    };
    let bin = workdir.join("bin");
    let (size, hex) = agent_id(&exe)?;
    let dest = bin.join(format!("pairbench-{hex}"));
    // One round trip when the agent is there already (the usual case).
    let have = sftp.stat(&dest).is_ok_and(|s| s.size == Some(size));
    if !have {
        let mut made = PathBuf::new();
        for c in bin.components() {
            made.push(c);
            if sftp.stat(&made).is_err() {
                let _ = sftp.mkdir(&made, 0o700);
            }
        }
        if t.agent.is_none() {
            check_system(sess, t)?;
        }
        let bytes = read_agent(&exe)?;
        let again: String = Sha256::digest(&bytes)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if again != hex {
            return Err(Setup(format!(
                "the agent executable {} changed during the run: run again",
                exe.display()
            )));
        }
        // Unique per connection: hosts of one pool may share a home (NFS, a testbed), and
        // two uploads into one temporary file leave a half-written agent ("text file busy").
        static UPLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = UPLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = bin.join(format!(".pairbench-{hex}.{}-{n}.tmp", std::process::id()));
        let fail = |e: ssh2::Error| {
            Setup(format!(
                "ssh: cannot upload pairbench to {}:{}: {e}",
                t.name,
                bin.display()
            ))
        };
        let mut f = sftp
            .open_mode(
                &tmp,
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                0o755,
                OpenType::File,
            )
            .map_err(fail)?;
        f.write_all(&bytes).map_err(|e| {
            Setup(format!(
                "ssh: cannot upload pairbench to {}:{}: {e}",
                t.name,
                bin.display()
            ))
        })?;
        drop(f);
        if sftp
            .rename(&tmp, &dest, Some(RenameFlags::ATOMIC | RenameFlags::NATIVE))
            .is_err()
        {
            // Another run uploaded the same file meanwhile.
            let _ = sftp.unlink(&tmp);
            if sftp.stat(&dest).is_err() {
                return Err(Setup(format!(
                    "ssh: cannot put pairbench in place on {}: {}",
                    t.name,
                    dest.display()
                )));
            }
        }
        prune_agents(&sftp, &bin, &dest);
    }
    Ok((workdir, dest))
}

fn read_agent(exe: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(exe).map_err(|e| {
        Setup(format!(
            "cannot read the agent executable {}: {e}",
            exe.display()
        ))
    })
}

/// The size and short content hash of an agent executable: computed once per run and
/// file, however many hosts connect (reading and hashing it on every connection costs
/// CPU that a large pool feels).
fn agent_id(exe: &Path) -> Result<(u64, String), ConnectError> {
    type Ids = std::sync::Mutex<std::collections::HashMap<PathBuf, (u64, String)>>;
    static IDS: std::sync::OnceLock<Ids> = std::sync::OnceLock::new();
    let ids = IDS.get_or_init(Ids::default);
    // Held while hashing, so hosts connecting at once hash the file once between them.
    let mut ids = ids.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(id) = ids.get(exe) {
        return Ok(id.clone());
    }
    let bytes = read_agent(exe)?;
    let hash = Sha256::digest(&bytes);
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    let id = (bytes.len() as u64, hex);
    ids.insert(exe.to_path_buf(), id.clone());
    Ok(id)
}

/// After a new upload, remove the agents of other builds not used for a day (a run that
/// uses one keeps running: Linux keeps an executing file until it exits).
fn prune_agents(sftp: &ssh2::Sftp, bin: &Path, keep: &Path) {
    const DAY: u64 = 24 * 3600;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let Ok(entries) = sftp.readdir(bin) else {
        return;
    };
    for (path, stat) in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let old = stat.atime.max(stat.mtime).is_some_and(|t| t + DAY < now);
        if path == keep || !name.starts_with("pairbench-") || name.contains('.') || !old {
            continue;
        }
        let _ = sftp.unlink(&path);
        let helpers = bin.join(format!("{name}.helpers"));
        let _ = sftp.unlink(&helpers.join("report_metric"));
        let _ = sftp.rmdir(&helpers);
    }
}

/// Read up to the first newline (blocking, bounded by the session timeout).
fn read_line(ch: &mut Channel) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(i) = got.iter().position(|&b| b == b'\n') {
            let rest = got.split_off(i + 1);
            got.pop();
            return Ok((got, rest));
        }
        let n = ch.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "it exited",
            ));
        }
        got.extend_from_slice(&buf[..n]);
    }
}
