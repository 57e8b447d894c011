//! Line charts of `plots/`: per group, metric (and side) and numeric parameter (one whose
//! values all read as numbers), the mean of the metric's measured values at each value
//! of the parameter, one line per pair (the other parameters, if any, in its label),
//! with an error bar of ± one standard deviation where a point has 2 values or more.
//! Warm-ups are left out. Drawing is deterministic: series and points are sorted.

use std::collections::{BTreeMap, BTreeSet};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    ERROR_BAR, INK, Kind, Painter, Plot, Row, err, fit, font_of, safe_stem_named, text_style,
};
use crate::report::fmt_value;
use crate::report::load::GroupRun;
use crate::report::names::{printable, safe_stem};
use crate::stats::summarize;

const WIDTH: u32 = 900;
const PLOT_H: u32 = 480;
const LEGEND_ROW: u32 = 20;

/// Line colours, taken in turn (deterministic, readable on white).
const COLORS: [RGBColor; 8] = [
    RGBColor(52, 101, 164),
    RGBColor(245, 121, 0),
    RGBColor(78, 154, 6),
    RGBColor(204, 0, 0),
    RGBColor(117, 80, 123),
    RGBColor(193, 125, 17),
    RGBColor(6, 152, 154),
    RGBColor(85, 87, 83),
];

/// One point of a line: the mean of `n` values at `x`, and their standard deviation.
struct Point {
    x: f64,
    mean: f64,
    sd: f64,
    n: usize,
    /// The smallest of the values: no point below 0 means data that cannot be negative.
    min: f64,
}

impl Point {
    fn has_error(&self) -> bool {
        self.n >= 2 && self.sd.is_finite()
    }
    /// The low end of the error bar (not below 0 for data that cannot be negative).
    fn low(&self) -> f64 {
        if self.has_error() {
            let low = self.mean - self.sd;
            if self.min >= 0.0 { low.max(0.0) } else { low }
        } else {
            self.mean
        }
    }
    fn high(&self) -> f64 {
        if self.has_error() {
            self.mean + self.sd
        } else {
            self.mean
        }
    }
}

struct Series {
    label: String,
    /// Sorted by x.
    points: Vec<Point>,
}

pub(super) struct LineChart {
    pub(super) plot: Plot,
    title: String,
    x_desc: String,
    y_desc: String,
    series: Vec<Series>,
    /// Spans of x shaded behind the lines (testbed events: from one to the next).
    shade: Vec<(f64, f64)>,
}

/// The time series of one run with samples (`--sample`; docs/resources.md): both sides'
/// host CPU busy and their own processes' CPU on one time axis, the testbed's events
/// shaded (from each to the next).
pub(super) fn samples(g: &GroupRun, tag_dir: &std::path::Path) -> Vec<LineChart> {
    use crate::tree::nofollow;
    let mut out = Vec::new();
    for r in &g.runs {
        let dir = crate::report::load::run_dir(tag_dir, r);
        let mut series = Vec::new();
        for side in ["local", "remote"] {
            let rel = std::path::Path::new(side).join(crate::sample::FILE);
            let Ok(bytes) = nofollow::read_beneath(&dir, &rel) else {
                continue;
            };
            let mut host = Vec::new();
            let mut own = Vec::new();
            let mut rdr = csv::Reader::from_reader(bytes.as_slice());
            for rec in rdr.records().flatten() {
                let (Some(t), Some(name), Some(v)) = (rec.get(0), rec.get(1), rec.get(2)) else {
                    continue;
                };
                let (Ok(t), Ok(v)) = (t.parse::<f64>(), v.parse::<f64>()) else {
                    continue;
                };
                if !t.is_finite() || !v.is_finite() {
                    continue;
                }
                let p = Point {
                    x: t,
                    mean: v,
                    sd: 0.0,
                    n: 1,
                    min: v,
                };
                match name {
                    "cpu_busy_pct" => host.push(p),
                    "side_cpu_pct" => own.push(p),
                    _ => {}
                }
            }
            for (what, mut points) in [("host CPU busy", host), ("its processes' CPU", own)] {
                if points.is_empty() {
                    continue;
                }
                points.sort_by(|a, b| a.x.total_cmp(&b.x));
                series.push(Series {
                    label: format!("{side}: {what}"),
                    points,
                });
            }
        }
        if series.is_empty() {
            continue;
        }
        let mut events: Vec<f64> = nofollow::read_beneath(&dir, std::path::Path::new("events.csv"))
            .map(|b| {
                csv::Reader::from_reader(b.as_slice())
                    .records()
                    .flatten()
                    .filter_map(|rec| rec.get(0)?.parse::<f64>().ok())
                    .filter(|t| t.is_finite())
                    .collect()
            })
            .unwrap_or_default();
        events.sort_by(f64::total_cmp);
        let end = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.x))
            .fold(0.0, f64::max);
        let shade = events
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, events.get(i + 1).copied().unwrap_or(end).max(*t)))
            .collect();
        let label = crate::report::load::run_label(r);
        let title = format!("{}: {} — CPU over time", g.name, printable(&label));
        let key = format!("{}\u{0}{}", r.pair, r.variant);
        let rows = series
            .iter()
            .map(|s| {
                let v: Vec<f64> = s.points.iter().map(|p| p.mean).collect();
                let sm = summarize(&v);
                Row {
                    label: s.label.clone(),
                    mean: sm.mean,
                    sd: sm.stddev,
                    n: sm.n,
                }
            })
            .collect();
        out.push(LineChart {
            plot: Plot {
                group: g.name.clone(),
                kind: Kind::Samples { run: r.id() },
                title: title.clone(),
                stem: format!(
                    "{}.samples.{}",
                    safe_stem(&g.name),
                    safe_stem_named(&label, &key)
                ),
                size: (0, 0),
                svg: false,
                png: false,
                no_png: None,
                rows,
                unit: "%".into(),
            },
            title,
            x_desc: "seconds since the pair started".into(),
            y_desc: "CPU (%; a side's processes: % of one CPU)".into(),
            series,
            shade,
        });
    }
    out
}

