//! The hosts' OpenSSH servers and the client side that reaches them: a generated host
//! key per host, the testbed's client key, `known_hosts` and an `ssh_config`, all in
//! the state folder — never in `~/.ssh` (docs/testbed.md, "Logging in").

use std::path::Path;
use std::process::{Command, Stdio};

use super::TestbedError;
use super::state::{Dir, HostState, State, write_file};

/// A new ed25519 key pair at `path` and `path.pub`.
pub fn keygen(path: &Path, comment: &str) -> Result<(), TestbedError> {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let out = Command::new(super::net::which("ssh-keygen").unwrap_or_else(|| "ssh-keygen".into()))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TestbedError::Failed(format!("cannot run ssh-keygen: {e}")))?;
    if !out.status.success() {
        return Err(TestbedError::Failed(format!(
            "ssh-keygen could not make {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The host key file of a host.
pub fn host_key(dir: &Dir, host: &str) -> std::path::PathBuf {
    dir.host_dir(host).join("ssh_host_ed25519_key")
}

/// Write the host's sshd_config; its path.
pub fn write_config(
    dir: &Dir,
    st: &State,
    h: &HostState,
) -> Result<std::path::PathBuf, TestbedError> {
    let hd = dir.host_dir(&h.name);
    let config = format!(
        "# Made by `pairbench testbed up` for host {name}.\n\
         ListenAddress {addr}:22\nHostKey {key}\nPidFile {hd}/sshd.pid\n\
         AuthorizedKeysFile {client}.pub\nStrictModes no\nUsePAM no\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
         PermitRootLogin prohibit-password\nAllowUsers {user}\nSubsystem sftp internal-sftp\n\
         MaxStartups 100\nMaxSessions 100\nClientAliveInterval 5\nClientAliveCountMax 3\n\
         UseDNS no\nLogLevel INFO\n",
        name = h.name,
        addr = h.addr,
        key = host_key(dir, &h.name).display(),
        hd = hd.display(),
        client = dir.client_key().display(),
        user = st.user,
    );
    let path = hd.join("sshd_config");
    write_file(&path, config.as_bytes(), 0o644)?;
    Ok(path)
}

/// `known_hosts` and `ssh_config` for every host of `st`.
pub fn write_client_files(dir: &Dir, st: &State) -> Result<(), TestbedError> {
    let mut known = String::new();
    let mut config = String::from("# Made by `pairbench testbed up`: ssh -F THIS_FILE HOST\n");
    for h in &st.hosts {
        let pubkey = host_key(dir, &h.name).with_extension("pub");
        let text =
            std::fs::read_to_string(&pubkey).map_err(|e| TestbedError::io(&pubkey, "read", e))?;
        let mut f = text.split_whitespace();
        let (kind, key) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
        known.push_str(&format!("{},{} {kind} {key}\n", h.addr, h.name));
        config.push_str(&format!(
            "Host {name}\n  HostName {addr}\n  User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  StrictHostKeyChecking yes\n",
            name = h.name,
            addr = h.addr,
            user = st.user,
            key = dir.client_key().display(),
            known = dir.known_hosts().display(),
        ));
    }
    write_file(&dir.known_hosts(), known.as_bytes(), 0o644)?;
    write_file(&dir.ssh_config(), config.as_bytes(), 0o644)?;
    Ok(())
}

/// The `ssh` command line that logs in to `h`.
pub fn command_line(dir: &Dir, st: &State, h: &HostState) -> String {
    let q = |p: &Path| {
        shlex::try_quote(&p.to_string_lossy())
            .map(|c| c.into_owned())
            .unwrap_or_default()
    };
    format!(
        "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} {}@{}",
        q(&dir.client_key()),
        q(&dir.known_hosts()),
        st.user,
        h.addr
    )
}
