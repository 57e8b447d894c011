//! `junit.xml` (SPEC §5): a `testsuite` per group, a `testcase` per pair (`classname` the
//! group, `name` the pair, `time` its duration; with `--param`/`--repeat`, one per run of
//! a pair, named `pair [variant]`); FAILED runs carry a `failure`, ERROR runs an `error`,
//! each with the reason, how its output differs from its reference (`check.diff`,
//! docs/regression.md) and the tail of both sides' stdout and stderr; a flaky pass says
//! so in `system-out`. Written with quick-xml; text is made XML-safe (control characters
//! from logs replaced).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::load::{Run, run_dir, run_label, run_parts};
use super::names::xml_text;
use crate::tree::{PairRecord, Status};

/// Lines of each log kept in a failure or error.
pub const TAIL_LINES: usize = 40;
/// Lines of a run's `check.diff` kept in its failure.
pub const DIFF_LINES: usize = 200;
/// Bytes read from the end of each log at most.
pub const TAIL_BYTES: u64 = 8 * 1024;

/// The junit.xml document of a run.
pub fn render(run: &Run) -> std::io::Result<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let c = run.counts();
    let total_time: f64 = run.groups.iter().map(|g| g.time()).sum();
    let suites_name = xml_text(&format!("pairbench {}", run.tag));
    w.create_element("testsuites")
        .with_attributes([
            ("name", suites_name.as_str()),
            ("tests", &c.total().to_string()),
            ("failures", &c.failed.to_string()),
            ("errors", &c.error.to_string()),
            ("time", &secs(total_time)),
        ])
        .write_inner_content(|w| {
            for g in &run.groups {
                let gc = g.counts();
                let name = xml_text(&g.name);
                w.create_element("testsuite")
                    .with_attributes([
                        ("name", name.as_str()),
                        ("tests", &gc.total().to_string()),
                        ("failures", &gc.failed.to_string()),
                        ("errors", &gc.error.to_string()),
                        ("skipped", "0"),
                        ("time", &secs(g.time())),
                    ])
                    .write_inner_content(|w| {
                        for p in &g.runs {
                            testcase(w, &run.dir, p)?;
                        }
                        Ok(())
                    })?;
            }
            Ok(())
        })?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

fn testcase(w: &mut Writer<Vec<u8>>, tag_dir: &Path, p: &PairRecord) -> std::io::Result<()> {
    let classname = xml_text(&p.group);
    let name = xml_text(&run_label(p));
    let el = w.create_element("testcase").with_attributes([
        ("classname", classname.as_str()),
        ("name", name.as_str()),
        ("time", &secs(p.duration_s)),
    ]);
    let flaky = p.flaky.then(|| {
        format!(
            "flaky: passed on attempt {} after an earlier attempt failed (earlier attempts are in {}/attempts/)",
            p.attempt,
            run_parts(p).join("/")
        )
    });
    let kind = match p.status {
        Status::Success => {
            match flaky {
                None => el.write_empty()?,
                Some(text) => el.write_inner_content(|w| {
                    w.create_element("system-out")
                        .write_text_content(BytesText::new(&xml_text(&text)))?;
                    Ok(())
                })?,
            };
            return Ok(());
        }
        Status::Failed => "failure",
        Status::Error => "error",
    };
    let message = xml_text(&p.reason.replace(['\n', '\r'], " "));
    let body = xml_text(&details(tag_dir, p));
    el.write_inner_content(|w| {
        w.create_element(kind)
            .with_attributes([("message", message.as_str()), ("type", p.status.marker())])
            .write_text_content(BytesText::new(&body))?;
        Ok(())
    })?;
    Ok(())
}

/// The reason, then the tail of each side's logs.
fn details(tag_dir: &Path, p: &PairRecord) -> String {
    let dir = run_dir(tag_dir, p);
    let mut s = format!("{}: {}\n", p.status, p.reason);
    s.push_str(&format!("folder: {}\n", run_parts(p).join("/")));
    if let Some((diff, more)) = super::check_diff(tag_dir, p, DIFF_LINES) {
        s.push_str("\n--- how the output differs from expected (check.diff) ---\n");
        s.push_str(&diff);
        if more > 0 {
            s.push_str(&format!("... {more} more lines in check.diff\n"));
        }
    }
    for side in ["local", "remote"] {
        for stream in ["stdout", "stderr"] {
            let (text, cut) = tail(&dir, &Path::new(side).join(stream), TAIL_LINES, TAIL_BYTES);
            let what = if cut {
                format!("last {TAIL_LINES} lines")
            } else {
                "all".to_string()
            };
            match text {
                None => s.push_str(&format!("\n--- {side}/{stream}: missing\n")),
                Some(t) if t.is_empty() => s.push_str(&format!("\n--- {side}/{stream}: empty\n")),
                Some(t) => {
                    s.push_str(&format!("\n--- {side}/{stream} ({what}) ---\n{t}"));
                    if !t.ends_with('\n') {
                        s.push('\n');
                    }
                }
            }
        }
    }
    s
}

/// The last `lines` lines of the file `rel` below `dir` (reading at most `max_bytes` from
/// its end), and whether anything was cut off; `None` when the file cannot be read or is
/// reached through a link (never followed: a script may have left one).
pub fn tail(dir: &Path, rel: &Path, lines: usize, max_bytes: u64) -> (Option<String>, bool) {
    let Ok(mut f) = crate::tree::nofollow::open_beneath(dir, rel) else {
        return (None, false);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max_bytes);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return (None, false);
    }
    let mut buf = Vec::new();
    if f.take(max_bytes).read_to_end(&mut buf).is_err() {
        return (None, false);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut cut = start > 0;
    let mut text: &str = &text;
    if cut {
        // Drop the partial first line.
        text = text.split_once('\n').map_or("", |(_, rest)| rest);
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    let all: Vec<&str> = body.split('\n').collect();
    if all.len() > lines {
        cut = true;
    }
    let kept = &all[all.len().saturating_sub(lines)..];
    let mut out = kept.join("\n");
    if !out.is_empty() && text.ends_with('\n') {
        out.push('\n');
    }
    (Some(out), cut)
}

fn secs(s: f64) -> String {
    format!("{:.3}", if s.is_finite() && s > 0.0 { s } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &text).unwrap();
        let dir = d.path();
        let log = Path::new("log");
        let (t, cut) = tail(dir, log, 3, 1 << 20);
        assert_eq!(t.as_deref(), Some("line 98\nline 99\nline 100\n"));
        assert!(cut);
        let (t, cut) = tail(dir, log, 3, 20);
        assert_eq!(t.as_deref(), Some("line 99\nline 100\n"));
        assert!(cut);
        std::fs::write(&p, "one\ntwo").unwrap();
        assert_eq!(tail(dir, log, 5, 100), (Some("one\ntwo".into()), false));
        std::fs::write(&p, "").unwrap();
        assert_eq!(tail(dir, log, 5, 100), (Some(String::new()), false));
        assert_eq!(tail(dir, Path::new("nope"), 5, 100), (None, false));
        std::os::unix::fs::symlink(&p, dir.join("link")).unwrap();
        assert_eq!(tail(dir, Path::new("link"), 5, 100), (None, false));
    }
}
