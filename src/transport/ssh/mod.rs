//! The `ssh` transport: remote tests and hooks run on another host, reached over one
//! authenticated SSH connection per host (see [`connect`]). pairbench uploads itself
//! there and talks to that copy (`pairbench agent`, see [`agent`]) over a single
//! channel (see [`link`]), so a pair costs no SSH session and no login shell: starting,
//! ending and copying back are messages on that channel.
//!
//! Remote layout, under the work folder (`[[remote]] workdir`, default `~/.pairbench`):
//! `bin/pairbench-<hash>` (kept, uploaded once per build) and `runs/<run>/` with
//! `groups/<group>/` (the group's scripts) and `results/<tag>/<group>/` (cwd of remote
//! hooks, `<pair>/remote/` of remote tests). A run's folder is removed at the end unless
//! `--keep-remote`.

pub mod agent;
pub mod connect;
pub mod link;
pub mod proto;
pub mod target;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;

use super::{Fetched, GroupPaths, Launch, Running, Transport, TransportError};
use crate::config::RunOptions;
use crate::discover::Group;
use crate::hostinfo::{self, HostInfo};
use link::{Link, PackTo, Packed, Pending, RemoteProc};
use proto::{Event, Request};
use target::Target;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A live connection and what it told us.
struct Conn {
    link: Link,
    /// The plain files at the root of the groups folder are uploaded (once).
    root_files: Mutex<bool>,
    addr: SocketAddr,
    run_dir: PathBuf,
    local_host: String,
    info: HostInfo,
}

enum State {
    /// Connecting in the background (several hosts connect at once).
    Connecting(Option<std::thread::JoinHandle<Result<Conn, String>>>),
    Up(Arc<Conn>),
    Down(String),
}

/// Runs scripts on one remote host over SSH.
pub struct SshTransport {
    target: Target,
    opts: connect::Opts,
    keep_remote: bool,
    run_id: String,
    state: Mutex<State>,
    /// Side folders made for pairs and hooks: (group results folder, relative path).
    /// They come back with `fetch`, never with `finish_group`.
    side_dirs: Mutex<HashSet<(PathBuf, PathBuf)>>,
    /// `-v`: remote output is streamed into these local folders, by remote folder.
    mirrors: Option<Mutex<HashMap<PathBuf, PathBuf>>>,
    /// Side folders asked for, by remote folder: the local folder they come back to,
    /// and the `mkdir` whose answer is read when the side's script starts (the agent
    /// answers in order, so the script never starts before its folder is there).
    sides: Mutex<HashMap<PathBuf, (PathBuf, Option<Pending>)>>,
    /// Side folders that came back with their script's `terminate`.
    packed: Packed,
}

