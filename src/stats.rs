//! Statistics of a run (SPEC §8): per pair and parameter set, for the duration and each
//! metric, n, mean, standard deviation, median, min, max and the outliers (modified
//! z-score over the median absolute deviation above 3.5, Iglewicz & Hoaglin), written to
//! `stats.csv`. Warm-up runs and earlier attempts are left out; the duration counts
//! SUCCESS runs only.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::tree::walk::Walked;
use crate::tree::{MetricRow, PairRecord, Status, Tree, WriteError, tables};

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

/// One value to summarise, found while the statistics are gathered (24 bytes: a run
/// of 10,000 pairs has 170,000).
struct Sample {
    /// The rank of its run's group, pair and parameters (in [`Key`] order).
    run_key: u32,
    /// Its metric row, or [`DURATION`].
    row: u32,
    repetition: Option<u32>,
    value: f64,
}

/// The row of a duration (not a metric row).
const DURATION: u32 = u32::MAX;

/// The statistics of a run: `latest` are the latest attempts of its runs, `metrics` the
/// metric values of any attempt (only those of the latest attempts count).
pub fn compute<'a>(
    latest: impl Iterator<Item = &'a PairRecord>,
    metrics: &'a [MetricRow],
) -> Vec<Stat> {
    stream(latest, metrics).collect()
}

/// The statistics of a run, as [`compute`], one at a time in [`Key`] order: the values
/// are gathered once ([`Sample`]) and every statistic is made only when it is asked
/// for, so a 10,000-pair run's 170,000 statistics are never held at once. A statistic
/// lists its values in the order they were found.
pub fn stream<'a>(
    latest: impl Iterator<Item = &'a PairRecord>,
    metrics: &'a [MetricRow],
) -> impl Iterator<Item = Stat> + 'a {
    let last: BTreeMap<String, &PairRecord> = latest.map(|r| (r.id(), r)).collect();
    let runs: Vec<&PairRecord> = last.values().copied().collect();
    let params: Vec<String> = runs.iter().map(|r| params_key(&r.params)).collect();
    let key_of = |i: usize| {
        (
            runs[i].group.as_str(),
            runs[i].pair.as_str(),
            params[i].as_str(),
        )
    };
    let mut by_key: Vec<usize> = (0..runs.len()).collect();
    by_key.sort_by(|&a, &b| key_of(a).cmp(&key_of(b)));
    // Each run's rank, and the group, pair and parameters of each rank.
    let mut rank = vec![0u32; runs.len()];
    let mut names: Vec<(String, String, String)> = Vec::new();
    for i in by_key {
        let (g, p, k) = key_of(i);
        if names
            .last()
            .is_none_or(|(lg, lp, lk)| (lg.as_str(), lp.as_str(), lk.as_str()) != (g, p, k))
        {
            names.push((g.to_string(), p.to_string(), k.to_string()));
        }
        rank[i] = (names.len() - 1) as u32;
    }
    let index: HashMap<&str, usize> = last
        .keys()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();

    // (metric, side, unit) of a sample.
    let what = move |row: u32| -> (&'a str, &'a str, &'a str) {
        match metrics.get(row as usize) {
            Some(m) if row != DURATION => (&m.name, &m.side, &m.unit),
            _ => ("duration_s", "", "s"),
        }
    };
    let mut samples: Vec<Sample> = Vec::with_capacity(runs.len() + metrics.len());
    for (i, r) in runs.iter().enumerate() {
        if !r.warmup && r.status == Status::Success {
            samples.push(Sample {
                run_key: rank[i],
                row: DURATION,
                repetition: r.repetition,
                value: r.duration_s,
            });
        }
    }
    for (row, m) in metrics.iter().enumerate() {
        let Some(&i) = index.get(m.run_id()) else {
            continue;
        };
        if m.run.warmup || runs[i].attempt != m.run.attempt {
            continue;
        }
        samples.push(Sample {
            run_key: rank[i],
            row: row as u32,
            repetition: m.run.repetition,
            value: m.value,
        });
    }
    samples.shrink_to_fit();
    let order = move |s: &Sample| {
        let (metric, side, _) = what(s.row);
        (s.run_key, metric, side)
    };
    // Stable: equal keys keep the order the values were found in.
    samples.sort_by(|a, b| order(a).cmp(&order(b)));

    let mut at = 0;
    std::iter::from_fn(move || {
        let first = samples.get(at)?;
        let key = order(first);
        let end = at + samples[at..].iter().take_while(|s| order(s) == key).count();
        let values: Samples = samples[at..end]
            .iter()
            .map(|s| (s.repetition, s.value))
            .collect();
        let v: Vec<f64> = values.iter().map(|(_, x)| *x).collect();
        let (group, pair, params) = &names[first.run_key as usize];
        let (metric, side, unit) = what(first.row);
        let stat = Stat {
            key: Key {
                group: group.clone(),
                pair: pair.clone(),
                params: params.clone(),
                metric: metric.to_string(),
                side: side.to_string(),
            },
            unit: unit.to_string(),
            summary: summarize(&v),
            values,
        };
        at = end;
        Some(stat)
    })
}

/// Write a run's three tables from what the walk of its tree found: results.csv (every
/// attempt), metrics.csv (the values of every attempt) and stats.csv (of the latest
/// attempts). Returns each table that could not be written, by name.
pub fn write_tables(tree: &Tree, walked: &Walked) -> Vec<(&'static str, WriteError)> {
    let (metrics, _) = walked.metrics(true);
    let mut failed = Vec::new();
    let mut at = |name: &'static str, write: &dyn Fn(&Path) -> std::io::Result<()>| {
        let path = tree.file(name);
        if let Err(e) = write(&path) {
            failed.push((name, WriteError::new(&path, e)));
        }
    };
    at("results.csv", &|p| {
        tables::write_results(p, &walked.all_records())
    });
    at("metrics.csv", &|p| tables::write_metrics(p, metrics));
    at("stats.csv", &|p| write_csv(p, walked.latest(), metrics));
    failed
}

/// Write stats.csv of a run (through the tree's table writer) as [`compute`] would make
/// it, a statistic at a time ([`stream`]).
pub fn write_csv<'a>(
    path: &Path,
    latest: impl Iterator<Item = &'a PairRecord>,
    metrics: &'a [MetricRow],
) -> std::io::Result<()> {
    tables::write_table(path, HEADER, stream(latest, metrics).map(|s| row(&s)))
}

const HEADER: [&str; 14] = [
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

/// The row of stats.csv of `s`.
fn row(s: &Stat) -> [String; 14] {
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
