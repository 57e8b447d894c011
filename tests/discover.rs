//! SPEC §1: what is a group and what is a test; a mirage-bench checkout runs unchanged.
mod common;
use common::Project;
use std::os::unix::fs::PermissionsExt;

#[test]
fn tests_are_executable_files_or_links_to_them_and_run_in_name_order() {
    let p = Project::new();
    let log = p.path().join("order.log");
    let body = format!("echo \"$PAIRBENCH_PAIR\" >> '{}'", log.display());
    for n in ["b", "a", "c"] {
        p.bash(&format!("g/local/{n}"), &body);
    }
    p.bash("g/remote/r2", "exit 0")
        .bash("g/remote/r1", "exit 0");
    p.file("g/local/helper.sh", "echo I am a helper");
    p.bash("g/local/.hidden", "exit 1");
    p.bash("g/local/subdir/inner", "exit 1");
    // A link to an executable is a test; a broken link is not.
    std::os::unix::fs::symlink("a", p.path().join("groups/g/local/link_to_a")).unwrap();
    std::os::unix::fs::symlink("gone", p.path().join("groups/g/local/broken")).unwrap();
    // chmod -x disables a test.
    p.bash("g/local/disabled", "exit 1");
    let disabled = p.path().join("groups/g/local/disabled");
    std::fs::set_permissions(&disabled, std::fs::Permissions::from_mode(0o644)).unwrap();
    p.run(&["run"]).expect_code(0);
    let order = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        [
            "a_x_r1",
            "a_x_r2",
            "b_x_r1",
            "b_x_r2",
            "c_x_r1",
            "c_x_r2",
            "link_to_a_x_r1",
            "link_to_a_x_r2"
        ]
    );
    let list = p.run(&["list"]);
    let out = list.stdout();
    assert!(out.contains("disabled  [disabled: not executable"), "{out}");
    assert!(out.contains("broken  [disabled: broken link]"), "{out}");
}

#[test]
fn any_folder_with_local_and_remote_is_a_group_and_groups_run_sorted() {
    let p = Project::new();
    p.bash("zeta/local/l", "exit 0")
        .bash("zeta/remote/r", "exit 0");
    p.bash("alpha/local/l", "exit 0")
        .bash("alpha/remote/r", "exit 0");
    p.bash("suite/nested/local/l", "exit 0")
        .bash("suite/nested/remote/r", "exit 0");
    p.bash("not_a_group/local/l", "exit 0");
    p.run(&["run"]).expect_code(0);
    let groups: Vec<String> = p.results_csv().iter().map(|r| r["group"].clone()).collect();
    assert_eq!(groups, ["alpha", "suite/nested", "zeta"]);
    p.run(&["run", "zeta"]).expect_code(0);
    assert_eq!(p.results_csv().len(), 1);
}

/// A mirage-bench checkout: `test-*` folders at its root with all four hooks, scripts that
/// use mirage-bench's variables and its `wait_for_remote`/`kill_remote`.
#[test]
fn a_mirage_bench_checkout_runs_unchanged() {
    let p = Project::new();
    let root = p.path().join("mirage-bench");
    let script = |rel: &str, body: &str| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    std::fs::write(root.join("Makefile").with_file_name("README.md"), "x").ok();
    for t in ["test-example-sysinfo", "test-server-client"] {
        script(
            &format!("{t}/before_first_test_local"),
            "echo \"This script is executed locally before the tests\"",
        );
        script(
            &format!("{t}/before_first_test_remote"),
            "echo \"This script is executed remotely before the tests\"",
        );
        script(
            &format!("{t}/after_last_test_local"),
            "echo \"local after: $TEST $RESULTS_TAG\" > after_local.txt; ls */ > listing.txt",
        );
        script(
            &format!("{t}/after_last_test_remote"),
            "echo \"This script is executed remotely after the tests\"",
        );
    }
    script(
        "test-example-sysinfo/local/sysinfo",
        "uname -a > uname.txt; echo \"$LOCAL_TEST_ROOT_PATH\" > root.txt",
    );
    script(
        "test-example-sysinfo/remote/sysinfo",
        "uname -a > uname.txt",
    );
    script(
        "test-server-client/local/local_test",
        "echo \"Local test executing (waiting for remote)\"\nwait_for_remote\n#kill_remote",
    );
    script(
        "test-server-client/remote/remote_test",
        "echo \"Remote test executing\"\nsleep 0.2",
    );
    script("test-server-client/local/killer", "kill_remote");
    let run = p.run(&["run", "-g", "mirage-bench", "--tag", "mb"]);
    run.expect_code(0);
    let res = p.path().join("results/mb");
    for pair in [
        "test-example-sysinfo/sysinfo_x_sysinfo",
        "test-server-client/local_test_x_remote_test",
        "test-server-client/killer_x_remote_test",
    ] {
        assert!(res.join(pair).join("SUCCESS").exists(), "{pair}");
    }
    let after = std::fs::read_to_string(res.join("test-server-client/after_local.txt")).unwrap();
    assert_eq!(after, "local after: test-server-client mb\n");
    let root_txt =
        std::fs::read_to_string(res.join("test-example-sysinfo/sysinfo_x_sysinfo/local/root.txt"))
            .unwrap();
    assert!(
        root_txt
            .trim_end()
            .ends_with("mirage-bench/test-example-sysinfo"),
        "{root_txt}"
    );
    let listing = std::fs::read_to_string(res.join("test-server-client/listing.txt")).unwrap();
    assert!(
        listing.contains("local") && listing.contains("remote"),
        "{listing}"
    );
}
