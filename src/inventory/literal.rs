//! The two pieces of Python that Ansible's INI inventory reader leans on: `shlex.split`
//! (POSIX mode, `#` comments) for host lines, and `ast.literal_eval` for values, so
//! `port=22` is a number, `name="a b"` a string, `on=True` a boolean, and what is not a
//! Python literal (`042`, `yes`, `a b`) stays the text it is.

use serde_json::{Map, Number, Value};

/// `shlex.split(line, comments=True)`: words, with quotes and backslashes as Python's
/// POSIX-mode shlex treats them (a `#` outside quotes ends the line, even inside a word).
pub fn shlex_split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '#' => break,
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => return Err("no escaped character".into()),
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err("No closing quotation".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&n) if n == '"' || n == '\\' => {
                                cur.push(n);
                                chars.next();
                            }
                            Some(_) => cur.push('\\'),
                            None => return Err("No closing quotation".into()),
                        },
                        Some(n) => cur.push(n),
                        None => return Err("No closing quotation".into()),
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Ansible's `_parse_value`: the value of `ast.literal_eval(text)` when `text` is a
/// Python literal, else the text itself.
pub fn parse_value(text: &str) -> Value {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    match p.value() {
        Some(v) if p.at_end() => v,
        _ => Value::String(text.to_string()),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.i == self.s.len()
    }

    fn value(&mut self) -> Option<Value> {
        // Leading blanks are an indentation error to Python.
        if self.i == 0 && matches!(self.peek(), Some(b' ' | b'\t')) {
            return None;
        }
        self.skip_ws();
        match self.peek()? {
            b'\'' | b'"' => self.string().map(Value::String),
            b'[' => self.sequence(b']'),
            b'(' => self.sequence(b')'),
            b'{' => self.dict(),
            b'-' | b'+' | b'0'..=b'9' | b'.' => self.number(),
            _ => self.word(),
        }
    }

    fn word(&mut self) -> Option<Value> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        match &self.s[start..self.i] {
            b"True" => Some(Value::Bool(true)),
            b"False" => Some(Value::Bool(false)),
            b"None" => Some(Value::Null),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<String> {
        let mut out = String::new();
        // Adjacent literals concatenate ('a' 'b' is 'ab').
        loop {
            let q = self.peek()?;
            let triple = self.s[self.i..].starts_with(&[q, q, q]);
            self.i += if triple { 3 } else { 1 };
            let mut bytes = Vec::new();
            loop {
                let c = self.peek()?;
                if triple && self.s[self.i..].starts_with(&[q, q, q]) {
                    self.i += 3;
                    break;
                }
                if !triple && c == q {
                    self.i += 1;
                    break;
                }
                if !triple && c == b'\n' {
                    return None;
                }
                self.i += 1;
                if c == b'\\' {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'n' => bytes.push(b'\n'),
                        b't' => bytes.push(b'\t'),
                        b'r' => bytes.push(b'\r'),
                        b'0' => bytes.push(0),
                        b'\\' | b'\'' | b'"' => bytes.push(e),
                        b'\n' => {}
                        other => {
                            bytes.push(b'\\');
                            bytes.push(other);
                        }
                    }
                } else {
                    bytes.push(c);
                }
            }
            out.push_str(&String::from_utf8(bytes).ok()?);
            let save = self.i;
            self.skip_ws();
            if !matches!(self.peek(), Some(b'\'' | b'"')) {
                self.i = save;
                return Some(out);
            }
        }
    }

    fn sequence(&mut self, close: u8) -> Option<Value> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek()? == close {
                self.i += 1;
                return Some(Value::Array(items));
            }
            items.push(self.value()?);
            self.skip_ws();
            match self.peek()? {
                b',' => self.i += 1,
                c if c == close => {}
                _ => return None,
            }
        }
    }

    fn dict(&mut self) -> Option<Value> {
        self.i += 1;
        let mut map = Map::new();
        loop {
            self.skip_ws();
            if self.peek()? == b'}' {
                self.i += 1;
                return Some(Value::Object(map));
            }
            let key = match self.value()? {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if b { "True" } else { "False" }.to_string(),
                _ => return None,
            };
            self.skip_ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            let v = self.value()?;
            map.insert(key, v);
            self.skip_ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {}
                _ => return None,
            }
        }
    }

    /// Python's int and float literals (a leading zero on a decimal int is an error).
    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        let mut negative = false;
        while let Some(c @ (b'-' | b'+')) = self.peek() {
            negative ^= c == b'-';
            self.i += 1;
            self.skip_ws();
        }
        let rest = &self.s[self.i..];
        let len = rest
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.'))
            .unwrap_or(rest.len());
        let mut tok = std::str::from_utf8(&rest[..len]).ok()?.to_string();
        // `1e-5`: the sign belongs to the exponent.
        if (tok.ends_with('e') || tok.ends_with('E'))
            && matches!(rest.get(len), Some(b'-' | b'+'))
            && !tok.starts_with("0x")
        {
            let more = rest[len + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            tok = std::str::from_utf8(&rest[..len + 1 + more])
                .ok()?
                .to_string();
        }
        self.i += tok.len();
        if tok.is_empty() || tok.contains("__") || tok.ends_with('_') || tok.starts_with('_') {
            self.i = start;
            return None;
        }
        let digits = tok.replace('_', "");
        let lower = digits.to_ascii_lowercase();
        let radix = |p: &str, r: u32| -> Option<Value> {
            let n = i64::from_str_radix(lower.strip_prefix(p)?, r).ok()?;
            Some(Value::from(if negative { -n } else { n }))
        };
        if lower.starts_with("0x") {
            return radix("0x", 16);
        }
        if lower.starts_with("0o") {
            return radix("0o", 8);
        }
        if lower.starts_with("0b") {
            return radix("0b", 2);
        }
        if digits.bytes().all(|c| c.is_ascii_digit()) {
            if digits.len() > 1 && digits.starts_with('0') && digits.bytes().any(|c| c != b'0') {
                return None;
            }
            let n: i64 = digits.parse().ok()?;
            return Some(Value::from(if negative { -n } else { n }));
        }
        if tok.starts_with('_') || lower.ends_with('j') {
            return None;
        }
        let f: f64 = lower.parse().ok()?;
        if !f.is_finite() {
            return None;
        }
        Number::from_f64(if negative { -f } else { f }).map(Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_literals() {
        assert_eq!(parse_value("22"), json!(22));
        assert_eq!(parse_value("-3"), json!(-3));
        assert_eq!(parse_value("1_000"), json!(1000));
        assert_eq!(parse_value("0x1f"), json!(31));
        assert_eq!(parse_value("1.5"), json!(1.5));
        assert_eq!(parse_value("042"), json!("042"));
        assert_eq!(parse_value("True"), json!(true));
        assert_eq!(parse_value("yes"), json!("yes"));
        assert_eq!(parse_value("'a b'"), json!("a b"));
        assert_eq!(parse_value("\"x\\\"y\""), json!("x\"y"));
        assert_eq!(parse_value("[1, 'a']"), json!([1, "a"]));
        assert_eq!(parse_value("{'k': 2}"), json!({"k": 2}));
        assert_eq!(parse_value("a b"), json!("a b"));
        assert_eq!(parse_value("10.0.0.1"), json!("10.0.0.1"));
        assert_eq!(parse_value(""), json!(""));
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            shlex_split("h a=1 b='x y' c=\"q\\\"r\" # note").unwrap(),
            vec!["h", "a=1", "b=x y", "c=q\"r"]
        );
        assert_eq!(shlex_split("h a=b#c d").unwrap(), vec!["h", "a=b"]);
        assert!(shlex_split("h a='x").is_err());
    }
}
