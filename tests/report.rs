//! Results people read (issue 4): run.json, metrics.csv, junit.xml, summary.md, plots/,
//! index.html and `pairbench report`, on groups whose names have spaces, quotes, `%`,
//! `#` and non-ASCII letters, so that every link, plot and file name is proven safe.

mod common;
#[path = "common/report_tools.rs"]
mod report_tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Project, processes_with_env, read_csv};
use quick_xml::events::Event;
use report_tools::{chromium, console_lines, links, percent_decode, read_png, tool};

/// A nested group whose name has quotes, spaces and non-ASCII letters.
const GROUP: &str = "we\"ird grüppe's/sub dir";
const CLIENT: &str = "c%l#ient";
const FAILER: &str = "fäil";
const SERVER: &str = "se rv\"er";
const BROKEN: &str = "brøken";

fn pair(l: &str, r: &str) -> String {
    format!("{l}_x_{r}")
}

/// Two groups: `plain` (one SUCCESS pair) and [`GROUP`] with SUCCESS, FAILED and two
/// ERROR pairs, metrics from both sides, and logs with control characters.
fn odd_project() -> Project {
    let p = Project::new();
    p.bash("plain/local/a", "echo plain-a");
    p.bash("plain/remote/b", "echo plain-b");
    p.bash(
        &format!("{GROUP}/local/{CLIENT}"),
        r#"wait_for_remote --timeout 60s >/dev/null 2>&1
report_metric latency 12.5 ms
report_metric "../../thr oughput/é" 950 req/s
printf 'client says \033[31mred\033[0m, a NUL \000 and <tag> & done\n'
echo client-stderr-line >&2"#,
    );
    p.bash(
        &format!("{GROUP}/local/{FAILER}"),
        r#"wait_for_remote --timeout 60s >/dev/null 2>&1
report_metric latency 30 ms
echo fail-stdout-line
echo fail-stderr-line >&2
exit 1"#,
    );
    p.bash(
        &format!("{GROUP}/remote/{SERVER}"),
        r#"echo "latency,7,ms" > metrics.csv
echo server-stdout-line
echo server-stderr-line >&2"#,
    );
    p.bash(
        &format!("{GROUP}/remote/{BROKEN}"),
        "echo broken-stdout-line\necho broken-stderr-line >&2\nexit 2",
    );
    p
}

