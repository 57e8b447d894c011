//! `plots/`, drawn by pairbench with plotters as SVG and PNG: per group a local × remote
//! matrix (each cell coloured by status, with the pair's duration), and per group and
//! metric a bar chart with a bar per pair (and side), the unit on the value axis, the
//! mean of several runs with an error bar of ± one standard deviation; and per numeric
//! parameter a line chart ([`lines`]).
//!
//! File names come from [`safe_stem`], so no group or metric name can leave `plots/`.
//! Drawing is deterministic (same tree, same SVG bytes). PNG text needs the embedded font
//! ([`font`]); very large plots get an SVG only (see [`MAX_PNG_PIXELS`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rayon::prelude::*;

mod lines;
mod png;

use super::font::{self, FAMILY};
use super::load::{GroupRun, Run};
use super::names::{ellipsize, printable, safe_stem};
use super::{fmt_duration, fmt_value, fmt_with_unit, group_counts_line, smaller_unit};
use crate::stats::{params_key, summarize};
use crate::tree::Status;

/// Plots with more pixels than this get no PNG, only an SVG: encoding them would cost
/// more than the rest of the report, and no one reads such a bitmap (about 4000 × 3000).
pub const MAX_PNG_PIXELS: u64 = 12_000_000;

/// What a plot shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Matrix,
    Metric {
        name: String,
        unit: String,
    },
    /// The durations of a group's measured SUCCESS runs, a bar per pair.
    Duration,
    /// The CPU seconds of both sides' processes, a bar per pair and side.
    Cpu,
    /// The time series of one run's samples (`--sample`), both sides on one axis.
    Samples {
        run: String,
    },
    /// A metric's mean (of one side) against a numeric parameter, a line per pair.
    Line {
        name: String,
        unit: String,
        side: String,
        param: String,
    },
}

/// One plot of the report.
#[derive(Debug, Clone)]
pub struct Plot {
    pub group: String,
    pub kind: Kind,
    pub title: String,
    /// File name without extension, inside plots/.
    pub stem: String,
    pub size: (u32, u32),
    pub svg: bool,
    pub png: bool,
    /// Why there is no PNG, when there is none.
    pub no_png: Option<String>,
    /// The numbers the plot shows, for a table beside it (empty for a matrix).
    pub rows: Vec<Row>,
    /// The unit of those numbers.
    pub unit: String,
}

/// One number a chart shows: a bar, or a point of a line.
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub mean: f64,
    /// Sample standard deviation (0 for a single value).
    pub sd: f64,
    pub n: usize,
}

impl Plot {
    pub fn svg_name(&self) -> String {
        format!("{}.svg", self.stem)
    }
    pub fn png_name(&self) -> String {
        format!("{}.png", self.stem)
    }
}

const GREEN: RGBColor = RGBColor(46, 158, 68);
const RED: RGBColor = RGBColor(214, 69, 65);
const AMBER: RGBColor = RGBColor(240, 160, 32);
const GREY: RGBColor = RGBColor(221, 221, 221);
const INK: RGBColor = RGBColor(34, 34, 34);
const LOCAL_BAR: RGBColor = RGBColor(52, 101, 164);
const REMOTE_BAR: RGBColor = RGBColor(245, 121, 0);

/// Fill and text colour of a status (`None`: a pair that has no result).
pub fn status_colors(s: Option<Status>) -> (RGBColor, RGBColor) {
    match s {
        Some(Status::Success) => (GREEN, WHITE),
        Some(Status::Failed) => (RED, WHITE),
        Some(Status::Error) => (AMBER, INK),
        None => (GREY, INK),
    }
}

/// Something that can be drawn on any plotters backend.
trait Painter: Sync {
    fn size(&self) -> (u32, u32);
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn font_of(size: f64) -> FontDesc<'static> {
    (FAMILY, size).into_font()
}

fn text_style(size: f64, color: &RGBColor, pos: Pos) -> TextStyle<'static> {
    font_of(size).color(color).pos(pos)
}

/// Width in pixels of `text` in `font` (0 when it cannot be measured).
fn text_width(font: &FontDesc, text: &str) -> u32 {
    font.box_size(text).map(|(w, _)| w).unwrap_or(0)
}

