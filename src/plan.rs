//! Which pairs a run takes, and why (SPEC §6 filters, §7 make-style runs and shards).

use std::collections::HashMap;
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};
use sha2::{Digest, Sha256};

use crate::discover::{Group, Test};
use crate::tree::layout::{self, NameError};
use crate::tree::walk::Walked;
use crate::tree::{PairRecord, Status};

/// One local × remote pair of a group: indices only, so a million pairs stay small.
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    /// Index into the run's groups.
    pub group: u32,
    /// Index into the group's `local` tests.
    pub local: u32,
    /// Index into the group's `remote` tests.
    pub remote: u32,
}

impl Pair {
    /// `<L>_x_<R>`, the pair's folder name.
    pub fn name(&self, groups: &[Group]) -> String {
        layout::pair_name(
            &self.local_test(groups).name,
            &self.remote_test(groups).name,
        )
    }
    pub fn local_test<'g>(&self, groups: &'g [Group]) -> &'g Test {
        &groups[self.group as usize].local[self.local as usize]
    }
    pub fn remote_test<'g>(&self, groups: &'g [Group]) -> &'g Test {
        &groups[self.group as usize].remote[self.remote as usize]
    }
    /// `<group>/<L>_x_<R>`
    pub fn id(&self, groups: &[Group]) -> String {
        format!("{}/{}", groups[self.group as usize].name, self.name(groups))
    }
}

/// Why a pair runs, or why it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No result in the tag yet.
    New,
    /// Its scripts changed since its result was made.
    Changed,
    /// `--recheck` and it was FAILED or ERROR.
    Recheck(Status),
    /// pairbench could not run it last time (no remote host could be reached).
    Unreached,
    /// `-B`.
    Always,
    /// It has an up-to-date result with this status.
    UpToDate(Status),
}

impl Decision {
    pub fn runs(self) -> bool {
        !matches!(self, Decision::UpToDate(_))
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::New => write!(f, "no result yet"),
            Decision::Changed => write!(f, "scripts changed since the result was made"),
            Decision::Recheck(s) => write!(f, "--recheck: it was {s}"),
            Decision::Unreached => write!(f, "its remote host could not be reached last time"),
            Decision::Always => write!(f, "-B: always run"),
            Decision::UpToDate(s) => write!(f, "up to date ({s})"),
        }
    }
}

/// One run of a pair: its parameter values and repetition (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Variant {
    /// Parameter values, in the order the parameters were given.
    pub params: Vec<(String, String)>,
    /// 1-based number among the warm-up or the measured runs; `None` for a lone run.
    pub repetition: Option<u32>,
    pub warmup: bool,
}

impl Variant {
    /// The folder below the pair's folder (`""` for a plain run), e.g.
    /// `SIZE=1k,CONNS=4/rep-2`. Values are percent-encoded where they hold `/` or `%`.
    pub fn rel(&self) -> String {
        layout::variant_rel(&self.params, self.repetition, self.warmup)
    }
}

