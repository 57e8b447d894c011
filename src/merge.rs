//! `pairbench merge -o RESULTS --tag T TREE...` (docs/scaling-out.md): folds the trees of
//! the shards of one suite (`--shard K/N` on N machines) into one tag, as if one run had
//! made it. It refuses a pair that two trees hold and a tag that exists; copies every pair
//! folder, group file and hook log without following a link; rebuilds results.csv,
//! metrics.csv and stats.csv; writes a run.json that keeps every shard's invocations and
//! names the shards and pairs that are missing. The cli then draws the report.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::exit_status::ExitStatus;
use crate::tree::layout::{RESERVED, Tree};
use crate::tree::lock;
use crate::tree::manifest::{self, GroupPlan, Manifest, Merged, MergedShard, Shard};
use crate::tree::nofollow::{self, Kind};
use crate::tree::walk::{self, Walked};

/// One shard tree, read.
struct Source {
    /// As given on the command line.
    given: PathBuf,
    dir: PathBuf,
    manifest: Manifest,
    walked: Walked,
    /// `shard-K`, or `tree-I` for a tree that is no shard: where its hook logs go when
    /// several trees ran the same hook.
    label: String,
    _read_lock: lock::ReadLock,
}

/// What a merge made.
pub struct MergeEnd {
    pub status: ExitStatus,
    pub tag_dir: PathBuf,
    pub walked: Walked,
}

/// The tag folder `dir` names: a tag folder (with run.json), or a results folder whose
/// `latest` names one.
fn tag_dir_of(dir: &Path) -> anyhow::Result<PathBuf> {
    if nofollow::kind(&dir.join("run.json")) == Kind::File {
        return Ok(dir.to_path_buf());
    }
    if nofollow::kind(&dir.join("latest")) == Kind::Link {
        let (_, d) = lock::resolve(dir, "latest")?;
        if nofollow::kind(&d.join("run.json")) == Kind::File {
            return Ok(d);
        }
    }
    bail!(
        "'{}' is not a shard's tree: give a tag folder (with run.json) or a results folder with 'latest'",
        dir.display()
    )
}

fn shard_name(s: &Source) -> String {
    match s.manifest.shard {
        Some(Shard { k, n }) => format!("shard {k}/{n} ('{}')", s.given.display()),
        None => format!("'{}'", s.given.display()),
    }
}

/// `group/L_x_R` of every pair `plans` list.
fn plan_pairs(plans: &[GroupPlan]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for p in plans {
        match &p.pairs {
            None => {
                for l in &p.local {
                    for r in &p.remote {
                        out.insert((p.group.clone(), l.clone(), r.clone()));
                    }
                }
            }
            Some(pairs) => {
                for &(l, r) in pairs {
                    if let (Some(l), Some(r)) = (p.local.get(l as usize), p.remote.get(r as usize))
                    {
                        out.insert((p.group.clone(), l.clone(), r.clone()));
                    }
                }
            }
        }
    }
    out
}

/// The plan of each group of `pairs`, every combination listed or `pairs` given.
fn to_plans(pairs: &BTreeSet<(String, String, String)>) -> Vec<GroupPlan> {
    let mut by_group: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for (g, l, r) in pairs {
        by_group.entry(g).or_default().push((l, r));
    }
    by_group
        .into_iter()
        .map(|(g, ps)| {
            let local: Vec<String> = ps
                .iter()
                .map(|p| p.0.to_string())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let remote: Vec<String> = ps
                .iter()
                .map(|p| p.1.to_string())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let all = ps.len() == local.len() * remote.len();
            let at = |v: &[String], x: &str| v.iter().position(|y| y == x).unwrap_or(0) as u32;
            GroupPlan {
                group: g.to_string(),
                pairs: (!all).then(|| {
                    ps.iter()
                        .map(|(l, r)| (at(&local, l), at(&remote, r)))
                        .collect()
                }),
                local,
                remote,
            }
        })
        .collect()
}

/// Show at most 10 of `items`, and how many more.
fn some(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 10 {
        s.push_str(&format!(", and {} more", items.len() - 10));
    }
    s
}

