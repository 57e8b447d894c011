//! `pairbench report` on a damaged tree (a missing `pair.json`, a deleted `local/`, two
//! markers) draws what it can, warns once per problem, and exits 1: what it drew is
//! incomplete.
mod common;
use common::{Project, read_csv};

fn two_pairs() -> Project {
    let p = Project::new();
    p.bash("g/local/a", "echo a");
    p.bash("g/local/b", "exit 1");
    p.bash("g/remote/r", "exit 0");
    p.run(&["run", "--tag", "D", "--progress", "never"])
        .expect_code(1);
    p
}

fn warnings(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.starts_with("pairbench: warning: "))
        .collect()
}

#[test]
fn each_kind_of_damage_makes_report_exit_1_with_one_warning() {
    type Damage = fn(&std::path::Path);
    let cases: [(&str, Damage, &str); 3] = [
        (
            "missing pair.json",
            |pair| std::fs::remove_file(pair.join("pair.json")).unwrap(),
            "pair.json is missing",
        ),
        (
            "deleted local/",
            |pair| std::fs::remove_dir_all(pair.join("local")).unwrap(),
            "local/ folder is missing",
        ),
        (
            "two markers",
            |pair| std::fs::write(pair.join("FAILED"), "planted\n").unwrap(),
            "2 markers (SUCCESS, FAILED)",
        ),
    ];
    for (what, damage, warning) in cases {
        let p = two_pairs();
        let tag = p.path().join("results/D");
        damage(&tag.join("g/a_x_r"));
        let r = p.run(&["report", "D"]);
        r.expect_code(1);
        let err = r.stderr();
        let w = warnings(&err);
        assert_eq!(w.len(), 1, "{what}: {err}");
        assert!(
            w[0].contains("g/a_x_r") && w[0].contains(warning),
            "{what}: {err}"
        );
        // Still drawn: both pairs are in the tables and the counts.
        assert_eq!(read_csv(&tag.join("results.csv")).len(), 2, "{what}");
        assert!(
            r.stdout().contains("2 pairs: 1 SUCCESS, 1 FAILED"),
            "{what}: {}",
            r.stdout()
        );
    }
}

#[test]
fn an_intact_tree_reports_with_exit_0() {
    let p = two_pairs();
    let r = p.run(&["report", "D"]);
    r.expect_code(0);
    assert!(warnings(&r.stderr()).is_empty(), "{}", r.stderr());
}
