//! Pages a person can use at any size of run (issue 9): what did not succeed comes first
//! and is capped with "and N more" leading to the full list; a large run gets a page per
//! group; a large matrix is collapsed to the rows and columns that did not succeed, with
//! the full matrix one click away; index.html stays small. And the matrix of an
//! interrupted run shows the pairs that never ran as "not run".

mod common;
#[path = "common/report_tools.rs"]
mod report_tools;

use std::path::Path;
use std::time::Duration;

use common::Project;
use report_tools::{links, percent_decode};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every link of the page at `page` (below `tag_dir`): relative, percent-encoded, and to
/// something that exists inside the tag folder. Returns the targets, relative to the
/// tag folder.
fn checked_links(tag_dir: &Path, page: &Path) -> Vec<String> {
    let tag_dir = std::fs::canonicalize(tag_dir).unwrap();
    let html = read(page);
    assert!(
        html.contains("Content-Security-Policy"),
        "{}",
        page.display()
    );
    let base = std::fs::canonicalize(page.parent().unwrap()).unwrap();
    let mut out = Vec::new();
    for l in links(&html) {
        if l == "data:," || l.starts_with('#') {
            continue;
        }
        assert!(
            l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%/".contains(&b)),
            "not a relative, percent-encoded link: {l} in {}",
            page.display()
        );
        let target = base.join(percent_decode(&l));
        let real = std::fs::canonicalize(&target)
            .unwrap_or_else(|e| panic!("{}: link {l}: {e}", page.display()));
        assert!(real.starts_with(&tag_dir), "{l} leaves the tag folder");
        out.push(
            real.strip_prefix(&tag_dir)
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    out
}

/// The only file in `dir` whose name starts with `prefix` and ends with `suffix`.
fn one_file(dir: &Path, prefix: &str, suffix: &str) -> std::path::PathBuf {
    let found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{prefix}*{suffix} in {}: {found:?}",
        dir.display()
    );
    found[0].clone()
}

/// 25 local × 24 remote tests (600 pairs): l03–l06 fail with every server, l10–l14
/// with r07, and l20 × r20 is an ERROR: 102 pairs did not succeed, in 10 rows.
fn big_group(p: &Project) {
    let body = "case $PAIRBENCH_LOCAL_TEST in l03|l04|l05|l06) exit 1;; esac\n\
                case $PAIRBENCH_LOCAL_TEST/$PAIRBENCH_REMOTE_TEST in l1[0-4]/r07) exit 1;; l20/r20) exit 2;; esac\n\
                exit 0";
    for l in 0..25 {
        p.bash(&format!("big/local/l{l:02}"), body);
    }
    for r in 0..24 {
        p.bash(&format!("big/remote/r{r:02}"), "exit 0");
    }
}

#[test]
fn a_large_run_puts_failures_first_gives_its_group_a_page_and_collapses_the_matrix() {
    let p = Project::new();
    big_group(&p);
    p.run(&["run", "--progress", "never", "-j", "2"])
        .expect_code(2);
    let tag = p.latest();

    // index.html: the counts, then the first 100 of the 102 that did not succeed, each
    // with its reason and logs, "and 2 more" leading to the full list; the group is a
    // line with a link to its page; no matrix.
    let index = read(&tag.join("index.html"));
    assert!(
        index.len() < 128 * 1024,
        "index.html is {} bytes",
        index.len()
    );
    let counts = index.find("id=\"counts\"").unwrap();
    let failures = index.find("Not successful (102)").expect("failures listed");
    let groups = index.find("id=\"groups\"").expect("groups listed");
    assert!(counts < failures && failures < groups, "failures first");
    assert_eq!(index.matches("<li><span class=\"status\">").count(), 100);
    assert!(index.contains("local exited 1"), "reasons are shown");
    assert!(index.contains("… and 2 more"), "capped");
    assert!(
        !index.contains("class=\"matrix\""),
        "no matrix on the index"
    );
    let targets = checked_links(&tag, &tag.join("index.html"));
    assert!(targets.iter().any(|t| t == "pages/failures.html"));
    assert!(
        targets
            .iter()
            .any(|t| t.starts_with("big/l03_x_r00") && t.ends_with("local/stderr")),
        "a failure's logs are linked: {targets:#?}"
    );

    // The full list of failures.
    let pages = tag.join("pages");
    let all = read(&pages.join("failures.html"));
    assert_eq!(all.matches("<li><span class=\"status\">").count(), 102);
    assert!(
        all.contains(
            "ERROR</span> <a href=\"../big/l20_x_r20/\">big/l20_x_r20</a>: local exited 2"
        ),
        "{all}"
    );
    checked_links(&tag, &pages.join("failures.html"));

    // The group's page: its failures, the collapsed matrix (the 10 rows that hold a pair
    // that did not succeed, all 24 columns), a link to the full matrix.
    let group_page: Vec<_> = std::fs::read_dir(&pages)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("big-") && n.ends_with(".html") && !n.ends_with(".matrix.html")
        })
        .collect();
    assert_eq!(group_page.len(), 1, "{group_page:?}");
    let group_page = &group_page[0];
    let page = read(group_page);
    assert!(
        page.contains("shown are the 10 local and 24 remote tests"),
        "{page}"
    );
    assert_eq!(page.matches("<tr><th scope=\"row\">").count(), 10);
    for row in ["l03", "l06", "l10", "l14", "l20"] {
        assert!(
            page.contains(&format!("<th scope=\"row\">{row}</th>")),
            "{row}"
        );
    }
    assert!(
        !page.contains("<th scope=\"row\">l00</th>"),
        "a row of SUCCESS only"
    );
    // Its CPU chart: the 50 pairs that used the most (100 bars, both sides), not 1,200
    // bars; every value is in stats.csv.
    assert!(
        page.contains(
            "big: CPU (user + system) (s), the 50 highest of 600 pairs (all in stats.csv)"
        ),
        "{page}"
    );
    let stats = read(&tag.join("stats.csv"));
    assert_eq!(
        stats
            .lines()
            .filter(|l| l.contains(",cpu_user_s,local,"))
            .count(),
        600
    );
    let targets = checked_links(&tag, group_page);
    let full = targets
        .iter()
        .find(|t| t.ends_with(".matrix.html"))
        .expect("the full matrix is linked");

    // The full matrix: every one of the 600 pairs.
    let full_matrix = read(&tag.join(full));
    let cells = ["SUCCESS", "FAILED", "ERROR"]
        .iter()
        .map(|s| full_matrix.matches(&format!("<td class=\"{s}\"")).count())
        .sum::<usize>();
    assert_eq!(cells, 600);
    checked_links(&tag, &tag.join(full));

    // summary.md is collapsed the same way.
    let summary = read(&tag.join("summary.md"));
    assert!(
        summary.contains("shown are the 10 local and 24 remote tests"),
        "{summary}"
    );
    assert!(
        summary.len() < 64 * 1024,
        "summary.md is {} bytes",
        summary.len()
    );
}

