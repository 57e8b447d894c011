//! Leftovers of runs that died (pairbench and its keeper both killed, a power cut):
//! their cgroups (with whatever still runs in them), their temporary control folders,
//! processes still carrying their markers, and, on a remote host, the run folders of
//! runs that are over. Each run cleans what dead runs left and says so in one line.
//! See docs/containment.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{cgroup, procfs, run_over, sweep};

/// What was cleaned.
#[derive(Debug, Default)]
pub struct Cleaned {
    /// The pids of the dead runs.
    pub runs: BTreeSet<i32>,
    pub processes: usize,
    pub cgroups: usize,
    pub folders: Vec<PathBuf>,
    /// Unfinished pair folders and temporary files (`.partial`, `.old`, `.tmp`) of the
    /// tag this run uses.
    pub partials: usize,
    pub tag: String,
}

/// The temporary control folder of run `name`.
pub fn control_dir_name(name: &str) -> String {
    format!("pairbench-{name}")
}

impl Cleaned {
    pub fn is_empty(&self) -> bool {
        self.processes == 0 && self.cgroups == 0 && self.folders.is_empty() && self.partials == 0
    }

    /// One line for the user, or nothing when nothing was left.
    pub fn line(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        if self.processes > 0 {
            parts.push(format!("ended {} processes left running", self.processes));
        }
        if self.cgroups > 0 {
            parts.push(format!("removed {} cgroups", self.cgroups));
        }
        if !self.folders.is_empty() {
            let names: Vec<String> = self
                .folders
                .iter()
                .map(|f| f.display().to_string())
                .collect();
            parts.push(format!("removed {}", names.join(", ")));
        }
        if self.partials > 0 {
            parts.push(format!(
                "removed {} unfinished pair folders and temporary files (.partial, .old, .tmp) of tag '{}'",
                self.partials, self.tag
            ));
        }
        let who = if self.runs.is_empty() {
            "an earlier run that did not finish".to_string()
        } else {
            let pids: Vec<String> = self.runs.iter().map(|p| p.to_string()).collect();
            format!("earlier runs that died (pid {})", pids.join(", "))
        };
        Some(format!(
            "pairbench: cleaned up after {who}: {}",
            parts.join(", ")
        ))
    }
}

fn note_run(c: &mut Cleaned, name: &str) {
    if let Some((pid, _)) = super::parse_name(name) {
        c.runs.insert(pid);
    }
}

/// End what is in a dead run's cgroup and remove it; an empty one (a process that
/// started scripts without a run, like `pairbench report`) goes without a word.
fn kill_cgroup(c: &mut Cleaned, dir: &Path, name: &str) {
    if !dir.exists() {
        return;
    }
    match cgroup::kill_tree(dir, Duration::from_secs(5)) {
        Ok(0) => {}
        Ok(n) => {
            c.processes += n;
            c.cgroups += 1;
            note_run(c, name);
        }
        Err(e) => eprintln!(
            "pairbench: warning: cannot remove the cgroup {} of a dead run: {e}",
            dir.display()
        ),
    }
}

/// Remove what dead runs left on this machine: their cgroups (below our own cgroup and
/// those their control folders name), their control folders in `tmp`, and processes
/// that carry their markers.
pub fn clean_dead_runs(tmp: &Path) -> Cleaned {
    let mut c = Cleaned::default();
    // Control folders: `pairbench-pb-<pid>-<start>`, and the older `pairbench-<pid>-<hex>`.
    if let Ok(dir) = std::fs::read_dir(tmp) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("pairbench-") else {
                continue;
            };
            let path = e.path();
            let dead = if rest.starts_with("pb-") {
                run_over(rest)
            } else {
                legacy_over(rest, &path)
            };
            if !dead || !path.is_dir() {
                continue;
            }
            if let Ok(cg) = std::fs::read_to_string(path.join("cgroup")) {
                kill_cgroup(&mut c, Path::new(cg.trim()), rest);
            }
            if std::fs::remove_dir_all(&path).is_ok() {
                note_run(&mut c, rest);
                if let Some(pid) = rest.split('-').next().and_then(|p| p.parse().ok()) {
                    c.runs.insert(pid);
                }
                c.folders.push(path);
            }
        }
    }
    // Cgroups of dead runs below ours.
    if let Ok(own) = cgroup::own_cgroup()
        && let Ok(dir) = std::fs::read_dir(own.join(cgroup::PARENT))
    {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() && run_over(&name) {
                kill_cgroup(&mut c, &e.path(), &name);
            }
        }
    }
    // Their (empty) memory cgroups under the v1 controller, for peak memory
    // (docs/resources.md): nothing to report, they hold nothing once the run is gone.
    if let Some(own) = cgroup::own_memory_v1()
        && let Ok(dir) = std::fs::read_dir(own.join(cgroup::PARENT))
    {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() && run_over(&name) {
                let _ = cgroup::remove_tree(&e.path());
            }
        }
    }
    // Processes still marked by a dead run (under the sweep, nothing else names them).
    let stray: Vec<(i32, String)> = procfs::marked()
        .into_iter()
        .filter(|(_, m)| m.starts_with("pb-") && run_over(m))
        .collect();
    if !stray.is_empty() {
        for (_, m) in &stray {
            note_run(&mut c, m);
        }
        let roots: Vec<i32> = stray.iter().map(|(p, _)| *p).collect();
        c.processes +=
            sweep::freeze_and_kill(&roots, |_| Default::default(), Duration::from_secs(5));
    }
    c
}

/// A control folder of an older pairbench (`<pid>-<hex>`, holding `control.sock`) whose
/// process is gone.
fn legacy_over(rest: &str, path: &Path) -> bool {
    let Some((pid, hex)) = rest.split_once('-') else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    !hex.is_empty()
        && hex.chars().all(|c| c.is_ascii_hexdigit())
        && path.join("control.sock").exists()
        && !procfs::alive(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_says_what_was_cleaned() {
        let mut c = Cleaned::default();
        assert_eq!(c.line(), None);
        c.runs.insert(42);
        c.processes = 3;
        c.cgroups = 1;
        c.folders.push("/tmp/pairbench-pb-42-1".into());
        let line = c.line().unwrap();
        assert!(line.contains("pid 42"), "{line}");
        assert!(line.contains("ended 3 processes"), "{line}");
        assert!(line.contains("/tmp/pairbench-pb-42-1"), "{line}");
        assert!(!line.contains('\n'));
    }
}
