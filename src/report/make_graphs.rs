//! A group's `make_graphs` (SPEC §5), run by `pairbench report` after pairbench has drawn
//! its own plots: cwd the group's result folder, the mirage-bench environment of SPEC §4,
//! output kept in `<tag>/<group>/hooks/make_graphs/` (stdout, stderr, exit_code).
//!
//! It runs on this machine, where both sides' results are once a run has copied them
//! back, so the `REMOTE_*_PATH` variables name the same local folders as `LOCAL_*`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::load::{GroupRun, Run};
use crate::outcome::human;
use crate::process::{self, Exit, Spec};

/// Default limit when run.json does not say (the run's `--hook-timeout` default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// What became of one group's make_graphs.
pub struct Outcome {
    pub ok: bool,
    /// One line for the user.
    pub line: String,
}

/// Run the make_graphs of every group of `run` that has one in `groups_dir`.
/// `tag_dir` and `groups_dir` are absolute.
pub fn run_all(run: &Run, groups_dir: &Path) -> Vec<Outcome> {
    let timeout = option_duration(run, "hook_timeout").unwrap_or(DEFAULT_TIMEOUT);
    let grace = option_duration(run, "kill_grace").unwrap_or(DEFAULT_GRACE);
    let mut out = Vec::new();
    for (i, g) in run.groups.iter().enumerate() {
        let program = groups_dir.join(&g.name).join("make_graphs");
        if !program.exists() {
            continue;
        }
        if !is_executable(&program) {
            out.push(Outcome {
                ok: false,
                line: format!(
                    "{}/make_graphs is not executable, so it did not run (chmod +x to enable it)",
                    g.name
                ),
            });
            continue;
        }
        out.push(run_one(run, g, groups_dir, &program, i, timeout, grace));
    }
    out
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn option_duration(run: &Run, key: &str) -> Option<Duration> {
    let v = run.manifest.options.get(key)?.as_str()?;
    crate::config::parse_duration(key, v).ok()
}

/// `[env]` and `--env` of the run, from run.json.
fn user_env(run: &Run) -> Vec<(String, String)> {
    let Some(list) = run.manifest.options.get("env").and_then(|e| e.as_array()) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|kv| {
            let kv = kv.as_array()?;
            Some((
                kv.first()?.as_str()?.to_string(),
                kv.get(1)?.as_str()?.to_string(),
            ))
        })
        .collect()
}

fn remote_host(run: &Run) -> String {
    run.manifest
        .hosts
        .iter()
        .find(|h| h.role == "remote")
        .map(|h| h.address.clone())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "127.0.0.1".into())
}

fn run_one(
    run: &Run,
    g: &GroupRun,
    groups_dir: &Path,
    program: &Path,
    seq: usize,
    timeout: Duration,
    grace: Duration,
) -> Outcome {
    let fail = |line: String| Outcome { ok: false, line };
    let tree = crate::tree::Tree::at(&run.dir);
    let result_dir = tree.group(&g.name);
    let out_dir = tree.hook(&g.name, "make_graphs");
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        return fail(format!(
            "{}/make_graphs: cannot create {}: {e}",
            g.name,
            out_dir.display()
        ));
    }
    let scripts = groups_dir.join(&g.name);
    let spec = Spec {
        program: program.to_path_buf(),
        args: Vec::new(),
        cwd: result_dir.clone(),
        env: environment(run, g, groups_dir, &scripts, &result_dir),
        stdout: out_dir.join("stdout"),
        stderr: out_dir.join("stderr"),
        marker: format!("report-{}-{seq}-make_graphs", std::process::id()),
    };
    let child = match process::spawn(&spec) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::write(out_dir.join("exit_code"), "");
            return fail(format!("{}/make_graphs could not start: {e}", g.name));
        }
    };
    let deadline = Instant::now() + timeout;
    let exit = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(e) = child.wait_timeout(left.min(Duration::from_millis(200))) {
            break Some(e);
        }
        if Instant::now() >= deadline {
            break None;
        }
    };
    // Whatever it left running goes too.
    child.terminate(grace);
    let final_exit: Option<Exit> = exit.or_else(|| child.try_exit());
    let _ = std::fs::write(
        out_dir.join("exit_code"),
        final_exit.map(|e| e.file_text() + "\n").unwrap_or_default(),
    );
    let where_ = format!("{}/hooks/make_graphs/", g.name);
    match exit {
        None => fail(format!(
            "{}/make_graphs timed out after {} and was stopped (output in {where_})",
            g.name,
            human(timeout)
        )),
        Some(e) if e.code() == Some(0) => Outcome {
            ok: true,
            line: format!("{}/make_graphs {e} (output in {where_})", g.name),
        },
        Some(e) => fail(format!("{}/make_graphs {e} (see {where_}stderr)", g.name)),
    }
}

fn environment(
    run: &Run,
    g: &GroupRun,
    groups_dir: &Path,
    scripts: &Path,
    result_dir: &Path,
) -> Vec<(String, String)> {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let remote = remote_host(run);
    let mut env = user_env(run);
    let mut put = |k: &str, v: String| env.push((k.to_string(), v));
    put("PAIRBENCH_TAG", run.tag.clone());
    put("PAIRBENCH_GROUP", g.name.clone());
    put("PAIRBENCH_SIDE", "local".into());
    put("PAIRBENCH_RESULT_DIR", s(result_dir));
    put("PAIRBENCH_GROUP_DIR", s(scripts));
    put("PAIRBENCH_REMOTE_HOST", remote.clone());
    put("PAIRBENCH_LOCAL_HOST", "127.0.0.1".into());
    put("TEST", g.name.clone());
    put("TEST_NAME", g.name.clone());
    put("RESULTS_TAG", run.tag.clone());
    put("REMOTE_HOST", remote);
    put("LOCAL_ROOT_PATH", s(groups_dir));
    put("REMOTE_ROOT_PATH", s(groups_dir));
    put("LOCAL_TEST_ROOT_PATH", s(scripts));
    put("REMOTE_TEST_ROOT_PATH", s(scripts));
    put("LOCAL_RESULTS_ROOT_PATH", s(result_dir));
    put("REMOTE_RESULTS_ROOT_PATH", s(result_dir));
    env
}

/// Where the groups' scripts are: `given` (from the command line or pairbench.toml), or,
/// when that folder does not exist, the groups folder the run used (from run.json).
pub fn groups_dir(run: &Run, given: &Path) -> PathBuf {
    if given.is_dir() {
        return absolute(given);
    }
    run.manifest
        .options
        .get("groups_dir")
        .and_then(|v| v.as_str())
        .map(Path::new)
        .filter(|p| p.is_dir())
        .map(absolute)
        .unwrap_or_else(|| absolute(given))
}

/// The absolute form of `p` (canonical when it exists).
pub fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    })
}