/// The parameters of `g` whose values (in its measured metrics) all read as finite
/// numbers, with 2 distinct values or more, by name.
fn numeric_params(g: &GroupRun) -> Vec<String> {
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for m in g.metrics.iter().filter(|m| !m.run.warmup) {
        for (k, v) in &m.run.params {
            values.entry(k).or_default().insert(v);
        }
    }
    values
        .into_iter()
        .filter(|(_, vs)| {
            vs.iter()
                .all(|v| v.trim().parse::<f64>().is_ok_and(f64::is_finite))
                && vs
                    .iter()
                    .filter_map(|v| v.trim().parse::<f64>().ok())
                    .map(f64::to_bits)
                    .collect::<BTreeSet<_>>()
                    .len()
                    >= 2
        })
        .map(|(k, _)| k.to_string())
        .collect()
}

/// Every line chart of the group, by metric name, unit, side, then parameter.
pub(super) fn all(g: &GroupRun) -> Vec<LineChart> {
    let params = numeric_params(g);
    if params.is_empty() {
        return Vec::new();
    }
    // (name, unit, side) -> the sides a metric has, to name the side only when both exist.
    let mut sides: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for m in g
        .metrics
        .iter()
        .filter(|m| !m.run.warmup && m.source != crate::tree::record::PAIRBENCH)
    {
        sides
            .entry((m.name.as_ref(), m.unit.as_ref()))
            .or_default()
            .insert(m.side.as_ref());
    }
    let mut out = Vec::new();
    for ((name, unit), metric_sides) in &sides {
        for side in metric_sides {
            for param in &params {
                if let Some(c) = chart(g, name, unit, side, metric_sides.len() > 1, param) {
                    out.push(c);
                }
            }
        }
    }
    out
}

fn chart(
    g: &GroupRun,
    name: &str,
    unit: &str,
    side: &str,
    name_side: bool,
    param: &str,
) -> Option<LineChart> {
    // (pair, other parameters) -> (x, value) in the order of the group's runs.
    let mut raw: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for m in g
        .metrics
        .iter()
        .filter(|m| !m.run.warmup && m.name == name && m.unit == unit && m.side == side)
    {
        let Some(x) = m
            .run
            .params
            .get(param)
            .and_then(|v| v.trim().parse::<f64>().ok())
        else {
            continue;
        };
        let others: Vec<String> = m
            .run
            .params
            .iter()
            .filter(|(k, _)| k.as_str() != param)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        raw.entry((m.run.pair.clone(), others.join(",")))
            .or_default()
            .push((x, m.value));
    }
    if raw.is_empty() {
        return None;
    }
    let series: Vec<Series> = raw
        .into_iter()
        .map(|((pair, others), mut xs)| {
            xs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut points = Vec::new();
            let mut i = 0;
            while i < xs.len() {
                let x = xs[i].0;
                let vals: Vec<f64> = xs[i..]
                    .iter()
                    .take_while(|(xx, _)| xx.total_cmp(&x).is_eq())
                    .map(|(_, v)| *v)
                    .collect();
                i += vals.len();
                let s = summarize(&vals);
                points.push(Point {
                    x,
                    mean: s.mean,
                    sd: s.stddev,
                    n: s.n,
                    min: s.min,
                });
            }
            let mut label = printable(&pair);
            if !others.is_empty() {
                label.push_str(" · ");
                label.push_str(&printable(&others));
            }
            Series { label, points }
        })
        .collect();
    let y_desc = if unit.is_empty() {
        printable(name)
    } else {
        format!("{} ({})", printable(name), printable(unit))
    };
    let side_part = if name_side {
        format!(", {side} side")
    } else {
        String::new()
    };
    let title = format!("{}: {y_desc}{side_part} by {}", g.name, printable(param));
    let key = format!("{name}\u{0}{unit}\u{0}{side}\u{0}{param}");
    let readable = if name_side {
        format!("{name}-{side}-by-{param}")
    } else {
        format!("{name}-by-{param}")
    };
    let rows = series
        .iter()
        .flat_map(|s| {
            s.points.iter().map(|p| Row {
                label: format!("{} · {}={}", s.label, printable(param), fmt_value(p.x)),
                mean: p.mean,
                sd: p.sd,
                n: p.n,
            })
        })
        .collect();
    Some(LineChart {
        plot: Plot {
            group: g.name.clone(),
            kind: Kind::Line {
                name: name.to_string(),
                unit: unit.to_string(),
                side: side.to_string(),
                param: param.to_string(),
            },
            title: title.clone(),
            stem: format!(
                "{}.line.{}",
                safe_stem(&g.name),
                safe_stem_named(&readable, &key)
            ),
            size: (0, 0),
            svg: false,
            png: false,
            no_png: None,
            rows,
            unit: unit.to_string(),
        },
        title,
        x_desc: printable(param),
        y_desc,
        series,
        shade: Vec::new(),
    })
}

