//! What of a run is compared (docs/regression.md, "What is compared"): per side, how it
//! ended (`<side>/exit_code`: the exit code, or `terminated` when pairbench ended it) and
//! the files `[check] files` names, read from the run's folder without following a link
//! (links are left out), text normalised, other files (a NUL byte, or not UTF-8) kept as
//! bytes, files larger than [`TEXT_LIMIT`] only hashed; and the values of the gated
//! metrics.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::normalize::{self, Context};
use crate::group_toml::GroupSettings;
use crate::tree::layout::{EXIT_FILE, SIDES};
use crate::tree::{Ended, PairRecord, nofollow, tables};

/// Files larger than this are compared by hash, not line by line.
pub const TEXT_LIMIT: u64 = 64 * 1024 * 1024;

/// A reference file's suffix while it is pending (not yet accepted).
pub const PENDING: &str = ".new";

/// One compared file's contents.
#[derive(Debug, Clone)]
pub enum Content {
    /// Normalised text.
    Text(String),
    Binary(Vec<u8>),
    /// A file larger than [`TEXT_LIMIT`]: its hash and size, and where it is (read
    /// again only to be written as a reference).
    Large {
        sha256: String,
        len: u64,
        root: PathBuf,
        rel: PathBuf,
    },
}

impl PartialEq for Content {
    /// Text by its text, anything else by its hash.
    fn eq(&self, other: &Content) -> bool {
        match (self, other) {
            (Content::Text(a), Content::Text(b)) => a == b,
            (Content::Binary(a), Content::Binary(b)) => a == b,
            (Content::Text(_), _) | (_, Content::Text(_)) => false,
            (a, b) => a.digest() == b.digest(),
        }
    }
}

impl Content {
    /// Text if it is text, else bytes (a NUL byte, or not UTF-8).
    pub fn of(bytes: Vec<u8>) -> Content {
        if bytes.contains(&0) {
            return Content::Binary(bytes);
        }
        match String::from_utf8(bytes) {
            Ok(t) => Content::Text(t),
            Err(e) => Content::Binary(e.into_bytes()),
        }
    }

    /// The file `rel` below `root`, never through a link: read whole when it is at most
    /// [`TEXT_LIMIT`], else only hashed.
    pub fn read(root: &Path, rel: &Path) -> std::io::Result<Content> {
        Content::read_up_to(root, rel, TEXT_LIMIT)
    }

    fn read_up_to(root: &Path, rel: &Path, limit: u64) -> std::io::Result<Content> {
        let mut f = nofollow::open_beneath(root, rel)?;
        let len = f.metadata()?.len();
        if len <= limit {
            let mut bytes = Vec::with_capacity(len as usize);
            f.read_to_end(&mut bytes)?;
            return Ok(Content::of(bytes));
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut len = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            len += n as u64;
        }
        Ok(Content::Large {
            sha256: super::diff::hex(&h.finalize()),
            len,
            root: root.to_path_buf(),
            rel: rel.to_path_buf(),
        })
    }

    /// The bytes (a large file is read again).
    pub fn bytes(&self) -> std::io::Result<Cow<'_, [u8]>> {
        Ok(match self {
            Content::Text(t) => Cow::Borrowed(t.as_bytes()),
            Content::Binary(b) => Cow::Borrowed(b),
            Content::Large { root, rel, .. } => Cow::Owned(nofollow::read_beneath(root, rel)?),
        })
    }

    /// The SHA-256 and size of what is not text.
    pub fn digest(&self) -> (String, u64) {
        match self {
            Content::Text(t) => (super::diff::sha256(t.as_bytes()), t.len() as u64),
            Content::Binary(b) => (super::diff::sha256(b), b.len() as u64),
            Content::Large { sha256, len, .. } => (sha256.clone(), *len),
        }
    }

    pub fn body(&self) -> super::diff::Body<'_> {
        match self {
            Content::Text(t) => super::diff::Body::Text(t),
            other => {
                let (sha256, len) = other.digest();
                super::diff::Body::Hashed { sha256, len }
            }
        }
    }
}

/// A run's compared output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    /// `<side>/<path>` → contents, `<side>/exit_code` included.
    pub files: BTreeMap<String, Content>,
    /// Side → metric → value (the mean when a side reported it more than once), for the
    /// gated metrics.
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
}

/// How a side ended, as its reference's `exit_code` holds it.
pub fn exit_text(rec: &PairRecord, side: &str) -> String {
    let code = |c: Option<i32>| c.map_or("none".to_string(), |c| c.to_string());
    if side == "remote" {
        if rec.remote_ended == Some(Ended::Terminated) {
            return "terminated".into();
        }
        return code(rec.remote_exit);
    }
    code(rec.local_exit)
}

