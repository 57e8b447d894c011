//! Ansible inventories as the host pool (docs/scaling-out.md): an INI or YAML inventory
//! file read the way `ansible-inventory --list` reads it (groups, children, `vars`, host
//! ranges, `group_vars/` and `host_vars/` beside it, variable precedence by group depth,
//! `ansible_group_priority` and name), and
//! its hosts turned into `[[remote]]` entries: `ansible_host`, `ansible_user`,
//! `ansible_port`, `ansible_ssh_private_key_file`, and `pairbench_slots`,
//! `pairbench_workdir`, `pairbench_agent` for pairbench's own fields.

mod hostpattern;
mod ini;
mod literal;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::config::RemoteDef;

/// Why an inventory cannot be used; the message names the file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read inventory '{path}': {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("inventory '{path}' line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("inventory '{path}': {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("inventory '{path}' has no group '{group}' (its groups: {known})")]
    NoGroup {
        path: PathBuf,
        group: String,
        known: String,
    },
    #[error("inventory '{path}', host '{host}': {message}")]
    Host {
        path: PathBuf,
        host: String,
        message: String,
    },
}

/// One group: its own variables, hosts and child groups, in the order first named.
#[derive(Debug, Default, Clone)]
struct Group {
    vars: Map<String, Value>,
    /// From `group_vars/<group>` beside the inventory (they win over `vars`).
    file_vars: Map<String, Value>,
    hosts: Vec<String>,
    children: Vec<String>,
    parents: Vec<String>,
    priority: i64,
}

/// An inventory as Ansible holds it after reading a file.
#[derive(Debug, Clone)]
pub struct Inventory {
    path: PathBuf,
    /// Groups by name; `order` keeps the order they were made in.
    groups: BTreeMap<String, Group>,
    order: Vec<String>,
    /// Hosts in the order first named, with their own variables.
    hosts: Vec<String>,
    host_vars: BTreeMap<String, Map<String, Value>>,
    /// From `host_vars/<host>` beside the inventory.
    host_file_vars: BTreeMap<String, Map<String, Value>>,
}

impl Inventory {
    fn new(path: &Path) -> Inventory {
        let mut inv = Inventory {
            path: path.to_path_buf(),
            groups: BTreeMap::new(),
            order: Vec::new(),
            hosts: Vec::new(),
            host_vars: BTreeMap::new(),
            host_file_vars: BTreeMap::new(),
        };
        inv.add_group("all");
        inv.add_group("ungrouped");
        inv.add_child("all", "ungrouped");
        inv
    }

    fn has_group(&self, name: &str) -> bool {
        self.groups.contains_key(name)
    }

    fn add_group(&mut self, name: &str) {
        if !self.groups.contains_key(name) {
            self.groups.insert(
                name.to_string(),
                Group {
                    priority: 1,
                    ..Group::default()
                },
            );
            self.order.push(name.to_string());
        }
    }

    /// Add `host` (to `group`), with the port of `host:port` as its `ansible_port`.
    fn add_host(&mut self, host: &str, group: &str, port: Option<u16>) {
        if !self.host_vars.contains_key(host) {
            self.hosts.push(host.to_string());
            self.host_vars.insert(host.to_string(), Map::new());
        }
        self.add_group(group);
        let g = self.groups.get_mut(group).expect("group just added");
        if !g.hosts.iter().any(|h| h == host) {
            g.hosts.push(host.to_string());
        }
        if let Some(p) = port {
            self.set_host_var(host, "ansible_port", Value::from(p));
        }
    }

    fn add_child(&mut self, parent: &str, child: &str) {
        if parent == child {
            return;
        }
        self.add_group(parent);
        self.add_group(child);
        let p = self.groups.get_mut(parent).expect("group just added");
        if !p.children.iter().any(|c| c == child) {
            p.children.push(child.to_string());
        }
        let c = self.groups.get_mut(child).expect("group just added");
        if !c.parents.iter().any(|x| x == parent) {
            c.parents.push(parent.to_string());
        }
    }

