//! Plots of benchmark runs (issue 6, SPEC §8 item 4): error bars of ± one standard
//! deviation on the metric and duration bar charts, and a line chart per numeric parameter with a
//! line per pair, drawn the same way twice; text that fits, axes that do not go below
//! zero for data that cannot, and a decimal point on the baseline in PNGs.

mod common;
#[path = "common/report_tools.rs"]
mod report_tools;

use std::collections::BTreeMap;
use std::path::Path;

use common::Project;
use report_tools::read_png;

const CLIENT: &str = "cl ient";

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The one file of `plots/` whose name contains every part of `parts` and ends in `ext`.
fn plot_file(plots: &Path, parts: &[&str], ext: &str) -> String {
    let found: Vec<String> = files_in(plots)
        .into_iter()
        .filter(|f| f.ends_with(ext) && parts.iter().all(|p| f.contains(p)))
        .collect();
    assert_eq!(found.len(), 1, "{parts:?} {ext}: {:#?}", files_in(plots));
    found[0].clone()
}

/// The value of attribute `name` in one SVG element's text.
fn attr<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = element[start..].find('"')?;
    Some(&element[start..start + len])
}

/// Every `<tag .../>` element of an SVG whose `stroke` (or `fill`) is `color`.
fn elements<'a>(svg: &'a str, tag: &str, key: &str, color: &str) -> Vec<&'a str> {
    svg.match_indices(&format!("<{tag} "))
        .filter_map(|(i, _)| svg[i..].find("/>").map(|end| &svg[i..i + end]))
        .filter(|e| attr(e, key) == Some(color))
        .collect()
}

/// The points of a `<polyline>`.
fn points(polyline: &str) -> Vec<(i32, i32)> {
    attr(polyline, "points")
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').expect("x,y");
            (x.parse().expect("x"), y.parse().expect("y"))
        })
        .collect()
}

/// A project with one group, two pairs reporting `latency` = SIZE × factor + repetition.
fn bench_project() -> Project {
    let p = Project::new();
    p.bash(
        &format!("bench/local/{CLIENT}"),
        "report_metric latency $((PAIRBENCH_PARAM_SIZE * 10 + PAIRBENCH_REPETITION)) ms",
    );
    p.bash(
        "bench/local/slow",
        "report_metric latency $((PAIRBENCH_PARAM_SIZE * 20 + PAIRBENCH_REPETITION)) ms",
    );
    p.bash("bench/remote/srv", "exit 0");
    p
}

