//! `pairbench compare A B`: each pair's change between two runs, per parameter set and
//! metric, with Welch's t-test where both runs have at least two values; pairs that no
//! longer succeed; pairs only one run has; exit 1 when a metric got worse by more than
//! the threshold or a pair went from SUCCESS to FAILED/ERROR (docs/benchmarks.md).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::bail;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::config::Direction;
use crate::exit_status::ExitStatus;
use crate::stats::{self, Key, Summary};
use crate::tree::Status;

/// Parse `5%`, `5` (percent) or `0.5%`.
pub fn parse_threshold(s: &str) -> anyhow::Result<f64> {
    let t = s.trim().trim_end_matches('%').trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => bail!("bad --threshold '{s}': write a percentage like 5%"),
    }
}

/// Two-sided p-value of Welch's t-test, when both sides have at least two values.
pub fn welch_p(a: &Summary, b: &Summary) -> Option<f64> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let (va, vb) = (a.stddev.powi(2) / a.n as f64, b.stddev.powi(2) / b.n as f64);
    let se = (va + vb).sqrt();
    if se == 0.0 {
        return Some(if a.mean == b.mean { 1.0 } else { 0.0 });
    }
    let t = (b.mean - a.mean) / se;
    let df =
        (va + vb).powi(2) / (va.powi(2) / (a.n as f64 - 1.0) + vb.powi(2) / (b.n as f64 - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(2.0 * (1.0 - dist.cdf(t.abs())))
}

/// One compared statistic.
#[derive(Debug)]
pub struct Change {
    pub key: Key,
    pub unit: String,
    pub a: Summary,
    pub b: Summary,
    /// Percent change of the mean, B against A.
    pub change: f64,
    pub p: Option<f64>,
    pub regressed: bool,
}

/// How the runs of one pair and parameter set ended, in one stored run (warm-ups left
/// out).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub success: usize,
    pub failed: usize,
    pub error: usize,
}

impl Tally {
    fn runs(&self) -> usize {
        self.success + self.failed + self.error
    }

    fn all_success(&self) -> bool {
        self.runs() > 0 && self.success == self.runs()
    }

    /// `SUCCESS`, or e.g. `FAILED 2/4, ERROR 1/4`.
    fn show(&self) -> String {
        let n = self.runs();
        if self.all_success() {
            return if n == 1 {
                "SUCCESS".into()
            } else {
                format!("SUCCESS {n}/{n}")
            };
        }
        let mut parts = Vec::new();
        for (word, k) in [
            ("SUCCESS", self.success),
            ("FAILED", self.failed),
            ("ERROR", self.error),
        ] {
            if k > 0 {
                parts.push(if n == 1 {
                    word.to_string()
                } else {
                    format!("{word} {k}/{n}")
                });
            }
        }
        parts.join(", ")
    }
}

/// (group, pair): a pair of a run.
type PairId = (String, String);

/// One stored run, as compare sees it.
struct Side {
    stats: Vec<stats::Stat>,
    /// Per pair, per parameter set (`A=1,B=2`, or empty).
    tallies: BTreeMap<PairId, BTreeMap<String, Tally>>,
}

fn read_side(dir: &Path) -> Side {
    let walked = crate::tree::walk::walk(dir);
    let (metrics, _) = walked.metrics(false);
    let stats = stats::compute(walked.latest(), metrics);
    let mut tallies: BTreeMap<PairId, BTreeMap<String, Tally>> = BTreeMap::new();
    for r in walked.latest().filter(|r| !r.warmup) {
        let t = tallies
            .entry((r.group.clone(), r.pair.clone()))
            .or_default()
            .entry(stats::params_key(&r.params))
            .or_default();
        match r.status {
            Status::Success => t.success += 1,
            Status::Failed => t.failed += 1,
            Status::Error => t.error += 1,
        }
    }
    Side { stats, tallies }
}