fn local_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default()
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn io(e: impl std::fmt::Display) -> TransportError {
    TransportError::Io(e.to_string())
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl SshTransport {
    /// Resolve `spec` and connect. A bad `spec` is an error; a host that cannot be
    /// reached is not (its pairs become ERROR with the reason).
    pub fn new(spec: &str, opts: &RunOptions) -> anyhow::Result<SshTransport> {
        let home = home_dir();
        let target = target::resolve(spec, &opts.remote_defs, &home, &local_user())
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--remote {spec}"))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let host: String = host
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let run_id = format!("{host}-{}-{nanos:x}", std::process::id());
        let t = SshTransport {
            target,
            opts: connect::Opts {
                connect_timeout: opts.connect_timeout,
                accept_new_host_keys: opts.accept_new_host_keys,
                kill_grace: opts.kill_grace,
                run_id: String::new(),
                keep_remote: opts.keep_remote,
            },
            keep_remote: opts.keep_remote,
            run_id: run_id.clone(),
            state: Mutex::new(State::Connecting(None)),
            side_dirs: Mutex::default(),
            mirrors: opts.verbose.then(Mutex::default),
            sides: Mutex::default(),
            packed: Packed::default(),
        };
        let (target, mut opts, run_id) = (t.target.clone(), t.opts.clone(), t.run_id.clone());
        opts.run_id = run_id.clone();
        let handle = std::thread::Builder::new()
            .name(format!("ssh-connect-{spec}"))
            .spawn(move || connect(&target, &opts, &run_id))
            .context("cannot start a thread")?;
        *lock(&t.state) = State::Connecting(Some(handle));
        Ok(t)
    }

    /// The live connection (waiting for the connect on first use). A host that could
    /// not be reached or whose connection died stays down for the run (the pool takes it
    /// out).
    fn conn(&self) -> Result<Arc<Conn>, TransportError> {
        let mut st = lock(&self.state);
        if let State::Connecting(handle) = &mut *st {
            let result = handle
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_else(|| Err("ssh: the connection attempt failed".into()));
            *st = match result {
                Ok(c) => State::Up(Arc::new(c)),
                Err(why) => {
                    eprintln!("pairbench: {}: {why}", self.target.name);
                    State::Down(why)
                }
            };
        }
        match &*st {
            State::Up(c) => match c.link.dead() {
                None => Ok(c.clone()),
                Some(why) => Err(TransportError::Host(why)),
            },
            State::Down(why) => Err(TransportError::Host(why.clone())),
            State::Connecting(_) => Err(TransportError::Host("ssh: not connected".into())),
        }
    }

    /// How long to wait for one answer before calling the agent stuck.
    fn limit(&self) -> Duration {
        (self.opts.connect_timeout * 2).max(Duration::from_secs(60))
    }

    fn call(&self, c: &Conn, make: impl FnOnce(u64) -> Request) -> Result<Event, TransportError> {
        c.link.shared().call(make, self.limit())
    }

    /// Copy remote folder `remote` into `local`, leaving out `exclude`.
    fn pull(
        &self,
        c: &Conn,
        remote: &Path,
        local: &Path,
        exclude: Vec<String>,
    ) -> Result<Fetched, TransportError> {
        let remove = !self.keep_remote;
        let path = s(remote);
        let mut fetched = Fetched::default();
        c.link
            .shared()
            .begin(|id| Request::Pack {
                id,
                path,
                exclude,
                remove,
            })?
            .finish(self.limit(), |ev| write_entry(local, ev, &mut fetched))?;
        Ok(fetched)
    }

    /// Upload the files of a folder (`deep`: and of its subfolders), all requests at once.
    fn upload(&self, c: &Conn, from: &Path, to: &Path, deep: bool) -> Result<(), TransportError> {
        let shared = c.link.shared();
        let mut waiting = Vec::new();
        let depth = if deep { usize::MAX } else { 1 };
        // A group's references are only read on this machine.
        let references = from.join(crate::discover::EXPECTED_DIR);
        for entry in walkdir::WalkDir::new(from)
            .follow_links(true)
            .max_depth(depth)
            .into_iter()
            .filter_entry(|e| !(deep && e.depth() == 1 && e.path() == references))
        {
            // A dangling link is no reason to refuse the group (the local side ignores it too).
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
            let data = std::fs::read(entry.path())
                .map_err(|e| io(format!("cannot read {}: {e}", entry.path().display())))?;
            let mode = entry
                .metadata()
                .map(|m| m.permissions().mode())
                .unwrap_or(0o644);
            let path = s(&to.join(rel));
            let mut chunks: Vec<&[u8]> = data.chunks(proto::CHUNK).collect();
            if chunks.is_empty() {
                chunks.push(&[]);
            }
            for (i, chunk) in chunks.into_iter().enumerate() {
                let path = path.clone();
                waiting.push(shared.begin(|id| Request::Put {
                    id,
                    path,
                    mode,
                    data: proto::b64_encode(chunk),
                    append: i > 0,
                })?);
            }
        }
        for p in waiting {
            p.finish(self.limit(), |_| Ok(()))?;
        }
        Ok(())
    }
}

/// Connect to `target` and start its agent; what it told us.
fn connect(target: &Target, opts: &connect::Opts, run_id: &str) -> Result<Conn, String> {
    let est = connect::establish(target, opts).map_err(|e| e.to_string())?;
    let addr = est.addr;
    let run_dir = est.workdir.join("runs").join(run_id);
    let (local_host, mut info) = match &est.hello {
        Event::Hello {
            uname,
            cpuinfo,
            meminfo,
            ssh_connection,
            containment,
            cleaned,
            accounting,
            ..
        } => {
            if let Some(line) = cleaned {
                eprintln!("pairbench: {}: {line}", target.name);
            }
            let mut info = hostinfo::from_parts(uname, cpuinfo, meminfo);
            info.containment = Some(containment.to_string());
            info.accounting = accounting
                .as_ref()
                .and_then(|a| serde_json::to_value(a).ok());
            (
                ssh_connection
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                info,
            )
        }
        _ => (String::new(), HostInfo::default()),
    };
    info.name = target.name.clone();
    info.role = "remote".into();
    info.address = addr.ip().to_string();
    let link = Link::start(est, &target.name, opts.connect_timeout)?;
    Ok(Conn {
        link,
        root_files: Mutex::new(false),
        addr,
        run_dir,
        local_host,
        info,
    })
}

/// Write one entry of a copied-back folder below `root`: nothing lands outside it, no
/// folder or file is written through a link (a link there is replaced, never followed),
/// and links the remote host sent are not recreated here (a remote host is trusted less
/// than this machine); each is listed in `fetched.notes`.
fn write_entry(root: &Path, ev: Event, fetched: &mut Fetched) -> Result<(), String> {
    use crate::tree::nofollow;
    let safe = |rel: &str| -> Result<PathBuf, String> {
        let p = Path::new(rel);
        if rel.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!(
                "refusing to copy back '{rel}': it would leave the result folder"
            ));
        }
        Ok(p.to_path_buf())
    };
    let fail =
        |p: &Path, e: std::io::Error| format!("cannot write {}: {e}", root.join(p).display());
    match ev {
        Event::File {
            rel,
            mode,
            data,
            append,
            ..
        } => {
            let p = safe(&rel)?;
            let bytes = proto::b64_decode(&data).ok_or_else(|| format!("bad data for {rel}"))?;
            let mut f = nofollow::create_beneath(root, &p, append, mode & 0o777)
                .map_err(|e| fail(&p, e))?;
            std::io::Write::write_all(&mut f, &bytes).map_err(|e| fail(&p, e))?;
            let _ = f.set_permissions(std::fs::Permissions::from_mode(mode & 0o777));
            Ok(())
        }
        Event::Dir { rel, .. } => {
            let p = safe(&rel)?;
            nofollow::create_dirs_beneath(root, &p)
                .map(|_| ())
                .map_err(|e| fail(&p, e))
        }
        Event::Link { rel, target, .. } => {
            safe(&rel)?;
            fetched.notes.push(format!(
                "the remote host sent a link {rel} -> {target}; links from a remote host are not recreated"
            ));
            Ok(())
        }
        _ => Ok(()),
    }
}