/// `text` cut (with an ellipsis) to fit `max_px`.
fn fit(font: &FontDesc, text: &str, max_px: u32) -> String {
    let text = printable(text);
    if text_width(font, &text) <= max_px {
        return text;
    }
    let n = text.chars().count();
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if text_width(font, &ellipsize(&text, mid)) <= max_px {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        "…".to_string()
    } else {
        ellipsize(&text, lo)
    }
}

/// Draw every plot of `run` into `dir` (which exists). Returns the plots in a stable
/// order (by group; the matrix, the durations when runs repeat, then metrics by name,
/// then line charts) and warnings.
pub fn draw_all(run: &Run, dir: &Path) -> (Vec<Plot>, Vec<String>) {
    if let Err(e) = font::ensure() {
        return (Vec::new(), vec![format!("no plots drawn: {e}")]);
    }
    enum Job {
        Matrix(Matrix),
        Chart(Chart),
        Line(lines::LineChart),
    }
    // Only a run with --sample has samples to look for (unknown options: look).
    let sampled = run
        .manifest
        .options
        .get("sample")
        .is_none_or(|v| !v.is_null());
    let mut jobs = Vec::new();
    for g in &run.groups {
        jobs.push(Job::Matrix(Matrix::new(g)));
        jobs.extend(Chart::duration(g).map(Job::Chart));
        jobs.extend(Chart::cpu(g).map(Job::Chart));
        jobs.extend(Chart::all(g).into_iter().map(Job::Chart));
        jobs.extend(lines::all(g).into_iter().map(Job::Line));
        if sampled {
            jobs.extend(lines::samples(g, &run.dir).into_iter().map(Job::Line));
        }
    }
    let done: Vec<(Plot, Option<String>)> = jobs
        .par_iter()
        .map(|job| match job {
            Job::Matrix(m) => output(m, m.plot.clone(), dir),
            Job::Chart(c) => output(c, c.plot.clone(), dir),
            Job::Line(c) => output(c, c.plot.clone(), dir),
        })
        .collect();
    let mut plots = Vec::new();
    let mut warnings = Vec::new();
    for (p, w) in done {
        warnings.extend(w);
        plots.push(p);
    }
    (plots, warnings)
}

/// Write the SVG and, when small enough, the PNG of one plot.
fn output<P: Painter>(painter: &P, mut plot: Plot, dir: &Path) -> (Plot, Option<String>) {
    let (w, h) = painter.size();
    plot.size = (w, h);
    let mut problems = Vec::new();
    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        painter
            .paint(&root)
            .and_then(|()| root.present().map_err(err))
    };
    match drawn
        .and_then(|()| std::fs::write(dir.join(plot.svg_name()), svg.as_bytes()).map_err(err))
    {
        Ok(()) => plot.svg = true,
        Err(e) => problems.push(format!("SVG: {e}")),
    }
    if u64::from(w) * u64::from(h) > MAX_PNG_PIXELS {
        plot.no_png = Some(format!(
            "no PNG: the plot is {w} × {h} pixels, larger than pairbench draws as PNG; see the SVG"
        ));
    } else {
        let written = png::pixels(w as usize * h as usize * 3)
            .map_err(err)
            .and_then(|mut rgb| {
                let drawn = match png::Png::new(BitMapBackend::with_buffer(&mut rgb, (w, h))) {
                    Some(backend) => {
                        let root = backend.into_drawing_area();
                        painter
                            .paint(&root)
                            .and_then(|()| root.present().map_err(err))
                    }
                    None => Err("the embedded font cannot be read".to_string()),
                };
                drawn.and_then(|()| png::write(&dir.join(plot.png_name()), &rgb, (w, h)))
            });
        match written {
            Ok(()) => plot.png = true,
            Err(e) => {
                plot.no_png = Some(format!("no PNG: {e}"));
                problems.push(format!("PNG: {e}"));
            }
        }
    }
    let warning = (!problems.is_empty()).then(|| {
        format!(
            "plot '{}' of group '{}' could not be drawn fully ({})",
            plot.title,
            plot.group,
            problems.join("; ")
        )
    });
    (plot, warning)
}

// ---------------------------------------------------------------------------------------
// The local × remote matrix.

const CELL_W: u32 = 124;
const CELL_H: u32 = 44;
const MARGIN: u32 = 12;
const TITLE_H: u32 = 34;
const HEAD_H: u32 = 40;
const LEGEND_H: u32 = 36;

