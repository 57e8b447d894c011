//! Faults made by a pair's scripts (docs/testbed.md, "From scripts"): the variables that
//! let `testbed_link` and `testbed_host` find the testbed and the pair's host, and, when
//! the pair ends, its `events.csv` — every change with its time, from the file the
//! helpers wrote in the local side's folder — and the hosts it changed put back as they
//! were made, so a fault never leaks into the next pair.

use std::path::Path;

use super::command::{EVENTS_ENV, HOST_ENV};
use super::ops::{self, HostChange};
use super::state::Dir;

/// The helpers' file, inside the local side's folder (a script never writes the pair's).
pub const SIDE_FILE: &str = ".testbed-events.csv";

/// Variables for a local test whose remote host is `remote`, its folder `local_dir`.
pub fn pair_env(dir: &Path, local_dir: &Path, remote: &str) -> Vec<(String, String)> {
    vec![
        (super::DIR_ENV.into(), dir.to_string_lossy().into_owned()),
        (HOST_ENV.into(), remote.into()),
        (
            EVENTS_ENV.into(),
            local_dir.join(SIDE_FILE).to_string_lossy().into_owned(),
        ),
    ]
}

/// Variables for a local hook of a group whose remote host is `remote`: the helpers
/// work there too (their changes are not undone: a hook sets the stage on purpose).
pub fn hook_env(dir: &Path, remote: &str) -> Vec<(String, String)> {
    vec![
        (super::DIR_ENV.into(), dir.to_string_lossy().into_owned()),
        (HOST_ENV.into(), remote.into()),
    ]
}

/// After a pair: the contents of the pair's `events.csv` (the helpers' events, with
/// `t_s`, the seconds since `started`; `None` when there were none), which pairbench
/// writes with its own files; each host they changed is restored. Also a message for
/// each thing that could not be done. The helpers' file is read without following links.
pub fn finish_pair(
    dir: &Dir,
    local_dir: &Path,
    started: chrono::DateTime<chrono::Local>,
) -> (Option<Vec<u8>>, Vec<String>) {
    let side = local_dir.join(SIDE_FILE);
    let Ok(bytes) = crate::tree::nofollow::read_beneath(local_dir, Path::new(SIDE_FILE)) else {
        return (None, Vec::new());
    };
    let mut rd = csv::Reader::from_reader(&bytes[..]);
    let mut problems = Vec::new();
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut hosts: Vec<String> = Vec::new();
    for rec in rd.records().flatten() {
        let get = |i: usize| rec.get(i).unwrap_or("").to_string();
        let (time, host) = (get(0), get(1));
        let t_s = chrono::DateTime::parse_from_rfc3339(&time)
            .map(|t| {
                let d = t.signed_duration_since(started);
                format!("{:.3}", d.num_milliseconds() as f64 / 1000.0)
            })
            .unwrap_or_default();
        if !hosts.contains(&host) {
            hosts.push(host.clone());
        }
        rows.push([t_s, time, host, get(2), get(3)]);
    }
    let _ = std::fs::remove_file(&side);
    for host in &hosts {
        let (now, errs) = restore(dir, host);
        problems.extend(errs);
        if let Some(now) = now {
            let time = chrono::Local::now();
            let t_s = time.signed_duration_since(started).num_milliseconds() as f64 / 1000.0;
            rows.push([
                format!("{t_s:.3}"),
                time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                host.clone(),
                "restore (pair ended)".into(),
                now,
            ]);
        }
    }
    let written = (|| -> Result<Vec<u8>, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["t_s", "time", "host", "change", "now"])?;
        for r in &rows {
            w.write_record(r)?;
        }
        w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
    })();
    match written {
        Ok(b) => (Some(b), problems),
        Err(e) => {
            problems.push(format!("cannot write the pair's events.csv: {e}"));
            (None, problems)
        }
    }
}

/// Put `host` back as `up` made it: running, link healed and shaped as configured.
fn restore(dir: &Dir, host: &str) -> (Option<String>, Vec<String>) {
    let Ok(st) = ops::loaded(dir) else {
        return (None, Vec::new());
    };
    let Some(h) = st.host(host) else {
        return (None, Vec::new());
    };
    let mut errs = Vec::new();
    let mut changed = false;
    if h.stopped || h.paused {
        let change = if h.stopped {
            HostChange::Start
        } else {
            HostChange::Resume
        };
        match ops::host(dir, host, change) {
            Ok(_) => changed = true,
            Err(e) => errs.push(format!("cannot restore testbed host {host}: {e}")),
        }
    }
    if h.cut || h.link != h.configured {
        match ops::reset_link(dir, host) {
            Ok(_) => changed = true,
            Err(e) => errs.push(format!("cannot restore the link of {host}: {e}")),
        }
    }
    let now = ops::loaded(dir).ok().and_then(|st| {
        st.host(host)
            .map(|h| format!("{}; link {}", ops::host_state(h), h.link))
    });
    (now.filter(|_| changed), errs)
}
