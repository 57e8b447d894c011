//! The `local` transport: remote tests run on this machine, in the same result tree, with
//! no copying.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Fetched, GroupPaths, Launch, Running, Transport, TransportError};
use crate::contain::Stop;
use crate::discover::Group;
use crate::process::{self, Exit};
use crate::sockets::{self, Proto, Waited};

/// Runs scripts on this machine.
#[derive(Debug, Default)]
pub struct LocalTransport;

impl Running for process::Child {
    fn try_exit(&self) -> Option<Exit> {
        process::Child::try_exit(self)
    }
    fn wait_timeout(&self, timeout: Duration) -> Option<Exit> {
        process::Child::wait_timeout(self, timeout)
    }
    fn stop(&self, stop: Stop) {
        process::Child::stop(self, stop)
    }
    fn stopped_by(&self) -> Option<String> {
        process::Child::stopped_by(self).map(|s| s.as_str().to_string())
    }
    fn terminated_by_us(&self) -> bool {
        process::Child::terminated_by_us(self)
    }
    fn usage(&self) -> Option<crate::contain::Usage> {
        process::Child::usage(self)
    }
    fn cgroup_dir(&self) -> Option<PathBuf> {
        process::Child::cgroup_dir(self)
    }
    fn wait_port(
        &self,
        port: u16,
        proto: Proto,
        open: bool,
        limit: Duration,
    ) -> Result<Waited, TransportError> {
        sockets::wait(self.pid(), port, proto, open, limit, || {
            self.try_exit().is_some()
        })
        .map_err(TransportError::Io)
    }
}

/// Start a script on this machine.
pub fn start_here(launch: &Launch) -> Result<process::Child, TransportError> {
    let (program, args) = traced(
        launch.trace.as_ref(),
        &launch.program,
        &launch.cwd,
        &launch.env,
    )
    .map_err(TransportError::Host)?;
    Ok(process::spawn(&process::Spec {
        program,
        args,
        cwd: launch.cwd.clone(),
        env: launch.env.clone(),
        stdout: launch.stdout.clone(),
        stderr: launch.stderr.clone(),
        marker: launch.marker.clone(),
    })?)
}

/// The program and arguments that start `program`: itself, or under its tracer (`env`'s
/// PATH finds the tracer).
pub fn traced(
    trace: Option<&crate::config::Trace>,
    program: &Path,
    cwd: &Path,
    env: &[(String, String)],
) -> Result<(PathBuf, Vec<String>), String> {
    let Some(t) = trace else {
        return Ok((program.to_path_buf(), Vec::new()));
    };
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| std::env::var("PATH").unwrap_or_default());
    crate::trace::wrap(t, program, cwd, &path)
}

impl Transport for LocalTransport {
    fn name(&self) -> &str {
        "local"
    }
    fn address(&self) -> String {
        "127.0.0.1".into()
    }
    fn local_address(&self) -> String {
        "127.0.0.1".into()
    }
    fn user(&self) -> String {
        nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default()
    }
    fn port(&self) -> u16 {
        22
    }
    fn prepare_group(
        &self,
        group: &Group,
        _tag: &str,
        local_results: &Path,
    ) -> Result<GroupPaths, TransportError> {
        Ok(GroupPaths {
            scripts: group.dir.clone(),
            root: group.root.clone(),
            results: local_results.to_path_buf(),
        })
    }
    fn side_dir(
        &self,
        _paths: &GroupPaths,
        _rel: &Path,
        local: &Path,
    ) -> Result<PathBuf, TransportError> {
        std::fs::create_dir_all(local)
            .map_err(|e| TransportError::Io(format!("cannot create {}: {e}", local.display())))?;
        Ok(local.to_path_buf())
    }
    fn start(&self, launch: &Launch) -> Result<Box<dyn Running>, TransportError> {
        Ok(Box::new(start_here(launch)?))
    }
    fn fetch(&self, _remote: &Path, _local: &Path) -> Result<Fetched, TransportError> {
        Ok(Fetched::default())
    }
    fn runs_here(&self) -> bool {
        true
    }
    fn port_taken(&self, port: u16) -> Result<bool, TransportError> {
        sockets::tcp_port_taken(port).map_err(TransportError::Host)
    }
    fn exit_may_lag(&self) -> bool {
        false
    }
    fn finish_group(&self, _paths: &GroupPaths, _local: &Path) -> Result<(), TransportError> {
        Ok(())
    }
}