/// A pair (and parameter set) present in one run only, or parameter sets of a pair that
/// could not be matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmatched {
    /// In A, not in B.
    Missing { pair: PairId, params: String },
    /// In B, not in A.
    New { pair: PairId, params: String },
}

/// A pair whose runs all succeeded in A and not in B (or the other way round).
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub pair: PairId,
    /// B's parameter set (A's when they differ: `a_params`).
    pub params: String,
    pub a_params: String,
    pub a: Tally,
    pub b: Tally,
    /// SUCCESS in A, FAILED/ERROR in B.
    pub regressed: bool,
}

/// Everything compare found.
#[derive(Debug, Default)]
pub struct Comparison {
    pub changes: Vec<Change>,
    pub status: Vec<StatusChange>,
    pub unmatched: Vec<Unmatched>,
    /// Parameter sets matched across runs although they differ: (pair, A's, B's).
    pub matched_sets: Vec<(PairId, String, String)>,
    /// (pair, parameter set) present in both runs.
    pub common: usize,
}

/// Which of B's parameter sets of a pair stands for which of A's: the same set, or, when
/// exactly one set of each is left (a run without `--param` against one with a single
/// set), that one.
fn match_sets(
    a: &BTreeMap<String, Tally>,
    b: &BTreeMap<String, Tally>,
) -> (Vec<(String, String)>, Vec<String>, Vec<String>) {
    let mut pairs: Vec<(String, String)> = a
        .keys()
        .filter(|k| b.contains_key(*k))
        .map(|k| (k.clone(), k.clone()))
        .collect();
    let only_a: Vec<String> = a.keys().filter(|k| !b.contains_key(*k)).cloned().collect();
    let only_b: Vec<String> = b.keys().filter(|k| !a.contains_key(*k)).cloned().collect();
    if pairs.is_empty() && only_a.len() == 1 && only_b.len() == 1 {
        pairs.push((only_a[0].clone(), only_b[0].clone()));
        return (pairs, Vec::new(), Vec::new());
    }
    (pairs, only_a, only_b)
}

/// Compare two runs: metrics and durations, pass/fail status, and what only one has.
pub fn compare(
    a_dir: &Path,
    b_dir: &Path,
    threshold: f64,
    directions: &BTreeMap<String, Direction>,
) -> Comparison {
    let (a, b) = (read_side(a_dir), read_side(b_dir));
    let mut out = Comparison::default();
    // B's (pair, params) → A's params.
    let mut to_a: BTreeMap<(PairId, String), String> = BTreeMap::new();
    let empty = BTreeMap::new();
    let ids: std::collections::BTreeSet<&PairId> =
        a.tallies.keys().chain(b.tallies.keys()).collect();
    for id in ids {
        let ta = a.tallies.get(id).unwrap_or(&empty);
        let tb = b.tallies.get(id).unwrap_or(&empty);
        let (matched, only_a, only_b) = match_sets(ta, tb);
        for params in only_a {
            out.unmatched.push(Unmatched::Missing {
                pair: id.clone(),
                params,
            });
        }
        for params in only_b {
            out.unmatched.push(Unmatched::New {
                pair: id.clone(),
                params,
            });
        }
        for (pa, pb) in matched {
            out.common += 1;
            if pa != pb {
                out.matched_sets.push((id.clone(), pa.clone(), pb.clone()));
            }
            let (x, y) = (ta[&pa], tb[&pb]);
            if x.all_success() != y.all_success() {
                out.status.push(StatusChange {
                    pair: id.clone(),
                    params: pb.clone(),
                    a_params: pa.clone(),
                    a: x,
                    b: y,
                    regressed: x.all_success(),
                });
            }
            to_a.insert((id.clone(), pb), pa);
        }
    }
    let a_stats: BTreeMap<Key, &stats::Stat> = a.stats.iter().map(|s| (s.key.clone(), s)).collect();
    for sb in b.stats {
        let id = (sb.key.group.clone(), sb.key.pair.clone());
        let Some(pa) = to_a.get(&(id, sb.key.params.clone())) else {
            continue;
        };
        let ka = Key {
            params: pa.clone(),
            ..sb.key.clone()
        };
        let Some(sa) = a_stats.get(&ka) else { continue };
        let (ma, mb) = (sa.summary.mean, sb.summary.mean);
        let change = if ma != 0.0 {
            (mb - ma) / ma.abs() * 100.0
        } else if mb == 0.0 {
            0.0
        } else {
            f64::INFINITY * (mb - ma).signum()
        };
        let dir = if sb.key.metric == "duration_s" {
            Direction::Lower
        } else {
            directions.get(&sb.key.metric).copied().unwrap_or_default()
        };
        let worse = match dir {
            Direction::Lower => change > threshold,
            Direction::Higher => change < -threshold,
        };
        let p = welch_p(&sa.summary, &sb.summary);
        // pairbench's own measurements (CPU, memory, ...) are shown; they count only when
        // [metrics] names them (docs/resources.md).
        let counted = !crate::tree::record::is_own_metric(&sb.key.metric)
            || directions.contains_key(&sb.key.metric);
        // Where a test is possible, a change must also be significant to count.
        let regressed = counted && worse && p.is_none_or(|p| p < 0.05);
        out.changes.push(Change {
            key: sb.key.clone(),
            unit: sb.unit.clone(),
            a: sa.summary.clone(),
            b: sb.summary,
            change,
            p,
            regressed,
        });
    }
    out
}

