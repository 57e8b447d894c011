//! Which host `--remote NAME` means, the way OpenSSH would read it: a `[[remote]]` of
//! pairbench.toml, `[user@]host[:port]`, and the `Host` blocks of `~/.ssh/config`
//! (HostName, User, Port, IdentityFile; `Include`d files too). Values given explicitly
//! win over the config file, as with `ssh -l user -p port`.

use std::path::{Path, PathBuf};

use crate::config::RemoteDef;

/// A resolved remote host.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// As the user wrote it (`--remote` value).
    pub name: String,
    /// What to connect to (HostName).
    pub host: String,
    pub user: String,
    pub port: u16,
    /// Private keys to try after ssh-agent, in order.
    pub identity_files: Vec<PathBuf>,
    /// Remote work folder; relative to the remote home.
    pub workdir: String,
    /// A pairbench executable for the remote host, when it differs from this machine.
    pub agent: Option<PathBuf>,
    /// Pairs this host runs at once.
    pub slots: usize,
    /// Where its host key is checked (and added): `~/.ssh/known_hosts` unless named.
    pub known_hosts: PathBuf,
}

/// What one `Host` match of `~/.ssh/config` gives.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SshConfigHost {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<String>,
}

/// Resolve `spec` with the `[[remote]]` definitions and the ssh config of `home`.
pub fn resolve(
    spec: &str,
    defs: &[RemoteDef],
    home: &Path,
    local_user: &str,
) -> Result<Target, String> {
    let def = defs.iter().find(|d| d.name == spec);
    let host_spec = def.map_or(spec, |d| d.host.as_str());
    let (mut user, alias, mut port) = split_spec(host_spec)?;
    let mut identity: Vec<String> = Vec::new();
    if let Some(d) = def {
        if d.user.is_some() {
            user = d.user.clone();
        }
        if d.port.is_some() {
            port = d.port;
        }
        identity.extend(d.identity_file.clone());
    }
    let cfg = read_ssh_config(home, &alias);
    let host = cfg
        .hostname
        .as_deref()
        .map(|h| h.replace("%h", &alias))
        .unwrap_or_else(|| alias.clone());
    let user = user.or(cfg.user).unwrap_or_else(|| local_user.to_string());
    let port = port.or(cfg.port).unwrap_or(22);
    identity.extend(cfg.identity_files);
    if identity.is_empty() {
        identity = ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|n| format!("~/.ssh/{n}"))
            .collect();
    }
    let identity_files = identity
        .iter()
        .map(|f| expand(f, home, local_user, &host, &user))
        .collect();
    Ok(Target {
        name: spec.to_string(),
        host,
        user,
        port,
        identity_files,
        workdir: def
            .and_then(|d| d.workdir.clone())
            .unwrap_or_else(|| ".pairbench".into()),
        agent: def
            .and_then(|d| d.agent.as_deref())
            .map(|a| expand(a, home, local_user, "", "")),
        slots: def.and_then(|d| d.slots).unwrap_or(1).max(1),
        known_hosts: def.and_then(|d| d.known_hosts.as_deref()).map_or_else(
            || home.join(".ssh/known_hosts"),
            |k| expand(k, home, local_user, "", ""),
        ),
    })
}

/// `[user@]host[:port]`, with `[v6]:port` and bare IPv6 addresses.
pub fn split_spec(spec: &str) -> Result<(Option<String>, String, Option<u16>), String> {
    let bad = |why: &str| {
        format!(
            "bad remote '{spec}': {why}; write it as [user@]host[:port], an ~/.ssh/config alias or a [[remote]] name"
        )
    };
    let (user, rest) = match spec.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
        Some(_) => return Err(bad("empty user")),
        None => (None, spec),
    };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        match after.strip_prefix(':') {
            Some(p) => (h.to_string(), Some(p)),
            None if after.is_empty() => (h.to_string(), None),
            None => return Err(bad("unexpected text after ']'")),
        }
    } else if rest.matches(':').count() == 1 {
        let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
        (h.to_string(), Some(p))
    } else {
        (rest.to_string(), None)
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("no host name"));
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| bad("the port is not a number from 1 to 65535"))
        })
        .transpose()?;
    Ok((user, host, port))
}

