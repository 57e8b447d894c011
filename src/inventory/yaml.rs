//! Ansible's YAML inventory format: a mapping of groups, each with optional `hosts`
//! (patterns, each with its variables), `vars` and `children` (groups, nested alike).
//! Values are typed as PyYAML (YAML 1.1, which Ansible uses) types plain scalars: `yes`
//! and `on` are booleans, `0755` is octal, `1_000` a number; quoted ones stay text.

use serde_json::{Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{Inventory, InventoryError, hostpattern};

/// A YAML node, mapping order kept.
#[derive(Debug, Clone)]
enum Node {
    Scalar(Value, String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    fn to_json(&self) -> Value {
        match self {
            Node::Scalar(v, _) => v.clone(),
            Node::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Node::Scalar(Value::Null, _))
    }
}

/// Builds [`Node`]s from parser events (anchors and aliases, `<<` merge keys).
#[derive(Default)]
struct Builder {
    stack: Vec<(Node, usize, Option<String>)>,
    anchors: std::collections::HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<String>,
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some((parent, _, pending_key)) = self.stack.last_mut() else {
            self.root.get_or_insert(node);
            return;
        };
        match parent {
            Node::Seq(items) => items.push(node),
            Node::Map(entries) => match pending_key.take() {
                None => {
                    *pending_key = Some(match &node {
                        Node::Scalar(_, raw) => raw.clone(),
                        _ => {
                            self.error = Some("a mapping key is not a plain value".into());
                            String::new()
                        }
                    })
                }
                Some(k) if k == "<<" => merge(entries, node),
                Some(k) => {
                    entries.retain(|(e, _)| *e != k);
                    entries.push((k, node));
                }
            },
            Node::Scalar(..) => {}
        }
    }
}

/// `<<: *base`: the merged mapping's keys that are not set already.
fn merge(entries: &mut Vec<(String, Node)>, node: Node) {
    let maps = match node {
        Node::Seq(items) => items,
        other => vec![other],
    };
    for m in maps {
        if let Node::Map(es) = m {
            for (k, v) in es {
                if !entries.iter().any(|(e, _)| *e == k) {
                    entries.push((k, v));
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, _mark: Marker) {
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let value = match (style, tag) {
                    (_, Some(t)) if t.suffix == "str" || t.handle == "!" => {
                        Value::String(text.clone())
                    }
                    (TScalarStyle::Plain, _) => resolve_plain(&text),
                    _ => Value::String(text.clone()),
                };
                self.push_value(Node::Scalar(value, text), anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push((Node::Seq(Vec::new()), anchor, None))
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push((Node::Map(Vec::new()), anchor, None))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, anchor, _)) = self.stack.pop() {
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().unwrap_or_else(|| {
                    self.error = Some(format!("unknown alias {id}"));
                    Node::Scalar(Value::Null, String::new())
                });
                self.push_value(node, 0);
            }
            _ => {}
        }
    }
}

/// A plain scalar as PyYAML's SafeLoader types it (YAML 1.1).
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    if let Some(n) = yaml11_int(s) {
        return Value::from(n);
    }
    if let Some(f) = yaml11_float(s) {
        return Number::from_f64(f).map_or_else(|| Value::String(s.to_string()), Value::Number);
    }
    Value::String(s.to_string())
}

fn yaml11_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let digits = body.replace('_', "");
    let n = if let Some(b) = body.strip_prefix("0b") {
        (!b.is_empty() && b.bytes().all(|c| matches!(c, b'0' | b'1' | b'_')))
            .then(|| i64::from_str_radix(&b.replace('_', ""), 2).ok())??
    } else if let Some(h) = body.strip_prefix("0x") {
        (!h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit() || c == b'_'))
            .then(|| i64::from_str_radix(&h.replace('_', ""), 16).ok())??
    } else if body.len() > 1 && body.starts_with('0') {
        body.bytes()
            .all(|c| matches!(c, b'0'..=b'7' | b'_'))
            .then(|| i64::from_str_radix(&digits, 8).ok())??
    } else if body == "0"
        || (body.as_bytes()[0].is_ascii_digit()
            && body.bytes().all(|c| c.is_ascii_digit() || c == b'_'))
    {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -n } else { n })
}

