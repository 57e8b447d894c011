//! `pairbench run | head -1`: a closed stdout ends the run quietly (no panic, no "Broken
//! pipe"), like an interrupt: no new pair starts, the running one ends, the after-hooks
//! still run, and the exit status is 141 (128 + SIGPIPE).
mod common;
use common::Project;
use std::io::{BufRead, BufReader};

#[test]
fn a_closed_stdout_stops_the_run_quietly_and_the_after_hooks_still_run() {
    let p = Project::new();
    for i in 0..6 {
        p.bash(&format!("g/local/l{i}"), "sleep 0.3");
    }
    p.bash("g/remote/r", "exit 0");
    p.bash("g/after_last_test_local", "echo after > after.log");
    let mut child = p
        .cmd()
        .args([
            "run",
            "--tag",
            "P",
            "--progress",
            "never",
            "--kill-grace",
            "200ms",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("l0_x_r"), "{first}");
    drop(out);
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(141), "{err}");
    assert!(
        !err.contains("Broken pipe") && !err.contains("panicked"),
        "{err}"
    );
    let group = p.path().join("results/P/g");
    assert_eq!(
        std::fs::read_to_string(group.join("after.log")).unwrap(),
        "after\n"
    );
    let done_pairs = std::fs::read_dir(&group)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_x_r"))
        .count();
    assert!(
        done_pairs < 6,
        "the run stopped starting pairs ({done_pairs} ran)"
    );
    // --resume runs what is missing.
    p.run(&["run", "--resume", "--progress", "never"])
        .expect_code(0);
    assert_eq!(p.results_csv().len(), 6);
}