/// `~`, `%d` (home), `%u` (local user), `%h` (host), `%r` (remote user), `%%`.
fn expand(path: &str, home: &Path, local_user: &str, host: &str, user: &str) -> PathBuf {
    let home_s = home.to_string_lossy();
    let mut s = if let Some(rest) = path.strip_prefix("~/") {
        format!("{home_s}/{rest}")
    } else if path == "~" {
        home_s.to_string()
    } else {
        path.to_string()
    };
    if s.contains('%') {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match it.next() {
                Some('d') => out.push_str(&home_s),
                Some('u') => out.push_str(local_user),
                Some('h') => out.push_str(host),
                Some('r') => out.push_str(user),
                Some('%') => out.push('%'),
                Some(o) => {
                    out.push('%');
                    out.push(o);
                }
                None => out.push('%'),
            }
        }
        s = out;
    }
    PathBuf::from(s)
}

/// What `~/.ssh/config` says about `alias` (first value wins; IdentityFile adds up).
pub fn read_ssh_config(home: &Path, alias: &str) -> SshConfigHost {
    let mut out = SshConfigHost::default();
    let path = home.join(".ssh/config");
    if let Ok(text) = std::fs::read_to_string(&path) {
        apply(&text, home, alias, &mut out, 0);
    }
    out
}

/// Apply the config `text` for `alias` to `out`.
pub fn apply(text: &str, home: &Path, alias: &str, out: &mut SshConfigHost, depth: u32) {
    let mut active = true;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = split_kv(line);
        let key = key.to_ascii_lowercase();
        match key.as_str() {
            "host" => active = host_matches(&value, alias),
            // Match conditions are not evaluated: such blocks are skipped.
            "match" => active = value.trim().eq_ignore_ascii_case("all"),
            _ if !active => {}
            "include" if depth < 8 => {
                for word in words(&value) {
                    for file in include_files(home, &word) {
                        if let Ok(t) = std::fs::read_to_string(&file) {
                            apply(&t, home, alias, out, depth + 1);
                        }
                    }
                }
            }
            "hostname" if out.hostname.is_none() => out.hostname = first_word(&value),
            "user" if out.user.is_none() => out.user = first_word(&value),
            "port" if out.port.is_none() => {
                out.port = first_word(&value).and_then(|p| p.parse().ok());
            }
            "identityfile" => out.identity_files.extend(first_word(&value)),
            _ => {}
        }
    }
}

fn split_kv(line: &str) -> (String, String) {
    let idx = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let key = line[..idx].to_string();
    let mut rest = line[idx..].trim_start();
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start();
    }
    (key, rest.to_string())
}

