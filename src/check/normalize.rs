//! Normalisation (docs/regression.md, "Normalisation"): what differs from one run to the
//! next only incidentally is replaced by a placeholder, in a run's output and in its
//! reference alike, before they are compared. Built in, in this order:
//!
//! 1. the paths the scripts were given, longest first: each side's folder (while the run
//!    was written and where it ended up) → `[RESULT_DIR]`, the group's result folder →
//!    `[GROUP_RESULT_DIR]`, the group's scripts → `[GROUP_DIR]`, the groups folder →
//!    `[GROUPS_DIR]`, on either machine;
//! 2. the tag, as a whole word of 3 characters or more → `[TAG]`;
//! 3. the remote and local host addresses, as whole addresses → `[REMOTE_HOST]`,
//!    `[LOCAL_HOST]`;
//! 4. timestamps → `[TIME]`: RFC 3339 / ISO 8601 (`2026-11-22T04:51:19.123+01:00`,
//!    `2026-11-22 04:51:19,123`), the common log format (`22/Nov/2026:04:51:19 +0000`),
//!    date(1) (`Sun Nov 22 04:51:19 UTC 2026`), RFC 2822 and redis (`22 Nov 2026
//!    04:51:19.123`), syslog (`Nov 22 04:51:19`), and a time of day (`04:51:19.123`);
//! 5. hex addresses `0x` with 8 or more digits → `[ADDR]`;
//! 6. process ids where they are named as such: `pid 1234`, `pid=1234`, `PID: 1234` →
//!    `pid [PID]`, a syslog tag `sshd[1234]:` → `sshd[[PID]]:`, redis' `1234:M ` at the
//!    start of a line → `[PID]:M `;
//!
//! then the group's `[[check.normalize]]` rules, in order. Line ends `\r\n` become `\n`.

use std::sync::LazyLock;

use regex::Regex;

use crate::group_toml::Normalize;
use crate::tree::record::Places;

