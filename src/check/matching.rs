//! References with wildcards (snapbox's, docs/regression.md, "Wildcards"): in a reference
//! line `[..]` matches any text within the line, and a line that is `...` alone matches
//! any number of lines, none included. [`matches`] says whether a run's (normalised)
//! text matches a reference; [`align`] rewrites the run's text so that the lines a
//! wildcard matched read as the reference does, so a diff shows only what really differs.

/// One line of a reference.
enum Line<'a> {
    /// `...`: any number of lines.
    Any,
    /// A line without `[..]`.
    Exact(&'a str),
    /// A line with `[..]`: its literal parts.
    Pattern(Vec<&'a str>),
}

impl<'a> Line<'a> {
    fn of(line: &'a str) -> Line<'a> {
        if line == "..." {
            Line::Any
        } else if line.contains("[..]") {
            Line::Pattern(line.split("[..]").collect())
        } else {
            Line::Exact(line)
        }
    }

    /// Does this (non-`...`) line match `actual`?
    fn matches(&self, actual: &str) -> bool {
        match self {
            Line::Any => true,
            Line::Exact(e) => *e == actual,
            Line::Pattern(parts) => {
                let (first, rest) = (parts[0], &parts[1..]);
                let Some(mut tail) = actual.strip_prefix(first) else {
                    return false;
                };
                let Some((last, middle)) = rest.split_last() else {
                    return tail.is_empty();
                };
                // Each literal part as early as it can be: if a match exists, this finds it.
                for part in middle {
                    match tail.find(part) {
                        Some(i) => tail = &tail[i + part.len()..],
                        None => return false,
                    }
                }
                tail.len() >= last.len() && tail.ends_with(last)
            }
        }
    }
}

/// The lines of a text; a missing last line end is no difference.
pub fn lines(text: &str) -> Vec<&str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() && text.len() <= 1 {
        return Vec::new();
    }
    body.split('\n').collect()
}

/// Does the reference text contain a wildcard?
pub fn has_wildcards(reference: &str) -> bool {
    reference.contains("[..]") || lines(reference).contains(&"...")
}

/// Does `actual` match `reference`?
pub fn matches(reference: &str, actual: &str) -> bool {
    let pat: Vec<Line> = lines(reference).into_iter().map(Line::of).collect();
    let act = lines(actual);
    // Glob matching over lines, `...` as the star: after a mismatch, go back to the last
    // `...` and let it take one more line. Linear unless `...` must backtrack.
    let (mut p, mut a) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while a < act.len() {
        match pat.get(p) {
            Some(Line::Any) => {
                star = Some((p, a));
                p += 1;
            }
            Some(l) if l.matches(act[a]) => {
                p += 1;
                a += 1;
            }
            _ => match star {
                Some((sp, sa)) => {
                    p = sp + 1;
                    a = sa + 1;
                    star = Some((sp, sa + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|l| matches!(l, Line::Any))
}

/// `actual` rewritten for a diff against `reference`: a line a `[..]` line matches reads
/// as that line, and the lines a `...` covers as `...`, where they can be lined up in one
/// pass; everything else is left as it is.
pub fn align(reference: &str, actual: &str) -> String {
    let pat_lines = lines(reference);
    let pat: Vec<Line> = pat_lines.iter().map(|l| Line::of(l)).collect();
    let act = lines(actual);
    let mut out: Vec<&str> = Vec::with_capacity(act.len());
    let (mut p, mut a) = (0, 0);
    while a < act.len() && p < pat.len() {
        match &pat[p] {
            Line::Any => {
                // The next line the reference wants, found further on.
                let next = pat[p + 1..].iter().position(|l| !matches!(l, Line::Any));
                match next {
                    None => {
                        out.push("...");
                        a = act.len();
                        p = pat.len();
                    }
                    Some(off) => {
                        let want = &pat[p + 1 + off];
                        match act[a..].iter().position(|l| want.matches(l)) {
                            Some(skip) => {
                                out.push("...");
                                a += skip;
                                p += 1 + off;
                            }
                            None => {
                                out.push("...");
                                p += 1;
                            }
                        }
                    }
                }
            }
            l if l.matches(act[a]) => {
                out.push(pat_lines[p]);
                p += 1;
                a += 1;
            }
            _ => {
                // Line it up with a later reference line if one matches it: a line was
                // taken out; else keep it (a line was changed or added).
                if pat[p + 1..].iter().any(|l| l.matches(act[a])) {
                    p += 1;
                } else {
                    out.push(act[a]);
                    a += 1;
                    p += 1;
                }
            }
        }
    }
    while p < pat.len() && matches!(pat[p], Line::Any) {
        out.push("...");
        p += 1;
    }
    out.extend(&act[a..]);
    let mut s = out.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_line_wildcards() {
        assert!(matches("took [..] ms\n", "took 12 ms\n"));
        assert!(matches("[..]", "anything at all"));
        assert!(matches("a[..]b[..]c", "a-x-b-y-b-c"));
        assert!(!matches("a[..]b[..]c", "a-x-c"));
        assert!(!matches("took [..] ms", "took 12 s"));
        assert!(!matches("ab[..]ba", "aba"));
        assert!(matches("ab[..]ba", "abba"));
        assert!(!matches("x", "x\ny"));
        assert!(matches("x\n", "x"));
    }

    #[test]
    fn line_wildcards() {
        assert!(matches("start\n...\nend\n", "start\nend\n"));
        assert!(matches("start\n...\nend\n", "start\n1\n2\nend\n"));
        assert!(matches("...\nend\n", "a\nend\nb\nend\n"));
        assert!(!matches("...\nend\n", "a\nend\nb\n"));
        assert!(matches("...\n", ""));
        assert!(matches("a\n...\n", "a\nb\nc\n"));
        assert!(!matches("a\n...\nc\n...\ne\n", "a\nb\nd\ne\n"));
        assert!(matches("a\n...\nc\n...\ne\n", "a\nb\nc\nd\ne\n"));
        assert!(matches("[..] 1\n...\n[..] 3\n", "x 1\ny 2\nz 3\n"));
    }

    #[test]
    fn aligned_text_shows_only_real_differences() {
        let reference = "start\n...\nport [..]\nend\n";
        assert_eq!(
            align(reference, "start\nnoise\nnoise\nport 80\nEND\n"),
            "start\n...\nport [..]\nEND\n"
        );
        assert_eq!(align("a\nb\nc\n", "a\nc\n"), "a\nc\n");
        assert_eq!(align("a\nb\n", "a\nx\nb\n"), "a\nx\nb\n");
    }
}
