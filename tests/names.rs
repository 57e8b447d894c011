//! Odd names: spaces, quotes, `$(...)`, semicolons and non-ASCII letters in group and test
//! names run as they are; nothing in a name is interpreted by a shell.
mod common;
use common::Project;

const NAMES: [&str; 5] = [
    "with space",
    "it's \"quoted\"",
    "$(touch PWNED)",
    "semi;colon`date`",
    "naïve ünïcødé ✓",
];

#[test]
fn odd_test_and_group_names_run_correctly_and_are_never_interpreted() {
    let p = Project::new();
    let group = "grüppe $(touch PWNED) 'x'";
    for n in NAMES {
        p.bash(
            &format!("{group}/local/{n}"),
            "echo \"$PAIRBENCH_LOCAL_TEST\" > me",
        );
        p.bash(
            &format!("{group}/remote/{n}"),
            "echo \"$PAIRBENCH_REMOTE_TEST\" > me",
        );
    }
    p.run(&["run", "-j", "3"]).expect_code(0);
    for l in NAMES {
        for r in NAMES {
            let pair = p.pair(group, &format!("{l}_x_{r}"));
            assert_eq!(pair.status(), "SUCCESS", "{l} x {r}");
            assert_eq!(pair.read("local/me"), format!("{l}\n"));
        }
    }
    assert_eq!(p.results_csv().len(), 25);
    assert!(p.results_csv().iter().all(|r| r["group"] == group));
    let pwned = walkdir::WalkDir::new(p.path())
        .into_iter()
        .flatten()
        .any(|e| e.file_name() == "PWNED");
    assert!(!pwned, "a name was run by a shell");
}

#[test]
fn a_filter_selects_pairs_by_id() {
    let p = Project::new();
    p.bash("g/local/a", "exit 0").bash("g/local/b", "exit 0");
    p.bash("g/remote/x", "exit 0").bash("g/remote/y", "exit 0");
    p.bash("h/local/a", "exit 0").bash("h/remote/x", "exit 0");
    p.run(&["run", "-f", "g/a_x_*", "-f", "h/*"]).expect_code(0);
    let pairs: Vec<String> = p
        .results_csv()
        .iter()
        .map(|r| format!("{}/{}", r["group"], r["pair"]))
        .collect();
    assert_eq!(pairs, ["g/a_x_x", "g/a_x_y", "h/a_x_x"]);
}

#[test]
fn two_pairs_that_would_share_a_folder_are_refused_before_running() {
    let p = Project::new();
    p.bash("g/local/a_x_b", "exit 0")
        .bash("g/local/a", "exit 0");
    p.bash("g/remote/c", "exit 0")
        .bash("g/remote/b_x_c", "exit 0");
    let run = p.run(&["run"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("would share the result folder"),
        "{}",
        run.stderr()
    );
}

#[test]
fn tests_with_very_long_names_still_get_a_result_folder() {
    let p = Project::new();
    let l = "l".repeat(250);
    let r = "ř".repeat(120);
    p.bash(&format!("g/local/{l}"), "exit 0");
    p.bash(&format!("g/remote/{r}"), "exit 0");
    p.run(&["run"]).expect_code(0);
    let rows = p.results_csv();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["local_test"], l);
    assert_eq!(rows[0]["remote_test"], r);
    assert_eq!(p.pair("g", &rows[0]["pair"]).status(), "SUCCESS");
}

/// Names with characters that act on a terminal: an escape sequence (clear screen,
/// red), a newline, and a right-to-left override.
const HOSTILE: [&str; 3] = ["red\u{1b}[31m\u{1b}[2J", "two\nlines", "evil\u{202e}txt.sh"];

/// No byte of `out` acts on a terminal (only newlines end lines; no ESC, no override).
fn assert_inert(what: &str, out: &str) {
    for line in out.lines() {
        assert!(
            !line.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{what} prints a raw control character: {line:?}"
        );
    }
    for name in HOSTILE {
        assert!(!out.contains(name), "{what} prints {name:?} raw:\n{out}");
    }
}

#[test]
fn names_with_control_characters_are_escaped_on_the_terminal() {
    let p = Project::new();
    for n in HOSTILE {
        p.bash(&format!("g/local/{n}"), "exit 1");
        p.bash(&format!("g/remote/{n}"), "exit 0");
    }
    let list = p.run(&["list"]);
    list.expect_code(0);
    assert_inert("list", &list.stdout());
    assert!(
        list.stdout().contains("red\\u{1b}[31m\\u{1b}[2J"),
        "{}",
        list.stdout()
    );
    assert!(list.stdout().contains("two\\nlines"), "{}", list.stdout());
    let run = p.run(&["run", "--progress", "never"]);
    run.expect_code(1);
    // Progress lines, the FAILED lines of the summary and its counts.
    assert_inert("run", &run.stdout());
    assert_inert("run (stderr)", &run.stderr());
    assert!(
        run.stdout()
            .contains("FAILED  g/two\\nlines_x_evil\\u{202e}txt.sh"),
        "{}",
        run.stdout()
    );
    assert_eq!(p.results_csv().len(), 9, "the names themselves are kept");
}

#[test]
fn the_hint_after_new_is_one_shell_word_that_runs_nothing() {
    for name in ["$(touch PWNED)", "it's `date`", "new\nline"] {
        let p = Project::new();
        let out = p.run(&["new", name]);
        out.expect_code(0);
        let stdout = out.stdout();
        assert_inert("new", &stdout.replace(name, ""));
        let hint = stdout
            .lines()
            .find_map(|l| l.strip_prefix("run it with: pairbench run "))
            .unwrap_or_else(|| panic!("no hint in {stdout:?}"));
        // What a user's shell makes of the hint: the name, as one word, and nothing run.
        let echoed = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("printf '%s|' {hint}"))
            .current_dir(p.path())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&echoed.stdout),
            format!("{name}|"),
            "{hint}"
        );
        assert!(!p.path().join("PWNED").exists(), "{hint} ran a command");
    }
}