/// `group/pair`, with ` [params]` when there are some.
fn label(pair: &PairId, params: &str) -> String {
    if params.is_empty() {
        format!("{}/{}", pair.0, pair.1)
    } else {
        format!("{}/{} [{params}]", pair.0, pair.1)
    }
}

/// A parameter set as a user reads it: `SIZE=64`, or `no parameters`.
fn set_name(params: &str) -> String {
    if params.is_empty() {
        "no parameters".into()
    } else {
        params.to_string()
    }
}

/// The `compare` command; returns the exit status.
pub fn command(
    results_dir: &Path,
    a: &str,
    b: &str,
    threshold: &str,
    directions: &BTreeMap<String, Direction>,
) -> anyhow::Result<ExitStatus> {
    let threshold = parse_threshold(threshold)?;
    let (a_tag, a_dir) = crate::tree::lock::resolve(results_dir, a)?;
    let (b_tag, b_dir) = crate::tree::lock::resolve(results_dir, b)?;
    let cmp = compare(&a_dir, &b_dir, threshold, directions);
    use crate::terminal::shown;
    if cmp.common == 0 {
        // Say which parameter sets each run has when the pairs are the same.
        let sets = |want_missing: bool| -> Vec<String> {
            let mut v: Vec<String> = cmp
                .unmatched
                .iter()
                .filter_map(|u| match (u, want_missing) {
                    (Unmatched::Missing { params, .. }, true)
                    | (Unmatched::New { params, .. }, false) => Some(set_name(params)),
                    _ => None,
                })
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let same_pairs = {
            let pa: std::collections::BTreeSet<&PairId> = cmp
                .unmatched
                .iter()
                .filter_map(|u| match u {
                    Unmatched::Missing { pair, .. } => Some(pair),
                    _ => None,
                })
                .collect();
            cmp.unmatched.iter().any(|u| match u {
                Unmatched::New { pair, .. } => pa.contains(pair),
                _ => false,
            })
        };
        if same_pairs {
            bail!(
                "runs '{a_tag}' and '{b_tag}' ran the same pairs with different parameter sets, none in common ('{a_tag}': {}; '{b_tag}': {}): run both with the same --param",
                shown(&sets(true).join(", ")),
                shown(&sets(false).join(", "))
            );
        }
        bail!(
            "runs '{a_tag}' and '{b_tag}' have no pairs (with results) in common: compare two runs of the same groups"
        );
    }
    let mut out = String::new();
    writeln!(
        out,
        "{:<40} {:<24} {:>14} {:>14} {:>9} {:>8}  verdict",
        "pair [params]", "metric", a_tag, b_tag, "change", "p"
    )?;
    let mut regressions = 0;
    for c in &cmp.changes {
        let what = label(&(c.key.group.clone(), c.key.pair.clone()), &c.key.params);
        let metric = if c.key.side.is_empty() {
            c.key.metric.clone()
        } else {
            format!("{} ({})", c.key.metric, c.key.side)
        };
        // Names escaped for the terminal.
        let (what, metric) = (shown(&what), shown(&metric));
        let verdict = if c.regressed {
            regressions += 1;
            "WORSE"
        } else if c.p.is_some_and(|p| p < 0.05) {
            "changed"
        } else {
            "ok"
        };
        writeln!(
            out,
            "{what:<40} {metric:<24} {:>14} {:>14} {:>+8.1}% {:>8}  {verdict}",
            format!("{:.4} {}", c.a.mean, c.unit),
            format!("{:.4} {}", c.b.mean, c.unit),
            c.change,
            c.p.map(|p| format!("{p:.3}")).unwrap_or_else(|| "-".into()),
        )?;
    }
    let mut status_regressions = 0;
    for s in &cmp.status {
        let verdict = if s.regressed {
            status_regressions += 1;
            "WORSE"
        } else {
            "better"
        };
        writeln!(
            out,
            "{:<40} {:<24} {:>14} {:>14}  {verdict}",
            shown(&label(&s.pair, &s.params)),
            "status",
            s.a.show(),
            s.b.show(),
        )?;
    }
    for (pair, pa, pb) in &cmp.matched_sets {
        writeln!(
            out,
            "matched {}: '{a_tag}' with {} against '{b_tag}' with {} (the only set of each)",
            shown(&label(pair, "")),
            shown(&set_name(pa)),
            shown(&set_name(pb)),
        )?;
    }
    let (mut missing, mut new) = (0, 0);
    for u in &cmp.unmatched {
        let (what, pair, params) = match u {
            Unmatched::Missing { pair, params } => {
                missing += 1;
                (
                    format!("only in '{a_tag}' (missing from '{b_tag}')"),
                    pair,
                    params,
                )
            }
            Unmatched::New { pair, params } => {
                new += 1;
                (format!("only in '{b_tag}' (new)"), pair, params)
            }
        };
        writeln!(out, "{what}: {}", shown(&label(pair, params)))?;
    }
    let mut summary = format!(
        "{} compared, {regressions} worse by more than {threshold}%, {status_regressions} \
         no longer SUCCESS",
        cmp.changes.len()
    );
    if missing > 0 {
        summary.push_str(&format!(", {missing} missing from '{b_tag}'"));
    }
    if new > 0 {
        summary.push_str(&format!(", {new} new in '{b_tag}'"));
    }
    writeln!(out, "{summary}")?;
    crate::console::block(&out);
    Ok(if regressions + status_regressions > 0 {
        ExitStatus::FAILED
    } else {
        ExitStatus::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_matches_a_known_value() {
        // a = [1,2,3,4,5], b = [3,4,5,6,7]: t = 2, df = 8, p = 0.0805.
        let a = stats::summarize(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let b = stats::summarize(&[3.0, 4.0, 5.0, 6.0, 7.0]);
        let p = welch_p(&a, &b).unwrap();
        assert!((p - 0.0805).abs() < 0.001, "{p}");
        assert_eq!(welch_p(&stats::summarize(&[1.0]), &b), None);
    }

    #[test]
    fn thresholds() {
        assert_eq!(parse_threshold("5%").unwrap(), 5.0);
        assert_eq!(parse_threshold("2.5").unwrap(), 2.5);
        assert!(parse_threshold("much").is_err());
    }
}
