//! Metric gates (docs/regression.md, "Metric gates"): `[check.metrics] rps = "5%"` fails
//! a run whose value is worse than the blessed one by more than 5% in the metric's
//! direction (`[metrics] rps = "higher"`; lower is better unless said otherwise), and
//! `latency_ms = { min = …, max = … }` fails one outside the bounds.

use std::collections::BTreeMap;

use crate::config::Direction;
use crate::group_toml::Gate;

/// A number for people (as the report writes values).
fn show(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Check one gate; `Err(line)` says how the run's `value` (of `side`) fails it.
pub fn check(
    name: &str,
    side: &str,
    gate: Gate,
    direction: Direction,
    value: f64,
    blessed: Option<f64>,
) -> Result<(), String> {
    match gate {
        Gate::Bounds { min, max } => {
            if let Some(lo) = min
                && value < lo
            {
                return Err(format!(
                    "metric {name} ({side}) is {}, below its minimum {}",
                    show(value),
                    show(lo)
                ));
            }
            if let Some(hi) = max
                && value > hi
            {
                return Err(format!(
                    "metric {name} ({side}) is {}, above its maximum {}",
                    show(value),
                    show(hi)
                ));
            }
            Ok(())
        }
        Gate::Worse(pct) => {
            let Some(b) = blessed else {
                return Err(format!(
                    "metric {name} ({side}) has no blessed value to compare with: `pairbench bless` stores it"
                ));
            };
            let worse_by = match direction {
                Direction::Higher => b - value,
                Direction::Lower => value - b,
            };
            let limit = b.abs() * pct / 100.0;
            if worse_by > limit {
                let rel = if b != 0.0 {
                    format!("{}%", show(worse_by / b.abs() * 100.0))
                } else {
                    "infinitely".into()
                };
                let way = match direction {
                    Direction::Higher => "lower",
                    Direction::Lower => "higher",
                };
                return Err(format!(
                    "metric {name} ({side}) is {}, {rel} {way} than the blessed {} (the gate allows {}%; {} is better)",
                    show(value),
                    show(b),
                    show(pct),
                    match direction {
                        Direction::Higher => "higher",
                        Direction::Lower => "lower",
                    }
                ));
            }
            Ok(())
        }
    }
}

/// Check every gate against a run's values (side → metric → value) and the blessed ones;
/// one line per failure.
pub fn check_all(
    gates: &[(String, Gate)],
    directions: &BTreeMap<String, Direction>,
    run: &BTreeMap<String, BTreeMap<String, f64>>,
    blessed: &BTreeMap<String, BTreeMap<String, f64>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, gate) in gates {
        let dir = directions.get(name).copied().unwrap_or_default();
        let mut seen = false;
        for (side, values) in run {
            let Some(&v) = values.get(name) else { continue };
            seen = true;
            let b = blessed.get(side).and_then(|m| m.get(name)).copied();
            if let Err(line) = check(name, side, *gate, dir, v, b) {
                out.push(line);
            }
        }
        if !seen {
            out.push(format!(
                "metric {name}: the run reported no value (report_metric {name} VALUE on either side)"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_gates_follow_the_direction() {
        let up = Direction::Higher;
        assert!(check("rps", "local", Gate::Worse(5.0), up, 980.0, Some(1000.0)).is_ok());
        let e = check("rps", "local", Gate::Worse(5.0), up, 800.0, Some(1000.0)).unwrap_err();
        assert!(e.contains("800, 20% lower than the blessed 1000"), "{e}");
        assert!(check("rps", "local", Gate::Worse(5.0), up, 5000.0, Some(1000.0)).is_ok());
        let down = Direction::Lower;
        assert!(check("ms", "local", Gate::Worse(5.0), down, 12.0, Some(10.0)).is_err());
        assert!(check("ms", "local", Gate::Worse(5.0), down, 1.0, Some(10.0)).is_ok());
        assert!(check("ms", "local", Gate::Worse(5.0), down, 1.0, None).is_err());
    }

    #[test]
    fn bounds() {
        let g = Gate::Bounds {
            min: None,
            max: Some(20.0),
        };
        assert!(check("ms", "remote", g, Direction::Lower, 19.0, None).is_ok());
        let e = check("ms", "remote", g, Direction::Lower, 21.5, None).unwrap_err();
        assert_eq!(e, "metric ms (remote) is 21.5, above its maximum 20");
    }
}
