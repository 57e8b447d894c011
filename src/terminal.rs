//! What names look like on a terminal: group, test and pair names (and lines that hold
//! them) are printed with their control characters and text-direction overrides
//! escaped (`\n`, `\u{1b}`, `\u{202e}`), so a name cannot move the cursor, change
//! colours, clear the screen or reorder the line around it. See docs/running.md.

use std::borrow::Cow;

/// Would `c` act on a terminal instead of being shown?
fn acts(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` safe to print: unchanged when it holds nothing that acts on a terminal,
/// else with each such character written as its Rust escape (`\t`, `\n`, `\u{1b}`).
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acts) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if acts(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `word` as one shell word that is also safe to print: quoted as POSIX shells read it
/// (shlex), or, when it holds characters that act on a terminal, as a bash/zsh `$'…'`
/// string with those characters escaped. For hints like `pairbench run <name>`.
pub fn shell_word(word: &str) -> String {
    if !word.chars().any(acts)
        && let Ok(q) = shlex::try_quote(word)
    {
        return q.into_owned();
    }
    let mut out = String::from("$'");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if acts(c) && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if acts(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::{shell_word, shown};

    #[test]
    fn shell_words_quote_what_a_shell_would_expand() {
        assert_eq!(shell_word("echo"), "echo");
        assert_eq!(shell_word("$(touch x)"), "'$(touch x)'");
        assert_eq!(shell_word("it's"), "\"it's\"");
        assert_eq!(shell_word("a\nb'c\\"), "$'a\\x0ab\\'c\\\\'");
        assert_eq!(shell_word("x\u{202e}"), "$'x\\u202e'");
        assert_eq!(shell_word("nul\0"), "$'nul\\x00'");
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(shown("plain ü name"), "plain ü name");
        assert_eq!(shown("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(shown("\u{1b}[2Jx"), "\\u{1b}[2Jx");
        assert_eq!(shown("evil\u{202e}txt"), "evil\\u{202e}txt");
        assert_eq!(shown("\u{7f}\u{9b}"), "\\u{7f}\\u{9b}");
    }
}