fn plot_bytes(plots: &Path) -> BTreeMap<String, Vec<u8>> {
    files_in(plots)
        .into_iter()
        .filter(|f| f.ends_with(".svg"))
        .map(|f| {
            let bytes = std::fs::read(plots.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

#[test]
fn repetitions_give_error_bars_and_a_numeric_parameter_a_line_chart_drawn_the_same_twice() {
    let p = bench_project();
    p.run(&[
        "run",
        "--progress",
        "never",
        "--repeat",
        "3",
        "--param",
        "SIZE=1,2,4",
    ])
    .expect_code(0);
    let tag_dir = p.latest();
    let plots = tag_dir.join("plots");

    // The bar chart: a bar per pair and SIZE, each the mean of 3 repetitions (SIZE × 10
    // + 1, 2, 3: mean SIZE × 10 + 2, standard deviation 1), with an error bar.
    let bars_name = plot_file(&plots, &["bench", ".metric.latency"], ".svg");
    let bars = read(&plots.join(&bars_name));
    for want in [
        "12 ms (mean of 3) ± 1",
        "42 ms (mean of 3) ± 1",
        "82 ms (mean of 3) ± 1",
    ] {
        assert!(bars.contains(want), "no '{want}' in {bars_name}:\n{bars}");
    }
    // Each error bar is a black line across the end of its bar, from mean - sd to
    // mean + sd, with a cap at each end: 6 bars, 18 lines.
    let error_lines = elements(&bars, "polyline", "stroke", "#111111");
    assert_eq!(error_lines.len(), 18, "{bars}");
    let rects = elements(&bars, "rect", "fill", "#3465A4");
    assert_eq!(rects.len(), 6, "a bar per pair and SIZE: {bars}");
    for (k, rect) in rects.iter().enumerate() {
        let x: i32 = attr(rect, "x").unwrap().parse().unwrap();
        let w: i32 = attr(rect, "width").unwrap().parse().unwrap();
        let end = x + w;
        let across = points(error_lines[3 * k]);
        assert_eq!(across.len(), 2, "{}", error_lines[3 * k]);
        let ((x0, y0), (x1, y1)) = (across[0], across[1]);
        assert_eq!(y0, y1, "horizontal: {}", error_lines[3 * k]);
        assert!(x1 - x0 >= 4, "± 1 ms is visible: {}", error_lines[3 * k]);
        assert!(
            ((x0 + x1) / 2 - end).abs() <= 1,
            "centred on the bar's end {end}: {}",
            error_lines[3 * k]
        );
    }

    // The duration chart: a bar per pair and SIZE, the mean of 3 SUCCESS runs, with an
    // error bar each.
    let duration_name = plot_file(&plots, &["bench", ".duration"], ".svg");
    plot_file(&plots, &["bench", ".duration"], ".png");
    let duration = read(&plots.join(&duration_name));
    assert!(duration.contains("duration (s)"), "{duration}");
    // Its values are below a second: the axis reads in ms, not in exponents of seconds.
    assert!(duration.contains("duration (ms)"), "{duration}");
    let exponent = |w: &[u8]| w[0].is_ascii_digit() && &w[1..3] == b"e-" && w[3].is_ascii_digit();
    assert!(
        !duration.as_bytes().windows(4).any(exponent),
        "a tick in exponent form: {duration}"
    );
    assert_eq!(
        duration.matches(" ms (mean of 3) ± ").count(),
        6,
        "{duration}"
    );
    assert_eq!(
        elements(&duration, "polyline", "stroke", "#111111").len(),
        18,
        "{duration}"
    );

    // The line chart for SIZE: a line per pair, through 3 points left to right and
    // rising (latency grows with SIZE), the pairs named in the legend, an error bar at
    // every point (3 lines each).
    let line_name = plot_file(&plots, &["bench", ".line.latency-by-SIZE"], ".svg");
    plot_file(&plots, &["bench", ".line.latency-by-SIZE"], ".png");
    let line = read(&plots.join(&line_name));
    for pair in [format!("{CLIENT}_x_srv"), "slow_x_srv".to_string()] {
        assert!(line.contains(&pair), "legend has {pair}: {line}");
    }
    assert!(line.contains("latency (ms)"), "{line}");
    for color in ["#3465A4", "#F57900"] {
        let series: Vec<Vec<(i32, i32)>> = elements(&line, "polyline", "stroke", color)
            .into_iter()
            .map(points)
            .filter(|pts| pts.len() == 3)
            .collect();
        assert_eq!(series.len(), 1, "one line of {color}: {line}");
        let pts = &series[0];
        assert!(pts[0].0 < pts[1].0 && pts[1].0 < pts[2].0, "{pts:?}");
        // SVG y grows downwards.
        assert!(pts[0].1 > pts[1].1 && pts[1].1 > pts[2].1, "{pts:?}");
    }
    assert_eq!(
        elements(&line, "polyline", "stroke", "#111111").len(),
        2 * 3 * 3,
        "an error bar per point: {line}"
    );

    // index.html shows both charts.
    let html = read(&tag_dir.join("index.html"));
    for name in [&bars_name, &line_name, &duration_name] {
        assert!(
            html.contains(&format!("src=\"plots/{name}\"")),
            "{name} in index.html"
        );
    }

    // The same tree draws the same bytes.
    let first = plot_bytes(&plots);
    p.run(&["report"]).expect_code(0);
    let second = plot_bytes(&plots);
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &first {
        assert!(
            bytes == &second[name],
            "{name} differs after `pairbench report`"
        );
    }
}

#[test]
fn only_numeric_parameters_get_line_charts_and_the_others_label_the_lines() {
    let p = bench_project();
    p.run(&[
        "run",
        "--progress",
        "never",
        "--param",
        "SIZE=1,2",
        "--param",
        "MODE=x,y",
    ])
    .expect_code(0);
    let plots = p.latest().join("plots");
    let line_name = plot_file(&plots, &["bench", ".line.latency-by-SIZE"], ".svg");
    assert!(
        !files_in(&plots).iter().any(|f| f.contains("by-MODE")),
        "MODE is not a number: {:#?}",
        files_in(&plots)
    );
    let line = read(&plots.join(&line_name));
    for label in [
        format!("{CLIENT}_x_srv · MODE=x"),
        format!("{CLIENT}_x_srv · MODE=y"),
        "slow_x_srv · MODE=y".to_string(),
    ] {
        assert!(line.contains(&label), "legend has '{label}': {line}");
    }
    // One run per point: no error bars.
    assert!(
        elements(&line, "polyline", "stroke", "#111111").is_empty(),
        "{line}"
    );
    let bars = read(&plots.join(plot_file(&plots, &[".metric.latency"], ".svg")));
    assert!(
        elements(&bars, "polyline", "stroke", "#111111").is_empty(),
        "{bars}"
    );
    assert!(!bars.contains("mean of"), "{bars}");
    // One run per bar: the matrix shows the durations, no duration chart.
    assert!(
        !files_in(&plots).iter().any(|f| f.contains(".duration")),
        "{:#?}",
        files_in(&plots)
    );
}

/// The PNG's pixels that are the bar colour, as (x0, y0, x1, y1), first bar from the top.
fn first_bar(img: &report_tools::Image) -> (u32, u32, u32, u32) {
    let mut found: Option<(u32, u32, u32, u32)> = None;
    for y in 0..img.height {
        for x in 0..img.width {
            if img.pixel(x, y)[..3] == [52, 101, 164] {
                found = Some(match found {
                    None => (x, y, x, y),
                    // Only the first run of bar rows (the first bar).
                    Some((x0, y0, x1, y1)) if y <= y1 + 1 => (x0.min(x), y0, x1.max(x), y),
                    Some(f) => f,
                });
            }
        }
    }
    found.expect("a bar in the PNG")
}

/// The lowest inked row of each glyph (a run of columns with ink) right of `x` in rows
/// `y0..=y1`.
fn glyph_bottoms(img: &report_tools::Image, x: u32, y0: u32, y1: u32) -> Vec<u32> {
    let dark = |x: u32, y: u32| {
        let [r, g, b, _] = img.pixel(x, y);
        u32::from(r) + u32::from(g) + u32::from(b) < 3 * 185
    };
    let mut bottoms = Vec::new();
    let mut x = x;
    while x < img.width {
        if (y0..=y1).any(|y| dark(x, y)) {
            let mut bottom = 0;
            while x < img.width && (y0..=y1).any(|y| dark(x, y)) {
                bottom = bottom.max((y0..=y1).rev().find(|&y| dark(x, y)).unwrap());
                x += 1;
            }
            bottoms.push(bottom);
        }
        x += 1;
    }
    bottoms
}

#[test]
fn chart_text_fits_axes_of_non_negative_data_start_at_zero_and_equal_values_have_no_spread() {
    let p = Project::new();
    p.bash(
        "g/local/client",
        "case $PAIRBENCH_REPETITION in 1) big=1 skew=1;; 2) big=50000 skew=1;; *) big=25125 skew=100;; esac\n\
         report_metric big \"$big\" requests/second\n\
         report_metric skewed \"$skew\" ms\n\
         report_metric same 460.6 ms",
    );
    p.bash("g/remote/srv", "exit 0");
    p.run(&["run", "--progress", "never", "--repeat", "3"])
        .expect_code(0);
    let plots = p.latest().join("plots");

    // Identical values: "± 0", not a rounding error like "± 6.962e-14".
    let same = read(&plots.join(plot_file(&plots, &[".metric.same"], ".svg")));
    assert!(
        same.contains("460.6 ms (mean of 3) ± 0 ms\n</text>"),
        "{same}"
    );

    // 1, 1, 100 ms: mean 34 ± 57, but no value is negative, so neither is the axis: no
    // tick label below 0, and the error bar stops at the axis.
    let skewed = read(&plots.join(plot_file(&plots, &[".metric.skewed"], ".svg")));
    assert!(skewed.contains("34 ms (mean of 3) ± 57.16"), "{skewed}");
    assert!(!skewed.contains(">-"), "a negative tick label: {skewed}");
    let bar = elements(&skewed, "rect", "fill", "#3465A4")[0];
    let bar_x: i32 = attr(bar, "x").unwrap().parse().unwrap();
    let across = points(elements(&skewed, "polyline", "stroke", "#111111")[0]);
    assert!(
        across[0].0 >= bar_x,
        "{across:?} starts left of the axis at {bar_x}"
    );

    // "25042 requests/second (mean of 3) ± 25000 requests/second": all of it inside the PNG, whose
    // last columns (the chart's right margin) hold no ink.
    let big = read_png(&plots.join(plot_file(&plots, &[".metric.big"], ".png")));
    let margin = big.dark_pixels(big.width - 12, 0, big.width, big.height);
    assert_eq!(margin, 0, "text runs into the right edge of the chart");
    let svg = read(&plots.join(plot_file(&plots, &[".metric.big"], ".svg")));
    assert!(
        svg.contains("(mean of 3) ± 25000 requests/second\n</text>"),
        "{svg}"
    );

    // In the PNG the decimal point of "460.6" sits on the digits' baseline.
    let png = read_png(&plots.join(plot_file(&plots, &[".metric.same"], ".png")));
    let (_, y0, x1, y1) = first_bar(&png);
    let bottoms = glyph_bottoms(&png, x1 + 3, y0.saturating_sub(3), y1 + 3);
    assert!(bottoms.len() >= 5, "{bottoms:?}");
    assert!(
        bottoms[..5].iter().all(|&b| b == bottoms[0]),
        "bottoms of 4, 6, 0, ., 6: {:?}",
        &bottoms[..5]
    );
}
