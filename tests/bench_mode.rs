//! SPEC §8: repetitions, warm-ups, parameters, shuffling, stats.csv and `compare`.
mod common;
use common::{Project, read_csv};

#[test]
fn repeat_and_warmup_are_run_folders_and_csv_columns_and_warmups_stay_out_of_stats() {
    let p = Project::new();
    p.bash(
        "g/local/l",
        "echo \"$PAIRBENCH_REPETITION $PAIRBENCH_WARMUP\" > which\n\
         if [ \"$PAIRBENCH_WARMUP\" = 1 ]; then v=1000; else v=$((10 + PAIRBENCH_REPETITION)); fi\n\
         report_metric latency $v ms",
    );
    p.bash("g/remote/r", "exit 0");
    p.run(&["run", "--repeat", "3", "--warmup", "1", "--tag", "rep"])
        .expect_code(0);
    let pair = p.latest().join("g/l_x_r");
    for (dir, which) in [
        ("warmup-1", "1 1"),
        ("rep-1", "1 0"),
        ("rep-2", "2 0"),
        ("rep-3", "3 0"),
    ] {
        assert!(pair.join(dir).join("SUCCESS").exists(), "{dir}");
        assert_eq!(
            std::fs::read_to_string(pair.join(dir).join("local/which"))
                .unwrap()
                .trim(),
            which
        );
    }
    let rows = p.results_csv();
    let reps: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r["repetition"].clone(), r["warmup"].clone()))
        .collect();
    assert_eq!(reps.len(), 4);
    assert!(reps.contains(&("1".into(), "true".into())));
    assert!(reps.contains(&("3".into(), "false".into())));
    let metrics = common::script_metrics(&p.latest().join("metrics.csv"));
    assert_eq!(metrics.len(), 4);
    assert!(
        metrics
            .iter()
            .any(|m| m["warmup"] == "true" && m["value"] == "1000")
    );
    let stats = read_csv(&p.latest().join("stats.csv"));
    let lat = stats.iter().find(|s| s["metric"] == "latency").unwrap();
    assert_eq!(lat["n"], "3", "warm-up left out");
    assert_eq!(lat["mean"].parse::<f64>().unwrap(), 12.0);
    assert_eq!(lat["median"].parse::<f64>().unwrap(), 12.0);
    assert_eq!(lat["min"].parse::<f64>().unwrap(), 11.0);
    assert_eq!(lat["max"].parse::<f64>().unwrap(), 13.0);
    assert_eq!(lat["stddev"].parse::<f64>().unwrap(), 1.0);
    assert_eq!(lat["unit"], "ms");
    let dur = stats.iter().find(|s| s["metric"] == "duration_s").unwrap();
    assert_eq!(dur["n"], "3");
}

#[test]
fn parameters_run_every_combination_as_folders_columns_and_environment() {
    let p = Project::new();
    p.bash(
        "g/local/l",
        "report_metric size_seen \"$PAIRBENCH_PARAM_SIZE\"\necho \"$PAIRBENCH_PARAM_MODE\" > mode",
    );
    p.bash("g/remote/r", "echo \"$PAIRBENCH_PARAM_SIZE\" > size");
    p.run(&["run", "--param", "SIZE=1,64", "--param", "MODE=fast,safe"])
        .expect_code(0);
    let pair = p.latest().join("g/l_x_r");
    for (size, mode) in [("1", "fast"), ("1", "safe"), ("64", "fast"), ("64", "safe")] {
        let dir = pair.join(format!("SIZE={size},MODE={mode}"));
        assert!(dir.join("SUCCESS").exists(), "{}", dir.display());
        assert_eq!(
            std::fs::read_to_string(dir.join("local/mode"))
                .unwrap()
                .trim(),
            mode
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("remote/size"))
                .unwrap()
                .trim(),
            size
        );
    }
    let rows = p.results_csv();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter()
            .any(|r| r["param_SIZE"] == "64" && r["param_MODE"] == "safe")
    );
    let metrics = common::script_metrics(&p.latest().join("metrics.csv"));
    assert!(
        metrics.iter().all(|m| m["value"] == m["param_SIZE"]),
        "{metrics:?}"
    );
    let stats = read_csv(&p.latest().join("stats.csv"));
    assert_eq!(
        stats.iter().filter(|s| s["metric"] == "size_seen").count(),
        4,
        "one statistic per parameter set"
    );
}