impl Transport for SshTransport {
    fn name(&self) -> &str {
        &self.target.name
    }

    fn address(&self) -> String {
        let _ = self.conn();
        match &*lock(&self.state) {
            State::Up(c) => c.addr.ip().to_string(),
            _ => self.target.host.clone(),
        }
    }

    fn local_address(&self) -> String {
        let _ = self.conn();
        match &*lock(&self.state) {
            State::Up(c) => c.local_host.clone(),
            _ => String::new(),
        }
    }

    fn user(&self) -> String {
        self.target.user.clone()
    }

    fn port(&self) -> u16 {
        self.target.port
    }

    fn healthy(&self) -> Result<(), String> {
        self.conn().map(|_| ()).map_err(|e| e.to_string())
    }

    fn slots(&self) -> Option<usize> {
        Some(self.target.slots)
    }

    fn port_taken(&self, port: u16) -> Result<bool, TransportError> {
        let c = self.conn()?;
        match self.call(&c, |id| Request::PortTaken { id, port })? {
            Event::Port { state, .. } if state == "taken" => Ok(true),
            Event::Port { state, .. } if state == "free" => Ok(false),
            _ => Err(TransportError::Host(
                "the agent did not say whether the port is taken".into(),
            )),
        }
    }

    fn host_info(&self) -> HostInfo {
        let _ = self.conn();
        match &*lock(&self.state) {
            State::Up(c) => c.info.clone(),
            _ => HostInfo {
                name: self.target.name.clone(),
                role: "remote".into(),
                address: self.target.host.clone(),
                ..HostInfo::default()
            },
        }
    }