/// `pairbench merge`: fold `dirs` into `results/tag`. Refusals (a duplicate pair, a tag
/// that exists, trees of different plans) write nothing and are errors; a merge with
/// shards or pairs missing is written, said, and ends with ERROR.
pub fn merge(
    results: &Path,
    tag: &str,
    dirs: &[PathBuf],
    command_line: Vec<String>,
) -> anyhow::Result<MergeEnd> {
    crate::config::validate_tag(tag)?;
    if dirs.is_empty() {
        bail!("give the shards' trees to merge: pairbench merge -o RESULTS --tag T TREE...");
    }
    let mut sources = Vec::new();
    for (i, given) in dirs.iter().enumerate() {
        let dir = tag_dir_of(given)?;
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        // Held to the end of the merge: no run writes the tree while it is copied.
        let read_lock = lock::read_lock(&dir)
            .with_context(|| format!("cannot lock '{}' for reading", dir.display()))?;
        let Some(read_lock) = read_lock else {
            bail!(
                "'{}' is being run right now: merge it once its run has ended",
                dir.display()
            );
        };
        let manifest = manifest::read(&dir)
            .map_err(|e| anyhow::anyhow!("'{}': {e}", dir.display()))?
            .unwrap_or_default();
        let walked = walk::walk(&dir);
        let label = match manifest.shard {
            Some(s) => format!("shard-{}", s.k),
            None => format!("tree-{}", i + 1),
        };
        sources.push(Source {
            given: given.clone(),
            dir,
            manifest,
            walked,
            label,
            _read_lock: read_lock,
        });
    }

    // Shards: of one N, each once.
    let ns: BTreeSet<u64> = sources
        .iter()
        .filter_map(|s| s.manifest.shard.map(|s| s.n))
        .collect();
    if ns.len() > 1 {
        bail!(
            "the trees are shards of different splits ({}): merge the shards of one run",
            ns.iter()
                .map(|n| format!("of {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut by_k: HashMap<u64, &Source> = HashMap::new();
    for s in &sources {
        if let Some(sh) = s.manifest.shard
            && let Some(other) = by_k.insert(sh.k, s)
        {
            bail!(
                "shard {}/{} is given twice ('{}' and '{}'): give each shard once",
                sh.k,
                sh.n,
                other.given.display(),
                s.given.display()
            );
        }
    }
    // One plan (--repeat, --warmup, --param) for all.
    let plans: Vec<(&Source, &manifest::RunPlan)> = sources
        .iter()
        .filter_map(|s| s.manifest.plan.as_ref().map(|p| (s, p)))
        .collect();
    if let Some((first, p0)) = plans.first() {
        for (s, p) in &plans[1..] {
            if let Some((option, a, b)) = p0.differs(p) {
                bail!(
                    "{} was run with {option} {a} and {} with {option} {b}: shards of one run share their options",
                    shard_name(first),
                    shard_name(s)
                );
            }
        }
    }
    // No pair twice.
    let mut owner: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut dups = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let pairs: BTreeSet<(String, String)> = s
            .walked
            .runs
            .iter()
            .map(|f| (f.rec.group.clone(), f.rec.pair.clone()))
            .collect();
        for key in pairs {
            if let Some(&j) = owner.get(&key) {
                dups.push(format!(
                    "{}/{} (in {} and {})",
                    key.0,
                    key.1,
                    shard_name(&sources[j]),
                    shard_name(s)
                ));
            } else {
                owner.insert(key, i);
            }
        }
    }
    if !dups.is_empty() {
        bail!(
            "{} pair{} in more than one tree, so nothing is merged: {}",
            dups.len(),
            if dups.len() == 1 { " is" } else { "s are" },
            some(&dups)
        );
    }

    // The new tag.
    std::fs::create_dir_all(results)
        .with_context(|| format!("cannot create '{}'", results.display()))?;
    let results = std::fs::canonicalize(results)
        .with_context(|| format!("cannot resolve '{}'", results.display()))?;
    let tree = Tree::new(&results, tag);
    // Before the refusal of a tag that exists: its advice, remove it, would remove a tree
    // being merged.
    for s in &sources {
        if std::fs::canonicalize(&s.dir).is_ok_and(|d| d == tree.root) {
            bail!(
                "'{}' is the merge's own tag: merge into another --tag",
                s.dir.display()
            );
        }
    }
    match std::fs::create_dir(&tree.root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "'{}' exists: merge into a new --tag, or remove it first",
            tree.root.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create '{}'", tree.root.display()));
        }
    }
    // A merge that fails on the way leaves no half-made tag behind.
    let mut unfinished = Unfinished(Some(tree.root.clone()));
    let _lock = lock::lock(&tree)?;
    let merged_at = chrono::Local::now().to_rfc3339();

    // Copy.
    let hook_users = hook_users(&sources);
    let mut notes = Vec::new();
    for s in &sources {
        fold(s, &tree, &hook_users, &mut notes)
            .with_context(|| format!("cannot merge {}", shard_name(s)))?;
    }
    retag(&tree, tag)?;

    // Tables and run.json.
    let walked = walk::walk(&tree.root);
    // results.csv is written below, from this walk.
    notes.extend(
        walked
            .problems
            .iter()
            .filter(|p| !p.starts_with("results.csv is missing"))
            .cloned(),
    );
    let not_written: Vec<String> = crate::stats::write_tables(&tree, &walked)
        .into_iter()
        .map(|(_, e)| e.to_string())
        .collect();
    if !not_written.is_empty() {
        bail!("{}", not_written.join("; "));
    }

    let mut suite: BTreeSet<(String, String, String)> = BTreeSet::new();
    for s in &sources {
        if s.manifest.suite_pairs.is_empty() {
            suite.extend(plan_pairs(&s.manifest.planned_pairs));
        } else {
            suite.extend(plan_pairs(&s.manifest.suite_pairs));
        }
    }
    let present: BTreeSet<(String, String, String)> = walked
        .latest()
        .map(|r| (r.group.clone(), r.local_test.clone(), r.remote_test.clone()))
        .collect();
    let missing_pairs: Vec<String> = suite
        .difference(&present)
        .map(|(g, l, r)| format!("{g}/{}", crate::tree::pair_name(l, r)))
        .collect();
    let missing_shards: Vec<u64> = match ns.first() {
        Some(&n) => (1..=n).filter(|k| !by_k.contains_key(k)).collect(),
        None => Vec::new(),
    };

    let counts = walked.counts();
    let first = &sources[0].manifest;
    let mut m = Manifest {
        pairbench_version: env!("CARGO_PKG_VERSION").to_string(),
        tag: tag.to_string(),
        command_line,
        options: first.options.clone(),
        plan: first.plan.clone(),
        containment: first.containment.clone(),
        accounting: first.accounting.clone(),
        group_settings: first.group_settings.clone(),
        counts,
        shuffle_seed: first.shuffle_seed,
        planned_pairs: to_plans(&suite.union(&present).cloned().collect()),
        ..Manifest::default()
    };
    if let Some(o) = m.options.as_object_mut() {
        o.remove("shard");
    }
    m.started_at = sources
        .iter()
        .filter_map(|s| s.manifest.started_at.clone())
        .min();
    m.ended_at = Some(merged_at.clone());
    for s in &sources {
        for h in &s.manifest.hosts {
            if !m.hosts.contains(h) {
                m.hosts.push(h.clone());
            }
        }
        m.pairs_planned += s.manifest.pairs_planned;
        m.pairs_run += s.manifest.pairs_run;
        m.pairs_skipped += s.manifest.pairs_skipped;
        m.interrupted |= s.manifest.interrupted;
        m.invocations.extend(s.manifest.invocations.iter().cloned());
    }
    m.merged = Some(Merged {
        merged_at,
        shards: sources
            .iter()
            .map(|s| MergedShard {
                from: s.dir.display().to_string(),
                tag: s.manifest.tag.clone(),
                shard: s.manifest.shard,
                pairs: s.walked.runs.len(),
                counts: s.walked.counts(),
            })
            .collect(),
        missing_shards: missing_shards.clone(),
        missing_pairs: missing_pairs.clone(),
    });
    manifest::write(&tree, &m)?;
    unfinished.0 = None;
    lock::link_latest(&results, tag)
        .with_context(|| format!("cannot link '{}'", results.join("latest").display()))?;

    for n in &notes {
        eprintln!("pairbench: warning: {}", crate::terminal::shown(n));
    }
    let n = ns.first().copied();
    let mut incomplete = false;
    if !missing_shards.is_empty() {
        incomplete = true;
        eprintln!(
            "pairbench: merge: shard{} {} of {} missing: their pairs are not in '{tag}'",
            if missing_shards.len() == 1 { "" } else { "s" },
            missing_shards
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            n.unwrap_or_default()
        );
    }
    if !missing_pairs.is_empty() {
        incomplete = true;
        eprintln!(
            "pairbench: merge: {} pair{} of the suite {} in no tree: {}",
            missing_pairs.len(),
            if missing_pairs.len() == 1 { "" } else { "s" },
            if missing_pairs.len() == 1 {
                "is"
            } else {
                "are"
            },
            crate::terminal::shown(&some(&missing_pairs))
        );
    }
    let given: Vec<String> = sources
        .iter()
        .map(|s| match s.manifest.shard {
            Some(sh) => format!("{}/{}", sh.k, sh.n),
            None => s.given.display().to_string(),
        })
        .collect();
    crate::console::line(&format!(
        "pairbench: merged {} tree{} ({}) into '{}': {} pairs, {} SUCCESS, {} FAILED, {} ERROR{}",
        sources.len(),
        if sources.len() == 1 { "" } else { "s" },
        crate::terminal::shown(&given.join(", ")),
        crate::terminal::shown(&tree.root.display().to_string()),
        counts.total(),
        counts.success,
        counts.failed,
        counts.error,
        if incomplete { ", INCOMPLETE" } else { "" }
    ));
    let status = match ExitStatus::of_counts(counts) {
        _ if incomplete => ExitStatus::ERROR,
        s => s,
    };
    Ok(MergeEnd {
        status,
        tag_dir: tree.root.clone(),
        walked,
    })
}

/// The tag folder a merge made, removed unless the merge got to its end.
struct Unfinished(Option<PathBuf>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take()
            && let Some(warning) = left_behind(&dir, std::fs::remove_dir_all(&dir))
        {
            eprintln!("{warning}");
        }
    }
}

/// The warning for a half-made tag folder that `removed` did not remove (none when it is
/// gone).
fn left_behind(dir: &Path, removed: std::io::Result<()>) -> Option<String> {
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Some(format!(
            "pairbench: warning: cannot remove the half-made merge '{}' ({e}): remove it by hand",
            crate::terminal::shown(&dir.display().to_string())
        )),
        _ => None,
    }
}

