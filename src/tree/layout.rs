//! Where everything of a run lives: the one place that builds a result path (the tag
//! folder, a group's folder, a pair's folder, its variant folders, the staging folder a
//! pair is written in, a group's hooks folder, earlier attempts), the names the tag level
//! keeps for itself, pair and variant folder names, and the default tag (the start time,
//! claimed with `create_dir` so runs started in the same second never share it).
//! See the README, "The result tree".

use std::path::{Path, PathBuf};

/// Names the tag folder keeps for the run's own files: no group may start with them.
pub const RESERVED: [&str; 10] = [
    "run.json",
    "results.csv",
    "metrics.csv",
    "stats.csv",
    "junit.xml",
    "summary.md",
    "index.html",
    "plots",
    "pages",
    "latest",
];

/// Files pairbench writes in a run folder; scripts never may.
pub const OWN_FILES: [&str; 7] = [
    "SUCCESS",
    "FAILED",
    "ERROR",
    "pair.json",
    "attempts",
    "events.csv",
    CHECK_DIFF,
];

/// How a run's output differs from its reference (docs/regression.md): a unified diff.
pub const CHECK_DIFF: &str = "check.diff";

/// The two sides' folders in a run folder (the scripts' working folders).
pub const SIDES: [&str; 2] = ["local", "remote"];

/// A side's exit status file, written by pairbench.
pub const EXIT_FILE: &str = "exit_code";

/// The longest file name the result tree makes (Linux's NAME_MAX).
pub const NAME_MAX: usize = 255;

/// Why a group, test or parameter value cannot be a folder of the tree.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "group '{0}' has the name of one of the run's own files at the tag level ({1}): rename the group folder"
    )]
    Reserved(String, String),
    #[error(
        "--param value makes the run folder name '{0}…' longer than {max} bytes: use shorter values",
        max = NAME_MAX
    )]
    TooLong(String),
}

/// Refuse a group name whose first folder is one of the tag level's own names.
pub fn check_group_name(group: &str) -> Result<(), NameError> {
    let first = group.split('/').next().unwrap_or(group);
    if RESERVED.contains(&first) || first.starts_with('.') {
        return Err(NameError::Reserved(
            group.to_string(),
            RESERVED.join(", ") + ", or a name starting with '.'",
        ));
    }
    Ok(())
}

/// A stable 64-bit hash (FNV-1a): of a pair id for shards, of a long name for its folder.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The folder name of a pair: `<L>_x_<R>`, or, when that is too long for a file name,
/// its first 180 bytes and a hash of the whole.
pub fn pair_name(local: &str, remote: &str) -> String {
    let name = format!("{local}_x_{remote}");
    if name.len() <= 200 {
        return name;
    }
    let mut cut = 180;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{:016x}", &name[..cut], stable_hash(&name))
}

/// The folder of one run below its pair's folder (`""` for a plain run), e.g.
/// `SIZE=1k,CONNS=4/rep-2`. Values are percent-encoded where they hold `/` or `%`.
pub fn variant_rel(params: &[(String, String)], repetition: Option<u32>, warmup: bool) -> String {
    let mut parts = Vec::new();
    if !params.is_empty() {
        let p: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('%', "%25").replace('/', "%2F")))
            .collect();
        parts.push(p.join(","));
    }
    if let Some(n) = repetition {
        parts.push(if warmup {
            format!("warmup-{n}")
        } else {
            format!("rep-{n}")
        });
    }
    parts.join("/")
}

/// Refuse a variant folder whose name does not fit in a file name.
pub fn check_variant_rel(rel: &str) -> Result<(), NameError> {
    // The staging name adds a dot and `.partial`.
    match rel.split('/').find(|p| p.len() + 9 > NAME_MAX) {
        Some(p) => {
            let mut cut = 60.min(p.len());
            while !p.is_char_boundary(cut) {
                cut -= 1;
            }
            Err(NameError::TooLong(p[..cut].to_string()))
        }
        None => Ok(()),
    }
}

/// Paths of one run's tree.
#[derive(Debug, Clone)]
pub struct Tree {
    pub root: PathBuf,
    pub tag: String,
}