/// Every run of a pair, in order: for each combination of parameter values (the first
/// parameter varies slowest), the warm-up runs, then the measured ones.
pub fn variants(params: &[(String, Vec<String>)], repeat: u32, warmup: u32) -> Vec<Variant> {
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (name, values) in params {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((name.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    let numbered = repeat > 1 || warmup > 0;
    let mut out = Vec::new();
    for c in combos {
        for w in 1..=warmup {
            out.push(Variant {
                params: c.clone(),
                repetition: Some(w),
                warmup: true,
            });
        }
        for r in 1..=repeat {
            out.push(Variant {
                params: c.clone(),
                repetition: numbered.then_some(r),
                warmup: false,
            });
        }
    }
    out
}

/// A run of a pair with its decision.
#[derive(Debug, Clone)]
pub struct Planned {
    pub pair: Pair,
    /// Index into the run's variants.
    pub variant: u32,
    pub decision: Decision,
    /// Hash of the scripts now (kept in the pair's record).
    pub hash: Hash,
}

/// The plan of each group that has planned runs, in the groups' order.
pub fn group_plans(planned: &[Planned], groups: &[Group]) -> Vec<crate::tree::manifest::GroupPlan> {
    pair_plans(planned.iter().map(|p| &p.pair), groups)
}

/// The plan of each group that has one of `pairs`, in the groups' order.
pub fn pair_plans<'a>(
    pairs: impl IntoIterator<Item = &'a Pair>,
    groups: &[Group],
) -> Vec<crate::tree::manifest::GroupPlan> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut by_group: BTreeMap<u32, BTreeSet<(u32, u32)>> = BTreeMap::new();
    for p in pairs {
        by_group
            .entry(p.group)
            .or_default()
            .insert((p.local, p.remote));
    }
    by_group
        .into_iter()
        .map(|(gi, pairs)| {
            let g = &groups[gi as usize];
            let locals: BTreeSet<u32> = pairs.iter().map(|p| p.0).collect();
            let remotes: BTreeSet<u32> = pairs.iter().map(|p| p.1).collect();
            let at =
                |set: &BTreeSet<u32>, i: u32| set.iter().position(|&x| x == i).unwrap_or(0) as u32;
            let all = pairs.len() == locals.len() * remotes.len();
            crate::tree::manifest::GroupPlan {
                group: g.name.clone(),
                local: locals
                    .iter()
                    .map(|&i| g.local[i as usize].name.clone())
                    .collect(),
                remote: remotes
                    .iter()
                    .map(|&i| g.remote[i as usize].name.clone())
                    .collect(),
                pairs: (!all).then(|| {
                    pairs
                        .iter()
                        .map(|&(l, r)| (at(&locals, l), at(&remotes, r)))
                        .collect()
                }),
            }
        })
        .collect()
}

/// A 128-bit content hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hash(pub [u8; 16]);

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Errors in what the user asked for.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("bad filter: {0}")]
    Filter(String),
    #[error("pairs '{0}' and '{1}' would share the result folder '{2}': rename one of the tests")]
    Collision(String, String, String),
    #[error(transparent)]
    Name(#[from] NameError),
}

/// Refuse, up front, runs whose folders the tree cannot hold: a group named like one of
/// the run's own files, a variant folder name longer than a file name.
pub fn check_names(groups: &[Group], variants: &[Variant]) -> Result<(), PlanError> {
    for g in groups {
        layout::check_group_name(&g.name)?;
    }
    for v in variants {
        layout::check_variant_rel(&v.rel())?;
    }
    Ok(())
}

/// Every enabled pair of `groups` that matches `filters` (all when empty), in order.
pub fn pairs(groups: &[Group], filters: &[String]) -> Result<Vec<Pair>, PlanError> {
    let set = glob_set(filters)?;
    let mut out = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let mut seen: HashMap<String, String> = HashMap::new();
        for (li, l) in g.local.iter().enumerate().filter(|(_, t)| t.enabled()) {
            for (ri, r) in g.remote.iter().enumerate().filter(|(_, t)| t.enabled()) {
                let name = layout::pair_name(&l.name, &r.name);
                if let Some(set) = &set
                    && !set.is_match(format!("{}/{}", g.name, name))
                {
                    continue;
                }
                // Only a name where `_x_` appears twice (overlaps included) is ambiguous.
                if name.as_bytes().windows(3).filter(|w| w == b"_x_").count() > 1 {
                    let who = format!("{} x {}", l.name, r.name);
                    if let Some(other) = seen.insert(name.clone(), who.clone()) {
                        let id = format!("{}/{}", g.name, name);
                        return Err(PlanError::Collision(other, who, id));
                    }
                }
                out.push(Pair {
                    group: gi as u32,
                    local: li as u32,
                    remote: ri as u32,
                });
            }
        }
    }
    Ok(out)
}

fn glob_set(filters: &[String]) -> Result<Option<GlobSet>, PlanError> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for f in filters {
        let g = Glob::new(f).map_err(|e| PlanError::Filter(format!("'{f}': {}", e.kind())))?;
        b.add(g);
    }
    b.build()
        .map(Some)
        .map_err(|e| PlanError::Filter(e.to_string()))
}

/// Is `id` in shard `k` of `n` (1-based)? Depends on the id alone, so adding pairs never
/// moves another pair to a different shard.
pub fn in_shard(id: &str, (k, n): (u64, u64)) -> bool {
    layout::stable_hash(id) % n == k - 1
}

fn truncate(digest: &[u8]) -> Hash {
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    Hash(out)
}

/// Content hash of one script.
pub fn file_hash(path: &Path) -> Hash {
    let mut h = Sha256::new();
    match std::fs::read(path) {
        Ok(bytes) => h.update(&bytes),
        Err(_) => h.update(b"\xffunreadable"),
    }
    truncate(&h.finalize())
}