fn yaml11_float(s: &str) -> Option<f64> {
    let body = s.trim_start_matches(['-', '+']);
    let neg = s.starts_with('-');
    match body {
        ".inf" | ".Inf" | ".INF" => {
            return Some(if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        _ => {}
    }
    // [0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)? or \.[0-9_]+([eE][-+][0-9]+)?
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.')?;
    let int_ok = int.is_empty() && !frac.is_empty()
        || int.as_bytes().first().is_some_and(u8::is_ascii_digit)
            && int.bytes().all(|c| c.is_ascii_digit() || c == b'_');
    let frac_ok = frac.bytes().all(|c| c.is_ascii_digit() || c == b'_');
    let exp_ok = exp.is_none_or(|e| {
        e.len() > 1
            && matches!(e.as_bytes()[0], b'-' | b'+')
            && e[1..].bytes().all(|c| c.is_ascii_digit())
    });
    if !(int_ok && frac_ok && exp_ok) {
        return None;
    }
    let f: f64 = body.replace('_', "").parse().ok()?;
    Some(if neg { -f } else { f })
}

fn parse(text: &str) -> Result<Option<Node>, String> {
    let mut b = Builder::default();
    Parser::new_from_str(text)
        .load(&mut b, false)
        .map_err(|e| e.to_string())?;
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.root)
}

/// The variables of a `group_vars/` or `host_vars/` file: a mapping (or nothing).
pub fn mapping(text: &str) -> Result<Vec<(String, Value)>, String> {
    match parse(text).map_err(|e| format!("not valid YAML: {e}"))? {
        None => Ok(Vec::new()),
        Some(Node::Scalar(Value::Null, _)) => Ok(Vec::new()),
        Some(Node::Map(entries)) => {
            Ok(entries.into_iter().map(|(k, v)| (k, v.to_json())).collect())
        }
        Some(_) => Err("a variables file is a mapping of names to values".into()),
    }
}

/// A YAML mapping of groups (not an INI file that happens to parse as YAML).
pub fn looks_like_inventory(text: &str) -> bool {
    matches!(parse(text), Ok(Some(Node::Map(entries)))
        if entries.iter().all(|(_, v)| matches!(v, Node::Map(_)) || v.is_null()))
}

pub fn read(text: &str, inv: &mut Inventory) -> Result<(), InventoryError> {
    let path = inv.path.clone();
    let invalid = |message: String| InventoryError::Invalid {
        path: path.clone(),
        message,
    };
    let root = parse(text).map_err(|e| invalid(format!("not valid YAML: {e}")))?;
    let Some(Node::Map(groups)) = root else {
        return Err(invalid(
            "a YAML inventory is a mapping of group names (e.g. `all:`)".into(),
        ));
    };
    if groups.iter().any(|(k, _)| k == "plugin") {
        return Err(invalid(
            "this is an inventory plugin's configuration, which pairbench cannot run: give it the inventory itself (`ansible-inventory -i FILE --list --yaml > hosts.yml`)".into(),
        ));
    }
    for (name, data) in &groups {
        group(inv, name, data).map_err(&invalid)?;
    }
    Ok(())
}

fn group(inv: &mut Inventory, name: &str, data: &Node) -> Result<(), String> {
    let entries = match data {
        Node::Map(e) => e.as_slice(),
        n if n.is_null() => &[],
        // Ansible skips it with a warning.
        _ => return Ok(()),
    };
    inv.add_group(name);
    for (key, value) in entries {
        // `hosts: web1` is a mapping of one host.
        let section: Vec<(String, Node)> = match value {
            Node::Map(e) => e.clone(),
            Node::Scalar(Value::Null, _) => continue,
            Node::Scalar(_, raw) if key == "hosts" || key == "children" || key == "vars" => {
                vec![(raw.clone(), Node::Scalar(Value::Null, String::new()))]
            }
            _ => {
                if ["hosts", "children", "vars"].contains(&key.as_str()) {
                    return Err(format!(
                        "invalid \"{key}\" entry for \"{name}\" group: it must be a mapping"
                    ));
                }
                continue;
            }
        };
        match key.as_str() {
            "vars" => {
                for (k, v) in section {
                    inv.set_group_var(name, &k, v.to_json())?;
                }
            }
            "children" => {
                for (child, cdata) in section {
                    group(inv, &child, &cdata)?;
                    inv.add_child(name, &child);
                }
            }
            "hosts" => {
                for (pattern, hvars) in section {
                    let (hosts, port) = hostpattern::expand(&pattern)?;
                    let vars: Vec<(String, Value)> = match &hvars {
                        Node::Map(e) => e.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
                        n if n.is_null() => Vec::new(),
                        _ => {
                            return Err(format!(
                                "host '{pattern}' of group '{name}': its variables must be a mapping"
                            ));
                        }
                    };
                    for h in hosts {
                        inv.add_host(&h, name, port);
                        for (k, v) in &vars {
                            inv.set_host_var(&h, k, v.clone());
                        }
                    }
                }
            }
            // Ansible skips other keys with a warning.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml11_scalars() {
        assert_eq!(resolve_plain("yes"), json!(true));
        assert_eq!(resolve_plain("Off"), json!(false));
        assert_eq!(resolve_plain("22"), json!(22));
        assert_eq!(resolve_plain("0755"), json!(493));
        assert_eq!(resolve_plain("1_000"), json!(1000));
        assert_eq!(resolve_plain("0x1F"), json!(31));
        assert_eq!(resolve_plain("0x1f"), json!(31));
        assert_eq!(resolve_plain("1.5"), json!(1.5));
        assert_eq!(resolve_plain("10.0.0.1"), json!("10.0.0.1"));
        assert_eq!(resolve_plain("~"), json!(null));
        assert_eq!(resolve_plain("web"), json!("web"));
    }
}