    fn set_group_var(&mut self, group: &str, key: &str, value: Value) -> Result<(), String> {
        self.add_group(group);
        let g = self.groups.get_mut(group).expect("group just added");
        if key == "ansible_group_priority" {
            let p = match &value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            g.priority = p.ok_or_else(|| {
                format!("ansible_group_priority of group '{group}' is not a whole number")
            })?;
        } else {
            g.vars.insert(key.to_string(), value);
        }
        Ok(())
    }

    fn set_host_var(&mut self, host: &str, key: &str, value: Value) {
        if let Some(v) = self.host_vars.get_mut(host) {
            v.insert(key.to_string(), value);
        }
    }

    /// What Ansible does once all is read: groups without a parent go under `all`, hosts
    /// in no group (but `all`) go to `ungrouped`, and only there.
    fn reconcile(&mut self) {
        let tops: Vec<String> = self
            .order
            .iter()
            .filter(|n| *n != "all" && self.groups[*n].parents.is_empty())
            .cloned()
            .collect();
        for t in tops {
            self.add_child("all", &t);
        }
        for h in self.hosts.clone() {
            let mine: Vec<&String> = self
                .order
                .iter()
                .filter(|g| self.groups[*g].hosts.contains(&h))
                .collect();
            let elsewhere = mine.iter().any(|g| *g != "all" && *g != "ungrouped");
            let ungrouped = self.groups.get_mut("ungrouped").expect("always there");
            if elsewhere {
                ungrouped.hosts.retain(|x| x != &h);
            } else if !ungrouped.hosts.contains(&h) {
                ungrouped.hosts.push(h.clone());
            }
        }
    }

