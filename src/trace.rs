//! Tracing a side's script (`--trace`; docs/resources.md): the command that runs a script
//! under strace or perf on the machine it runs on (the tracer missing there: the reason
//! the pair is an ERROR, naming the Debian package), and, after the pair, what the
//! traces in `<side>/trace/` tell as metrics (`strace.<syscall>.calls`, `perf.<event>`)
//! and perf record's text report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::config::Trace;
use crate::tree::nofollow;

/// The folder, in a side's folder, that holds its traces.
pub const DIR: &str = "trace";

/// Find `tool` on `path` (a PATH value: the script's).
fn find(tool: &str, path: &str) -> Option<PathBuf> {
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(tool))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What a helper command printed and whether it exited 0.
struct Ran {
    ok: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Run `program args` to its end (up to `limit`), through [`crate::process`] (whose reaper
/// collects every child of pairbench), its output in a temporary folder of its own.
fn run(program: &Path, args: &[String], limit: Duration) -> Result<Ran, String> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = std::env::temp_dir().join(format!("pairbench-trace-{}-{n}", std::process::id()));
    std::fs::create_dir(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let spec = crate::process::Spec {
        program: program.to_path_buf(),
        args: args.to_vec(),
        cwd: tmp.clone(),
        env: Vec::new(),
        stdout: tmp.join("stdout"),
        stderr: tmp.join("stderr"),
        marker: format!("pairbench-trace-{}-{n}", std::process::id()),
    };
    let started = crate::process::spawn(&spec).map_err(|e| e.to_string());
    let ran = started.map(|child| {
        let exit = child.wait_timeout(limit);
        child.terminate(Duration::from_millis(200));
        let read = |name: &str| std::fs::read(tmp.join(name)).unwrap_or_default();
        (
            exit,
            Ran {
                ok: exit.and_then(|e| e.code()) == Some(0),
                stdout: read("stdout"),
                stderr: read("stderr"),
            },
        )
    });
    let _ = std::fs::remove_dir_all(&tmp);
    let (exit, ran) = ran?;
    if exit.is_none() {
        return Err(format!(
            "{} did not end within {}",
            program.display(),
            humantime::format_duration(limit)
        ));
    }
    Ok(ran)
}

/// Can perf count events on this machine? (`Err`: what perf said.) Asked once.
fn perf_works(perf: &Path) -> Result<(), String> {
    static ANSWER: OnceLock<Result<(), String>> = OnceLock::new();
    ANSWER
        .get_or_init(|| {
            let args: Vec<String> = ["stat", "-x", ",", "-o", "/dev/null", "--", "true"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let out = run(perf, &args, Duration::from_secs(30))?;
            if out.ok {
                return Ok(());
            }
            let said = String::from_utf8_lossy(&out.stderr);
            let line = said
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no reason given");
            Err(format!("perf cannot count events on this host: {line}"))
        })
        .clone()
}

/// The program and arguments that run `program` under `trace`, with the side's folder
/// `cwd` as working folder (the traces go to its `trace/`, made here) and `path` the
/// script's PATH. `Err`: why it cannot be traced on this machine (the pair's reason).
pub fn wrap(
    trace: &Trace,
    program: &Path,
    cwd: &Path,
    path: &str,
) -> Result<(PathBuf, Vec<String>), String> {
    let (tool, package) = trace.tool();
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "this host".into());
    let Some(exe) = find(tool, path) else {
        return Err(format!(
            "--trace needs {tool}, which is not installed on {host}: install the Debian package {package} (apt-get install {package})"
        ));
    };
    if tool == "perf" {
        perf_works(&exe)?;
    }
    let dir = cwd.join(DIR);
    std::fs::create_dir(&dir)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists
                && nofollow::kind(&dir) == nofollow::Kind::Dir
            {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let program = std::path::absolute(program)
        .map_err(|e| format!("{}: {e}", program.display()))?
        .to_string_lossy()
        .into_owned();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut args = match trace {
        Trace::Strace { args } => {
            let mut a = s(&["-f", "-ff", "-o", "trace/strace"]);
            a.extend(args.iter().cloned());
            a
        }
        Trace::PerfStat => s(&["stat", "-x", ",", "-o", "trace/perf-stat.txt"]),
        Trace::PerfRecord { args } => {
            let mut a = s(&["record", "-q", "-o", "trace/perf.data"]);
            a.extend(args.iter().cloned());
            a
        }
    };
    args.push("--".into());
    args.push(program);
    Ok((exe, args))
}

/// The traces of the side folder `side_dir` as metrics (name → value), and problems
/// (one line each). For perf record, its text report is written beside `perf.data`.
pub fn finish(trace: &Trace, side_dir: &Path) -> (BTreeMap<String, f64>, Vec<String>) {
    let mut problems = Vec::new();
    let dir = side_dir.join(DIR);
    if nofollow::kind(&dir) != nofollow::Kind::Dir {
        problems.push(format!("no {DIR}/ folder: the tracer left nothing"));
        return (BTreeMap::new(), problems);
    }
    let metrics = match trace {
        Trace::Strace { .. } => {
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.starts_with("strace."))
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            let mut texts = Vec::new();
            for f in &files {
                match nofollow::read_beneath(side_dir, &Path::new(DIR).join(f)) {
                    Ok(b) => texts.push(String::from_utf8_lossy(&b).into_owned()),
                    Err(e) => problems.push(format!("{DIR}/{f}: {e}")),
                }
            }
            strace_counts(&texts)
        }
        Trace::PerfStat => {
            match nofollow::read_beneath(side_dir, &Path::new(DIR).join("perf-stat.txt")) {
                Ok(b) => perf_stat(&String::from_utf8_lossy(&b)),
                Err(e) => {
                    problems.push(format!("{DIR}/perf-stat.txt: {e}"));
                    BTreeMap::new()
                }
            }
        }
        Trace::PerfRecord { .. } => {
            if let Err(e) = perf_report(side_dir) {
                problems.push(e);
            }
            BTreeMap::new()
        }
    };
    (metrics, problems)
}

/// `perf report --stdio` of `trace/perf.data` into `trace/perf-report.txt`.
fn perf_report(side_dir: &Path) -> Result<(), String> {
    let data = side_dir.join(DIR).join("perf.data");
    if !nofollow::is_file(&data) {
        return Err(format!("{DIR}/perf.data: perf record wrote none"));
    }
    let perf = find("perf", &std::env::var("PATH").unwrap_or_default()).ok_or_else(|| {
        "perf is not installed here, so perf.data has no text report (install linux-perf)"
            .to_string()
    })?;
    let args = vec![
        "report".to_string(),
        "-i".into(),
        data.to_string_lossy().into_owned(),
        "--stdio".into(),
        "--force".into(),
    ];
    let out = run(&perf, &args, Duration::from_secs(120))
        .map_err(|e| format!("cannot run perf report: {e}"))?;
    let mut text = out.stdout;
    if !out.ok {
        text.extend_from_slice(&out.stderr);
    }
    let mut f = nofollow::create_beneath(
        side_dir,
        &Path::new(DIR).join("perf-report.txt"),
        false,
        0o644,
    )
    .map_err(|e| format!("{DIR}/perf-report.txt: {e}"))?;
    std::io::Write::write_all(&mut f, &text).map_err(|e| format!("{DIR}/perf-report.txt: {e}"))
}

/// Calls per syscall in strace's per-process files (`strace.<syscall>.calls`), errors
/// (`strace.<syscall>.errors`), and the totals `strace.calls` and `strace.processes`.
pub fn strace_counts(files: &[String]) -> BTreeMap<String, f64> {
    let mut calls: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for text in files {
        for line in text.lines() {
            // Signals (`--- SIG`) and exits (`+++`) are not calls.
            let line = line.trim_start();
            if line.starts_with("---") || line.starts_with("+++") {
                continue;
            }
            // `<... read resumed>` continues a call counted when it started: only its
            // result is new.
            let (name, resumed) = match line.strip_prefix("<... ") {
                Some(rest) => match rest.split_once(" resumed>") {
                    Some((name, _)) => (name, true),
                    None => continue,
                },
                None => match line.find('(') {
                    Some(open) => (&line[..open], false),
                    None => continue,
                },
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            let e = calls.entry(name.to_string()).or_default();
            if !resumed {
                e.0 += 1;
            }
            // strace pads short calls to a column: `close(3)       = 0`. The result is
            // after the last ` = `; `= -1 ENOENT (...)` failed, `= ? ERESTARTSYS (...)`
            // was interrupted, `= ?` alone (exit_group) never returns and did not fail.
            if line.rsplit_once(" = ").is_some_and(|(_, r)| {
                let r = r.trim_start();
                r.starts_with("-1 ") || r.starts_with("? E")
            }) {
                e.1 += 1;
            }
        }
    }
    let mut out = BTreeMap::new();
    let mut total = 0;
    for (name, (n, err)) in calls {
        total += n;
        out.insert(format!("strace.{name}.calls"), n as f64);
        if err > 0 {
            out.insert(format!("strace.{name}.errors"), err as f64);
        }
    }
    out.insert("strace.calls".into(), total as f64);
    out.insert("strace.processes".into(), files.len() as f64);
    out
}

/// perf stat's `-x ,` counters (`value,unit,event,...`) as `perf.<event>`; counters
/// perf could not count are left out.
pub fn perf_stat(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let (Some(value), Some(event)) = (f.first(), f.get(2)) else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let event: String = event
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if !event.is_empty() && v.is_finite() {
            out.insert(format!("perf.{event}"), v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_files_are_counted() {
        let a = "execve(\"/bin/sh\", [\"sh\"], 0x7ffd /* 20 vars */) = 0\n\
                 openat(AT_FDCWD, \"/nope\", O_RDONLY) = -1 ENOENT (No such file or directory)\n\
                 read(3,  <unfinished ...>\n\
                 <... read resumed>\"x\", 1) = 1\n\
                 --- SIGCHLD {si_signo=SIGCHLD} ---\n\
                 +++ exited with 0 +++\n";
        let b = "openat(AT_FDCWD, \"/etc\", O_RDONLY) = 3\n\
                 close(3)                                = 0\n\
                 access(\"/x\", F_OK)                      = -1 ENOENT (No such file or directory)\n\
                 write(1, \"a = -1 b\", 8)                 = 8\n\
                 wait4(-1,  <unfinished ...>\n\
                 <... wait4 resumed>0x7ffc, 0, NULL) = ? ERESTARTSYS (To be restarted)\n\
                 exit_group(0)                           = ?\n";
        let m = strace_counts(&[a.to_string(), b.to_string()]);
        assert_eq!(m["strace.openat.calls"], 2.0);
        assert_eq!(m["strace.openat.errors"], 1.0);
        assert_eq!(m["strace.read.calls"], 1.0);
        // Padded results are read like unpadded ones.
        assert_eq!(m["strace.access.errors"], 1.0);
        assert!(!m.contains_key("strace.close.errors"));
        // ` = ` inside an argument is not the result.
        assert!(!m.contains_key("strace.write.errors"));
        // An interrupted call counts as an error where it started; exit_group never returns.
        assert_eq!(m["strace.wait4.errors"], 1.0);
        assert_eq!(m["strace.exit_group.calls"], 1.0);
        assert!(!m.contains_key("strace.exit_group.errors"));
        assert_eq!(m["strace.calls"], 9.0);
        assert_eq!(m["strace.processes"], 2.0);
        assert!(!m.contains_key("strace.execve.errors"));
    }

    #[test]
    fn perf_stat_counters_are_metrics() {
        let t = "# started on x\n\n2.00,msec,task-clock,1995168,100.00,0.645,CPUs utilized\n\
                 3,,context-switches,1995168,100.00,1.504,K/sec\n\
                 <not supported>,,cycles,0,100.00,,\n";
        let m = perf_stat(t);
        assert_eq!(m["perf.task-clock"], 2.0);
        assert_eq!(m["perf.context-switches"], 3.0);
        assert!(!m.contains_key("perf.cycles"));
    }

    #[test]
    fn traces_parse_from_the_command_line() {
        assert_eq!(
            Trace::parse("strace:-e trace=network").unwrap(),
            Trace::Strace {
                args: vec!["-e".into(), "trace=network".into()]
            }
        );
        assert_eq!(Trace::parse("perf-stat").unwrap(), Trace::PerfStat);
        assert!(Trace::parse("perf-stat:-e x").is_err());
        assert!(Trace::parse("ltrace").is_err());
    }
}