    fn prepare_group(
        &self,
        group: &Group,
        tag: &str,
        _local_results: &Path,
    ) -> Result<GroupPaths, TransportError> {
        let c = self.conn()?;
        let root = c.run_dir.join("groups");
        let scripts = root.join(&group.name);
        let results = c.run_dir.join("results").join(tag).join(&group.name);
        let path = s(&results);
        self.call(&c, |id| Request::Mkdir { id, path })?;
        self.upload(&c, &group.dir, &scripts, true)?;
        // Helper files beside the groups (REMOTE_ROOT_PATH), not the other groups.
        let mut root_done = lock(&c.root_files);
        if !*root_done {
            self.upload(&c, &group.root, &root, false)?;
            *root_done = true;
        }
        drop(root_done);
        Ok(GroupPaths {
            scripts,
            root,
            results,
        })
    }

    fn side_dir(
        &self,
        paths: &GroupPaths,
        rel: &Path,
        local: &Path,
    ) -> Result<PathBuf, TransportError> {
        let c = self.conn()?;
        let remote = paths.results.join(rel);
        std::fs::create_dir_all(local)
            .map_err(|e| io(format!("cannot create {}: {e}", local.display())))?;
        let path = s(&remote);
        let made = c.link.shared().begin(|id| Request::Mkdir { id, path })?;
        lock(&self.sides).insert(remote.clone(), (local.to_path_buf(), Some(made)));
        lock(&self.side_dirs).insert((paths.results.clone(), rel.to_path_buf()));
        if let Some(m) = &self.mirrors {
            lock(m).insert(remote.clone(), local.to_path_buf());
        }
        Ok(remote)
    }

    fn start(&self, launch: &Launch) -> Result<Box<dyn Running>, TransportError> {
        let c = self.conn()?;
        let shared = c.link.shared();
        let id = shared.next_id();
        // With -v, the output comes as it is written, into the local copy of its folder.
        let mirror = self.mirrors.as_ref().and_then(|m| {
            let m = lock(m);
            let local_of = |p: &Path| {
                let dir = m.get(p.parent()?)?;
                Some(dir.join(p.file_name()?))
            };
            Some([local_of(&launch.stdout)?, local_of(&launch.stderr)?])
        });
        let stream = mirror.is_some();
        let st = shared.track(id, mirror);
        // The script's side folder (its output goes there), made by a `mkdir` sent
        // before and answered by now.
        let side = launch.stdout.parent().map(Path::to_path_buf);
        let (local, made) = side
            .as_ref()
            .and_then(|d| {
                lock(&self.sides)
                    .get_mut(d)
                    .map(|(l, m)| (Some(l.clone()), m.take()))
            })
            .unwrap_or((None, None));
        let pack = side.zip(local).map(|(remote, local)| PackTo {
            remote,
            local,
            remove: !self.keep_remote,
            into: self.packed.clone(),
        });
        // Its folder comes back as soon as it ends, when it ends on its own.
        let exit_pack = match &pack {
            Some(p) => {
                let pack_id = shared.next_id();
                Some((
                    shared.expect(pack_id)?,
                    (
                        pack_id,
                        proto::PackAfter {
                            path: s(&p.remote),
                            remove: p.remove,
                        },
                    ),
                ))
            }
            None => None,
        };
        let (exit_pending, pack_on_exit) = match exit_pack {
            Some((p, a)) => (Some(p), Some(a)),
            None => (None, None),
        };
        let req = Request::Start {
            id,
            program: s(&launch.program),
            cwd: s(&launch.cwd),
            env: launch.env.clone(),
            stdout: s(&launch.stdout),
            stderr: s(&launch.stderr),
            marker: launch.marker.clone(),
            stream,
            pack_on_exit,
            trace: launch.trace.clone(),
            sample_ms: launch.sample.map(|d| d.as_millis().max(1) as u64),
        };
        let answer = shared.begin_as(id, req).and_then(|p| {
            let folder = made.map(|m| {
                m.finish(self.limit(), |_| Ok(()))
                    .map_err(|e| io(format!("cannot prepare the remote folder: {e}")))
            });
            let started = p.finish(self.limit(), |_| Ok(()));
            match folder {
                Some(Err(e)) => Err(e),
                _ => started,
            }
        });
        match answer {
            Ok(_) => Ok(Box::new(RemoteProc::new(
                shared.clone(),
                id,
                st,
                pack,
                exit_pending,
            ))),
            Err(e) => {
                shared.untrack(id);
                Err(e)
            }
        }
    }