/// Is this a file a side's folder holds that is compared?
fn compared(settings: &GroupSettings, rel: &str) -> bool {
    rel != EXIT_FILE && !rel.ends_with(PENDING) && settings.check.file_set.is_match(rel)
}

/// The compared output of the run in `run_dir` (holding `local/` and `remote/`), with the
/// normalisation context `ctx`. Problems reading it are lines in the second value.
pub fn collect(
    settings: &GroupSettings,
    run_dir: &Path,
    rec: &PairRecord,
    ctx: &Context,
) -> (Outputs, Vec<String>) {
    let mut out = Outputs::default();
    let mut problems = Vec::new();
    for side in SIDES {
        out.files.insert(
            format!("{side}/{EXIT_FILE}"),
            Content::Text(format!("{}\n", exit_text(rec, side))),
        );
        let side_dir = run_dir.join(side);
        if nofollow::kind(&side_dir) != nofollow::Kind::Dir {
            continue;
        }
        for entry in walkdir::WalkDir::new(&side_dir)
            .min_depth(1)
            .max_depth(64)
            .sort_by_file_name()
        {
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&side_dir) else {
                continue;
            };
            let Some(rel) = rel.to_str() else {
                problems.push(format!(
                    "{side}/{}: not named in UTF-8, so not compared",
                    rel.to_string_lossy()
                ));
                continue;
            };
            if !compared(settings, rel) {
                continue;
            }
            match Content::read(run_dir, &Path::new(side).join(rel)) {
                Ok(c) => {
                    let c = match c {
                        Content::Text(t) => {
                            Content::Text(normalize::normalize(&t, ctx, &settings.check.normalize))
                        }
                        b => b,
                    };
                    out.files.insert(format!("{side}/{rel}"), c);
                }
                Err(e) => problems.push(format!("{side}/{rel}: cannot be read ({e})")),
            }
        }
    }
    if !settings.check.gates.is_empty() {
        out.metrics = gated_metrics(settings, run_dir, rec);
    }
    (out, problems)
}

/// The values of the gated metrics both sides reported, and pairbench's own measurements
/// of them (docs/resources.md).
fn gated_metrics(
    settings: &GroupSettings,
    run_dir: &Path,
    rec: &PairRecord,
) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let gated = |name: &str| settings.check.gates.iter().any(|(g, _)| g == name);
    for (side, values) in &rec.resources {
        for (name, v) in values {
            if gated(name) {
                out.entry(side.clone())
                    .or_default()
                    .insert(name.clone(), *v);
            }
        }
    }
    for side in SIDES {
        let Ok(bytes) = nofollow::read_beneath(run_dir, &Path::new(side).join("metrics.csv"))
        else {
            continue;
        };
        let (rows, _) = tables::parse_side_metrics(&bytes);
        let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        let own = rec.resources.get(side);
        for (name, value, _) in rows {
            if gated(&name) && !own.is_some_and(|o| o.contains_key(&name)) {
                let e = sums.entry(name).or_default();
                e.0 += value;
                e.1 += 1;
            }
        }
        if !sums.is_empty() {
            out.entry(side.to_string())
                .or_default()
                .extend(sums.into_iter().map(|(k, (sum, n))| (k, sum / n as f64)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_files_are_hashed_and_read_again_only_to_be_written() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), "0123456789abcdef").unwrap();
        std::fs::write(d.path().join("b"), "0123456789abcdef").unwrap();
        std::fs::write(d.path().join("c"), "0123456789abcdeF").unwrap();
        let read = |n: &str| Content::read_up_to(d.path(), Path::new(n), 8).unwrap();
        let (a, b, c) = (read("a"), read("b"), read("c"));
        assert!(matches!(&a, Content::Large { len: 16, .. }), "{a:?}");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            a.digest().0,
            super::super::diff::sha256(b"0123456789abcdef")
        );
        assert_eq!(&*a.bytes().unwrap(), b"0123456789abcdef");
        assert_eq!(
            Content::read(d.path(), Path::new("a")).unwrap(),
            Content::Text("0123456789abcdef".into())
        );
        assert_eq!(
            Content::of(b"a\0b".to_vec()),
            Content::Binary(b"a\0b".to_vec())
        );
        assert!(matches!(Content::of(vec![0xff, 0xfe]), Content::Binary(_)));
    }
}
