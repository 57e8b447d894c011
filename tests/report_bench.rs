//! Plots of benchmark runs (issue 6, SPEC §8 item 4): error bars of ± one standard
//! deviation on the metric and duration bar charts, and a line chart per numeric parameter with a
//! line per pair, drawn the same way twice.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::Project;

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
    assert_eq!(
        duration.matches(" s (mean of 3) ± ").count(),
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