    fn fetch(&self, remote: &Path, local: &Path) -> Result<Fetched, TransportError> {
        let c = self.conn()?;
        if let Some((_, Some(made))) = lock(&self.sides).remove(remote) {
            made.finish(self.limit(), |_| Ok(()))?;
        }
        // Sent back already, with the answer to ending its script.
        let packed = lock(&self.packed).remove(remote);
        if let Some((to, result)) = packed
            && to == local
        {
            return result;
        }
        self.pull(&c, remote, local, Vec::new())
    }

    fn finish_group(&self, paths: &GroupPaths, local_results: &Path) -> Result<(), TransportError> {
        let c = self.conn()?;
        let exclude: Vec<String> = lock(&self.side_dirs)
            .iter()
            .filter(|(r, _)| *r == paths.results)
            .map(|(_, rel)| s(rel))
            .collect();
        let pulled = self.pull(&c, &paths.results, local_results, exclude);
        if !self.keep_remote {
            let path = s(&paths.scripts);
            self.call(&c, |id| Request::Remove { id, path })?;
        }
        pulled.map(|_| ())
    }
}

impl Drop for SshTransport {
    fn drop(&mut self) {
        let _ = self.conn();
        let st = std::mem::replace(&mut *lock(&self.state), State::Connecting(None));
        if let State::Up(c) = st {
            if c.link.dead().is_none() {
                if self.keep_remote {
                    eprintln!(
                        "pairbench: kept the remote work folder {}:{}",
                        self.target.name,
                        c.run_dir.display()
                    );
                } else {
                    let path = s(&c.run_dir);
                    let _ = c
                        .link
                        .shared()
                        .call(|id| Request::Remove { id, path }, Duration::from_secs(10));
                }
            }
            c.link.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(rel: &str) -> Event {
        Event::File {
            re: 1,
            rel: rel.into(),
            mode: 0o644,
            data: proto::b64_encode(b"x"),
            append: false,
        }
    }

    #[test]
    fn copied_back_names_cannot_leave_the_folder() {
        let root = std::env::temp_dir().join(format!("pairbench-entry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let mut f = Fetched::default();
        for bad in ["../evil", "/etc/evil", "a/../../evil", "", "."] {
            assert!(write_entry(&root, file(bad), &mut f).is_err(), "{bad}");
        }
        assert!(!root.parent().unwrap().join("evil").exists());
        write_entry(&root, file("a/b c/ü"), &mut f).unwrap();
        assert_eq!(std::fs::read(root.join("a/b c/ü")).unwrap(), b"x");
        let link = Event::Link {
            re: 1,
            rel: "../l".into(),
            target: "/".into(),
        };
        assert!(write_entry(&root, link, &mut f).is_err());
        // A link is never recreated here, and never written through.
        let link = Event::Link {
            re: 1,
            rel: "out".into(),
            target: "/etc/passwd".into(),
        };
        write_entry(&root, link, &mut f).unwrap();
        assert!(std::fs::symlink_metadata(root.join("out")).is_err());
        assert_eq!(f.notes.len(), 1, "{:?}", f.notes);
        let outside = root.with_extension("outside");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("planted")).unwrap();
        write_entry(&root, file("planted"), &mut f).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        std::os::unix::fs::symlink("/", root.join("dirlink")).unwrap();
        assert!(write_entry(&root, file("dirlink/evil"), &mut f).is_err());
        let _ = std::fs::remove_file(&outside);
        let _ = std::fs::remove_dir_all(&root);
    }
}