/// `(group, hook)` → how many trees ran that hook.
fn hook_users(sources: &[Source]) -> HashMap<(String, String), usize> {
    let mut out: HashMap<(String, String), usize> = HashMap::new();
    for s in sources {
        let groups: BTreeSet<&String> = s.walked.runs.iter().map(|f| &f.rec.group).collect();
        let t = Tree::at(&s.dir);
        for g in groups {
            let Ok(dir) = nofollow::open_dir(&t.hooks(g)) else {
                continue;
            };
            for (name, k) in nofollow::entries(&dir).unwrap_or_default() {
                if k == Kind::Dir {
                    *out.entry((g.clone(), name.to_string_lossy().into_owned()))
                        .or_default() += 1;
                }
            }
        }
    }
    out
}

/// Copy the tree of `s` into `tree`: its pair folders whole, its groups' hook logs (each
/// tree's under `<hook>/shard-K[-<host>]` when several trees ran the hook) and any other
/// file of a group folder (as `<name>.shard-K` when another tree has one by that name).
fn fold(
    s: &Source,
    tree: &Tree,
    hook_users: &HashMap<(String, String), usize>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let pair_dirs: BTreeSet<PathBuf> = s
        .walked
        .runs
        .iter()
        .map(|f| Path::new(&f.rec.group).join(&f.rec.pair))
        .collect();
    let groups: BTreeSet<PathBuf> = s
        .walked
        .runs
        .iter()
        .map(|f| PathBuf::from(&f.rec.group))
        .collect();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let src = nofollow::open_dir_beneath(&s.dir, &rel)
            .with_context(|| format!("cannot open '{}'", s.dir.join(&rel).display()))?;
        let dst = nofollow::create_dirs_beneath(&tree.root, &rel)
            .with_context(|| format!("cannot create '{}'", tree.root.join(&rel).display()))?;
        for (name, kind) in nofollow::entries(&src)? {
            let name_s = name.to_string_lossy().into_owned();
            // The tag level's own files are made anew; hidden names are leftovers and locks.
            if name_s.starts_with('.')
                || (rel.as_os_str().is_empty() && RESERVED.contains(&name_s.as_str()))
            {
                continue;
            }
            let child = rel.join(&name);
            let shown = s.dir.join(&child);
            let n = Path::new(&name);
            let copy = |dst_name: &Path, notes: &mut Vec<String>| {
                nofollow::copy_at(&src, n, &dst, dst_name, &shown, notes)
                    .with_context(|| format!("cannot copy '{}'", shown.display()))
            };
            if kind == Kind::Dir && pair_dirs.contains(&child) {
                copy(n, notes)?;
            } else if kind == Kind::Dir && name_s == "hooks" && groups.contains(&rel) {
                fold_hooks(s, tree, &rel, hook_users, notes)?;
            } else if kind == Kind::Dir {
                stack.push(child);
            } else if kind == Kind::Link {
                notes.push(format!(
                    "'{}' is a link outside any pair folder (pairbench makes none there); not copied",
                    shown.display()
                ));
            } else if nofollow::kind_at(&dst, n) == Kind::Missing {
                copy(n, notes)?;
            } else {
                let other = PathBuf::from(format!("{name_s}.{}", s.label));
                notes.push(format!(
                    "'{}' is in more than one tree: this one is kept as '{}'",
                    child.display(),
                    rel.join(&other).display()
                ));
                copy(&other, notes)?;
            }
        }
    }
    Ok(())
}