fn run_odd() -> Project {
    let p = odd_project();
    p.run(&["run", "--progress", "never"]).expect_code(2);
    p
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// run.json and metrics.csv

#[test]
fn run_json_has_command_line_options_times_counts_and_hosts() {
    let p = run_odd();
    let json: serde_json::Value =
        serde_json::from_str(&read(&p.latest().join("run.json"))).unwrap();
    let cmd: Vec<&str> = json["command_line"]
        .as_array()
        .expect("command_line")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(&cmd[1..], ["run", "--progress", "never"]);
    assert!(json["options"]["timeout"].is_string(), "{json:#}");
    assert!(json["options"]["groups_dir"].is_string(), "{json:#}");
    let start = chrono::DateTime::parse_from_rfc3339(json["started_at"].as_str().unwrap()).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(json["ended_at"].as_str().unwrap()).unwrap();
    assert!(end >= start);
    assert_eq!(json["counts"]["success"], 2);
    assert_eq!(json["counts"]["failed"], 1);
    assert_eq!(json["counts"]["error"], 2);
    let hosts = json["hosts"].as_array().expect("hosts");
    assert!(hosts.iter().any(|h| h["role"] == "local"), "{json:#}");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    for h in hosts {
        assert!(
            h["kernel"].as_str().is_some_and(|k| k.starts_with("Linux")),
            "{h}"
        );
        assert!(h["cpus"].as_u64().is_some_and(|n| n > 0), "{h}");
        assert!(
            h["memory_bytes"].as_u64().is_some_and(|n| n > 1 << 20),
            "{h}"
        );
        if cpuinfo.contains("model name") {
            assert!(
                h["cpu_model"].as_str().is_some_and(|m| !m.is_empty()),
                "{h}"
            );
        }
    }
}

#[test]
fn metrics_csv_gathers_both_sides_of_every_pair() {
    let p = run_odd();
    let path = p.latest().join("metrics.csv");
    let header = read(&path).lines().next().unwrap_or_default().to_string();
    assert!(
        header.starts_with("tag,group,pair,side,name,value,unit,attempt"),
        "the SPEC §5 columns first: {header}"
    );
    let tag = p
        .latest()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // The scripts' own values (pairbench's resource metrics are in tests/resources.rs).
    let rows: Vec<(String, String, String, String, f64, String)> = read_csv(&path)
        .into_iter()
        .filter(|r| r["source"] == "script")
        .map(|r| {
            assert_eq!(r["tag"], tag);
            assert_eq!(r["attempt"], "1");
            (
                r["group"].clone(),
                r["pair"].clone(),
                r["side"].clone(),
                r["name"].clone(),
                r["value"].parse().unwrap(),
                r["unit"].clone(),
            )
        })
        .collect();
    let has = |pair: &str, side: &str, name: &str, value: f64, unit: &str| {
        rows.iter().any(|r| {
            r.0 == GROUP && r.1 == pair && r.2 == side && r.3 == name && r.4 == value && r.5 == unit
        })
    };
    let ok = pair(CLIENT, SERVER);
    assert!(has(&ok, "local", "latency", 12.5, "ms"), "{rows:#?}");
    assert!(
        has(&ok, "local", "../../thr oughput/é", 950.0, "req/s"),
        "{rows:#?}"
    );
    assert!(has(&ok, "remote", "latency", 7.0, "ms"), "{rows:#?}");
    assert!(
        has(&pair(FAILER, SERVER), "remote", "latency", 7.0, "ms"),
        "{rows:#?}"
    );
    assert!(
        has(&pair(FAILER, BROKEN), "local", "latency", 30.0, "ms"),
        "{rows:#?}"
    );
    // 2 rows per CLIENT pair + 1 per FAILER pair on the local side, 1 per SERVER pair remote.
    assert_eq!(rows.len(), 2 * 2 + 2 + 2, "{rows:#?}");
}

// ---------------------------------------------------------------------------------------
// junit.xml

#[derive(Debug, Default)]
struct Case {
    attrs: BTreeMap<String, String>,
    /// ("failure" | "error", message, type, text)
    problem: Option<(String, String, String, String)>,
    system_out: Option<String>,
}

#[derive(Debug, Default)]
struct Suite {
    attrs: BTreeMap<String, String>,
    cases: Vec<Case>,
}

fn attrs(e: &quick_xml::events::BytesStart) -> BTreeMap<String, String> {
    e.attributes()
        .map(|a| {
            let a = a.expect("attribute");
            (
                a.key.as_ref().to_string(),
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .expect("attribute value")
                    .into_owned(),
            )
        })
        .collect()
}

/// Parse junit.xml back: the root's attributes and its suites.
fn parse_junit(xml: &str) -> (BTreeMap<String, String>, Vec<Suite>) {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut root = BTreeMap::new();
    let mut suites: Vec<Suite> = Vec::new();
    let mut path: Vec<String> = Vec::new();
    loop {
        match r.read_event().expect("well-formed XML") {
            Event::Eof => break,
            ev @ (Event::Start(_) | Event::Empty(_)) => {
                let empty = matches!(ev, Event::Empty(_));
                let (Event::Start(e) | Event::Empty(e)) = ev else {
                    unreachable!()
                };
                let name = e.name().as_ref().to_string();
                let a = attrs(&e);
                let parent = path.last().map(String::as_str);
                match (parent, name.as_str()) {
                    (None, "testsuites") => root = a,
                    (Some("testsuites"), "testsuite") => suites.push(Suite {
                        attrs: a,
                        cases: Vec::new(),
                    }),
                    (Some("testsuite"), "testcase") => {
                        suites.last_mut().expect("suite").cases.push(Case {
                            attrs: a,
                            problem: None,
                            system_out: None,
                        })
                    }
                    (Some("testcase"), kind @ ("failure" | "error")) => {
                        let text = if empty {
                            String::new()
                        } else {
                            let end = e.name().as_ref().to_string();
                            let t = r.read_text(quick_xml::name::QName(&end)).expect("text");
                            let raw = t.to_string();
                            quick_xml::escape::unescape(&raw)
                                .expect("entities")
                                .into_owned()
                        };
                        let case = suites.last_mut().unwrap().cases.last_mut().unwrap();
                        assert!(case.problem.is_none(), "one problem per case");
                        case.problem = Some((
                            kind.to_string(),
                            a.get("message").cloned().unwrap_or_default(),
                            a.get("type").cloned().unwrap_or_default(),
                            text,
                        ));
                        continue;
                    }
                    (Some("testcase"), "system-out") => {
                        let end = e.name().as_ref().to_string();
                        let t = r.read_text(quick_xml::name::QName(&end)).expect("text");
                        let text = quick_xml::escape::unescape(&t)
                            .expect("entities")
                            .into_owned();
                        let case = suites.last_mut().unwrap().cases.last_mut().unwrap();
                        case.system_out = Some(text);
                        continue;
                    }
                    (p, n) => panic!("unexpected <{n}> inside {p:?}"),
                }
                if !empty {
                    path.push(name);
                }
            }
            Event::End(_) => {
                path.pop();
            }
            _ => {}
        }
    }
    (root, suites)
}

#[test]
fn junit_xml_has_a_suite_per_group_and_a_case_per_pair_with_reasons_and_log_tails() {
    let p = run_odd();
    let path = p.latest().join("junit.xml");
    let xml = read(&path);
    let (root, suites) = parse_junit(&xml);
    assert_eq!(root["tests"], "5");
    assert_eq!(root["failures"], "1");
    assert_eq!(root["errors"], "2");
    assert!(root["time"].parse::<f64>().is_ok_and(|t| t >= 0.0));
    let names: Vec<&str> = suites.iter().map(|s| s.attrs["name"].as_str()).collect();
    assert_eq!(names, ["plain", GROUP]);
    let odd = &suites[1];
    assert_eq!(odd.attrs["tests"], "4");
    assert_eq!(odd.attrs["failures"], "1");
    assert_eq!(odd.attrs["errors"], "2");
    let cases: BTreeMap<&str, &Case> = odd
        .cases
        .iter()
        .map(|c| (c.attrs["name"].as_str(), c))
        .collect();
    assert_eq!(cases.len(), 4);
    for c in cases.values() {
        assert_eq!(c.attrs["classname"], GROUP);
        assert!(
            c.attrs["time"].parse::<f64>().is_ok_and(|t| t >= 0.0),
            "{c:?}"
        );
    }
    assert!(cases[pair(CLIENT, SERVER).as_str()].problem.is_none());

    let (kind, message, ty, text) = cases[pair(FAILER, SERVER).as_str()]
        .problem
        .clone()
        .expect("a failure");
    assert_eq!((kind.as_str(), ty.as_str()), ("failure", "FAILED"));
    assert!(message.contains("local exited 1"), "{message}");
    for line in [
        "local exited 1",
        "fail-stdout-line",
        "fail-stderr-line",
        "server-stdout-line",
        "server-stderr-line",
        "--- local/stdout",
        "--- remote/stderr",
    ] {
        assert!(
            text.contains(line),
            "{line:?} missing from the failure:\n{text}"
        );
    }

    for l in [CLIENT, FAILER] {
        let (kind, message, ty, text) = cases[pair(l, BROKEN).as_str()]
            .problem
            .clone()
            .expect("an error");
        assert_eq!((kind.as_str(), ty.as_str()), ("error", "ERROR"));
        assert!(message.contains("remote exited 2"), "{message}");
        assert!(text.contains("broken-stdout-line") && text.contains("broken-stderr-line"));
    }
    // Control characters of the logs cannot make the XML invalid.
    let (_, _, _, text) = cases[pair(CLIENT, BROKEN).as_str()]
        .problem
        .clone()
        .unwrap();
    assert!(text.contains("client says"), "{text}");
    assert!(text.contains("<tag> & done"), "{text}");
    assert!(!text.contains('\u{1b}') && !text.contains('\0'), "{text:?}");

    validate_junit(&path);
}

/// Valid against a JUnit schema, as a CI system would check it.
fn validate_junit(path: &Path) {
    if let Some(xmllint) = tool("xmllint", "libxml2-utils") {
        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit.xsd");
        let out = std::process::Command::new(xmllint)
            .arg("--noout")
            .arg("--schema")
            .arg(&schema)
            .arg(path)
            .output()
            .expect("run xmllint");
        assert!(
            out.status.success(),
            "junit.xml is not valid:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------
// summary.md

#[test]
fn summary_md_shows_each_groups_matrix_with_status_duration_and_counts() {
    let p = run_odd();
    let md = read(&p.latest().join("summary.md"));
    assert!(md.contains("5 pairs: 2 SUCCESS, 1 FAILED, 2 ERROR"), "{md}");
    assert!(md.contains("4 pairs: 1 SUCCESS, 1 FAILED, 2 ERROR"), "{md}");
    assert!(md.contains("## plain"), "{md}");
    assert!(md.contains("## we\"ird grüppe's/sub dir"), "{md}");
    let lines: Vec<&str> = md.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("| local") && l.contains("brøken"))
        .unwrap_or_else(|| panic!("no matrix header:\n{md}"));
    // Columns are the remote tests, sorted; the separator follows; rows are local tests.
    assert_eq!(lines[header], "| local \\\\ remote | brøken | se rv\"er |");
    assert_eq!(lines[header + 1], "| --- | --- | --- |");
    let client = lines[header + 2];
    let failer = lines[header + 3];
    assert!(client.starts_with("| c%l#ient | ERROR "), "{client}");
    assert!(client.contains("| SUCCESS "), "{client}");
    assert!(failer.starts_with("| fäil | ERROR "), "{failer}");
    assert!(failer.contains("| FAILED "), "{failer}");
    // Each cell has a duration.
    for row in [client, failer] {
        assert_eq!(
            row.matches(" ms |").count() + row.matches(" s |").count(),
            2,
            "{row}"
        );
    }
    assert!(md.contains("FAILED: local exited 1"), "{md}");
}

// ---------------------------------------------------------------------------------------
// plots/

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn plots_are_svg_and_png_with_text_on_a_machine_without_fonts() {
    let p = odd_project();
    let empty = tempfile::tempdir().unwrap();
    let out = p
        .cmd()
        .args(["run", "--progress", "never"])
        .env("FONTCONFIG_FILE", "/dev/null")
        .env("FONTCONFIG_PATH", empty.path())
        .env("FONTCONFIG_SYSROOT", empty.path())
        .env("XDG_DATA_HOME", empty.path())
        .env("XDG_DATA_DIRS", empty.path())
        .env("XDG_CONFIG_HOME", empty.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plots = p.latest().join("plots");
    let files = files_in(&plots);
    // plain: a matrix and the CPU per pair; GROUP: a matrix, the CPU per pair and two
    // metric charts; each as SVG and PNG.
    assert_eq!(files.len(), 12, "{files:#?}");
    for f in &files {
        assert!(
            f.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                && !f.starts_with('.'),
            "unsafe plot file name {f:?}"
        );
        assert!(plots.join(f).is_file(), "{f} is not a file in plots/");
    }
    // Nothing escaped plots/: no file anywhere in the project is named after the metric.
    for e in walkdir::WalkDir::new(p.path()) {
        let e = e.unwrap();
        let n = e.file_name().to_string_lossy();
        if n.contains("oughput") || n == "é" {
            assert_eq!(e.path().parent(), Some(plots.as_path()), "escaped plots/");
        }
    }
    let pick = |has: &str, ext: &str| -> PathBuf {
        let f: Vec<&String> = files
            .iter()
            .filter(|f| f.contains(has) && f.ends_with(ext))
            .collect();
        assert_eq!(f.len(), 1, "{has} {ext}: {files:#?}");
        plots.join(f[0])
    };
    // The matrix of the odd group.
    let odd_stem = files
        .iter()
        .find(|f| f.starts_with("we_ird") && f.contains(".matrix."))
        .expect("matrix of the odd group");
    let matrix_svg = read(&plots.join(odd_stem.replace(".png", ".svg")));
    assert!(matrix_svg.contains("<text"), "{matrix_svg}");
    for t in [
        "SUCCESS",
        "FAILED",
        "ERROR",
        "brøken",
        "se rv&quot;er",
        "c%l#ient",
        "fäil",
    ] {
        assert!(matrix_svg.contains(t), "{t:?} missing from the matrix SVG");
    }
    let latency_svg = read(&pick("metric.latency", ".svg"));
    assert!(latency_svg.contains("latency (ms)"), "axis with unit");
    assert!(latency_svg.contains("12.5 ms") && latency_svg.contains("7 ms"));
    let thr_svg = read(&pick("metric.thr_oughput", ".svg"));
    assert!(thr_svg.contains("req/s"), "axis with unit");

    // PNG text is drawn with the embedded font: the title band has dark pixels on white.
    for f in files.iter().filter(|f| f.ends_with(".png")) {
        let img = read_png(&plots.join(f));
        assert!(img.width > 100 && img.height > 100, "{f}");
        assert_eq!(
            img.pixel(0, 0)[..3],
            [255, 255, 255],
            "{f}: white background"
        );
        let title = img.dark_pixels(0, 0, img.width, 40);
        assert!(title > 40, "{f}: no title text drawn ({title} dark pixels)");
        let bottom = img.dark_pixels(0, img.height - 40, img.width, img.height);
        assert!(
            bottom > 40,
            "{f}: no legend/axis text drawn ({bottom} dark pixels)"
        );
    }
}

// ---------------------------------------------------------------------------------------
// pairbench report

/// Bytes of every report file of a tag folder.
fn snapshot(tag_dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for f in [
        "junit.xml",
        "summary.md",
        "index.html",
        "results.csv",
        "metrics.csv",
    ] {
        m.insert(f.to_string(), std::fs::read(tag_dir.join(f)).unwrap());
    }
    for f in files_in(&tag_dir.join("plots")) {
        m.insert(
            format!("plots/{f}"),
            std::fs::read(tag_dir.join("plots").join(&f)).unwrap(),
        );
    }
    m
}

#[test]
fn report_redraws_the_same_files_from_the_tree_alone() {
    let p = run_odd();
    let tag_dir = p.latest();
    let after_run = snapshot(&tag_dir);
    // The groups folder is not needed to redraw.
    std::fs::rename(p.path().join("groups"), p.path().join("groups.away")).unwrap();
    let r = p.run(&["report"]);
    r.expect_code(0);
    assert_eq!(r.stderr(), "", "no warnings on an intact tree");
    assert!(r.stdout().contains("index.html"), "{}", r.stdout());
    let first = snapshot(&tag_dir);
    let tag = tag_dir.file_name().unwrap().to_string_lossy().into_owned();
    p.run(&["report", &tag]).expect_code(0);
    let second = snapshot(&tag_dir);
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (k, v) in &first {
        assert!(v == &second[k], "{k} differs between two reports");
        assert!(
            v == &after_run[k],
            "{k} differs between the run and the report"
        );
    }
    assert!(first.keys().any(|k| k.ends_with(".svg")));
    // No leftovers of the plot swap.
    let hidden: Vec<String> = files_in(&tag_dir)
        .into_iter()
        .filter(|f| f.starts_with(".plots"))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn report_runs_make_graphs_in_the_group_result_folder_with_the_mirage_environment() {
    let p = odd_project();
    let marker = format!("PAIRBENCH_TEST_GRAPHS={}", std::process::id());
    p.bash(
        &format!("{GROUP}/make_graphs"),
        &format!(
            r#"echo "cwd=$(pwd)"
for v in TEST RESULTS_TAG LOCAL_ROOT_PATH LOCAL_TEST_ROOT_PATH LOCAL_RESULTS_ROOT_PATH \
         PAIRBENCH_TAG PAIRBENCH_GROUP PAIRBENCH_RESULT_DIR PAIRBENCH_GROUP_DIR; do
  echo "$v=${{!v}}"
done
echo graphs-stderr >&2
echo drawn > my_graph.txt
{marker} setsid sleep 300 >/dev/null 2>&1 &
exit 0"#
        ),
    );
    p.bash("plain/make_graphs", "echo plain-graphs; exit 3");
    p.run(&["run", "--progress", "never"]).expect_code(2);
    let tag_dir = p.latest();
    let odd_dir = tag_dir.join(GROUP);
    assert!(
        !odd_dir.join("hooks/make_graphs").exists(),
        "a run does not run make_graphs; `report` does"
    );
    let r = p.run(&["report", "latest"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains("plain/make_graphs exited 3"),
        "a failing make_graphs is named: {}",
        r.stderr()
    );
    let out = odd_dir.join("hooks/make_graphs");
    let stdout = read(&out.join("stdout"));
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap().display().to_string();
    let tag = tag_dir.file_name().unwrap().to_string_lossy().into_owned();
    let groups = p.path().join("groups");
    for line in [
        format!("cwd={}", canon(&odd_dir)),
        format!("TEST={GROUP}"),
        format!("RESULTS_TAG={tag}"),
        format!("PAIRBENCH_TAG={tag}"),
        format!("PAIRBENCH_GROUP={GROUP}"),
        format!("LOCAL_ROOT_PATH={}", canon(&groups)),
        format!("LOCAL_TEST_ROOT_PATH={}", canon(&groups.join(GROUP))),
        format!("PAIRBENCH_GROUP_DIR={}", canon(&groups.join(GROUP))),
        format!("LOCAL_RESULTS_ROOT_PATH={}", canon(&odd_dir)),
        format!("PAIRBENCH_RESULT_DIR={}", canon(&odd_dir)),
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} missing from:\n{stdout}"
        );
    }
    assert_eq!(read(&out.join("stderr")), "graphs-stderr\n");
    assert_eq!(read(&out.join("exit_code")).trim(), "0");
    assert_eq!(read(&odd_dir.join("my_graph.txt")), "drawn\n");
    assert_eq!(
        read(&tag_dir.join("plain/hooks/make_graphs/exit_code")).trim(),
        "3"
    );
    assert_eq!(
        read(&tag_dir.join("plain/hooks/make_graphs/stdout")),
        "plain-graphs\n"
    );
    // What make_graphs left running is gone.
    assert!(
        processes_with_env(&marker).is_empty(),
        "make_graphs left a process behind"
    );
    // The page, drawn again after make_graphs, links what it wrote and its logs.
    let targets = checked_links(&tag_dir);
    for want in [
        format!("{GROUP}/my_graph.txt"),
        format!("{GROUP}/hooks/make_graphs/stdout"),
        "plain/hooks/make_graphs/stderr".to_string(),
    ] {
        assert!(targets.contains(&want), "no link to {want}: {targets:#?}");
    }
}

#[test]
fn report_of_a_tag_that_does_not_exist_says_so_in_one_line() {
    let p = Project::new();
    let r = p.run(&["report"]);
    r.expect_code(2);
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.stderr());
    assert!(r.stderr().contains("no 'latest' run"), "{}", r.stderr());
    p.run(&["new", "echo"]).expect_code(0);
    p.run(&["run", "--progress", "never"]).expect_code(0);
    for tag in ["nope", "../results", "."] {
        let r = p.run(&["report", tag]);
        r.expect_code(2);
        assert_eq!(r.stderr().lines().count(), 1, "{tag}: {}", r.stderr());
        assert!(
            r.stderr().contains("no run tagged"),
            "{tag}: {}",
            r.stderr()
        );
        assert!(!r.stderr().contains("panicked"));
    }
}

#[test]
fn report_draws_what_it_can_of_a_damaged_tree_with_one_warning_per_problem() {
    let p = run_odd();
    let tag_dir = p.latest();
    let odd = tag_dir.join(GROUP);
    std::fs::remove_file(tag_dir.join("results.csv")).unwrap();
    std::fs::write(tag_dir.join("run.json"), "{ not json").unwrap();
    std::fs::write(odd.join(pair(FAILER, SERVER)).join("pair.json"), "garbage").unwrap();
    std::fs::remove_file(odd.join(pair(CLIENT, BROKEN)).join("ERROR")).unwrap();
    std::fs::write(
        odd.join(pair(CLIENT, SERVER)).join("remote/metrics.csv"),
        "latency,7,ms\nnot a number,x\n",
    )
    .unwrap();
    let r = p.run(&["report"]);
    r.expect_code(1);
    let err = r.stderr();
    assert!(!err.contains("panicked"), "{err}");
    for l in err.lines() {
        assert!(l.starts_with("pairbench: warning: "), "{l}");
    }
    let warned = |what: &[&str]| err.lines().any(|l| what.iter().all(|w| l.contains(w)));
    assert!(warned(&["run.json is damaged"]), "{err}");
    assert!(warned(&["results.csv is missing"]), "{err}");
    assert!(
        warned(&[&pair(CLIENT, BROKEN), "no SUCCESS, FAILED or ERROR marker"]),
        "{err}"
    );
    assert!(
        warned(&[&pair(FAILER, SERVER), "pair.json is damaged"]),
        "{err}"
    );
    assert!(
        warned(&[&pair(CLIENT, SERVER), "remote/metrics.csv", "1 line"]),
        "{err}"
    );

    // Everything else is drawn: the pair without a record from its marker.
    let rows = read_csv(&tag_dir.join("results.csv"));
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let failed = rows
        .iter()
        .find(|r| r["pair"] == pair(FAILER, SERVER))
        .expect("the pair with a damaged pair.json");
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["reason"], "local exited 1");
    assert_eq!(failed["local_exit"], "1");
    let (root, _) = parse_junit(&read(&tag_dir.join("junit.xml")));
    assert_eq!(root["tests"], "4");
    let html = read(&tag_dir.join("index.html"));
    assert!(
        html.contains("Problems found in the result tree"),
        "warnings are on the page"
    );
    assert!(html.contains("fäil_x_se rv&quot;er"));
    assert_eq!(files_in(&tag_dir.join("plots")).len(), 12);

    // A damaged results.csv line, and a pair.json missing: its results.csv row is used.
    let csv_path = tag_dir.join("results.csv");
    let mut csv = read(&csv_path);
    csv.push_str("this line is not a row\n");
    std::fs::write(&csv_path, csv).unwrap();
    std::fs::remove_file(odd.join(pair(FAILER, BROKEN)).join("pair.json")).unwrap();
    let r = p.run(&["report"]);
    let err = r.stderr();
    assert!(
        warned_in(&err, &["results.csv is damaged", "line 6"]),
        "{err}"
    );
    assert!(
        warned_in(
            &err,
            &[&pair(FAILER, BROKEN), "its row in results.csv is used"]
        ),
        "{err}"
    );
    let rows = read_csv(&tag_dir.join("results.csv"));
    let row = rows
        .iter()
        .find(|r| r["pair"] == pair(FAILER, BROKEN))
        .unwrap();
    assert_eq!(row["reason"], "remote exited 2; local exited 1");
    assert!(
        row["duration_s"].parse::<f64>().unwrap() > 0.0,
        "from the CSV row: {row:?}"
    );
}

fn warned_in(err: &str, what: &[&str]) -> bool {
    err.lines().any(|l| what.iter().all(|w| l.contains(w)))
}

// ---------------------------------------------------------------------------------------
// index.html

/// Every link and image of index.html: relative, percent-encoded, and leading to a file
/// or folder inside the tag folder. Returns the decoded targets.
fn checked_links(tag_dir: &Path) -> Vec<String> {
    let tag_dir = std::fs::canonicalize(tag_dir).unwrap();
    let html = read(&tag_dir.join("index.html"));
    assert!(
        html.contains("Content-Security-Policy"),
        "the page forbids outside requests"
    );
    assert!(!html.contains("<script"), "no script");
    let mut targets = Vec::new();
    for l in links(&html) {
        if l == "data:," || l.starts_with('#') {
            continue;
        }
        assert!(
            !l.contains(':') && !l.starts_with('/') && !l.contains("//"),
            "not a relative link: {l}"
        );
        assert!(
            l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%/".contains(&b)),
            "not percent-encoded: {l}"
        );
        let rel = percent_decode(&l);
        let target = tag_dir.join(&rel);
        let real = std::fs::canonicalize(&target)
            .unwrap_or_else(|e| panic!("link {l} -> {}: {e}", target.display()));
        assert!(real.starts_with(&tag_dir), "link {l} leaves the tag folder");
        targets.push(rel);
    }
    targets
}

#[test]
fn index_html_links_are_relative_encoded_and_lead_to_the_pair_folders_and_logs() {
    let p = run_odd();
    let targets = checked_links(&p.latest());
    assert!(targets.len() > 20, "{targets:#?}");
    for side in ["local", "remote"] {
        for stream in ["stdout", "stderr"] {
            for (l, r) in [
                (CLIENT, SERVER),
                (CLIENT, BROKEN),
                (FAILER, SERVER),
                (FAILER, BROKEN),
            ] {
                let want = format!("{GROUP}/{}/{side}/{stream}", pair(l, r));
                assert!(targets.contains(&want), "no link to {want}");
            }
        }
    }
    assert!(targets.contains(&format!("{GROUP}/{}/", pair(FAILER, SERVER))));
    let images = targets
        .iter()
        .filter(|t| t.starts_with("plots/") && t.ends_with(".svg"));
    assert!(images.count() >= 4, "the plots are on the page");
}

#[test]
fn index_html_loads_in_a_headless_browser_without_errors_and_shows_the_plots() {
    let Some(chromium_bin) = tool("chromium", "chromium") else {
        return;
    };
    let p = run_odd();
    let tag_dir = std::fs::canonicalize(p.latest()).unwrap();
    let url = |name: &str| format!("file://{}/{name}", percent_path(&tag_dir));

    // The page as written: no console message at all (CSP violations, errors).
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("report-index.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &chromium_bin,
        &url("index.html"),
        &[&format!("--screenshot={}", shot.display())],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed:\n{log}");
    let console = console_lines(&log);
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );
    let img = read_png(&shot);
    assert!(
        img.colours() > 16,
        "the screenshot is blank: {}",
        shot.display()
    );
    assert!(img.dark_pixels(0, 0, img.width, img.height) > 2000);
    eprintln!("screenshot of index.html kept at {}", shot.display());

    // A copy with a probe: every image is loaded and has a size.
    let html = read(&tag_dir.join("index.html"));
    let csp_start = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .unwrap();
    let csp_end = csp_start + html[csp_start..].find('>').unwrap() + 1;
    let probe = r#"<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                   .map(function (i) { return i.getAttribute('src'); });
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = 'images=' + imgs.length + ' broken=' + JSON.stringify(broken);
  document.body.appendChild(pre);
});
</script></body>"#;
    let probed = format!("{}{}", &html[..csp_start], &html[csp_end..]).replace("</body>", probe);
    std::fs::write(tag_dir.join("probe.html"), probed).unwrap();
    let out = chromium(
        &chromium_bin,
        &url("probe.html"),
        &["--dump-dom", "--virtual-time-budget=10000"],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe_line = dom
        .lines()
        .find(|l| l.contains("id=\"probe\""))
        .unwrap_or_else(|| panic!("the probe did not run:\n{dom}"));
    // The two metric charts and a CPU chart per group; each matrix is shown once, as a
    // table (its plot is linked).
    assert!(probe_line.contains("images=4 broken=[]"), "{probe_line}");
    assert_eq!(
        dom.matches("class=\"matrix\"").count(),
        2,
        "a matrix per group"
    );
    assert_eq!(
        dom.matches("class=\"numbers\"").count(),
        4,
        "a table of numbers beside each chart"
    );
}

/// A path for a file:// URL.
fn percent_path(p: &Path) -> String {
    p.to_string_lossy()
        .split('/')
        .map(|s| {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

// ---------------------------------------------------------------------------------------
// Names that collide with the report's own files, and a report during a run.

#[test]
fn a_group_named_plots_is_refused_up_front_and_nothing_runs() {
    let p = Project::new();
    p.bash("plots/local/a", "exit 1");
    p.bash("plots/remote/b", "exit 0");
    let r = p.run(&["run", "--progress", "never"]);
    r.expect_code(2);
    let err = r.stderr();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("group 'plots'") && err.contains("rename"),
        "{err}"
    );
    assert!(!p.path().join("results/latest").exists());
}

#[test]
fn report_during_a_run_shows_the_finished_pairs_and_leaves_the_tables_to_the_run() {
    let p = Project::new();
    let go = p.path().join("go");
    p.bash("g/local/a_fast", "exit 0");
    p.bash(
        "g/local/b_slow",
        &format!(
            "for i in $(seq 600); do [ -e '{}' ] && exit 0; sleep 0.1; done; exit 1",
            go.display()
        ),
    );
    p.bash("g/remote/r", "exit 0");
    let mut run = p
        .cmd()
        .args(["run", "--progress", "never", "--tag", "T", "-j", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tag_dir = p.path().join("results/T");
    let first_done = common::eventually(std::time::Duration::from_secs(60), || {
        tag_dir.join("g/a_fast_x_r/SUCCESS").exists()
    });
    let r = p.run(&["report", "T"]);
    std::fs::write(&go, "").unwrap();
    let status = run.wait().unwrap();
    assert!(first_done, "the first pair never finished");
    r.expect_code(0);
    assert!(
        r.stderr().contains("is being run right now"),
        "{}",
        r.stderr()
    );
    assert_eq!(status.code(), Some(0));
    // The run's own end redrew everything with both pairs.
    let rows = read_csv(&tag_dir.join("results.csv"));
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let html = read(&tag_dir.join("index.html"));
    assert!(html.contains("a_fast_x_r") && html.contains("b_slow_x_r"));
}

// ---------------------------------------------------------------------------------------
// Benchmark mode and retries: several runs per pair.

#[test]
fn repeats_parameters_and_retries_show_every_run_and_the_latest_attempt_only() {
    let p = Project::new();
    let counter = p.path().join("count");
    p.bash(
        "b m/local/cl ient",
        "report_metric latency $((PAIRBENCH_PARAM_N * 10)) ms",
    );
    p.bash(
        "b m/local/flaky",
        &format!(
            "n=$(cat '{c}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{c}'; [ $n -ge 2 ]",
            c = counter.display()
        ),
    );
    p.bash("b m/remote/srv", "exit 0");
    p.run(&[
        "run",
        "--progress",
        "never",
        "--repeat",
        "2",
        "--warmup",
        "1",
        "--param",
        "N=1,5",
        "--retries",
        "1",
    ])
    .expect_code(0);
    let tag_dir = p.latest();

    // junit.xml: a testcase per run (2 params × 3 runs × 2 pairs), latest attempts only.
    let (root, suites) = parse_junit(&read(&tag_dir.join("junit.xml")));
    assert_eq!(root["tests"], "12", "{suites:#?}");
    assert_eq!(root["failures"], "0");
    let names: Vec<&str> = suites[0]
        .cases
        .iter()
        .map(|c| c.attrs["name"].as_str())
        .collect();
    assert!(names.contains(&"cl ient_x_srv [N=5/rep-2]"), "{names:#?}");
    assert!(names.contains(&"flaky_x_srv [N=1/warmup-1]"), "{names:#?}");
    let flaky_out: Vec<&String> = suites[0]
        .cases
        .iter()
        .filter_map(|c| c.system_out.as_ref())
        .collect();
    assert_eq!(flaky_out.len(), 1, "{suites:#?}");
    assert!(
        flaky_out[0].contains("flaky: passed on attempt 2"),
        "{flaky_out:?}"
    );
    validate_junit(&tag_dir.join("junit.xml"));

    // summary.md: a cell per pair with its runs counted, a mean per parameter set.
    let md = read(&tag_dir.join("summary.md"));
    assert!(md.contains("| cl ient | SUCCESS N=1: "), "{md}");
    assert!(md.contains("(3/3 SUCCESS, mean); N=5: "), "{md}");
    assert!(md.contains("flaky"), "{md}");

    // The metric chart: a bar per pair and parameter set, the mean of the measured runs.
    let plots = tag_dir.join("plots");
    let chart = files_in(&plots)
        .into_iter()
        .find(|f| f.contains("metric.latency") && f.ends_with(".svg"))
        .expect("latency chart");
    let svg = read(&plots.join(chart));
    assert!(svg.contains("cl ient_x_srv · N=1"), "{svg}");
    assert!(
        svg.contains("50 ms (mean of 2)"),
        "warm-ups left out: {svg}"
    );
    assert!(svg.contains("10 ms (mean of 2)"));

    // index.html: every run linked, and every link leads somewhere.
    let targets = checked_links(&tag_dir);
    for v in ["N=1/warmup-1", "N=1/rep-1", "N=5/rep-2"] {
        let want = format!("b m/cl ient_x_srv/{v}/");
        assert!(targets.contains(&want), "no link to {want}: {targets:#?}");
    }
    // The redraw gives the same tables as the run (earlier attempts included).
    let before = read(&tag_dir.join("results.csv"));
    p.run(&["report"]).expect_code(0);
    assert_eq!(read(&tag_dir.join("results.csv")), before);
    assert_eq!(
        read_csv(&tag_dir.join("results.csv")).len(),
        13,
        "12 runs + 1 earlier attempt"
    );
}

#[test]
fn a_make_graphs_that_hangs_is_stopped_after_the_runs_hook_timeout() {
    let p = Project::new();
    let marker = format!("PAIRBENCH_TEST_HANG={}", std::process::id());
    p.bash("slow/local/a", "exit 0");
    p.bash("slow/remote/b", "exit 0");
    p.bash(
        "slow/make_graphs",
        &format!("echo started\n{marker} sleep 300"),
    );
    p.bash("inert/local/a", "exit 0");
    p.bash("inert/remote/b", "exit 0");
    p.file("inert/make_graphs", "#!/bin/sh\necho never\n");
    p.run(&["run", "--progress", "never", "--hook-timeout", "1s"])
        .expect_code(0);
    let r = p.run(&["report"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains("slow/make_graphs timed out after 1s"),
        "{}",
        r.stderr()
    );
    assert!(
        r.stderr().contains("inert/make_graphs is not executable"),
        "{}",
        r.stderr()
    );
    let out = p.latest().join("slow/hooks/make_graphs");
    assert_eq!(read(&out.join("stdout")), "started\n");
    assert!(
        read(&out.join("exit_code")).starts_with("signal"),
        "killed by a signal"
    );
    assert!(!p.latest().join("inert/hooks/make_graphs").exists());
    assert!(
        processes_with_env(&marker).is_empty(),
        "the hung make_graphs is gone"
    );
}
