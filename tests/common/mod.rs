//! Small helpers that make each integration test read like a sentence: a temporary
//! project with groups and scripts, the real pairbench binary run in it, and accessors
//! for the result tree it wrote.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// A temporary project folder with `groups/` and `results/`.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::Builder::new()
                .prefix("pairbench-test")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write an executable script at `groups/<rel>` (folders created).
    pub fn script(&self, rel: &str, body: &str) -> &Project {
        let p = self.path().join("groups").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// Write a plain (non-executable) file at `groups/<rel>`.
    pub fn file(&self, rel: &str, body: &str) -> &Project {
        let p = self.path().join("groups").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        self
    }

    /// A bash script: `#!/usr/bin/env bash` + body.
    pub fn bash(&self, rel: &str, body: &str) -> &Project {
        self.script(rel, &format!("#!/usr/bin/env bash\n{body}\n"))
    }

    /// Run `pairbench ARGS` in the project folder.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(|_| {}, args)
    }

    /// Run `pairbench ARGS` in the project folder, its command first set up by `setup`
    /// (an environment, an SSH client's home: `p.run_with(|c| s.client(c), ARGS)`).
    pub fn run_with(&self, setup: impl FnOnce(&mut std::process::Command), args: &[&str]) -> Run {
        let mut cmd = self.cmd();
        setup(&mut cmd);
        let out = cmd.args(args).output().expect("run pairbench");
        Run {
            out,
            project_dir: self.path().to_path_buf(),
        }
    }

    /// The pairbench command, in the project folder, with progress off.
    pub fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin!("pairbench"));
        c.current_dir(self.path()).env("NO_COLOR", "1");
        c
    }

    /// The folder of the latest run.
    pub fn latest(&self) -> PathBuf {
        let link = self.path().join("results/latest");
        let tag = std::fs::read_link(&link).expect("results/latest");
        self.path().join("results").join(tag)
    }

    /// A pair folder of the latest run.
    pub fn pair(&self, group: &str, pair: &str) -> PairDir {
        PairDir(self.latest().join(group).join(pair))
    }

    pub fn results_csv(&self) -> Vec<std::collections::HashMap<String, String>> {
        read_csv(&self.latest().join("results.csv"))
    }
}

/// The rows of a run's metrics.csv that scripts reported (pairbench's own resource
/// metrics, source `pairbench`, left out: tests/resources.rs checks those).
pub fn script_metrics(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    read_csv(path)
        .into_iter()
        .filter(|r| r["source"] == "script")
        .collect()
}

/// Rows of a CSV file with a header, as maps.
pub fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The outcome of one pairbench command.
pub struct Run {
    pub out: Output,
    pub project_dir: PathBuf,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    /// Assert the exit status, showing the output when it differs.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            code,
            "exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// A pair's result folder.
pub struct PairDir(pub PathBuf);

impl PairDir {
    /// The one marker of the pair: (name, contents).
    pub fn marker(&self) -> (String, String) {
        let found: Vec<(String, String)> = ["SUCCESS", "FAILED", "ERROR"]
            .iter()
            .filter_map(|m| {
                std::fs::read_to_string(self.0.join(m))
                    .ok()
                    .map(|c| (m.to_string(), c))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "exactly one marker in {}: {found:?}",
            self.0.display()
        );
        found.into_iter().next().unwrap()
    }
    pub fn status(&self) -> String {
        self.marker().0
    }
    pub fn reason(&self) -> String {
        self.marker().1
    }
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.0.join(rel))
            .unwrap_or_else(|e| panic!("{}/{rel}: {e}", self.0.display()))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// Is a process with this pid alive (and not a zombie)?
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
        Err(_) => false,
    }
}

/// Wait (generously) until `f` holds; false if it never does.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Processes whose environment holds `needle` (e.g. a unique variable a test set).
pub fn processes_with_env(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ"))
            && env.split(|&b| b == 0).any(|v| v == needle.as_bytes())
            && alive(pid)
        {
            out.push(pid);
        }
    }
    out
}

/// Live processes whose command line holds `token` (put it in argv, e.g. with
/// `exec -a TOKEN sleep 600`: `env -i` clears environments, not argv).
pub fn processes_with_cmdline(token: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let me = std::process::id() as i32;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline"))
            && cmd.windows(token.len()).any(|w| w == token.as_bytes())
            && alive(pid)
        {
            out.push(pid);
        }
    }
    out
}

/// A token no other test uses, for [`processes_with_cmdline`].
pub fn token(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("pbtok-{tag}-{}-{nanos:x}", std::process::id())
}