/// Copy the `hooks/` folder of group `group` of tree `s` into `tree`.
fn fold_hooks(
    s: &Source,
    tree: &Tree,
    group: &Path,
    hook_users: &HashMap<(String, String), usize>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let rel = group.join("hooks");
    let src = nofollow::open_dir_beneath(&s.dir, &rel)?;
    let dst = nofollow::create_dirs_beneath(&tree.root, &rel)?;
    for (name, kind) in nofollow::entries(&src)? {
        let n = Path::new(&name);
        let shown = s.dir.join(&rel).join(n);
        let key = (
            group.to_string_lossy().into_owned(),
            name.to_string_lossy().into_owned(),
        );
        let shared = kind == Kind::Dir && hook_users.get(&key).copied().unwrap_or(0) > 1;
        if !shared {
            let to = if nofollow::kind_at(&dst, n) == Kind::Missing {
                n.to_path_buf()
            } else {
                PathBuf::from(format!("{}.{}", name.to_string_lossy(), s.label))
            };
            nofollow::copy_at(&src, n, &dst, &to, &shown, notes)?;
            continue;
        }
        // Several trees ran this hook: one folder per tree (per tree and host).
        let hook_src = nofollow::open_dir_beneath(&s.dir, &rel.join(n))?;
        let hook_dst = nofollow::create_dirs_beneath(&tree.root, &rel.join(n))?;
        let inner = nofollow::entries(&hook_src)?;
        let per_host = !inner.iter().any(|(e, _)| e == "exit_code")
            && inner.iter().any(|(_, k)| *k == Kind::Dir);
        if per_host {
            for (host, k) in inner {
                let h = Path::new(&host);
                let to = PathBuf::from(format!("{}-{}", s.label, host.to_string_lossy()));
                if k == Kind::Dir {
                    nofollow::copy_at(&hook_src, h, &hook_dst, &to, &shown.join(h), notes)?;
                } else {
                    notes.push(format!(
                        "'{}' is beside the hook's host folders; not copied",
                        shown.join(h).display()
                    ));
                }
            }
        } else {
            nofollow::copy_at(&src, n, &hook_dst, Path::new(&s.label), &shown, notes)?;
        }
    }
    Ok(())
}

