//! How a run's output differs from its reference, as a unified diff (the `similar`
//! crate, Myers with a time limit), one file after the other: `--- expected/…` against
//! `+++ <side>/<file>`, `/dev/null` for a file only one of them has. Binary files are
//! compared by their SHA-256 ("binary files differ"). Huge outputs get a capped diff
//! (the files stay whole in the pair folder and in `expected/`): at most
//! [`MAX_FILE_LINES`] lines per file and [`MAX_BYTES`] in all, saying what was left out.

use std::fmt::Write as _;
use std::time::Duration;

use sha2::{Digest, Sha256};
use similar::{Algorithm, TextDiff};

/// Lines of one file's diff kept.
pub const MAX_FILE_LINES: usize = 400;
/// Bytes of a whole `check.diff` kept.
pub const MAX_BYTES: usize = 256 * 1024;
/// Longest a diff may take before it is given up for a coarser one.
const TIME_LIMIT: Duration = Duration::from_secs(2);

/// Bytes in lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A file's contents to diff: text (normalised), or what is compared by hash.
#[derive(Debug, Clone, PartialEq)]
pub enum Body<'a> {
    Text(&'a str),
    Hashed { sha256: String, len: u64 },
}

/// A `check.diff` being written, capped at [`MAX_BYTES`].
#[derive(Debug, Default)]
pub struct Diff {
    text: String,
    cut: usize,
}

impl Diff {
    /// Add one file's difference: `old` is the reference (`None`: it has no such file),
    /// `new` the run's.
    pub fn file(&mut self, old_label: &str, new_label: &str, old: Option<Body>, new: Option<Body>) {
        let one = file_diff(old_label, new_label, old, new);
        self.push(&one);
    }

    /// Add a line of its own (a metric gate that failed).
    pub fn line(&mut self, line: &str) {
        self.push(&format!("{line}\n"));
    }

    fn push(&mut self, s: &str) {
        if self.cut > 0 || self.text.len() + s.len() > MAX_BYTES {
            self.cut += s.lines().count();
            return;
        }
        self.text.push_str(s);
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.cut == 0
    }

    /// The diff's text.
    pub fn finish(mut self) -> String {
        if self.cut > 0 {
            let _ = writeln!(
                self.text,
                "... {} more lines of differences not shown (check.diff is capped at {} KiB; the files themselves are whole)",
                self.cut,
                MAX_BYTES / 1024
            );
        }
        self.text
    }
}

fn with_newline(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

/// One file's unified diff (or its "binary files differ" line).
pub fn file_diff(old_label: &str, new_label: &str, old: Option<Body>, new: Option<Body>) -> String {
    let (a_label, b_label) = (
        if old.is_some() {
            old_label
        } else {
            "/dev/null"
        },
        if new.is_some() {
            new_label
        } else {
            "/dev/null"
        },
    );
    let binary = |b: &Option<Body>| matches!(b, Some(Body::Hashed { .. }));
    if binary(&old) || binary(&new) {
        let describe = |b: &Option<Body>| match b {
            None => "none".to_string(),
            Some(Body::Hashed { sha256, len }) => {
                format!("sha256 {}, {len} bytes", &sha256[..16.min(sha256.len())])
            }
            Some(Body::Text(t)) => format!("text, {} bytes", t.len()),
        };
        return match (&old, &new) {
            (None, _) => format!(
                "Binary file {new_label} is only in the run ({})\n",
                describe(&new)
            ),
            (_, None) => format!(
                "Binary file {old_label} is only in the reference ({})\n",
                describe(&old)
            ),
            _ => format!(
                "Binary files {a_label} and {b_label} differ ({} vs {})\n",
                describe(&old),
                describe(&new)
            ),
        };
    }
    let text = |b: Option<Body>| match b {
        Some(Body::Text(t)) => with_newline(t),
        _ => String::new(),
    };
    let (a, b) = (text(old), text(new));
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .timeout(TIME_LIMIT)
        .diff_lines(&a, &b);
    let mut out = format!("--- {a_label}\n+++ {b_label}\n");
    let mut lines = 0;
    let mut left_out = 0;
    let udiff = diff.unified_diff();
    for hunk in udiff.iter_hunks() {
        let h = hunk.to_string();
        let n = h.lines().count();
        if lines >= MAX_FILE_LINES {
            left_out += n;
            continue;
        }
        if lines + n > MAX_FILE_LINES {
            let keep = MAX_FILE_LINES - lines;
            for l in h.lines().take(keep) {
                out.push_str(l);
                out.push('\n');
            }
            left_out += n - keep;
            lines = MAX_FILE_LINES;
            continue;
        }
        out.push_str(&h);
        if !h.ends_with('\n') {
            out.push('\n');
        }
        lines += n;
    }
    if left_out > 0 {
        let _ = writeln!(
            out,
            "... {left_out} more lines of this file's diff not shown (the whole file: {})",
            if b_label == "/dev/null" {
                a_label
            } else {
                b_label
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_changed_line() {
        let d = file_diff(
            "expected/a_x_b/remote/stdout",
            "remote/stdout",
            Some(Body::Text("one\ntwo\nthree\n")),
            Some(Body::Text("one\nTWO\nthree")),
        );
        assert_eq!(
            d,
            "--- expected/a_x_b/remote/stdout\n+++ remote/stdout\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n"
        );
    }

    #[test]
    fn binary_and_missing_files() {
        let d = file_diff(
            "e/x",
            "x",
            Some(Body::Hashed {
                sha256: sha256(b"\0a"),
                len: 2,
            }),
            Some(Body::Hashed {
                sha256: sha256(b"\0b"),
                len: 2,
            }),
        );
        assert!(
            d.starts_with("Binary files e/x and x differ (sha256 "),
            "{d}"
        );
        let d = file_diff("e/x", "x", None, Some(Body::Text("new\n")));
        assert!(
            d.starts_with("--- /dev/null\n+++ x\n@@ -0,0 +1 @@\n+new\n"),
            "{d}"
        );
    }

    #[test]
    fn huge_diffs_are_capped() {
        let a: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let b: String = (0..1000).map(|i| format!("LINE {i}\n")).collect();
        let d = file_diff("e", "n", Some(Body::Text(&a)), Some(Body::Text(&b)));
        assert!(
            d.lines().count() <= MAX_FILE_LINES + 3,
            "{}",
            d.lines().count()
        );
        assert!(
            d.contains("more lines of this file's diff not shown"),
            "{d}"
        );
        let mut all = Diff::default();
        for i in 0..200 {
            all.file(
                &format!("e{i}"),
                "n",
                Some(Body::Text(&a[..2000])),
                Some(Body::Text(&b[..2000])),
            );
        }
        let t = all.finish();
        assert!(t.len() <= MAX_BYTES + 200, "{}", t.len());
        assert!(
            t.ends_with("the files themselves are whole)\n"),
            "{}",
            &t[t.len() - 200..]
        );
    }
}