const LEGEND_ITEMS: [(Option<Status>, &str); 4] = [
    (Some(Status::Success), "SUCCESS"),
    (Some(Status::Failed), "FAILED"),
    (Some(Status::Error), "ERROR"),
    (None, "not run"),
];

/// What a matrix cell shows.
#[derive(Clone, Copy)]
struct CellView {
    status: Status,
    mean_s: f64,
    runs: usize,
    successes: usize,
}

struct Matrix {
    plot: Plot,
    title: String,
    locals: Vec<String>,
    remotes: Vec<String>,
    /// Row-major cells.
    cells: Vec<Option<CellView>>,
    /// Row-major: was the pair planned (a planned pair without a result did not run)?
    planned: Vec<bool>,
    legend: String,
    row_head_w: u32,
    legend_w: u32,
}

impl Matrix {
    fn new(g: &GroupRun) -> Matrix {
        let head = font_of(13.0);
        let row_head_w = g
            .locals
            .iter()
            .map(|l| text_width(&head, &printable(l)) + 16)
            .max()
            .unwrap_or(0)
            .clamp(90, 320);
        let mut cells = Vec::with_capacity(g.locals.len() * g.remotes.len());
        let mut planned = Vec::with_capacity(cells.capacity());
        for l in &g.locals {
            for r in &g.remotes {
                planned.push(g.planned(l, r));
                cells.push(g.cell(l, r).map(|c| CellView {
                    status: c.status,
                    mean_s: c.mean_s,
                    runs: c.runs.len(),
                    successes: c.successes,
                }));
            }
        }
        let title = format!("{}: local × remote", g.name);
        let legend = group_counts_line(g);
        let small = font_of(12.0);
        let legend_w = LEGEND_ITEMS
            .iter()
            .map(|(_, name)| 34 + text_width(&small, name))
            .sum::<u32>()
            + 10
            + text_width(&small, &legend);
        Matrix {
            plot: Plot {
                group: g.name.clone(),
                kind: Kind::Matrix,
                title: title.clone(),
                stem: format!("{}.matrix", safe_stem(&g.name)),
                size: (0, 0),
                svg: false,
                png: false,
                no_png: None,
                rows: Vec::new(),
                unit: String::new(),
            },
            title,
            locals: g.locals.clone(),
            remotes: g.remotes.clone(),
            cells,
            planned,
            legend,
            row_head_w,
            legend_w,
        }
    }
}