/// Words, with "double quotes" grouping.
fn words(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in value.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn first_word(value: &str) -> Option<String> {
    words(value).into_iter().next()
}

fn host_matches(patterns: &str, alias: &str) -> bool {
    let alias = alias.to_ascii_lowercase();
    let mut hit = false;
    for p in words(patterns) {
        let p = p.to_ascii_lowercase();
        if let Some(neg) = p.strip_prefix('!') {
            if glob_match(neg.as_bytes(), alias.as_bytes()) {
                return false;
            }
        } else if glob_match(p.as_bytes(), alias.as_bytes()) {
            hit = true;
        }
    }
    hit
}

/// `*` and `?` wildcards.
pub(super) fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob_match(&p[1..], s) || (!s.is_empty() && glob_match(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob_match(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob_match(&p[1..], &s[1..]),
        _ => false,
    }
}

fn include_files(home: &Path, pattern: &str) -> Vec<PathBuf> {
    let p = if let Some(r) = pattern.strip_prefix("~/") {
        home.join(r)
    } else if pattern.starts_with('/') {
        PathBuf::from(pattern)
    } else {
        home.join(".ssh").join(pattern)
    };
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![p];
    }
    let Some(dir) = p.parent() else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| glob_match(name.as_bytes(), e.file_name().as_encoded_bytes()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            split_spec("bob@box:2222").unwrap(),
            (Some("bob".into()), "box".into(), Some(2222))
        );
        assert_eq!(split_spec("box").unwrap(), (None, "box".into(), None));
        assert_eq!(
            split_spec("[::1]:22").unwrap(),
            (None, "::1".into(), Some(22))
        );
        assert_eq!(
            split_spec("fe80::1").unwrap(),
            (None, "fe80::1".into(), None)
        );
        assert!(split_spec("box:0").is_err());
        assert!(split_spec("box:x").is_err());
        assert!(split_spec("@box").is_err());
        assert!(split_spec("").is_err());
    }

    #[test]
    fn config_blocks() {
        let text = "\
# comment
Host web* !web3
    HostName 10.0.0.%h
    User first
    Port=2200
    IdentityFile ~/.ssh/web_key
Host *
    User second
    IdentityFile \"~/.ssh/all key\"
Match host x
    User never
";
        let mut out = SshConfigHost::default();
        apply(text, Path::new("/h"), "web1", &mut out, 0);
        assert_eq!(out.hostname.as_deref(), Some("10.0.0.%h"));
        assert_eq!(out.user.as_deref(), Some("first"));
        assert_eq!(out.port, Some(2200));
        assert_eq!(out.identity_files, vec!["~/.ssh/web_key", "~/.ssh/all key"]);
        let mut out = SshConfigHost::default();
        apply(text, Path::new("/h"), "web3", &mut out, 0);
        assert_eq!(out.user.as_deref(), Some("second"));
        assert_eq!(out.hostname, None);
    }

    #[test]
    fn resolution_order() {
        let home = tempfile_home();
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::write(
            home.join(".ssh/config"),
            "Host cubie\n HostName 192.0.2.7\n User mirage\n Port 2022\n IdentityFile %d/.ssh/k_%r\n",
        )
        .unwrap();
        let t = resolve("cubie", &[], &home, "me").unwrap();
        assert_eq!(
            (t.host.as_str(), t.user.as_str(), t.port),
            ("192.0.2.7", "mirage", 2022)
        );
        assert_eq!(t.identity_files, vec![home.join(".ssh/k_mirage")]);
        let t = resolve("root@cubie:23", &[], &home, "me").unwrap();
        assert_eq!((t.user.as_str(), t.port), ("root", 23));
        let def = RemoteDef {
            name: "board".into(),
            host: "cubie".into(),
            user: Some("u".into()),
            workdir: Some("/tmp/w".into()),
            ..RemoteDef::default()
        };
        let t = resolve("board", &[def], &home, "me").unwrap();
        assert_eq!(
            (t.host.as_str(), t.user.as_str(), t.port),
            ("192.0.2.7", "u", 2022)
        );
        assert_eq!(t.workdir, "/tmp/w");
        assert_eq!(t.known_hosts, home.join(".ssh/known_hosts"));
        assert_eq!(t.name, "board");
        let def = RemoteDef {
            name: "bed".into(),
            host: "10.0.0.2".into(),
            known_hosts: Some("~/bed/known_hosts".into()),
            ..RemoteDef::default()
        };
        let t = resolve("bed", &[def], &home, "me").unwrap();
        assert_eq!(t.known_hosts, home.join("bed/known_hosts"));
        let t = resolve("plain", &[], &home, "me").unwrap();
        assert_eq!(
            (t.host.as_str(), t.user.as_str(), t.port),
            ("plain", "me", 22)
        );
        assert_eq!(t.identity_files[0], home.join(".ssh/id_ed25519"));
        let _ = std::fs::remove_dir_all(&home);
    }

    fn tempfile_home() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "pairbench-target-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
