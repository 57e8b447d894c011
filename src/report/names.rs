//! Names made safe for where they go: plot file names that cannot leave `plots/`,
//! percent-encoded relative links, and text escaped for HTML, Markdown and XML.

use sha2::{Digest, Sha256};

/// A file name stem for `name` that is safe on any file system and in a URL: ASCII
/// letters, digits, `-` and `_` only, at most 60 characters, followed by a short hash of
/// the original name so that names that differ only in unsafe characters never collide.
/// Never empty, never starts with `.`, never contains `/`.
pub fn safe_stem(name: &str) -> String {
    let mut out = String::new();
    let mut last_underscore = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c);
            last_underscore = false;
        } else if !last_underscore {
            out.push('_');
            last_underscore = true;
        }
        if out.len() >= 60 {
            break;
        }
    }
    let trimmed = out.trim_matches('_');
    let hash = Sha256::digest(name.as_bytes());
    let short: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    if trimmed.is_empty() {
        short
    } else {
        format!("{trimmed}-{short}")
    }
}

/// Percent-encode one path segment (everything but RFC 3986 unreserved characters).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A relative link to a path below the tag folder, each part percent-encoded; a group
/// name's `/` stays a folder separator.
pub fn href(parts: &[&str]) -> String {
    parts
        .iter()
        .flat_map(|p| p.split('/'))
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// Text for HTML element content and attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a Markdown table cell, heading or list item (always after a `| `, `## ` or
/// `- ` prefix, so line-start syntax cannot trigger): one line, and the characters that
/// mean something mid-line escaped.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '<' | '>' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// One line of text: control characters (newlines, escapes, NUL) become U+FFFD, so
/// labels and table cells cannot break their layout.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// Text that XML 1.0 can hold: characters it forbids (most C0 controls, U+FFFE, U+FFFF)
/// become U+FFFD; tabs and newlines are kept.
pub fn xml_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 => '\u{FFFD}',
            '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// `name` cut to at most `max` characters, with an ellipsis when cut.
pub fn ellipsize(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        return name.to_string();
    }
    let mut s: String = name.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_safe_and_distinct() {
        for name in [
            "../../etc",
            "a/b",
            "a b",
            "a_b",
            "\"q\" ü",
            ".",
            "",
            "ü",
            "a\nb",
        ] {
            let s = safe_stem(name);
            assert!(!s.is_empty() && !s.starts_with('.'), "{name:?} -> {s}");
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{name:?} -> {s}"
            );
        }
        assert_ne!(safe_stem("a/b"), safe_stem("a b"));
        assert_eq!(safe_stem("a/b"), safe_stem("a/b"));
        assert!(safe_stem(&"x".repeat(500)).len() < 80);
    }

    #[test]
    fn links_are_encoded_per_segment() {
        assert_eq!(
            href(&["a b/ü", "x%y_x_\"q\"", "local", "stdout"]),
            "a%20b/%C3%BC/x%25y_x_%22q%22/local/stdout"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            html("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(markdown("a|b_c"), "a\\|b\\_c");
        assert_eq!(xml_text("a\u{1b}[0m\tb\0"), "a\u{FFFD}[0m\tb\u{FFFD}");
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("abc", 4), "abc");
    }
}
