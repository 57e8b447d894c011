//! A pair's outcome is what pairbench decided, never what a script left: a planted
//! marker, `pair.json` or `exit_code`, or a link in their place, is removed and the pair
//! is ERROR with the reason; pairbench never writes or reads through a link a script made.
mod common;
use common::Project;

fn outside(p: &Project) -> std::path::PathBuf {
    let f = p.path().join("outside.txt");
    std::fs::write(&f, "untouched\n").unwrap();
    f
}

#[test]
fn a_planted_marker_makes_the_pair_error_and_is_removed() {
    let p = Project::new();
    p.bash("g/local/l", "echo forged > ../SUCCESS; exit 1");
    p.bash("g/remote/r", "exit 0");
    p.run(&["run", "--progress", "never"]).expect_code(2);
    let pair = p.pair("g", "l_x_r");
    // Exactly one marker (the helper asserts it), pairbench's own.
    assert_eq!(pair.status(), "ERROR");
    let reason = pair.reason();
    assert!(
        reason.contains("a script wrote pairbench's own file ../SUCCESS (removed)"),
        "{reason}"
    );
    assert!(reason.contains("local exited 1"), "{reason}");
    let rows = p.results_csv();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "ERROR");
}

#[test]
fn a_second_marker_planted_next_to_pairbench_s_one_is_caught() {
    let p = Project::new();
    p.bash("g/local/l", "echo x > ../FAILED; exit 0");
    p.bash("g/remote/r", "exit 0");
    p.run(&["run", "--progress", "never"]).expect_code(2);
    let pair = p.pair("g", "l_x_r");
    assert_eq!(pair.status(), "ERROR");
    assert!(
        pair.reason().contains("../FAILED (removed)"),
        "{}",
        pair.reason()
    );
}

#[test]
fn links_in_pairbench_s_places_are_removed_never_written_through() {
    let p = Project::new();
    let target = outside(&p);
    let t = target.display();
    p.bash(
        "g/local/l",
        &format!("ln -s '{t}' exit_code; ln -s '{t}' ../pair.json; ln -s '{t}' ../ERROR; exit 0"),
    );
    p.bash("g/remote/r", &format!("ln -s '{t}' exit_code; exit 0"));
    p.run(&["run", "--progress", "never"]).expect_code(2);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n");
    let pair = p.pair("g", "l_x_r");
    assert_eq!(pair.status(), "ERROR");
    let reason = pair.reason();
    for what in [
        "../pair.json as a link",
        "../ERROR as a link",
        "local/exit_code as a link",
        "remote/exit_code as a link",
    ] {
        assert!(reason.contains(what), "{what}: {reason}");
    }
    // pairbench's own files are real files now.
    for f in ["pair.json", "ERROR", "local/exit_code", "remote/exit_code"] {
        let m = std::fs::symlink_metadata(pair.path().join(f)).unwrap();
        assert!(m.is_file(), "{f} is a file");
    }
    assert_eq!(pair.read("local/exit_code"), "0\n");
}

#[test]
fn a_side_folder_replaced_by_a_link_is_caught() {
    let p = Project::new();
    let dir = p.path().join("elsewhere");
    std::fs::create_dir(&dir).unwrap();
    p.bash(
        "g/local/l",
        &format!(
            "cd ..; rm -rf remote; ln -s '{}' remote; exit 0",
            dir.display()
        ),
    );
    p.bash("g/remote/r", "sleep 30");
    p.run(&["run", "--progress", "never", "--kill-grace", "200ms"])
        .expect_code(2);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written there"
    );
    let pair = p.pair("g", "l_x_r");
    assert!(
        pair.reason().contains("replaced remote/ with a link"),
        "{}",
        pair.reason()
    );
}

#[test]
fn the_report_never_reads_through_a_link_a_script_left() {
    let p = Project::new();
    let secret = p.path().join("secret");
    std::fs::write(&secret, "PRIVATE KEY\n").unwrap();
    p.bash(
        "g/local/l",
        &format!(
            "exec >/dev/null 2>&1; rm -f stdout; ln -s '{}' stdout; ln -s '{}' metrics.csv; exit 1",
            secret.display(),
            secret.display()
        ),
    );
    p.bash("g/remote/r", "exit 0");
    p.run(&["run", "--progress", "never"]).expect_code(1);
    let junit = std::fs::read_to_string(p.latest().join("junit.xml")).unwrap();
    assert!(!junit.contains("PRIVATE KEY"), "{junit}");
    let html = std::fs::read_to_string(p.latest().join("index.html")).unwrap();
    assert!(!html.contains("PRIVATE KEY"));
    let metrics = common::script_metrics(&p.latest().join("metrics.csv"));
    assert!(metrics.is_empty(), "{metrics:?}");
}
