//! `pairbench compare A B`: each pair's change between two runs, per parameter set and
//! metric, with Welch's t-test where both runs have at least two values; exit 1 when
//! something got worse by more than the threshold (SPEC §8).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::bail;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::config::Direction;
use crate::exit_status::ExitStatus;
use crate::stats::{self, Key, Summary};

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

/// Compare two runs' statistics.
pub fn compare(
    a_dir: &Path,
    b_dir: &Path,
    threshold: f64,
    directions: &BTreeMap<String, Direction>,
) -> Vec<Change> {
    let a: BTreeMap<Key, stats::Stat> = stats::of_tree(a_dir)
        .into_iter()
        .map(|s| (s.key.clone(), s))
        .collect();
    let mut out = Vec::new();
    for sb in stats::of_tree(b_dir) {
        let Some(sa) = a.get(&sb.key) else { continue };
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
        out.push(Change {
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
    let changes = compare(&a_dir, &b_dir, threshold, directions);
    if changes.is_empty() {
        bail!(
            "runs '{a_tag}' and '{b_tag}' have no pairs (with results) in common: compare two runs of the same groups"
        );
    }
    use crate::terminal::shown;
    let mut out = String::new();
    writeln!(
        out,
        "{:<40} {:<24} {:>14} {:>14} {:>9} {:>8}  verdict",
        "pair [params]", "metric", a_tag, b_tag, "change", "p"
    )?;
    let mut regressions = 0;
    for c in &changes {
        let what = if c.key.params.is_empty() {
            format!("{}/{}", c.key.group, c.key.pair)
        } else {
            format!("{}/{} [{}]", c.key.group, c.key.pair, c.key.params)
        };
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
    writeln!(
        out,
        "{} compared, {regressions} worse by more than {threshold}%",
        changes.len()
    )?;
    crate::console::block(&out);
    Ok(if regressions > 0 {
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
