//! Finding groups, their tests and their hooks in a groups folder (SPEC §1).
//!
//! A group is any folder below the groups folder that has both `local/` and `remote/`.
//! A test is an executable regular file (or a link to one) directly inside one of them
//! whose name does not start with `.`; other files are helpers. Everything is sorted by
//! name so that runs are deterministic.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The hook names, in the order a run uses them.
pub const HOOK_NAMES: [&str; 4] = [
    "before_first_test_local",
    "before_first_test_remote",
    "after_last_test_remote",
    "after_last_test_local",
];

/// A group's references for regression runs (docs/regression.md): read on this machine
/// only, never uploaded to a remote host.
pub const EXPECTED_DIR: &str = "expected";

/// Errors a user can fix by changing their command line or folder.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(
        "groups folder '{0}' does not exist: create it (pairbench new GROUP) or point -g/--groups-dir at your groups"
    )]
    MissingGroupsDir(PathBuf),
    #[error("cannot read groups folder '{path}': {err}")]
    Unreadable { path: PathBuf, err: std::io::Error },
    #[error(
        "{path:?} is not named in UTF-8, so pairbench cannot name it in its results: rename it (nothing was run)"
    )]
    NotUtf8 { path: PathBuf },
    #[error(
        "'{name}' in '{}' is not a group: a group is a folder with local/ and remote/ folders of tests (docs/groups-and-scripts.md)",
        dir.display()
    )]
    NotAGroup { name: String, dir: PathBuf },
    #[error("no group named '{name}' in '{dir}'; groups there: {known}")]
    UnknownGroup {
        name: String,
        dir: PathBuf,
        known: String,
    },
}

/// One test script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    pub name: String,
    pub path: PathBuf,
    /// `None` when it runs; otherwise why it does not (shown by `list`).
    pub disabled: Option<String>,
}

impl Test {
    pub fn enabled(&self) -> bool {
        self.disabled.is_none()
    }
}

/// One group of tests.
#[derive(Debug, Clone)]
pub struct Group {
    /// Path relative to the groups folder, `/`-separated.
    pub name: String,
    /// Absolute path of the group's folder.
    pub dir: PathBuf,
    /// Absolute path of the groups folder.
    pub root: PathBuf,
    pub local: Vec<Test>,
    pub remote: Vec<Test>,
    /// Test files (or the group's own folder) whose names are not UTF-8: never dropped
    /// silently (`run` refuses them, `list` warns).
    pub unnamed: Vec<PathBuf>,
}

impl Group {
    /// The executable hook of that name, if the group has one.
    pub fn hook(&self, name: &str) -> Option<PathBuf> {
        let p = self.dir.join(name);
        is_executable_file(&p).then_some(p)
    }

    /// A hook file that exists but is not executable (so it will not run).
    pub fn inert_hooks(&self) -> Vec<String> {
        HOOK_NAMES
            .iter()
            .chain(std::iter::once(&"make_graphs"))
            .filter(|n| {
                let p = self.dir.join(n);
                p.exists() && !is_executable_file(&p)
            })
            .map(|n| n.to_string())
            .collect()
    }

    pub fn enabled_local(&self) -> impl Iterator<Item = &Test> {
        self.local.iter().filter(|t| t.enabled())
    }
    pub fn enabled_remote(&self) -> impl Iterator<Item = &Test> {
        self.remote.iter().filter(|t| t.enabled())
    }
}

fn is_executable_file(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// All groups below `root`, sorted by name.
pub fn discover(root: &Path) -> Result<Vec<Group>, DiscoverError> {
    if !root.is_dir() {
        return Err(DiscoverError::MissingGroupsDir(root.to_path_buf()));
    }
    let root = fs::canonicalize(root).map_err(|err| DiscoverError::Unreadable {
        path: root.to_path_buf(),
        err,
    })?;
    let mut groups = Vec::new();
    let mut walker = walkdir::WalkDir::new(&root)
        .min_depth(1)
        .max_depth(4)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walker.next() {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if name.starts_with('.') || name == "results" {
            walker.skip_current_dir();
            continue;
        }
        let dir = entry.path();
        if dir.join("local").is_dir() && dir.join("remote").is_dir() {
            let rel = dir.strip_prefix(&root).unwrap_or(dir);
            let mut unnamed = Vec::new();
            let (local, remote) = match rel.to_str() {
                Some(_) => {
                    let (l, mut ul) = tests_in(&dir.join("local"));
                    let (r, ur) = tests_in(&dir.join("remote"));
                    ul.extend(ur);
                    unnamed = ul;
                    (l, r)
                }
                // Cannot be named on a command line or in a CSV: refused by `run`.
                None => {
                    unnamed.push(dir.to_path_buf());
                    (Vec::new(), Vec::new())
                }
            };
            groups.push(Group {
                name: rel.to_string_lossy().into_owned(),
                dir: dir.to_path_buf(),
                root: root.clone(),
                local,
                remote,
                unnamed,
            });
            walker.skip_current_dir();
        }
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(groups)
}

/// The tests directly inside `dir`, sorted; non-executable files are left out (helpers),
/// except that `list` wants to see them as disabled, so they are kept with a reason.
/// Also the files whose names are not UTF-8 (never dropped silently).
fn tests_in(dir: &Path) -> (Vec<Test>, Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return (Vec::new(), Vec::new());
    };
    let mut unnamed = Vec::new();
    let mut tests: Vec<Test> = entries
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let os_name = e.file_name();
            let Some(name) = os_name.to_str().map(str::to_string) else {
                unnamed.push(path);
                return None;
            };
            if name.starts_with('.') {
                return None;
            }
            let disabled = match fs::metadata(&path) {
                Err(_) => Some("broken link".to_string()),
                Ok(m) if m.is_dir() => return None,
                Ok(m) if !m.is_file() => Some("not a regular file".to_string()),
                Ok(m) if m.permissions().mode() & 0o111 == 0 => {
                    Some("not executable (chmod +x to enable)".to_string())
                }
                Ok(_) => None,
            };
            Some(Test {
                name,
                path,
                disabled,
            })
        })
        .collect();
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    unnamed.sort();
    (tests, unnamed)
}

/// Refuse a run of groups with a test (or folder) whose name is not UTF-8.
pub fn refuse_unnamed(groups: &[Group]) -> Result<(), DiscoverError> {
    match groups.iter().flat_map(|g| g.unnamed.iter()).next() {
        Some(p) => Err(DiscoverError::NotUtf8 { path: p.clone() }),
        None => Ok(()),
    }
}

/// Keep only the named groups (all when `names` is empty), in the order of `groups`.
pub fn select(
    groups: Vec<Group>,
    names: &[String],
    root: &Path,
) -> Result<Vec<Group>, DiscoverError> {
    if names.is_empty() {
        return Ok(groups);
    }
    for n in names {
        let n = n.trim_end_matches('/');
        if !groups.iter().any(|g| g.name == n) {
            if root.join(n).is_dir() && !n.is_empty() {
                return Err(DiscoverError::NotAGroup {
                    name: n.to_string(),
                    dir: root.to_path_buf(),
                });
            }
            let known: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
            return Err(DiscoverError::UnknownGroup {
                name: n.to_string(),
                dir: root.to_path_buf(),
                known: if known.is_empty() {
                    "(none)".into()
                } else {
                    known.join(", ")
                },
            });
        }
    }
    Ok(groups
        .into_iter()
        .filter(|g| names.iter().any(|n| n.trim_end_matches('/') == g.name))
        .collect())
}
