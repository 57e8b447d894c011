//! Host patterns of an inventory, as Ansible expands them: a `:port` suffix
//! (`host:2222`, `[v6::1]:2222`), and ranges `node[01:16].lab` (leading zeros keep their
//! width), `[a:f]` letters and `[1:9:2]` steps, several in one name.

/// `(host names, port)` of one pattern.
pub fn expand(pattern: &str) -> Result<(Vec<String>, Option<u16>), String> {
    let (host, port) = split_port(pattern);
    if pattern.trim().ends_with(':') && port.is_none() {
        return Err(format!(
            "invalid host pattern '{pattern}': ending in ':' is not allowed, this character is reserved to provide a port"
        ));
    }
    if host.trim() == "---" {
        return Err(format!(
            "invalid host pattern '{pattern}': '---' is normally a sign this is a YAML file"
        ));
    }
    let names = if host.contains('[') {
        expand_ranges(&host)?
    } else {
        vec![host]
    };
    Ok((names, port))
}

/// Take a port off `host:port` (no other `:` outside brackets) or `[anything]:port`.
fn split_port(pattern: &str) -> (String, Option<u16>) {
    let Some((head, tail)) = pattern.rsplit_once(':') else {
        return (pattern.to_string(), None);
    };
    let Ok(port) = tail.parse::<u16>() else {
        return (pattern.to_string(), None);
    };
    if tail.is_empty() || !tail.bytes().all(|b| b.is_ascii_digit()) {
        return (pattern.to_string(), None);
    }
    // `[host]:port`: the brackets hold the whole address (an IPv6 one, usually).
    if let Some(inner) = head.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
        && inner.parse::<std::net::IpAddr>().is_ok()
    {
        return (inner.to_string(), Some(port));
    }
    // `host:port`: no `:` in the host outside range brackets.
    let mut depth = 0;
    for c in head.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => return (pattern.to_string(), None),
            _ => {}
        }
    }
    if head.is_empty() {
        return (pattern.to_string(), None);
    }
    (head.to_string(), Some(port))
}

/// Expand the first `[begin:end(:step)]` of `line`, then the rest recursively.
fn expand_ranges(line: &str) -> Result<Vec<String>, String> {
    let bad = |why: &str| format!("host range in '{line}': {why}");
    let open = line.find('[').ok_or_else(|| bad("no '['"))?;
    let close = line[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| bad("no ']'"))?;
    let (head, range, tail) = (&line[..open], &line[open + 1..close], &line[close + 1..]);
    let bounds: Vec<&str> = range.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err(bad("host range must be begin:end or begin:end:step"));
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err(bad("host range must specify end value"));
    }
    let step: usize = match bounds.get(2) {
        Some(s) => s
            .parse()
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| bad("the step must be a whole number of 1 or more"))?,
        None => 1,
    };
    let width = (beg.len() > 1 && beg.starts_with('0')).then_some(beg.len());
    if let Some(w) = width
        && w != end.len()
    {
        return Err(bad(
            "host range must specify equal-length begin and end formats",
        ));
    }
    let letters = |s: &str| s.len() == 1 && s.as_bytes()[0].is_ascii_alphabetic();
    // Ansible's letter order: a..z then A..Z.
    let letter_index = |c: u8| -> usize {
        if c.is_ascii_lowercase() {
            (c - b'a') as usize
        } else {
            26 + (c - b'A') as usize
        }
    };
    let seq: Vec<String> = if letters(beg) && letters(end) {
        let (b, e) = (
            letter_index(beg.as_bytes()[0]),
            letter_index(end.as_bytes()[0]),
        );
        if b > e {
            return Err(bad("host range must have begin <= end"));
        }
        let alphabet: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
        (b..=e)
            .step_by(step)
            .map(|i| alphabet[i].to_string())
            .collect()
    } else {
        let b: u64 = beg
            .parse()
            .map_err(|_| bad("the begin of a range is a number or one letter"))?;
        let e: u64 = end
            .parse()
            .map_err(|_| bad("the end of a range is a number or one letter"))?;
        if e.saturating_sub(b) > 100_000 {
            return Err(bad("more than 100000 hosts in one range"));
        }
        (b..=e)
            .step_by(step)
            .map(|n| match width {
                Some(w) => format!("{n:0w$}"),
                None => n.to_string(),
            })
            .collect()
    };
    let mut out = Vec::new();
    for s in seq {
        let name = format!("{head}{s}{tail}");
        if name.contains('[') {
            out.extend(expand_ranges(&name)?);
        } else {
            out.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_ranges() {
        assert_eq!(
            expand("node[01:03].lab").unwrap(),
            (
                vec![
                    "node01.lab".into(),
                    "node02.lab".into(),
                    "node03.lab".into()
                ],
                None
            )
        );
        assert_eq!(
            expand("db-[a:c]:2222").unwrap(),
            (
                vec!["db-a".into(), "db-b".into(), "db-c".into()],
                Some(2222)
            )
        );
        assert_eq!(expand("[::1]:22").unwrap(), (vec!["::1".into()], Some(22)));
        assert_eq!(expand("fe80::1").unwrap(), (vec!["fe80::1".into()], None));
        assert_eq!(expand("h[1:5:2]").unwrap().0, vec!["h1", "h3", "h5"]);
        assert_eq!(expand("r[1:2]c[a:b]").unwrap().0.len(), 4);
        assert!(expand("h[01:3]").is_err());
        assert!(expand("h:").is_err());
    }
}