/// Content hash of a pair from its two scripts' hashes.
pub fn pair_hash(local: Hash, remote: Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(local.0);
    h.update(remote.0);
    truncate(&h.finalize())
}

/// What to do with each pair on a tag that may already hold results.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    pub recheck: bool,
    pub always: bool,
}

/// Decide each run of each pair: run it (and why) or skip it (and why), from what the
/// walker found in the tag (`existing`). Each script is hashed once, so huge groups plan
/// quickly.
/// The most runs one invocation plans (pairs × repetitions × parameter sets).
pub const MAX_RUNS: u64 = 5_000_000;

/// Runs of each pair: (repeat + warmup) × the product of the parameters' value counts,
/// saturating.
pub fn runs_per_pair(params: &[(String, Vec<String>)], repeat: u32, warmup: u32) -> u64 {
    params
        .iter()
        .fold(u64::from(repeat) + u64::from(warmup), |n, (_, v)| {
            n.saturating_mul(v.len() as u64)
        })
}

pub fn decide(
    pairs: Vec<Pair>,
    variants: &[Variant],
    groups: &[Group],
    existing: &Walked,
    policy: Policy,
) -> Vec<Planned> {
    use rayon::prelude::*;
    let hashes: Vec<(Vec<Hash>, Vec<Hash>)> = groups
        .par_iter()
        .map(|g| {
            let h = |ts: &Vec<Test>| ts.par_iter().map(|t| file_hash(&t.path)).collect();
            (h(&g.local), h(&g.remote))
        })
        .collect();
    let found: HashMap<String, &PairRecord> = existing.latest().map(|r| (r.id(), r)).collect();
    let rels: Vec<String> = variants.iter().map(Variant::rel).collect();
    pairs
        .into_par_iter()
        .flat_map_iter(|pair| {
            let gi = pair.group as usize;
            let (lh, rh) = &hashes[gi];
            let hash = pair_hash(lh[pair.local as usize], rh[pair.remote as usize]);
            let id = (!found.is_empty()).then(|| pair.id(groups));
            let found = &found;
            rels.iter().enumerate().map(move |(vi, rel)| {
                let prev = id.as_ref().and_then(|id| {
                    let key = if rel.is_empty() {
                        id.clone()
                    } else {
                        format!("{id}/{rel}")
                    };
                    found.get(&key).copied()
                });
                Planned {
                    pair,
                    variant: vi as u32,
                    decision: decide_one(prev, hash, policy),
                    hash,
                }
            })
        })
        .collect()
}

fn decide_one(prev: Option<&PairRecord>, hash: Hash, policy: Policy) -> Decision {
    if policy.always {
        return Decision::Always;
    }
    let Some(prev) = prev else {
        return Decision::New;
    };
    if prev.scripts_hash != hash.to_string() {
        return Decision::Changed;
    }
    if prev.unreached {
        return Decision::Unreached;
    }
    if policy.recheck && prev.status != Status::Success {
        return Decision::Recheck(prev.status);
    }
    Decision::UpToDate(prev.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_cover_every_combination_with_warmups_first() {
        let params = vec![
            ("A".to_string(), vec!["1".to_string(), "2".to_string()]),
            ("B".to_string(), vec!["x/y".to_string()]),
        ];
        let v = variants(&params, 2, 1);
        let rels: Vec<String> = v.iter().map(Variant::rel).collect();
        assert_eq!(
            rels,
            [
                "A=1,B=x%2Fy/warmup-1",
                "A=1,B=x%2Fy/rep-1",
                "A=1,B=x%2Fy/rep-2",
                "A=2,B=x%2Fy/warmup-1",
                "A=2,B=x%2Fy/rep-1",
                "A=2,B=x%2Fy/rep-2",
            ]
        );
        assert_eq!(variants(&[], 1, 0), vec![Variant::default()]);
        assert_eq!(variants(&[], 3, 0)[2].rel(), "rep-3");
    }

    #[test]
    fn shards_are_disjoint_and_complete() {
        let ids: Vec<String> = (0..500).map(|i| format!("g/l{i}_x_r")).collect();
        for n in 1..6 {
            for id in &ids {
                let hits = (1..=n).filter(|&k| in_shard(id, (k, n))).count();
                assert_eq!(hits, 1, "{id} in {hits} of {n} shards");
            }
        }
    }
}