/// `lo..hi` widened by `pad` of its span on each side (a span of 1 when it is empty).
fn padded(lo: f64, hi: f64, pad: f64) -> (f64, f64) {
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo - span * pad, hi + span * pad)
    }
}

impl Painter for LineChart {
    fn size(&self) -> (u32, u32) {
        (
            WIDTH,
            PLOT_H + 12 + self.series.len().max(1) as u32 * LEGEND_ROW,
        )
    }

    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let fold = |f: fn(&Point) -> f64, min: bool| {
            points().map(f).fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| if min { a.min(v) } else { a.max(v) }))
            })
        };
        let (x_lo, x_hi) = padded(
            fold(|p| p.x, true).unwrap_or(0.0),
            fold(|p| p.x, false).unwrap_or(1.0),
            0.05,
        );
        let (y_lo, y_hi) = padded(
            fold(Point::low, true).unwrap_or(0.0),
            fold(Point::high, false).unwrap_or(1.0),
            0.1,
        );
        // Data that cannot be negative keeps its axis at or above 0.
        let y_lo = if points().all(|p| p.min >= 0.0) {
            y_lo.max(0.0)
        } else {
            y_lo
        };
        let (plot_area, legend_area) = root.split_vertically(PLOT_H);
        let title = fit(&font_of(16.0), &self.title, WIDTH - 24);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(title, font_of(16.0))
            .margin(12)
            .margin_right(24)
            .x_label_area_size(44)
            .y_label_area_size(80)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .max_light_lines(0)
            .label_style(font_of(12.0))
            .x_label_formatter(&|v| fmt_value(*v))
            .y_label_formatter(&|v| fmt_value(*v))
            .x_desc(self.x_desc.clone())
            .y_desc(self.y_desc.clone())
            .axis_desc_style(font_of(13.0))
            .draw()
            .map_err(err)?;
        // Testbed events: each span shaded, from one event to the next.
        for (i, (a, b)) in self.shade.iter().enumerate() {
            let (a, b) = (&a.max(x_lo), &b.min(x_hi));
            if a >= b {
                continue;
            }
            let tint = if i % 2 == 0 {
                RGBColor(252, 233, 79).mix(0.25)
            } else {
                RGBColor(252, 175, 62).mix(0.25)
            };
            chart
                .draw_series([Rectangle::new([(*a, y_lo), (*b, y_hi)], tint.filled())])
                .map_err(err)?;
            chart
                .draw_series([PathElement::new(
                    vec![(*a, y_lo), (*a, y_hi)],
                    RGBColor(193, 125, 17).stroke_width(1),
                )])
                .map_err(err)?;
        }
        // Whisker half-width in x units: 6 pixels.
        let (px0, _) = chart.backend_coord(&(x_lo, y_lo));
        let (px1, _) = chart.backend_coord(&(x_hi, y_lo));
        let cap = (x_hi - x_lo) * 6.0 / f64::from((px1 - px0).max(1));
        for (i, s) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let line = color.stroke_width(2);
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().map(|p| (p.x, p.mean)),
                    line,
                ))
                .map_err(err)?;
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|p| Circle::new((p.x, p.mean), 3, color.filled())),
                )
                .map_err(err)?;
            for p in s.points.iter().filter(|p| p.has_error()) {
                let bar = ERROR_BAR.stroke_width(1);
                let (a, b) = (p.low(), p.high());
                chart
                    .draw_series([
                        PathElement::new(vec![(p.x, a), (p.x, b)], bar),
                        PathElement::new(vec![(p.x - cap, a), (p.x + cap, a)], bar),
                        PathElement::new(vec![(p.x - cap, b), (p.x + cap, b)], bar),
                    ])
                    .map_err(err)?;
            }
        }
        // The legend, below the plot: a line of each series' colour and its label.
        let label_font = font_of(12.0);
        let left = Pos::new(HPos::Left, VPos::Center);
        for (i, s) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let y = 6 + (i as u32 * LEGEND_ROW + LEGEND_ROW / 2) as i32;
            legend_area
                .draw(&PathElement::new(
                    vec![(24, y), (48, y)],
                    color.stroke_width(2),
                ))
                .map_err(err)?;
            legend_area
                .draw(&Text::new(
                    fit(&label_font, &s.label, WIDTH - 80),
                    (56, y),
                    text_style(12.0, &INK, left),
                ))
                .map_err(err)?;
        }
        Ok(())
    }
}