#[test]
fn a_run_of_many_groups_lists_the_troubled_ones_first_and_all_of_them_one_click_away() {
    let p = Project::new();
    for g in 0..110 {
        p.bash(
            &format!("g{g:03}/local/a"),
            if g == 57 { "exit 1" } else { "exit 0" },
        );
        p.bash(&format!("g{g:03}/remote/b"), "exit 0");
    }
    p.run(&["run", "--progress", "never", "-j", "2"])
        .expect_code(1);
    let tag = p.latest();
    let index = read(&tag.join("index.html"));
    assert!(index.contains("Groups (110)"));
    assert!(index.contains("… and 10 more"));
    let first_row = index.find("<tbody>").map(|i| &index[i..]).unwrap();
    assert!(
        first_row.find(">g057<").unwrap() < first_row.find(">g000<").unwrap_or(usize::MAX),
        "the group with a FAILED pair comes first"
    );
    let targets = checked_links(&tag, &tag.join("index.html"));
    assert!(targets.iter().any(|t| t == "pages/groups.html"));
    let all = read(&tag.join("pages/groups.html"));
    assert_eq!(all.matches("<tr><td><a href=").count(), 110);
    let pages = checked_links(&tag, &tag.join("pages/groups.html"));
    assert_eq!(
        pages.iter().filter(|t| t.starts_with("pages/g")).count(),
        110,
        "a page per group"
    );
}

#[test]
fn the_matrix_of_an_interrupted_run_shows_the_pairs_that_never_ran() {
    let p = Project::new();
    let started = p.path().join("started");
    p.bash(
        "g/local/a",
        &format!("touch '{}'; sleep 300", started.display()),
    );
    p.bash("g/local/b", "exit 0");
    p.bash("g/local/c", "exit 0");
    p.bash("g/remote/x", "exit 0");
    p.bash("g/remote/y", "exit 0");
    // A second group that never starts at all.
    p.bash("h/local/k", "exit 0");
    p.bash("h/remote/z", "exit 0");
    let mut child = p
        .cmd()
        .args([
            "run",
            "--progress",
            "never",
            "--tag",
            "I",
            "--kill-grace",
            "100ms",
            "-f",
            "g/a_x_x",
            "-f",
            "g/b_*",
            "-f",
            "g/c_x_y",
            "-f",
            "h/*",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(common::eventually(Duration::from_secs(60), || started.exists()));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let tag = p.path().join("results/I");
    let index = read(&tag.join("index.html"));
    // Planned: a×x, b×x, b×y, c×y (and k×z); none finished. c×x was not selected.
    for row in ["a", "b", "c"] {
        assert!(
            index.contains(&format!("<th scope=\"row\">{row}</th>")),
            "row {row}: {index}"
        );
    }
    assert!(
        index.contains("<th scope=\"row\">k</th>"),
        "the group that never started"
    );
    assert_eq!(
        index.matches("<td class=\"none\">not run</td>").count(),
        5,
        "{index}"
    );
    assert_eq!(
        index.matches("<td class=\"unplanned\"").count(),
        2,
        "a×y, c×x"
    );
    assert!(index.contains("5 not run"), "the counts say so");
    let summary = read(&tag.join("summary.md"));
    assert_eq!(summary.matches(" not run |").count(), 5, "{summary}");
    // The matrix plot has the rows and a "not run" in each planned cell.
    let svg = read(&one_file(&tag.join("plots"), "g-", ".matrix.svg"));
    assert_eq!(svg.matches(">\nnot run\n<").count(), 4 + 1, "{svg}");
}