#[test]
fn shuffle_is_seeded_and_the_seed_is_recorded() {
    let p = Project::new();
    let log = p.path().join("order.log");
    p.bash(
        "g/local/l",
        &format!("echo \"$PAIRBENCH_REPETITION\" >> '{}'", log.display()),
    );
    p.bash("g/remote/r", "exit 0");
    let order = |tag: &str| {
        let _ = std::fs::remove_file(&log);
        p.run(&[
            "run",
            "--repeat",
            "8",
            "--shuffle",
            "--seed",
            "7",
            "--tag",
            tag,
        ])
        .expect_code(0);
        std::fs::read_to_string(&log).unwrap()
    };
    let first = order("s1");
    assert_eq!(first, order("s2"), "the same seed gives the same order");
    let mut sorted: Vec<u32> = first.lines().map(|l| l.parse().unwrap()).collect();
    assert_ne!(sorted, (1..=8).collect::<Vec<_>>(), "the order is shuffled");
    sorted.sort();
    assert_eq!(sorted, (1..=8).collect::<Vec<_>>());
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.latest().join("run.json")).unwrap()).unwrap();
    assert_eq!(run["shuffle_seed"], 7);
}

#[test]
fn compare_shows_changes_and_exits_1_on_a_regression() {
    let p = Project::new();
    std::fs::write(
        p.path().join("pairbench.toml"),
        "[metrics]\nthroughput = \"higher\"\n",
    )
    .unwrap();
    p.bash(
        "g/local/l",
        // The sleep makes the durations (also compared) vary by far less than 40%.
        "sleep 0.2\n\
         report_metric latency $(( LAT + PAIRBENCH_REPETITION % 2 )) ms\n\
         report_metric throughput $(( TPUT + PAIRBENCH_REPETITION % 2 )) MB/s",
    );
    p.bash("g/remote/r", "exit 0");
    let run = |tag: &str, lat: &str, tput: &str| {
        p.run(&[
            "run",
            "--repeat",
            "4",
            "--tag",
            tag,
            "--env",
            &format!("LAT={lat}"),
            "--env",
            &format!("TPUT={tput}"),
        ])
        .expect_code(0);
    };
    run("base", "100", "500");
    run("same", "100", "500");
    run("slower", "200", "500");
    run("less", "100", "250");
    let same = p.run(&["compare", "base", "same", "--threshold", "40%"]);
    same.expect_code(0);
    assert!(same.stdout().contains("0 worse"), "{}", same.stdout());
    let slower = p.run(&["compare", "base", "slower", "--threshold", "40%"]);
    slower.expect_code(1);
    let line = slower
        .stdout()
        .lines()
        .find(|l| l.contains("latency"))
        .unwrap()
        .to_string();
    assert!(line.contains("+99.") && line.contains("WORSE"), "{line}");
    // Throughput is higher-is-better (pairbench.toml): a drop is a regression, a rise is not.
    p.run(&["compare", "base", "less", "--threshold", "40%"])
        .expect_code(1);
    p.run(&["compare", "less", "base", "--threshold", "40%"])
        .expect_code(0);
}