    /// Longest path from `all` to each group (Ansible's group depth).
    fn depths(&self) -> BTreeMap<&str, usize> {
        let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
        depth.insert("all", 0);
        // Relax edges until nothing changes; a cycle stops at the number of groups.
        for _ in 0..=self.groups.len() {
            let mut changed = false;
            for (name, g) in &self.groups {
                let Some(&d) = depth.get(name.as_str()) else {
                    continue;
                };
                for c in &g.children {
                    let e = depth.entry(c.as_str()).or_insert(0);
                    if *e < d + 1 {
                        *e = d + 1;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        depth
    }

    /// The groups `host` is in, with their ancestors, `all` included.
    fn groups_of(&self, host: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let mut todo: Vec<&str> = self
            .groups
            .iter()
            .filter(|(_, g)| g.hosts.iter().any(|h| h == host))
            .map(|(n, _)| n.as_str())
            .collect();
        while let Some(g) = todo.pop() {
            if out.contains(&g) {
                continue;
            }
            out.push(g);
            todo.extend(self.groups[g].parents.iter().map(String::as_str));
        }
        if !out.contains(&"all") {
            out.push("all");
        }
        out
    }

    /// A host's variables as Ansible resolves them (its default `precedence`): `all`'s,
    /// then those of its other groups from the shallowest to the deepest (then by
    /// `ansible_group_priority`, then by name); then the same from the `group_vars/` files
    /// beside the inventory; then the host's own, then its `host_vars/` file.
    pub fn vars_of(&self, host: &str) -> Map<String, Value> {
        let depth = self.depths();
        let mut groups: Vec<&str> = self
            .groups_of(host)
            .into_iter()
            .filter(|g| *g != "all")
            .collect();
        groups.sort_by_key(|g| {
            (
                depth.get(g).copied().unwrap_or(0),
                self.groups[*g].priority,
                *g,
            )
        });
        let mut vars = Map::new();
        let mut add = |from: Option<&Map<String, Value>>| {
            for (k, v) in from.into_iter().flatten() {
                vars.insert(k.clone(), v.clone());
            }
        };
        let all = &self.groups["all"];
        add(Some(&all.vars));
        for g in &groups {
            add(Some(&self.groups[*g].vars));
        }
        add(Some(&all.file_vars));
        for g in &groups {
            add(Some(&self.groups[*g].file_vars));
        }
        add(self.host_vars.get(host));
        add(self.host_file_vars.get(host));
        vars
    }

    /// Read `group_vars/` and `host_vars/` beside the inventory file, as Ansible's
    /// host_group_vars plugin does: `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json`, or a
    /// folder `NAME/` whose files are read in name order.
    fn read_vars_files(&mut self) -> Result<(), InventoryError> {
        let dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for name in self.order.clone() {
            let vars = vars_files(&dir.join("group_vars"), &name)?;
            self.groups
                .get_mut(&name)
                .expect("a listed group")
                .file_vars = vars;
        }
        for host in self.hosts.clone() {
            let vars = vars_files(&dir.join("host_vars"), &host)?;
            if !vars.is_empty() {
                self.host_file_vars.insert(host, vars);
            }
        }
        Ok(())
    }

    /// The hosts of `group` and of its descendants: its own first, then its children's,
    /// level by level, each host once.
    pub fn hosts_of(&self, group: &str) -> Vec<String> {
        let mut levels: Vec<&str> = vec![group];
        let mut seen_groups: Vec<&str> = vec![group];
        let mut i = 0;
        while i < levels.len() {
            for c in &self.groups[levels[i]].children {
                if !seen_groups.contains(&c.as_str()) {
                    seen_groups.push(c);
                    levels.push(c);
                }
            }
            i += 1;
        }
        let mut out: Vec<String> = Vec::new();
        for g in levels {
            for h in &self.groups[g].hosts {
                if !out.contains(h) {
                    out.push(h.clone());
                }
            }
        }
        if group == "all" {
            // Hosts named only in ungrouped come in through it; keep inventory order.
            let mut all = self.hosts.clone();
            all.retain(|h| out.contains(h));
            return all;
        }
        out
    }

    /// Group names in the order they were made.
    pub fn group_names(&self) -> &[String] {
        &self.order
    }

    /// What `ansible-inventory --list` prints for this inventory.
    pub fn list_json(&self) -> Value {
        let mut out = Map::new();
        let mut hostvars = Map::new();
        for h in &self.hosts {
            hostvars.insert(h.clone(), Value::Object(self.vars_of(h)));
        }
        let mut meta = Map::new();
        meta.insert("hostvars".into(), Value::Object(hostvars));
        out.insert("_meta".into(), Value::Object(meta));
        let mut seen = vec!["all".to_string()];
        self.list_group("all", &mut out, &mut seen);
        Value::Object(out)
    }

    fn list_group(&self, name: &str, out: &mut Map<String, Value>, seen: &mut Vec<String>) {
        let g = &self.groups[name];
        let mut entry = Map::new();
        if name != "all" && !g.hosts.is_empty() {
            entry.insert("hosts".into(), Value::from(g.hosts.clone()));
        }
        if !g.children.is_empty() {
            entry.insert("children".into(), Value::from(g.children.clone()));
        }
        for c in &g.children {
            if !seen.contains(c) {
                seen.push(c.clone());
                self.list_group(c, out, seen);
            }
        }
        if !entry.is_empty() {
            out.insert(name.to_string(), Value::Object(entry));
        }
    }
}

/// Read an inventory file: YAML for `.yml`, `.yaml` and `.json`, INI for `.ini`; any
/// other name is read as YAML when it is a YAML mapping, else as INI (as Ansible tries
/// its plugins in turn).
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut inv = Inventory::new(path);
    match ext.as_str() {
        "yml" | "yaml" | "json" => yaml::read(&text, &mut inv)?,
        "ini" => ini::read(&text, &mut inv)?,
        _ => {
            if yaml::looks_like_inventory(&text) {
                yaml::read(&text, &mut inv)?;
            } else {
                ini::read(&text, &mut inv)?;
            }
        }
    }
    inv.reconcile();
    inv.read_vars_files()?;
    Ok(inv)
}

/// The variables that the files for `name` under `dir` set, in Ansible's order.
fn vars_files(dir: &Path, name: &str) -> Result<Map<String, Value>, InventoryError> {
    let mut vars = Map::new();
    if !dir.is_dir() || name.contains('/') || name.starts_with('.') {
        return Ok(vars);
    }
    let vars_ext = |p: &Path| {
        matches!(
            p.extension().and_then(|e| e.to_str()),
            None | Some("yml" | "yaml" | "json")
        )
    };
    let mut files: Vec<PathBuf> = Vec::new();
    let base = dir.join(name);
    if base.is_dir() {
        let mut inside: Vec<PathBuf> = walkdir::WalkDir::new(&base)
            .sort_by_file_name()
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.into_path())
            .filter(|p| vars_ext(p))
            .collect();
        files.append(&mut inside);
    } else {
        for ext in ["", ".yml", ".yaml", ".json"] {
            let f = dir.join(format!("{name}{ext}"));
            if f.is_file() {
                files.push(f);
            }
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| InventoryError::Read {
            path: f.clone(),
            source,
        })?;
        let map = yaml::mapping(&text).map_err(|message| InventoryError::Invalid {
            path: f.clone(),
            message,
        })?;
        for (k, v) in map {
            vars.insert(k, v);
        }
    }
    Ok(vars)
}

/// `FILE[:GROUP]`: the file and the group (`all` when none is named). A path that
/// exists as written is a file even when it holds a `:`.
pub fn split_spec(spec: &str) -> (PathBuf, String) {
    if !Path::new(spec).exists()
        && let Some((file, group)) = spec.rsplit_once(':')
        && !file.is_empty()
        && !group.is_empty()
        && !group.contains('/')
    {
        return (PathBuf::from(file), group.to_string());
    }
    (PathBuf::from(spec), "all".to_string())
}

/// One host of an inventory, as pairbench connects to it.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryHost {
    pub def: RemoteDef,
    /// `ansible_connection=local`: runs on this machine (pairbench's `local`).
    pub local: bool,
    /// The groups it is in (directly), for display.
    pub groups: Vec<String>,
}

/// The hosts that `FILE[:GROUP]` names, in inventory order, as `[[remote]]` entries.
pub fn hosts(spec: &str) -> Result<Vec<InventoryHost>, InventoryError> {
    let (path, group) = split_spec(spec);
    let inv = load(&path)?;
    if !inv.has_group(&group) {
        return Err(InventoryError::NoGroup {
            path,
            known: inv
                .order
                .iter()
                .filter(|g| *g != "ungrouped" || !inv.groups[*g].hosts.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            group,
        });
    }
    inv.hosts_of(&group)
        .into_iter()
        .map(|h| {
            let vars = inv.vars_of(&h);
            let host_error = |message| InventoryError::Host {
                path: path.clone(),
                host: h.clone(),
                message,
            };
            let local = match vars.get("ansible_connection") {
                None | Some(Value::Null) => false,
                Some(Value::String(c)) if c == "local" => true,
                Some(Value::String(c)) if ["ssh", "smart", "paramiko", "paramiko_ssh"].contains(&c.as_str()) => false,
                Some(other) => {
                    return Err(host_error(format!(
                        "ansible_connection is {other}: pairbench reaches hosts over SSH (or runs on this machine with ansible_connection=local)"
                    )));
                }
            };
            let def = remote_def(&h, &vars).map_err(host_error)?;
            let groups = inv
                .order
                .iter()
                .filter(|g| *g != "all" && inv.groups[*g].hosts.contains(&h))
                .cloned()
                .collect();
            Ok(InventoryHost { def, local, groups })
        })
        .collect()
}

/// A host's variables as a `[[remote]]` entry named after it.
fn remote_def(name: &str, vars: &Map<String, Value>) -> Result<RemoteDef, String> {
    let text = |keys: &[&str]| -> Result<Option<String>, String> {
        for k in keys {
            match vars.get(*k) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) if s.contains("{{") || s.contains("{%") => {
                    return Err(format!(
                        "{k} is a Jinja template ('{s}'), which pairbench does not evaluate: write the value itself"
                    ));
                }
                Some(Value::String(s)) => return Ok(Some(s.clone())),
                Some(Value::Number(n)) => return Ok(Some(n.to_string())),
                Some(other) => return Err(format!("{k} must be a string, not {other}")),
            }
        }
        Ok(None)
    };
    let number = |keys: &[&str], what: &str| -> Result<Option<u64>, String> {
        let Some(v) = text(keys)? else {
            return Ok(None);
        };
        v.trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{} is '{v}': it must be {what}", keys[0]))
    };
    let port = number(
        &["ansible_port", "ansible_ssh_port"],
        "a port from 1 to 65535",
    )?
    .map(|p| {
        u16::try_from(p)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("ansible_port is {p}: it must be from 1 to 65535"))
    })
    .transpose()?;
    let slots = number(&["pairbench_slots"], "a whole number of 1 or more")?
        .map(|s| {
            usize::try_from(s)
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| format!("pairbench_slots is {s}: it must be 1 or more"))
        })
        .transpose()?;
    Ok(RemoteDef {
        name: name.to_string(),
        host: text(&["ansible_host", "ansible_ssh_host"])?.unwrap_or_else(|| name.to_string()),
        user: text(&["ansible_user", "ansible_ssh_user"])?,
        port,
        identity_file: text(&["ansible_ssh_private_key_file", "ansible_private_key_file"])?,
        workdir: text(&["pairbench_workdir"])?,
        slots,
        agent: text(&["pairbench_agent"])?,
        known_hosts: text(&["pairbench_known_hosts"])?,
    })
}