/// The run-specific values to replace: (literal, placeholder), longest literal first.
#[derive(Debug, Clone, Default)]
pub struct Context {
    paths: Vec<(String, &'static str)>,
    tag: String,
    hosts: Vec<(String, &'static str)>,
}

impl Context {
    /// The context of a run: what its scripts were told (`places`), the folders the run
    /// was in (`run_dirs`, each holding `local/` and `remote/`: where it was written and
    /// where it ended up), and its tag.
    pub fn of(places: Option<&Places>, run_dirs: &[&std::path::Path], tag: &str) -> Context {
        let mut paths: Vec<(String, &'static str)> = Vec::new();
        let s = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
        for run_dir in run_dirs {
            for side in crate::tree::layout::SIDES {
                paths.push((s(run_dir.join(side)), "[RESULT_DIR]"));
            }
        }
        if let Some(p) = places {
            for (v, name) in [
                (&p.local_dir, "[RESULT_DIR]"),
                (&p.remote_dir, "[RESULT_DIR]"),
                (&p.local_results, "[GROUP_RESULT_DIR]"),
                (&p.remote_results, "[GROUP_RESULT_DIR]"),
                (&p.local_group_dir, "[GROUP_DIR]"),
                (&p.remote_group_dir, "[GROUP_DIR]"),
                (&p.local_root, "[GROUPS_DIR]"),
                (&p.remote_root, "[GROUPS_DIR]"),
            ] {
                paths.push((v.clone(), name));
            }
        }
        // Paths of the root folder alone would replace every `/`.
        paths.retain(|(v, _)| v.len() > 1);
        paths.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        paths.dedup_by(|a, b| a.0 == b.0);
        let mut hosts = Vec::new();
        if let Some(p) = places {
            hosts.push((p.remote_host.clone(), "[REMOTE_HOST]"));
            if p.local_host != p.remote_host {
                hosts.push((p.local_host.clone(), "[LOCAL_HOST]"));
            }
        }
        hosts.retain(|(v, _)| !v.is_empty());
        hosts.sort_by_key(|h| std::cmp::Reverse(h.0.len()));
        Context {
            paths,
            tag: if tag.chars().count() >= 3 {
                tag.to_string()
            } else {
                String::new()
            },
            hosts,
        }
    }
}

/// Timestamps, longest forms first (see the module's list).
static TIME: LazyLock<Regex> = LazyLock::new(|| {
    let mon = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
    let day = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
    let forms = [
        // RFC 3339 / ISO 8601, with a space or T, fractions with . or , and a zone.
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
            .to_string(),
        // Common log format (Apache, nginx).
        format!(r"\b\d{{1,2}}/{mon}/\d{{4}}:\d{{2}}:\d{{2}}:\d{{2}}(?: [+-]\d{{4}})?"),
        // date(1).
        format!(r"\b{day} {mon} [ \d]\d \d{{2}}:\d{{2}}:\d{{2}}(?: [A-Z]{{2,5}})? \d{{4}}"),
        // RFC 2822, redis.
        format!(
            r"\b(?:{day}, )?\d{{1,2}} {mon} \d{{4}} \d{{2}}:\d{{2}}:\d{{2}}(?:\.\d+)?(?: (?:[+-]\d{{4}}|GMT|UTC))?"
        ),
        // syslog.
        format!(r"\b{mon} [ \d]\d \d{{2}}:\d{{2}}:\d{{2}}(?:\.\d+)?"),
        // A time of day.
        r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b".to_string(),
    ];
    Regex::new(&forms.join("|")).expect("built-in timestamp pattern")
});

static ADDR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b0x[0-9a-fA-F]{8,}\b").expect("built-in address pattern"));

/// Process ids named as such: (pattern, replacement).
static PIDS: LazyLock<[(Regex, &'static str); 3]> = LazyLock::new(|| {
    let re = |p: &str| Regex::new(p).expect("built-in pid pattern");
    [
        (re(r"(?i)\b(pid)(\s*[=:]\s*|\s+)\d+\b"), "${1}${2}[PID]"),
        (re(r"\b([A-Za-z_][\w.-]*)\[\d{2,}\]:"), "${1}[[PID]]:"),
        (re(r"(?m)^\d+:([XCSM]) "), "[PID]:${1} "),
    ]
});

/// `text` normalised: the built-in rules with `ctx`, then the group's `rules`.
pub fn normalize(text: &str, ctx: &Context, rules: &[Normalize]) -> String {
    let mut t = text.replace("\r\n", "\n");
    for (literal, placeholder) in &ctx.paths {
        if t.contains(literal.as_str()) {
            t = t.replace(literal.as_str(), placeholder);
        }
    }
    if !ctx.tag.is_empty() {
        t = replace_token(&t, &ctx.tag, "[TAG]", false);
    }
    for (addr, placeholder) in &ctx.hosts {
        t = replace_token(&t, addr, placeholder, true);
    }
    t = TIME.replace_all(&t, "[TIME]").into_owned();
    t = ADDR.replace_all(&t, "[ADDR]").into_owned();
    for (re, rep) in PIDS.iter() {
        t = re.replace_all(&t, *rep).into_owned();
    }
    for r in rules {
        t = r.regex.replace_all(&t, r.replace.as_str()).into_owned();
    }
    t
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Replace `needle` where it stands as a whole word (an address: also not followed by a
/// `.` and a word character, so `127.0.0.1` is not found in `127.0.0.10` or
/// `127.0.0.1.5`).
fn replace_token(text: &str, needle: &str, with: &str, address: bool) -> String {
    if needle.is_empty() || !text.contains(needle) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(i) = rest.find(needle) {
        let prev = rest[..i].chars().next_back().or(before);
        let after = &rest[i + needle.len()..];
        let mut next = after.chars();
        let n1 = next.next();
        let n2 = next.next();
        let starts_ok = !prev.is_some_and(|c| word_char(c) || (address && c == '.'));
        let ends_ok = match n1 {
            None => true,
            Some(c) if word_char(c) => false,
            Some('.') if address => !n2.is_some_and(word_char),
            Some(_) => true,
        };
        out.push_str(&rest[..i]);
        if starts_ok && ends_ok {
            out.push_str(with);
            before = needle.chars().next_back();
            rest = after;
        } else {
            // Step one character on, so overlapping finds are looked at too.
            let step = needle.chars().next().map_or(1, char::len_utf8);
            out.push_str(&needle[..step]);
            before = needle[..step].chars().next_back();
            rest = &rest[i + step..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        let places = Places {
            local_dir: "/r/t1/g/.a_x_b.partial/local".into(),
            remote_dir: "/home/u/.pairbench/runs/9/results/t1/g/a_x_b/remote".into(),
            local_group_dir: "/src/groups/g".into(),
            remote_group_dir: "/home/u/.pairbench/runs/9/groups/g".into(),
            local_root: "/src/groups".into(),
            remote_root: "/home/u/.pairbench/runs/9/groups".into(),
            local_results: "/r/t1/g".into(),
            remote_results: "/home/u/.pairbench/runs/9/results/t1/g".into(),
            remote_host: "10.0.0.2".into(),
            local_host: "10.0.0.1".into(),
        };
        Context::of(
            Some(&places),
            &[std::path::Path::new("/r/t1/g/a_x_b")],
            "t1-nightly",
        )
    }

    #[test]
    fn paths_tags_and_hosts_become_placeholders() {
        let c = ctx();
        let n = |t: &str| normalize(t, &c, &[]);
        assert_eq!(
            n("cwd /r/t1/g/.a_x_b.partial/local/out"),
            "cwd [RESULT_DIR]/out"
        );
        assert_eq!(n("at /r/t1/g/a_x_b/remote"), "at [RESULT_DIR]");
        assert_eq!(
            n("/home/u/.pairbench/runs/9/results/t1/g/a_x_b/remote/x"),
            "[RESULT_DIR]/x"
        );
        assert_eq!(n("hooks ran in /r/t1/g"), "hooks ran in [GROUP_RESULT_DIR]");
        assert_eq!(
            n("helper /src/groups/g/lib.sh"),
            "helper [GROUP_DIR]/lib.sh"
        );
        assert_eq!(n("root /src/groups/other"), "root [GROUPS_DIR]/other");
        assert_eq!(
            n("tag t1-nightly, not xt1-nightly"),
            "tag [TAG], not xt1-nightly"
        );
        assert_eq!(
            n("to 10.0.0.2:80 from 10.0.0.1. not 10.0.0.20 or 10.0.0.2.5"),
            "to [REMOTE_HOST]:80 from [LOCAL_HOST]. not 10.0.0.20 or 10.0.0.2.5"
        );
        assert_eq!(n("a\r\nb\r\n"), "a\nb\n");
    }

    #[test]
    fn times_addresses_and_pids_become_placeholders() {
        let c = Context::default();
        let n = |t: &str| normalize(t, &c, &[]);
        for t in [
            "2026-11-22T04:51:19Z",
            "2026-11-22T04:51:19.123456+01:00",
            "2026-11-22 04:51:19,123",
            "22/Nov/2026:04:51:19 +0000",
            "Sun Nov 22 04:51:19 UTC 2026",
            "Sun, 22 Nov 2026 04:51:19 GMT",
            "22 Nov 2026 04:51:19.123",
            "Nov  2 04:51:19",
            "04:51:19.5",
        ] {
            assert_eq!(n(&format!("[{t}] up")), "[[TIME]] up", "{t}");
        }
        assert_eq!(n("at 0x7ffd5e8a1c20 and 0x1234"), "at [ADDR] and 0x1234");
        assert_eq!(
            n("started (pid 4242), PID=17"),
            "started (pid [PID]), PID=[PID]"
        );
        assert_eq!(n("sshd[4242]: ok; a[1]: b"), "sshd[[PID]]: ok; a[1]: b");
        assert_eq!(
            n("4242:M 22 Nov 2026 04:51:19.123 * Ready"),
            "[PID]:M [TIME] * Ready"
        );
        assert_eq!(n("took 12 ms, 3 items"), "took 12 ms, 3 items");
    }

    #[test]
    fn group_rules_run_last_in_order() {
        let rules = [
            Normalize {
                regex: Regex::new(r"took \d+ ms").unwrap(),
                replace: "took [N] ms".into(),
            },
            Normalize {
                regex: Regex::new(r"id=(\w)\w*").unwrap(),
                replace: "id=$1…".into(),
            },
        ];
        assert_eq!(
            normalize("took 12 ms id=abc", &Context::default(), &rules),
            "took [N] ms id=a…"
        );
    }

    #[test]
    fn short_tags_are_left_alone() {
        let c = Context::of(None, &[std::path::Path::new("/r/a/g/p")], "a");
        assert_eq!(normalize("a b a", &c, &[]), "a b a");
    }
}