impl Painter for Matrix {
    fn size(&self) -> (u32, u32) {
        let cols = self.remotes.len().max(1) as u32;
        let rows = self.locals.len().max(1) as u32;
        let w = (2 * MARGIN + self.row_head_w + cols * CELL_W).max(2 * MARGIN + self.legend_w);
        let h = 2 * MARGIN + TITLE_H + HEAD_H + rows * CELL_H + LEGEND_H;
        (w, h)
    }

    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, _) = self.size();
        root.fill(&WHITE).map_err(err)?;
        let left = Pos::new(HPos::Left, VPos::Center);
        let center = Pos::new(HPos::Center, VPos::Center);
        let title_font = font_of(18.0);
        let title = fit(&title_font, &self.title, w - 2 * MARGIN);
        root.draw(&Text::new(
            title,
            (MARGIN as i32, (MARGIN + TITLE_H / 2) as i32),
            text_style(18.0, &INK, left),
        ))
        .map_err(err)?;
        let x0 = (MARGIN + self.row_head_w) as i32;
        let y0 = (MARGIN + TITLE_H + HEAD_H) as i32;
        let head = font_of(13.0);
        // Corner: what the axes are.
        root.draw(&Text::new(
            "local \\ remote",
            (MARGIN as i32, y0 - (HEAD_H / 2) as i32),
            text_style(12.0, &RGBColor(110, 110, 110), left),
        ))
        .map_err(err)?;
        for (j, r) in self.remotes.iter().enumerate() {
            let cx = x0 + (j as u32 * CELL_W + CELL_W / 2) as i32;
            root.draw(&Text::new(
                fit(&head, r, CELL_W - 8),
                (cx, y0 - (HEAD_H / 2) as i32),
                text_style(13.0, &INK, center),
            ))
            .map_err(err)?;
        }
        let cell_font = font_of(12.0);
        let cols = self.remotes.len();
        for (i, l) in self.locals.iter().enumerate() {
            let y = y0 + (i as u32 * CELL_H) as i32;
            root.draw(&Text::new(
                fit(&head, l, self.row_head_w - 12),
                (MARGIN as i32, y + (CELL_H / 2) as i32),
                text_style(13.0, &INK, left),
            ))
            .map_err(err)?;
            for j in 0..cols {
                let x = x0 + (j as u32 * CELL_W) as i32;
                let cell = self.cells.get(i * cols + j).copied().flatten();
                let planned = self.planned.get(i * cols + j).copied().unwrap_or(true);
                let (fill, ink) = match cell {
                    None if !planned => (WHITE, RGBColor(153, 153, 153)),
                    _ => status_colors(cell.map(|c| c.status)),
                };
                root.draw(&Rectangle::new(
                    [
                        (x + 1, y + 1),
                        (x + CELL_W as i32 - 1, y + CELL_H as i32 - 1),
                    ],
                    fill.filled(),
                ))
                .map_err(err)?;
                let (line1, line2) = match cell {
                    Some(c) if c.runs > 1 => (
                        format!("{} {}/{}", c.status, c.successes, c.runs),
                        format!("mean {}", fmt_duration(c.mean_s)),
                    ),
                    Some(c) => (c.status.marker().to_string(), fmt_duration(c.mean_s)),
                    None if planned => ("not run".to_string(), String::new()),
                    None => ("—".to_string(), String::new()),
                };
                let cx = x + (CELL_W / 2) as i32;
                root.draw(&Text::new(
                    fit(&cell_font, &line1, CELL_W - 8),
                    (cx, y + (CELL_H / 2) as i32 - 8),
                    text_style(12.0, &ink, center),
                ))
                .map_err(err)?;
                if !line2.is_empty() {
                    root.draw(&Text::new(
                        fit(&cell_font, &line2, CELL_W - 8),
                        (cx, y + (CELL_H / 2) as i32 + 9),
                        text_style(12.0, &ink, center),
                    ))
                    .map_err(err)?;
                }
            }
        }
        // Legend: the colours and the counts.
        let ly = y0 + (self.locals.len().max(1) as u32 * CELL_H + LEGEND_H / 2) as i32;
        let mut lx = MARGIN as i32;
        for (s, name) in LEGEND_ITEMS {
            let (fill, _) = status_colors(s);
            root.draw(&Rectangle::new(
                [(lx, ly - 6), (lx + 12, ly + 6)],
                fill.filled(),
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                name,
                (lx + 16, ly),
                text_style(12.0, &INK, left),
            ))
            .map_err(err)?;
            lx += 34 + text_width(&cell_font, name) as i32;
        }
        root.draw(&Text::new(
            self.legend.clone(),
            (lx + 10, ly),
            text_style(12.0, &INK, left),
        ))
        .map_err(err)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// A metric chart: a horizontal bar per pair (and side).

const BAR_H: u32 = 24;
/// A bar chart shows at most this many bars. A larger one (a group of thousands of
/// pairs, whose chart would be hundreds of thousands of pixels tall) shows the pairs and
/// parameter sets with the highest values, and its title says how many of how many.
pub const MAX_BARS: usize = 100;

/// The values of a chart's bars (a bar per pair, parameters and side).
type BarValues = Vec<((String, String, bool), Vec<f64>)>;