/// Give every record of the merged tree (earlier attempts too) the merged tag.
fn retag(tree: &Tree, tag: &str) -> anyhow::Result<()> {
    let w = walk::walk(&tree.root);
    for f in w.runs.iter().chain(w.attempts.iter()) {
        if f.recovered || f.rec.tag == tag {
            continue;
        }
        let mut rec = f.rec.clone();
        rec.tag = tag.to_string();
        let path = f.dir.join("pair.json");
        let json = serde_json::to_vec_pretty(&rec)?;
        nofollow::write_atomic(&path, &json)
            .with_context(|| format!("cannot write '{}'", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_half_made_merge_left_behind_is_named_with_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        // A folder beneath a file cannot be removed, even by root.
        let dir = file.join("M");
        let w = left_behind(&dir, std::fs::remove_dir_all(&dir)).unwrap();
        assert!(w.contains(&format!("'{}'", dir.display())), "{w}");
        assert!(w.ends_with("remove it by hand"), "{w}");
        assert_eq!(w.lines().count(), 1, "{w}");
        // Removed, or gone already: nothing to say.
        std::fs::create_dir(tmp.path().join("gone")).unwrap();
        let gone = tmp.path().join("gone");
        assert_eq!(left_behind(&gone, std::fs::remove_dir_all(&gone)), None);
        assert_eq!(left_behind(&gone, std::fs::remove_dir_all(&gone)), None);
    }
}
