//! Statistics of a run (SPEC §8): per pair and parameter set, for the duration and each
//! metric, n, mean, standard deviation, median, min, max and the outliers (modified
//! z-score over the median absolute deviation above 3.5, Iglewicz & Hoaglin), written to
//! `stats.csv`. Warm-up runs and earlier attempts are left out; the duration counts
//! SUCCESS runs only.

use std::collections::BTreeMap;
use std::path::Path;

use crate::tree::{MetricRow, PairRecord, Status, tables};

/// The summary of a set of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for a single value.
    pub stddev: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Indices (into the values given) of the outliers.
    pub outliers: Vec<usize>,
}

fn median_of(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Summarise `values` (at least one).
pub fn summarize(values: &[f64]) -> Summary {
    let n = values.len();
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    let median = median_of(&sorted);
    let mut dev: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = median_of(&dev);
    // With a zero MAD (most values equal), scale by the mean absolute deviation instead.
    let scale = if mad > 0.0 {
        1.4826 * mad
    } else {
        1.253314 * dev.iter().sum::<f64>() / n as f64
    };
    let outliers = if n >= 3 && scale > 0.0 {
        values
            .iter()
            .enumerate()
            .filter(|(_, v)| 0.6745 * (*v - median).abs() / (scale / 1.4826) > 3.5)
            .map(|(i, _)| i)
            .collect()
    } else {
        Vec::new()
    };
    let (min, max) = (sorted[0], sorted[n - 1]);
    // Equal values have that value as their mean and no spread; a spread below a
    // billionth of the mean is the rounding of the sums above, not a measurement.
    let mean = if min == max { min } else { mean };
    let stddev = var.sqrt();
    let stddev = if stddev <= 1e-9 * mean.abs() {
        0.0
    } else {
        stddev
    };
    Summary {
        n,
        mean,
        stddev,
        median,
        min,
        max,
        outliers,
    }
}

/// What a statistic is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub group: String,
    pub pair: String,
    /// `A=1,B=2`, or empty.
    pub params: String,
    /// `duration_s` or a metric's name.
    pub metric: String,
    /// `local` or `remote` for metrics, empty for the duration.
    pub side: String,
}

/// Values with the repetition each came from.
type Samples = Vec<(Option<u32>, f64)>;

/// One row of stats.csv.
#[derive(Debug, Clone)]
pub struct Stat {
    pub key: Key,
    pub unit: String,
    pub summary: Summary,
    /// The values, and the repetition each came from.
    pub values: Samples,
}

pub fn params_key(p: &BTreeMap<String, String>) -> String {
    p.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The statistics of a run: `latest` are the latest attempts of its runs, `metrics` the
/// metric values of any attempt (only those of the latest attempts count).
pub fn compute<'a>(
    latest: impl Iterator<Item = &'a PairRecord>,
    metrics: &[MetricRow],
) -> Vec<Stat> {
    let last: BTreeMap<String, &PairRecord> = latest.map(|r| (r.id(), r)).collect();
    let mut groups: BTreeMap<Key, (String, Samples)> = BTreeMap::new();
    for r in last
        .values()
        .filter(|r| !r.warmup && r.status == Status::Success)
    {
        let key = Key {
            group: r.group.clone(),
            pair: r.pair.clone(),
            params: params_key(&r.params),
            metric: "duration_s".into(),
            side: String::new(),
        };
        let e = groups
            .entry(key)
            .or_insert_with(|| ("s".into(), Vec::new()));
        e.1.push((r.repetition, r.duration_s));
    }
    for m in metrics {
        let current = last
            .get(&m.run_id())
            .is_some_and(|r| r.attempt == m.attempt);
        if m.warmup || !current {
            continue;
        }
        let key = Key {
            group: m.group.clone(),
            pair: m.pair.clone(),
            params: params_key(&m.params),
            metric: m.name.clone(),
            side: m.side.clone(),
        };
        let e = groups
            .entry(key)
            .or_insert_with(|| (m.unit.clone(), Vec::new()));
        e.1.push((m.repetition, m.value));
    }
    groups
        .into_iter()
        .map(|(key, (unit, values))| {
            let v: Vec<f64> = values.iter().map(|(_, x)| *x).collect();
            Stat {
                key,
                unit,
                summary: summarize(&v),
                values,
            }
        })
        .collect()
}

/// The statistics of a stored run, read through the walker.
pub fn of_tree(tag_dir: &Path) -> Vec<Stat> {
    let walked = crate::tree::walk::walk(tag_dir);
    let (metrics, _) = walked.metrics(false);
    compute(walked.latest(), &metrics)
}

/// Write stats.csv (through the tree's table writer).
pub fn write_csv(path: &Path, stats: &[Stat]) -> std::io::Result<()> {
    let header = [
        "group",
        "pair",
        "params",
        "metric",
        "side",
        "unit",
        "n",
        "mean",
        "stddev",
        "median",
        "min",
        "max",
        "outliers",
        "outlier_values",
    ];
    let rows = stats.iter().map(|s| {
        let m = &s.summary;
        let flagged: Vec<String> = m
            .outliers
            .iter()
            .map(|&i| {
                let (rep, v) = s.values[i];
                match rep {
                    Some(r) => format!("{v} (rep {r})"),
                    None => v.to_string(),
                }
            })
            .collect();
        [
            s.key.group.clone(),
            s.key.pair.clone(),
            s.key.params.clone(),
            s.key.metric.clone(),
            s.key.side.clone(),
            s.unit.clone(),
            m.n.to_string(),
            format!("{:.6}", m.mean),
            format!("{:.6}", m.stddev),
            format!("{:.6}", m.median),
            format!("{:.6}", m.min),
            format!("{:.6}", m.max),
            m.outliers.len().to_string(),
            flagged.join("; "),
        ]
    });
    tables::write_table(path, header, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let s = summarize(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(s.n, 8);
        assert!((s.mean - 5.0).abs() < 1e-12);
        assert!((s.stddev - 2.138089935299395).abs() < 1e-9);
        assert_eq!((s.median, s.min, s.max), (4.5, 2.0, 9.0));
        // MAD = 0.5, so 9 has a modified z-score of 0.6745 * 4.5 / 0.5 = 6.1 > 3.5.
        assert_eq!(s.outliers, vec![7]);
        assert!(summarize(&[1.0, 2.0, 3.0, 4.0, 5.0]).outliers.is_empty());
    }

    #[test]
    fn a_far_value_is_an_outlier() {
        let s = summarize(&[10.0, 10.2, 9.9, 10.1, 10.0, 55.0]);
        assert_eq!(s.outliers, vec![5]);
        let flat = summarize(&[1.0, 1.0, 1.0, 1.0, 9.0]);
        assert_eq!(flat.outliers, vec![4]);
        assert!(summarize(&[3.0]).outliers.is_empty());
    }

    #[test]
    fn equal_values_have_no_spread_and_their_own_mean() {
        let s = summarize(&[460.6, 460.6, 460.6]);
        assert_eq!((s.mean, s.stddev), (460.6, 0.0));
        let s = summarize(&[0.1 + 0.2, 0.3, 0.3]);
        assert_eq!(s.stddev, 0.0, "a spread of 1e-17 is rounding");
        assert!(summarize(&[1.0, 1.000001]).stddev > 0.0);
    }
}