/// At most `max` bars of `values`, in their order: those of the pairs and parameter sets
/// (both sides' bars together) whose highest mean is highest. With some left out, how
/// many pairs and parameter sets are kept, of how many.
fn keep_highest(values: BarValues, max: usize) -> (BarValues, Option<(usize, usize)>) {
    if values.len() <= max {
        return (values, None);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    // (pair, parameters) -> its highest mean and its number of bars
    let mut of: HashMap<(&str, &str), (f64, usize)> = HashMap::new();
    for ((pair, params, _), v) in &values {
        let e = of.entry((pair, params)).or_insert((f64::NEG_INFINITY, 0));
        e.0 = e.0.max(mean(v));
        e.1 += 1;
    }
    let total = of.len();
    let mut ranked: Vec<_> = of.into_iter().collect();
    ranked.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
    let mut bars = 0;
    let kept: HashSet<(&str, &str)> = ranked
        .into_iter()
        .take_while(|(_, (_, n))| {
            bars += n;
            bars <= max
        })
        .map(|(key, _)| key)
        .collect();
    let n = kept.len();
    let keep: Vec<bool> = values
        .iter()
        .map(|((pair, params, _), _)| kept.contains(&(pair.as_str(), params.as_str())))
        .collect();
    let values = values
        .into_iter()
        .zip(keep)
        .filter_map(|(v, keep)| keep.then_some(v))
        .collect();
    (values, Some((n, total)))
}
/// The colour of error bars (mean ± one standard deviation).
pub const ERROR_BAR: RGBColor = RGBColor(17, 17, 17);
const CHART_W: u32 = 900;

struct Bar {
    label: String,
    /// The mean of the measured values.
    value: f64,
    /// Their sample standard deviation (0 for a single value).
    sd: f64,
    /// The smallest of them.
    min: f64,
    remote: bool,
    n: usize,
    /// The text beside the bar (value, unit, mean of n ± sd) and its width in pixels.
    text: String,
    text_w: u32,
}

/// The size of the text beside each bar.
const VALUE_FONT: f64 = 11.0;

impl Bar {
    fn has_error(&self) -> bool {
        self.n >= 2 && self.sd.is_finite()
    }

    /// The lowest and highest value the bar reaches (its error bar included; not below
    /// 0 when `floor` is set: data that cannot be negative).
    fn extent(&self, floor: bool) -> (f64, f64) {
        let (lo, hi) = if self.has_error() {
            (self.value - self.sd, self.value + self.sd)
        } else {
            (self.value, self.value)
        };
        (if floor { lo.max(0.0) } else { lo }, hi)
    }
}

/// The value axis `lo..hi` of bars in a plot area `width` pixels wide: it holds every
/// bar and error bar, starts at 0 when no value is negative (so error bars never push
/// the axis below zero for data that cannot be negative), and leaves room for the text
/// beside each bar (right of a bar that reaches right, left of one that reaches left).
fn value_axis(bars: &[Bar], width: u32) -> (f64, f64) {
    let floor = bars.iter().all(|b| b.min >= 0.0);
    let (mut lo, mut hi) = bars.iter().fold((0.0f64, 0.0f64), |(lo, hi), b| {
        let (a, z) = b.extent(floor);
        (lo.min(a), hi.max(z))
    });
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.03;
    hi += pad;
    if !floor {
        lo -= pad;
    }
    let w = f64::from(width.max(1));
    // Each pass makes room for the widest overflow; a few passes settle it.
    for _ in 0..4 {
        for b in bars {
            // A text may take at most 80% of the width (the chart is made wide enough).
            let need = (f64::from(b.text_w + 8) / w).min(0.8);
            let (a, z) = b.extent(floor);
            if b.value < 0.0 {
                // (a - lo) / (hi - lo) >= need
                lo = lo.min((a - need * hi) / (1.0 - need));
            } else {
                // (z - lo) / (hi - lo) <= 1 - need
                hi = hi.max(lo + (z - lo) / (1.0 - need));
            }
        }
    }
    (lo, hi)
}

struct Chart {
    plot: Plot,
    title: String,
    axis: String,
    bars: Vec<Bar>,
    label_w: u32,
    both_sides: bool,
}

impl Chart {
    /// A chart per (metric name, unit) of the group, sorted by name then unit.
    fn all(g: &GroupRun) -> Vec<Chart> {
        // (name, unit) -> bars (pair, parameters, side) in the order of the group's runs,
        // each with its values; warm-ups left out.
        let mut by_metric: BTreeMap<(String, String), BarValues> = BTreeMap::new();
        let mut index: HashMap<(String, String, String, String, bool), usize> = HashMap::new();
        // pairbench's own measurements have their own chart (Chart::cpu).
        // (pairbench's CPU per unit of work is charted beside what the scripts reported).
        for m in g.metrics.iter().filter(|m| {
            !m.run.warmup
                && (m.source != crate::tree::record::PAIRBENCH
                    || m.name.starts_with(crate::tree::record::CPU_PER))
        }) {
            let params = params_key(&m.run.params);
            let remote = m.side == "remote";
            let bars = by_metric
                .entry((m.name.to_string(), m.unit.to_string()))
                .or_default();
            let key = (
                m.name.to_string(),
                m.unit.to_string(),
                m.run.pair.clone(),
                params.clone(),
                remote,
            );
            let i = *index.entry(key).or_insert_with(|| {
                bars.push(((m.run.pair.clone(), params, remote), Vec::new()));
                bars.len() - 1
            });
            bars[i].1.push(m.value);
        }
        by_metric
            .into_iter()
            .map(|((name, unit), values)| {
                let key = format!("{name}\u{0}{unit}");
                let stem = format!(
                    "{}.metric.{}",
                    safe_stem(&g.name),
                    safe_stem_named(&name, &key)
                );
                let kind = Kind::Metric {
                    name: name.clone(),
                    unit: unit.clone(),
                };
                Chart::build(g, &name, unit, values, kind, stem)
            })
            .collect()
    }

    /// CPU per pair: the user + system seconds of each side's processes
    /// (docs/resources.md), a bar per pair, parameter set and side, client and server
    /// side by side.
    fn cpu(g: &GroupRun) -> Option<Chart> {
        // (pair, params, remote) -> run (variant, attempt) -> seconds
        type Bar = (String, String, bool);
        let mut per_run: BTreeMap<Bar, BTreeMap<(String, u32), f64>> = BTreeMap::new();
        for m in g.metrics.iter().filter(|m| {
            !m.run.warmup
                && m.source == crate::tree::record::PAIRBENCH
                && (m.name == "cpu_user_s" || m.name == "cpu_sys_s")
        }) {
            let key = (
                m.run.pair.clone(),
                params_key(&m.run.params),
                m.side == "remote",
            );
            *per_run
                .entry(key)
                .or_default()
                .entry((m.run.variant.clone(), m.run.attempt))
                .or_default() += m.value;
        }
        if per_run.is_empty() {
            return None;
        }
        // In key order: each pair's local bar, then its remote bar.
        let values = per_run
            .into_iter()
            .map(|(k, runs)| (k, runs.into_values().collect()))
            .collect();
        let stem = format!("{}.cpu", safe_stem(&g.name));
        Some(Chart::build(
            g,
            "CPU (user + system)",
            "s".to_string(),
            values,
            Kind::Cpu,
            stem,
        ))
    }

    /// The chart of the durations of the group's measured SUCCESS runs, a bar per pair
    /// and parameter set, when a bar has 2 runs or more (else the matrix says it all).
    fn duration(g: &GroupRun) -> Option<Chart> {
        let mut values: BarValues = Vec::new();
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        for r in g
            .runs
            .iter()
            .filter(|r| !r.warmup && r.status == Status::Success)
        {
            let params = params_key(&r.params);
            let i = *index
                .entry((r.pair.clone(), params.clone()))
                .or_insert_with(|| {
                    values.push(((r.pair.clone(), params, false), Vec::new()));
                    values.len() - 1
                });
            values[i].1.push(r.duration_s);
        }
        if !values.iter().any(|(_, v)| v.len() >= 2) {
            return None;
        }
        let stem = format!("{}.duration", safe_stem(&g.name));
        Some(Chart::build(
            g,
            "duration",
            "s".to_string(),
            values,
            Kind::Duration,
            stem,
        ))
    }

    /// A chart of `values` (a bar per (pair, parameters, remote side) with its values).
    fn build(
        g: &GroupRun,
        name: &str,
        unit: String,
        values: BarValues,
        kind: Kind,
        stem: String,
    ) -> Chart {
        let tick = font_of(12.0);
        let both_sides =
            values.iter().any(|((_, _, r), _)| *r) && values.iter().any(|((_, _, r), _)| !*r);
        let (values, left_out) = keep_highest(values, MAX_BARS);
        let bars: Vec<Bar> = values
            .into_iter()
            .map(|((pair, params, remote), values)| {
                let summary = summarize(&values);
                let mut label = printable(&pair);
                if !params.is_empty() {
                    label.push_str(" · ");
                    label.push_str(&printable(&params));
                }
                if both_sides {
                    label.push_str(if remote { " · remote" } else { " · local" });
                }
                let mut text = fmt_with_unit(summary.mean, &unit);
                if summary.n > 1 {
                    text.push_str(&format!(
                        " (mean of {}) ± {}",
                        summary.n,
                        fmt_with_unit(summary.stddev, &unit)
                    ));
                }
                Bar {
                    label,
                    value: summary.mean,
                    sd: summary.stddev,
                    min: summary.min,
                    remote,
                    n: summary.n,
                    text_w: text_width(&font_of(VALUE_FONT), &text),
                    text,
                }
            })
            .collect();
        let label_w = bars
            .iter()
            .map(|b| text_width(&tick, &b.label) + 12)
            .max()
            .unwrap_or(0)
            .clamp(60, 360);
        let axis = if unit.is_empty() {
            printable(name)
        } else {
            format!("{} ({})", printable(name), printable(&unit))
        };
        let title = match left_out {
            Some((kept, of)) => format!(
                "{}: {}, the {kept} highest of {of} {} (all in stats.csv)",
                g.name,
                axis,
                if g.runs.iter().any(|r| !r.params.is_empty()) {
                    "pairs and parameter sets"
                } else {
                    "pairs"
                }
            ),
            None => format!("{}: {}", g.name, axis),
        };
        let rows = bars
            .iter()
            .map(|b| Row {
                label: b.label.clone(),
                mean: b.value,
                sd: b.sd,
                n: b.n,
            })
            .collect();
        Chart {
            plot: Plot {
                group: g.name.clone(),
                kind,
                title: title.clone(),
                stem,
                size: (0, 0),
                svg: false,
                png: false,
                no_png: None,
                rows,
                unit: unit.clone(),
            },
            title,
            axis,
            bars,
            label_w,
            both_sides,
        }
    }
}

/// A safe stem readable as `name` but unique for `key`.
fn safe_stem_named(name: &str, key: &str) -> String {
    let readable = safe_stem(name);
    let readable = readable
        .rsplit_once('-')
        .map_or(readable.as_str(), |(r, _)| r);
    let unique = safe_stem(key);
    let hash = unique.rsplit('-').next().unwrap_or(&unique);
    if readable.is_empty() || readable.chars().all(|c| c.is_ascii_hexdigit()) {
        hash.to_string()
    } else {
        format!("{readable}-{hash}")
    }
}

/// The factor and title of a value axis reaching `reach`: seconds below one read as ms
/// or µs ("0.4, 0.8 ms"), not as exponents; other units as they are.
fn axis_in(unit: &str, axis: &str, reach: f64) -> (f64, String) {
    match (smaller_unit(unit, reach), axis.strip_suffix(" (s)")) {
        (Some((factor, name)), Some(what)) => (factor, format!("{what} ({name})")),
        _ => (1.0, axis.to_string()),
    }
}

/// Pixels of a chart's width outside its plot area, besides the label area: the
/// margins (12 and 24) and the mesh's own edge.
const CHART_EDGES: u32 = 12 + 24 + 4;

impl Chart {
    /// The width of the plot area (where bars are) in a chart `w` pixels wide.
    fn plot_width(&self, w: u32) -> u32 {
        w.saturating_sub(self.label_w + CHART_EDGES)
    }
}

impl Painter for Chart {
    fn size(&self) -> (u32, u32) {
        let h = 60 + self.bars.len().max(1) as u32 * BAR_H + 70;
        // Wide enough that the longest text beside a bar takes at most 60% of the plot.
        let text_w = self.bars.iter().map(|b| b.text_w + 8).max().unwrap_or(0);
        let w = (CHART_W + self.label_w.saturating_sub(160))
            .max(self.label_w + CHART_EDGES + text_w * 5 / 3);
        (w, h)
    }

    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let (w, _) = self.size();
        let n = self.bars.len().max(1);
        let floor = self.bars.iter().all(|b| b.min >= 0.0);
        let (lo, hi) = value_axis(&self.bars, self.plot_width(w));
        let (scale, axis) = axis_in(&self.plot.unit, &self.axis, lo.abs().max(hi.abs()));
        let tick = font_of(12.0);
        let labels: Vec<String> = self
            .bars
            .iter()
            .map(|b| fit(&tick, &b.label, self.label_w - 10))
            .collect();
        let title = fit(&font_of(16.0), &self.title, w - 24);
        let mut chart = ChartBuilder::on(root)
            .caption(title, font_of(16.0))
            .margin(12)
            .margin_right(24)
            .x_label_area_size(44)
            .y_label_area_size(self.label_w)
            .build_cartesian_2d(lo..hi, 0f64..n as f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .light_line_style(WHITE)
            .x_label_style(font_of(12.0))
            .x_label_formatter(&|v| fmt_value(*v * scale))
            .x_desc(axis)
            .axis_desc_style(font_of(13.0))
            .draw()
            .map_err(err)?;
        // Bar i is at the top for i = 0: row n - 1 - i from the bottom.
        let row = |i: usize| (n - 1 - i) as f64;
        let bar = |remote: bool| if remote { REMOTE_BAR } else { LOCAL_BAR };
        chart
            .draw_series(self.bars.iter().enumerate().map(|(i, b)| {
                Rectangle::new(
                    [(0.0, row(i) + 0.18), (b.value, row(i) + 0.82)],
                    bar(b.remote).filled(),
                )
            }))
            .map_err(err)?;
        // Error bars: the mean ± one standard deviation, when there are 2 values or more
        // (cut at 0 for data that cannot be negative).
        for (i, b) in self.bars.iter().enumerate().filter(|(_, b)| b.has_error()) {
            let y = row(i) + 0.5;
            let (x0, x1) = b.extent(floor);
            let line = ERROR_BAR.stroke_width(2);
            chart
                .draw_series([
                    PathElement::new(vec![(x0, y), (x1, y)], line),
                    PathElement::new(vec![(x0, y - 0.22), (x0, y + 0.22)], line),
                    PathElement::new(vec![(x1, y - 0.22), (x1, y + 0.22)], line),
                ])
                .map_err(err)?;
        }
        let value_style = text_style(VALUE_FONT, &INK, Pos::new(HPos::Left, VPos::Center));
        let neg_style = text_style(VALUE_FONT, &INK, Pos::new(HPos::Right, VPos::Center));
        chart
            .draw_series(self.bars.iter().enumerate().map(|(i, b)| {
                let (style, dx, at) = if b.value < 0.0 {
                    (&neg_style, -4, b.extent(floor).0)
                } else {
                    (&value_style, 4, b.extent(floor).1)
                };
                EmptyElement::at((at, row(i) + 0.5))
                    + Text::new(b.text.clone(), (dx, 0), style.clone())
            }))
            .map_err(err)?;
        // The pairs' names, left of the axis, one per bar.
        let label_style = text_style(12.0, &INK, Pos::new(HPos::Right, VPos::Center));
        for (i, label) in labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(lo, row(i) + 0.5));
            root.draw(&Text::new(label.clone(), (x - 8, y), label_style.clone()))
                .map_err(err)?;
            root.draw(&PathElement::new(vec![(x - 5, y), (x, y)], INK))
                .map_err(err)?;
        }
        if self.both_sides {
            let (_, h) = self.size();
            let mut x = 16;
            let y = h as i32 - 14;
            for (remote, name) in [(false, "local side"), (true, "remote side")] {
                root.draw(&Rectangle::new(
                    [(x, y - 6), (x + 12, y + 6)],
                    bar(remote).filled(),
                ))
                .map_err(err)?;
                root.draw(&Text::new(
                    name,
                    (x + 16, y),
                    text_style(12.0, &INK, Pos::new(HPos::Left, VPos::Center)),
                ))
                .map_err(err)?;
                x += 110;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_axis_of_seconds_below_one_reads_in_ms_or_us() {
        let cpu = "CPU (user + system) (s)";
        assert_eq!(
            axis_in("s", cpu, 0.0016),
            (1e3, "CPU (user + system) (ms)".into())
        );
        assert_eq!(
            axis_in("s", cpu, 0.0004),
            (1e6, "CPU (user + system) (µs)".into())
        );
        assert_eq!(axis_in("s", cpu, 2.5), (1.0, cpu.into()));
        assert_eq!(axis_in("ms", "lat (ms)", 0.5), (1.0, "lat (ms)".into()));
    }

    #[test]
    fn a_chart_of_many_bars_keeps_the_highest_pairs_with_both_sides() {
        let bar = |pair: usize, remote: bool, v: f64| {
            ((format!("p{pair:03}"), String::new(), remote), vec![v, v])
        };
        // 150 pairs, two bars each; pair i's remote bar has the value i.
        let values: BarValues = (0..150)
            .flat_map(|i| [bar(i, false, 0.5), bar(i, true, i as f64)])
            .collect();
        let (kept, left_out) = keep_highest(values.clone(), 100);
        assert_eq!(left_out, Some((50, 150)));
        assert_eq!(kept.len(), 100);
        // The pairs 100..150, both bars of each, in their first order.
        assert_eq!(kept[0], bar(100, false, 0.5));
        assert_eq!(kept[1], bar(100, true, 100.0));
        assert_eq!(kept[99], bar(149, true, 149.0));
        let (all, none) = keep_highest(values[..100].to_vec(), 100);
        assert_eq!((all.len(), none), (100, None));
    }
}