/// The pool that inventories give: their hosts' names in order (each once; `local` for
/// `ansible_connection=local`) and their `[[remote]]` entries.
pub fn pool(specs: &[String]) -> Result<(Vec<String>, Vec<RemoteDef>), InventoryError> {
    let mut names: Vec<String> = Vec::new();
    let mut defs: Vec<RemoteDef> = Vec::new();
    for spec in specs {
        for h in hosts(spec)? {
            let name = if h.local {
                "local".to_string()
            } else {
                h.def.name.clone()
            };
            if !names.contains(&name) {
                names.push(name);
                if !h.local {
                    defs.push(h.def);
                }
            }
        }
    }
    Ok((names, defs))
}

/// `pairbench inventory FILE[:GROUP]...`: the hosts pairbench would use, one a line;
/// with `list`, the file as `ansible-inventory --list` prints it.
pub fn command(specs: &[String], list: bool) -> anyhow::Result<i32> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if list {
        for spec in specs {
            let (path, _) = split_spec(spec);
            let inv = load(&path)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&inv.list_json())?)?;
        }
        return Ok(0);
    }
    writeln!(out, "name\thost\tport\tuser\tidentity_file\tslots\tgroups")?;
    let mut n = 0;
    for spec in specs {
        for h in hosts(spec)? {
            let d = &h.def;
            let dash = || "-".to_string();
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                d.name,
                if h.local { "local" } else { &d.host },
                d.port.map_or_else(dash, |p| p.to_string()),
                d.user.clone().unwrap_or_else(dash),
                d.identity_file.clone().unwrap_or_else(dash),
                d.slots.unwrap_or(1),
                if h.groups.is_empty() {
                    dash()
                } else {
                    h.groups.join(",")
                }
            )?;
            n += 1;
        }
    }
    writeln!(out, "{n} hosts")?;
    Ok(0)
}
