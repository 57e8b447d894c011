//! Ansible's INI inventory format: `[group]` host lines (`pattern key=value...`),
//! `[group:vars]` (`key = value`, one a line), `[group:children]` (group names, which
//! may be defined further down), `#` and `;` comment lines; hosts before any section
//! are ungrouped.

use std::collections::BTreeMap;

use super::literal::{parse_value, shlex_split};
use super::{Inventory, InventoryError, hostpattern};

#[derive(Clone, Copy, PartialEq)]
enum State {
    Hosts,
    Vars,
    Children,
}

/// A group named before it is defined: where, how, and (for children) by which parents.
struct Pending {
    line: usize,
    state: State,
    parents: Vec<String>,
}

/// `[name]` or `[name:kind]`, with an optional `#` comment after it.
fn section(line: &str) -> Option<(String, Option<String>)> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find(']')?;
    let inside = &rest[..close];
    let after = rest[close + 1..].trim_start();
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    let (name, kind) = match inside.split_once(':') {
        Some((n, k)) => (n, Some(k)),
        None => (inside, None),
    };
    let name_ok = !name.is_empty() && !name.chars().any(|c| c == ']' || c.is_whitespace());
    let kind_ok =
        kind.is_none_or(|k| !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_'));
    (name_ok && kind_ok).then(|| (name.to_string(), kind.map(str::to_string)))
}

/// A group name alone on a line (with an optional `#` comment).
fn group_name(line: &str) -> Option<String> {
    let end = line
        .find(|c: char| c == ':' || c == ']' || c.is_whitespace())
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(end);
    let rest = rest.trim_start();
    (!name.is_empty() && (rest.is_empty() || rest.starts_with('#'))).then(|| name.to_string())
}

pub fn read(text: &str, inv: &mut Inventory) -> Result<(), InventoryError> {
    let path = inv.path.clone();
    let err = |line: usize, message: String| InventoryError::Line {
        path: path.clone(),
        line,
        message,
    };
    let mut pending: BTreeMap<String, Pending> = BTreeMap::new();
    let mut group = "ungrouped".to_string();
    let mut state = State::Hosts;
    for (idx, raw) in text.lines().enumerate() {
        let n = idx + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((name, kind)) = section(line) {
            state = match kind.as_deref() {
                None | Some("hosts") => State::Hosts,
                Some("vars") => State::Vars,
                Some("children") => State::Children,
                Some(other) => {
                    return Err(err(
                        n,
                        format!("section [{name}:{other}] has unknown type: {other}"),
                    ));
                }
            };
            group = name;
            if !inv.has_group(&group) {
                if state == State::Vars && !pending.contains_key(&group) {
                    pending.insert(
                        group.clone(),
                        Pending {
                            line: n,
                            state,
                            parents: Vec::new(),
                        },
                    );
                }
                inv.add_group(&group);
            }
            if state != State::Vars
                && let Some(p) = pending.get(&group)
            {
                if p.state == State::Children {
                    add_pending_children(inv, &group, &mut pending);
                } else {
                    pending.remove(&group);
                }
            }
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            return Err(err(
                n,
                format!(
                    "invalid section entry: '{line}': make sure it has no spaces and no other invalid characters"
                ),
            ));
        }
        match state {
            State::Hosts => {
                let words =
                    shlex_split(line).map_err(|e| err(n, format!("cannot read '{line}': {e}")))?;
                let Some(pattern) = words.first() else {
                    continue;
                };
                let (hosts, port) = hostpattern::expand(pattern).map_err(|e| err(n, e))?;
                let mut vars = Vec::new();
                for w in &words[1..] {
                    let (k, v) = w.split_once('=').ok_or_else(|| {
                        err(
                            n,
                            format!("expected key=value host variable assignment, got: {w}"),
                        )
                    })?;
                    vars.push((k.to_string(), parse_value(v)));
                }
                for h in hosts {
                    inv.add_host(&h, &group, port);
                    for (k, v) in &vars {
                        inv.set_host_var(&h, k, v.clone());
                    }
                }
            }
            State::Vars => {
                let (k, v) = line
                    .split_once('=')
                    .ok_or_else(|| err(n, format!("expected key=value, got: {line}")))?;
                inv.set_group_var(&group, k.trim(), parse_value(v.trim()))
                    .map_err(|e| err(n, e))?;
            }
            State::Children => {
                let child = group_name(line)
                    .ok_or_else(|| err(n, format!("expected group name, got: {line}")))?;
                if inv.has_group(&child) {
                    inv.add_child(&group, &child);
                } else {
                    pending
                        .entry(child)
                        .or_insert(Pending {
                            line: n,
                            state: State::Children,
                            parents: Vec::new(),
                        })
                        .parents
                        .push(group.clone());
                }
            }
        }
    }
    if let Some((name, p)) = pending.iter().min_by_key(|(_, p)| p.line) {
        let message = match p.state {
            State::Vars => format!("section [{name}:vars] is for a group that is never defined"),
            _ => format!(
                "section [{}:children] includes undefined group: {name}",
                p.parents.last().map_or("?", String::as_str)
            ),
        };
        return Err(err(p.line, message));
    }
    Ok(())
}

fn add_pending_children(inv: &mut Inventory, group: &str, pending: &mut BTreeMap<String, Pending>) {
    let Some(p) = pending.remove(group) else {
        return;
    };
    for parent in p.parents {
        inv.add_child(&parent, group);
        if pending
            .get(&parent)
            .is_some_and(|pp| pp.state == State::Children)
        {
            add_pending_children(inv, &parent, pending);
        }
    }
}