impl Tree {
    pub fn new(results_dir: &Path, tag: &str) -> Tree {
        Tree {
            root: results_dir.join(tag),
            tag: tag.to_string(),
        }
    }
    /// The tree of an existing tag folder.
    pub fn at(tag_dir: &Path) -> Tree {
        Tree {
            root: tag_dir.to_path_buf(),
            tag: tag_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
    /// A file of the tag level (`results.csv`, `run.json`, ...).
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    pub fn group(&self, group: &str) -> PathBuf {
        self.root.join(group)
    }
    pub fn pair(&self, group: &str, pair: &str) -> PathBuf {
        self.group(group).join(pair)
    }
    /// The folder of one run of a pair (the pair's folder, or a variant below it).
    pub fn run_dir(&self, group: &str, pair: &str, variant: &str) -> PathBuf {
        let d = self.pair(group, pair);
        if variant.is_empty() {
            d
        } else {
            d.join(variant)
        }
    }
    /// Where the run folder `dest` is written before it is complete.
    pub fn staging(dest: &Path) -> PathBuf {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        dest.with_file_name(format!(".{name}.partial"))
    }
    /// Where a run folder is moved while its replacement is put in place.
    pub fn replaced(dest: &Path) -> PathBuf {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        dest.with_file_name(format!(".{name}.old"))
    }
    /// Is this the name of a leftover of a crashed run (a staging or replaced folder, a
    /// temporary file)?
    pub fn is_leftover(name: &str) -> bool {
        name.starts_with('.')
            && (name.ends_with(".partial") || name.ends_with(".old") || name.contains(".tmp"))
    }
    pub fn hooks(&self, group: &str) -> PathBuf {
        self.group(group).join("hooks")
    }
    pub fn hook(&self, group: &str, hook: &str) -> PathBuf {
        self.hooks(group).join(hook)
    }
    /// Earlier attempts of a run (`--retries`).
    pub fn attempts(run_dir: &Path) -> PathBuf {
        run_dir.join("attempts")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(".pairbench.lock")
    }
}

/// The start time as a tag: `2026-11-22T04-51-19`.
pub fn time_tag(t: chrono::DateTime<chrono::Local>) -> String {
    t.format("%Y-%m-%dT%H-%M-%S").to_string()
}

/// Create the tag folder of a new run tagged with its start time; a run in the same second
/// as another gets `-2`, `-3`, ... Claimed with `create_dir`, so two runs never get one tag.
pub fn claim_time_tag(
    results_dir: &Path,
    now: chrono::DateTime<chrono::Local>,
) -> std::io::Result<String> {
    std::fs::create_dir_all(results_dir)?;
    let base = time_tag(now);
    let mut n = 1;
    loop {
        let tag = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        match std::fs::create_dir(results_dir.join(&tag)) {
            Ok(()) => return Ok(tag),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 10_000 => n += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_pair_names_fit_in_a_file_name() {
        let l = "é".repeat(100);
        let r = "x".repeat(200);
        let n = pair_name(&l, &r);
        assert!(n.len() <= 200, "{}", n.len());
        assert_ne!(n, pair_name(&l, &"y".repeat(200)));
        assert_eq!(pair_name("a", "b"), "a_x_b");
        // Known value: the shard of an id never changes between releases.
        assert_eq!(stable_hash("a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn reserved_names_and_long_values_are_refused() {
        assert!(check_group_name("plots").is_err());
        assert!(check_group_name("run.json/x").is_err());
        assert!(check_group_name("hooks").is_ok());
        assert!(check_group_name("a/plots").is_ok());
        let long = variant_rel(&[("V".into(), "x".repeat(300))], None, false);
        assert!(check_variant_rel(&long).is_err());
        assert!(check_variant_rel("V=1/rep-2").is_ok());
    }

    #[test]
    fn tags_claimed_in_one_second_differ() {
        let d = tempfile::tempdir().unwrap();
        let now = chrono::Local::now();
        let a = claim_time_tag(d.path(), now).unwrap();
        let b = claim_time_tag(d.path(), now).unwrap();
        assert_eq!(b, format!("{a}-2"));
    }
}