#[test]
fn bad_benchmark_input_gets_one_line_and_exit_2() {
    let p = Project::new();
    p.bash("g/local/l", "exit 0").bash("g/remote/r", "exit 0");
    for (args, needle) in [
        (vec!["run", "--param", "SIZE="], "bad --param 'SIZE='"),
        (vec!["run", "--param", "SIZE"], "bad --param"),
        (vec!["run", "--repeat", "0"], "bad --repeat 0"),
        (vec!["compare", "nope", "latest"], "no run tagged 'nope'"),
    ] {
        let run = p.run(&args);
        run.expect_code(2);
        assert!(run.stderr().contains(needle), "{args:?}: {}", run.stderr());
        assert_eq!(run.stderr().trim_end().lines().count(), 1);
    }
    p.run(&["run", "--tag", "a"]).expect_code(0);
    p.bash("other/local/l", "exit 0")
        .bash("other/remote/r", "exit 0");
    p.run(&["run", "other", "--tag", "b"]).expect_code(0);
    let run = p.run(&["compare", "a", "b"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("no pairs (with results) in common"),
        "{}",
        run.stderr()
    );
}

#[test]
fn compare_counts_a_pair_that_no_longer_succeeds_as_a_regression() {
    let p = Project::new();
    p.bash("g/local/l", "sleep 0.1\n[ -z \"${BREAK:-}\" ]");
    p.bash("g/local/m", "sleep 0.1");
    p.bash("g/remote/r", "exit 0");
    p.run(&["run", "--repeat", "2", "--tag", "good"])
        .expect_code(0);
    p.run(&[
        "run", "--repeat", "2", "--tag", "broken", "--env", "BREAK=1",
    ])
    .expect_code(1);
    let run = p.run(&["compare", "good", "broken", "--threshold", "1000%"]);
    run.expect_code(1);
    let out = run.stdout();
    let line = out
        .lines()
        .find(|l| l.contains("g/l_x_r") && l.contains("status"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("SUCCESS 2/2") && line.contains("FAILED 2/2") && line.contains("WORSE"),
        "{line}"
    );
    // A pair that succeeded in both has no status line.
    assert!(
        !out.lines()
            .any(|l| l.contains("g/m_x_r") && l.contains("status")),
        "{out}"
    );
    assert!(out.contains("1 no longer SUCCESS"), "{out}");
    // The other way round it got better: listed, exit 0.
    let back = p.run(&["compare", "broken", "good", "--threshold", "1000%"]);
    back.expect_code(0);
    assert!(
        back.stdout()
            .lines()
            .any(|l| l.contains("g/l_x_r") && l.contains("better")),
        "{}",
        back.stdout()
    );
}

#[test]
fn compare_lists_pairs_only_one_run_has() {
    let p = Project::new();
    p.bash("g/local/l", "exit 0").bash("g/remote/r", "exit 0");
    p.bash("old/local/l", "exit 0")
        .bash("old/remote/r", "exit 0");
    p.run(&["run", "--tag", "a"]).expect_code(0);
    std::fs::remove_dir_all(p.path().join("groups/old")).unwrap();
    p.bash("g/local/k", "exit 0");
    p.run(&["run", "--tag", "b"]).expect_code(0);
    let run = p.run(&["compare", "a", "b", "--threshold", "1000%"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(
        out.contains("only in 'a' (missing from 'b'): old/l_x_r"),
        "{out}"
    );
    assert!(out.contains("only in 'b' (new): g/k_x_r"), "{out}");
    assert!(out.contains("1 missing from 'b', 1 new in 'b'"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("g/l_x_r") && l.contains("duration_s")),
        "{out}"
    );
}

#[test]
fn compare_matches_a_run_without_parameters_with_a_single_parameter_set() {
    let p = Project::new();
    p.bash(
        "g/local/l",
        "report_metric latency $(( ${LAT:-100} + PAIRBENCH_REPETITION % 2 )) ms",
    );
    p.bash("g/remote/r", "exit 0");
    p.run(&["run", "--repeat", "3", "--tag", "plain"])
        .expect_code(0);
    p.run(&[
        "run", "--repeat", "3", "--tag", "one", "--param", "SIZE=64", "--env", "LAT=300",
    ])
    .expect_code(0);
    let run = p.run(&["compare", "plain", "one", "--threshold", "40%"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(
        out.contains("matched g/l_x_r: 'plain' with no parameters against 'one' with SIZE=64"),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.contains("latency"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("[SIZE=64]") && line.contains("WORSE"),
        "{line}"
    );
    // Several sets against none: which set stands for the plain run is not guessed.
    p.run(&["run", "--tag", "two", "--param", "SIZE=64,128"])
        .expect_code(0);
    let run = p.run(&["compare", "plain", "two"]);
    run.expect_code(2);
    let err = run.stderr();
    assert!(
        err.contains("different parameter sets")
            && err.contains("no parameters")
            && err.contains("SIZE=128, SIZE=64"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn progress_lines_say_which_repetition_parameter_set_and_attempt() {
    let p = Project::new();
    p.bash("g/local/l", "exit 0").bash("g/remote/r", "exit 0");
    let run = p.run(&[
        "run",
        "--progress",
        "never",
        "--repeat",
        "2",
        "--param",
        "SIZE=1,2",
    ]);
    run.expect_code(0);
    let out = run.stdout();
    let mut lines: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with('['))
        .map(|l| {
            // Without the duration, which differs from run to run.
            let rest = l.split_once("] ").unwrap().1;
            rest.split(" (").next().unwrap().to_string()
        })
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "SUCCESS g/l_x_r rep 1/2 SIZE=1",
            "SUCCESS g/l_x_r rep 1/2 SIZE=2",
            "SUCCESS g/l_x_r rep 2/2 SIZE=1",
            "SUCCESS g/l_x_r rep 2/2 SIZE=2",
        ],
        "{out}"
    );
    assert!(out.contains("pairbench: 4 runs: 4 SUCCESS"), "{out}");
    // A plain run still counts pairs.
    let plain = p.run(&["run", "--progress", "never", "--tag", "plain"]);
    assert!(
        plain.stdout().contains("[1/1] SUCCESS g/l_x_r ("),
        "{}",
        plain.stdout()
    );
    assert!(
        plain.stdout().contains("1 pairs: 1 SUCCESS"),
        "{}",
        plain.stdout()
    );
}

#[test]
fn retries_are_shown_as_attempts_of_one_run_never_as_more_runs() {
    let p = Project::new();
    p.bash("g/local/l", "exit 1").bash("g/remote/r", "exit 0");
    let run = p.run(&["run", "--progress", "never", "--retries", "2"]);
    run.expect_code(1);
    let out = run.stdout();
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (i, l) in lines.iter().enumerate() {
        assert!(l.starts_with("[1/1] FAILED  g/l_x_r"), "{l}");
        assert!(l.contains(&format!("attempt {}/3", i + 1)), "{l}");
        assert_eq!(l.ends_with("(trying again)"), i < 2, "{l}");
    }
    assert!(!out.contains("[2/1]") && !out.contains("[3/1]"), "{out}");
    assert!(out.contains("1 pairs: 0 SUCCESS, 1 FAILED"), "{out}");
}

#[test]
fn summary_md_gives_each_parameter_set_its_own_mean() {
    let p = Project::new();
    // SIZE=1 takes about 0 s, SIZE=2 about 0.6 s: one mean of both would be about 0.3 s.
    p.bash(
        "g/local/l",
        "[ \"$PAIRBENCH_PARAM_SIZE\" = 2 ] && sleep 0.6; exit 0",
    )
    .bash("g/remote/r", "exit 0");
    p.run(&[
        "run",
        "--progress",
        "never",
        "--repeat",
        "2",
        "--param",
        "SIZE=1,2",
    ])
    .expect_code(0);
    let md = std::fs::read_to_string(p.latest().join("summary.md")).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| l |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        row.contains("SIZE=1: ") && row.contains("SIZE=2: ") && row.contains("2/2 SUCCESS"),
        "{row}"
    );
    // The SIZE=2 mean is at least its sleep.
    let after = row.split("SIZE=2: ").nth(1).unwrap();
    let ms: f64 = after
        .split(" ms")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            let s: f64 = after.split(" s").next().unwrap().trim().parse().unwrap();
            s * 1000.0
        });
    assert!(ms >= 600.0, "{row}");
}

#[test]
fn bad_input_is_one_line_that_names_what_is_wrong_and_exit_2() {
    let p = Project::new();
    p.bash("g/local/l", "exit 0").bash("g/remote/r", "exit 0");
    std::fs::create_dir_all(p.path().join("groups/empty/local")).unwrap();
    std::fs::create_dir_all(p.path().join("groups/empty/remote")).unwrap();
    std::fs::create_dir_all(p.path().join("groups/notgroup")).unwrap();
    for (args, needles) in [
        (
            vec!["run", "--param", "X=1", "--param", "X=2"],
            vec!["--param X is given twice"],
        ),
        (
            vec!["run", "--repeat", "4294967295", "-n"],
            vec!["4294967295 runs", "at most 5000000"],
        ),
        (
            vec![
                "run",
                "--param",
                "A=1,2,3,4,5,6,7,8,9,10",
                "--repeat",
                "1000000",
                "-n",
            ],
            vec!["10000000 runs"],
        ),
        (
            vec!["run", "-f", "nothing*"],
            vec!["no pair matches -f nothing*", "g/l_x_r"],
        ),
        (
            vec!["run", "empty"],
            vec![
                "nothing to run",
                "empty: no executable tests in local/ or remote/",
            ],
        ),
        (
            vec!["run", "notgroup"],
            vec!["'notgroup'", "is not a group"],
        ),
    ] {
        let run = p.run(&args);
        run.expect_code(2);
        let err = run.stderr();
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n} in {err}");
        }
        // One line (besides what a run refused this way still cleans up after dead runs
        // of other tests).
        let lines = err
            .lines()
            .filter(|l| !l.contains("cleaned up after"))
            .count();
        assert_eq!(lines, 1, "{args:?}: {err}");
        assert!(!p.path().join("results").join("latest").exists() || args.contains(&"-n"));
    }
    // Config type errors name the key and the line.
    for (toml, needles) in [
        (
            "jobs = \"four\"\n",
            vec!["line 1, 'jobs'", "expected usize"],
        ),
        (
            "[[remote]]\nname = \"a\"\nhost = \"h\"\nslots = \"x\"\n",
            vec!["line 4, 'slots' in [[remote]]"],
        ),
        ("[env]\nA = 1\n", vec!["line 2, 'A' in [env]"]),
    ] {
        std::fs::write(p.path().join("pairbench.toml"), toml).unwrap();
        let run = p.run(&["run"]);
        run.expect_code(2);
        for n in needles {
            assert!(run.stderr().contains(n), "{toml}: {n} in {}", run.stderr());
        }
        assert_eq!(
            run.stderr().trim_end().lines().count(),
            1,
            "{}",
            run.stderr()
        );
    }
    std::fs::remove_file(p.path().join("pairbench.toml")).unwrap();
    // group.toml too.
    std::fs::write(p.path().join("groups/g/group.toml"), "timeout = 5\n").unwrap();
    let run = p.run(&["run", "g"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("'timeout' must be a string"),
        "{}",
        run.stderr()
    );
}
