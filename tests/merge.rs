//! `pairbench merge`: the trees of 4 shards fold into one tag with the pairs, outcomes,
//! tables and reports of a plain run; a pair in two trees is refused; a missing shard and
//! its pairs are named and the merge is not green; a FAILED pair in a shard makes the
//! merge exit 1; links in a shard's tree are never followed.

mod common;
#[path = "common/sshd.rs"]
mod sshd;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{Project, read_csv};

/// Two groups, 12 pairs; `g`'s local tests write a metric and a file, and its remote
/// before-hook runs on every shard that has a pair of `g`.
fn suite() -> Project {
    let p = Project::new();
    for l in ["l1", "l2", "l3"] {
        p.bash(
            &format!("g/local/{l}"),
            &format!("echo {l} > out.txt\necho \"size,${{#PAIRBENCH_TAG}},B\" > metrics.csv"),
        );
    }
    for r in ["r1", "r2"] {
        p.bash(&format!("g/remote/{r}"), "true");
    }
    p.bash("g/before_first_test_remote", "echo before");
    for l in ["a", "b"] {
        p.bash(&format!("odd group/local/{l}"), "true");
    }
    for r in ["x", "y"] {
        p.bash(&format!("odd group/remote/{r}"), "true");
    }
    p.bash("odd group/local/c d", "true");
    p
}

/// Run shard k of n into `s<k>/` with tag T.
fn shard(p: &Project, k: u32, n: u32) -> common::Run {
    p.run(&[
        "run",
        "--progress",
        "never",
        "--shard",
        &format!("{k}/{n}"),
        "--tag",
        "T",
        "-o",
        &format!("s{k}"),
    ])
}

fn merge(p: &Project, tag: &str, trees: &[&str]) -> common::Run {
    let mut args = vec!["merge", "-o", "results", "--tag", tag];
    args.extend(trees);
    p.run(&args)
}

/// `(group, pair, status)` of each row of a results.csv.
fn outcomes(path: &Path) -> BTreeSet<(String, String, String)> {
    read_csv(path)
        .into_iter()
        .map(|r| (r["group"].clone(), r["pair"].clone(), r["status"].clone()))
        .collect()
}

/// The run.json of a tag folder.
fn run_json(tag_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(tag_dir.join("run.json")).unwrap()).unwrap()
}

/// `out` is a merge into tag `D` refused with one line that says `says`, exit 2, and no
/// `results/D` made.
fn refused(p: &Project, out: &common::Run, says: &str) {
    out.expect_code(2);
    let err = out.stderr();
    assert!(err.contains(says), "{says}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!p.path().join("results/D").exists(), "{err}");
}

fn pairs_of_shard(p: &Project, k: u32) -> Vec<String> {
    read_csv(&p.path().join(format!("s{k}/T/results.csv")))
        .into_iter()
        .map(|r| format!("{}/{}", r["group"], r["pair"]))
        .collect()
}

#[test]
fn four_shards_merge_into_the_pairs_outcomes_and_tables_of_a_plain_run() {
    let p = suite();
    p.run(&["run", "--progress", "never", "--tag", "plain"])
        .expect_code(0);
    for k in 1..=4 {
        shard(&p, k, 4).expect_code(0);
    }
    // A tag folder, or a results folder whose `latest` is the shard.
    let out = merge(&p, "M", &["s1/T", "s2", "s3/T", "s4"]);
    out.expect_code(0);
    assert!(
        out.stdout().contains("merged 4 trees (1/4, 2/4, 3/4, 4/4)"),
        "{}",
        out.stdout()
    );
    let results = p.path().join("results");
    let m = results.join("M");
    let plain = outcomes(&results.join("plain/results.csv"));
    assert_eq!(plain.len(), 12);
    assert_eq!(outcomes(&m.join("results.csv")), plain);
    assert!(
        read_csv(&m.join("results.csv"))
            .iter()
            .all(|r| r["tag"] == "M")
    );
    // Every pair folder whole, its record retagged.
    for l in ["l1", "l2", "l3"] {
        for r in ["r1", "r2"] {
            let d = m.join("g").join(format!("{l}_x_{r}"));
            assert_eq!(
                std::fs::read_to_string(d.join("local/out.txt"))
                    .unwrap()
                    .trim(),
                l
            );
            assert!(d.join("SUCCESS").is_file());
            let rec: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(d.join("pair.json")).unwrap())
                    .unwrap();
            assert_eq!(rec["tag"], "M");
        }
    }
    // One metric per run of g, from the merged tables; statistics and reports.
    // (pairbench's own measurements of each side are there too: only the script's counted.)
    let metrics: Vec<_> = read_csv(&m.join("metrics.csv"))
        .into_iter()
        .filter(|r| r["source"] == "script")
        .collect();
    assert_eq!(metrics.len(), 6, "{metrics:?}");
    assert!(
        std::fs::read_to_string(m.join("stats.csv"))
            .unwrap()
            .contains("size")
    );
    let junit = std::fs::read_to_string(m.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 12, "{junit}");
    assert!(m.join("index.html").is_file() && m.join("summary.md").is_file());
    // run.json keeps every shard's invocation and says what was merged.
    let run = run_json(&m);
    assert_eq!(run["invocations"].as_array().unwrap().len(), 4);
    // How resources were measured, as the shards say.
    let s1 = run_json(&p.path().join("s1/T"));
    assert!(s1["accounting"].is_object(), "{s1}");
    assert_eq!(run["accounting"], s1["accounting"]);
    let ks: Vec<u64> = run["merged"]["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["shard"]["k"].as_u64().unwrap())
        .collect();
    assert_eq!(ks, [1, 2, 3, 4]);
    assert_eq!(run["merged"]["missing_shards"].as_array().unwrap().len(), 0);
    assert_eq!(
        std::fs::read_link(results.join("latest")).unwrap(),
        Path::new("M")
    );
    // Each shard that ran g ran its remote before-hook: each one's logs are kept.
    let with_g: Vec<u32> = (1..=4)
        .filter(|&k| pairs_of_shard(&p, k).iter().any(|id| id.starts_with("g/")))
        .collect();
    assert!(with_g.len() >= 2, "shards with pairs of g: {with_g:?}");
    let hook = m.join("g/hooks/before_first_test_remote");
    for k in &with_g {
        let stdout = hook.join(format!("shard-{k}/stdout"));
        assert_eq!(
            std::fs::read_to_string(&stdout).unwrap().trim(),
            "before",
            "{}",
            stdout.display()
        );
    }
    // report, compare and check work on the merged tag.
    p.run(&["report", "M"]).expect_code(0);
    // The same pairs, all SUCCESS in both: nothing is worse. (Durations of one run each
    // vary by more than the default 5% on a loaded machine: a threshold no noise reaches.)
    let cmp = p.run(&["compare", "plain", "M", "--threshold", "100000%"]);
    cmp.expect_code(0);
    assert!(
        cmp.stdout()
            .contains(" 0 worse by more than 100000%, 0 no longer SUCCESS\n"),
        "{}",
        cmp.stdout()
    );
    for (g, pair, _) in &plain {
        assert!(
            cmp.stdout().contains(&format!("{g}/{pair} ")),
            "{}",
            cmp.stdout()
        );
    }
    p.run(&["check", "M"]).expect_code(0);
    // A merge never writes over a tag.
    let again = merge(&p, "M", &["s1", "s2", "s3", "s4"]);
    again.expect_code(2);
    assert!(again.stderr().contains("exists"), "{}", again.stderr());
}

#[test]
fn a_pair_in_two_trees_is_refused_and_named() {
    let p = suite();
    p.run(&["run", "--progress", "never", "--tag", "plain"])
        .expect_code(0);
    shard(&p, 1, 2).expect_code(0);
    let first = pairs_of_shard(&p, 1)[0].clone();
    let out = merge(&p, "D", &["s1", "results/plain"]);
    out.expect_code(2);
    assert!(
        out.stderr().contains("in more than one tree"),
        "{}",
        out.stderr()
    );
    assert!(out.stderr().contains(&first), "{first}: {}", out.stderr());
    assert!(!p.path().join("results/D").exists());
    // The same shard twice.
    let out = merge(&p, "D", &["s1", "s1/T"]);
    out.expect_code(2);
    assert!(
        out.stderr().contains("shard 1/2 is given twice"),
        "{}",
        out.stderr()
    );
    // Not a tree at all.
    let out = merge(&p, "D", &["groups"]);
    out.expect_code(2);
    assert!(
        out.stderr().contains("is not a shard's tree"),
        "{}",
        out.stderr()
    );
    assert!(!p.path().join("results/D").exists());
}

#[test]
fn shards_of_other_splits_or_other_options_are_refused() {
    let p = suite();
    shard(&p, 1, 2).expect_code(0);
    let other = |args: &[&str], out: &str| {
        let mut a = vec!["run", "--progress", "never", "--tag", "T", "-o", out];
        a.extend(args);
        p.run(&a).expect_code(0);
    };
    other(&["--shard", "2/3"], "third");
    let out = merge(&p, "D", &["s1", "third"]);
    refused(
        &p,
        &out,
        "the trees are shards of different splits (of 2, of 3)",
    );
    other(&["--shard", "2/2", "--repeat", "2"], "twice");
    let out = merge(&p, "D", &["s1", "twice"]);
    refused(
        &p,
        &out,
        "shard 1/2 ('s1') was run with --repeat 1 and shard 2/2 ('twice') with --repeat 2",
    );
}

#[test]
fn the_merges_own_tag_is_refused_and_left_as_it_is() {
    let p = suite();
    p.run(&["run", "--progress", "never", "--shard", "1/1", "--tag", "S"])
        .expect_code(0);
    let s = p.path().join("results/S");
    let before = std::fs::read(s.join("run.json")).unwrap();
    // `results` is the shard's tree too: its `latest` is S.
    for tree in ["results/S", "results"] {
        let out = merge(&p, "S", &[tree]);
        out.expect_code(2);
        let err = out.stderr();
        assert!(
            err.contains("is the merge's own tag: merge into another --tag"),
            "{err}"
        );
        // Not "remove it first": it is the tree being merged.
        assert!(!err.contains("remove it"), "{err}");
    }
    assert_eq!(std::fs::read(s.join("run.json")).unwrap(), before);
    assert_eq!(read_csv(&s.join("results.csv")).len(), 12);
}

#[test]
fn a_file_two_trees_have_in_a_group_folder_is_kept_as_shard_k() {
    let p = suite();
    for k in 1..=2 {
        shard(&p, k, 2).expect_code(0);
        let g = p.path().join(format!("s{k}/T/g"));
        std::fs::create_dir_all(&g).unwrap();
        std::fs::write(g.join("notes.txt"), format!("shard {k}")).unwrap();
    }
    let out = merge(&p, "M", &["s1", "s2"]);
    out.expect_code(0);
    assert!(
        out.stderr().contains(
            "'g/notes.txt' is in more than one tree: this one is kept as 'g/notes.txt.shard-2'"
        ),
        "{}",
        out.stderr()
    );
    let g = p.path().join("results/M/g");
    assert_eq!(
        std::fs::read_to_string(g.join("notes.txt")).unwrap(),
        "shard 1"
    );
    assert_eq!(
        std::fs::read_to_string(g.join("notes.txt.shard-2")).unwrap(),
        "shard 2"
    );
}

#[test]
fn a_shard_being_run_is_not_merged() {
    let p = suite();
    let (started, go) = (p.path().join("started"), p.path().join("go"));
    p.bash(
        "g/local/l1",
        &format!(
            "touch '{}'\nwhile [ ! -e '{}' ]; do sleep 0.05; done",
            started.display(),
            go.display()
        ),
    );
    let mut running = p
        .cmd()
        .args([
            "run",
            "--progress",
            "never",
            "--shard",
            "1/1",
            "--tag",
            "T",
            "-o",
            "s1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !started.exists() {
        if std::time::Instant::now() > until {
            std::fs::write(&go, "").unwrap();
            running.kill().unwrap();
            panic!("the run never started its pair");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = merge(&p, "D", &["s1"]);
    std::fs::write(&go, "").unwrap();
    let ended = running.wait().unwrap();
    refused(
        &p,
        &out,
        "is being run right now: merge it once its run has ended",
    );
    assert_eq!(ended.code(), Some(0));
    // Once it has ended, it merges.
    merge(&p, "D", &["s1"]).expect_code(0);
}

#[test]
fn a_missing_shard_and_its_pairs_are_named_and_the_merge_is_not_green() {
    let p = suite();
    for k in 1..=3 {
        shard(&p, k, 3).expect_code(0);
    }
    // The shard with the most pairs goes missing.
    let k = (1..=3)
        .max_by_key(|&k| pairs_of_shard(&p, k).len())
        .unwrap();
    let gone = pairs_of_shard(&p, k);
    assert!(!gone.is_empty());
    let given: Vec<String> = (1..=3)
        .filter(|&j| j != k)
        .map(|j| format!("s{j}"))
        .collect();
    let given: Vec<&str> = given.iter().map(String::as_str).collect();
    let out = merge(&p, "M", &given);
    out.expect_code(2);
    let err = out.stderr();
    assert!(err.contains(&format!("shard {k} of 3 missing")), "{err}");
    for id in &gone {
        assert!(err.contains(id.as_str()), "{id}: {err}");
    }
    assert!(out.stdout().contains("INCOMPLETE"), "{}", out.stdout());
    // The merged tag holds what there is, and shows the rest as not run.
    let m = p.path().join("results/M");
    assert_eq!(read_csv(&m.join("results.csv")).len(), 12 - gone.len());
    let summary = std::fs::read_to_string(m.join("summary.md")).unwrap();
    assert!(
        summary.contains(&format!("{} not run", gone.len())),
        "{summary}"
    );
    let run = run_json(&m);
    assert_eq!(run["merged"]["missing_shards"], serde_json::json!([k]));
}

#[test]
fn a_failed_pair_in_one_shard_makes_the_merge_exit_1() {
    let p = suite();
    p.bash("g/local/l2", "exit 3");
    let mut codes = Vec::new();
    for k in 1..=2 {
        codes.push(shard(&p, k, 2).code());
    }
    assert!(codes.contains(&1), "{codes:?}");
    let out = merge(&p, "M", &["s1", "s2"]);
    out.expect_code(1);
    let rows = read_csv(&p.path().join("results/M/results.csv"));
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r["status"] == "FAILED")
        .map(|r| r["pair"].as_str())
        .collect();
    assert_eq!(failed, ["l2_x_r1", "l2_x_r2"]);
}

#[test]
fn links_in_a_shard_are_never_followed() {
    let p = suite();
    let outside = p.path().join("outside");
    std::fs::create_dir_all(outside.join("fake_x_pair/local")).unwrap();
    std::fs::create_dir_all(outside.join("fake_x_pair/remote")).unwrap();
    std::fs::write(outside.join("fake_x_pair/SUCCESS"), "SUCCESS\n").unwrap();
    std::fs::write(outside.join("secret"), "SECRET-CONTENT").unwrap();
    // A script leaves links in its folder: they stay links.
    p.bash(
        "g/local/l1",
        &format!("ln -s {0}/secret leak\nln -s {0} updir", outside.display()),
    );
    shard(&p, 1, 1).expect_code(0);
    let t = p.path().join("s1/T");
    // Links planted in the shard's tree after its run.
    std::os::unix::fs::symlink(&outside, t.join("g/planted")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), t.join("g/notes.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, t.join("linked group")).unwrap();
    let out = merge(&p, "M", &["s1"]);
    out.expect_code(0);
    assert!(out.stderr().contains("not copied"), "{}", out.stderr());
    let m = p.path().join("results/M");
    for l in ["leak", "updir"] {
        for r in ["r1", "r2"] {
            let at = m.join(format!("g/l1_x_{r}/local/{l}"));
            assert!(
                std::fs::symlink_metadata(&at)
                    .unwrap()
                    .file_type()
                    .is_symlink(),
                "{}",
                at.display()
            );
        }
    }
    for planted in ["g/planted", "g/notes.txt", "linked group"] {
        assert!(
            std::fs::symlink_metadata(m.join(planted)).is_err(),
            "{planted}"
        );
    }
    // Nothing of what the links point at was read into the merged tree.
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![m.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                files.push(e.path());
            }
        }
    }
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("SECRET-CONTENT"),
            "{}",
            f.display()
        );
    }
    assert_eq!(read_csv(&m.join("results.csv")).len(), 12);
}

#[test]
fn each_hosts_remote_hook_logs_of_each_shard_are_kept() {
    let Some(a) = sshd::Sshd::start() else { return };
    let Some(b) = sshd::Sshd::start() else { return };
    sshd::one_client(&[&a, &b]);
    let p = Project::new();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("merge-remote-work");
    let entry = |name: &str, s: &sshd::Sshd| {
        format!(
            "[[remote]]\nname = \"{name}\"\nhost = \"{}\"\nuser = \"{}\"\nport = {}\nidentity_file = \"~/.ssh/id_ed25519\"\nworkdir = \"{}\"\n",
            s.host,
            s.user,
            s.port,
            work.display()
        )
    };
    std::fs::write(
        p.path().join("pairbench.toml"),
        format!("{}{}", entry("a", &a), entry("b", &b)),
    )
    .unwrap();
    p.bash(
        "g/before_first_test_remote",
        "echo \"before on $REMOTE_PORT\"",
    );
    for l in ["l1", "l2", "l3", "l4", "l5", "l6"] {
        p.bash(&format!("g/local/{l}"), "sleep 0.3");
    }
    p.bash("g/remote/r", "exec sleep 60");
    let run = |args: &[&str]| {
        let mut cmd = p.cmd();
        a.client(&mut cmd);
        let out = cmd.args(args).output().unwrap();
        common::Run {
            out,
            project_dir: p.path().to_path_buf(),
        }
    };
    let pool = [
        "--remote",
        "a",
        "--remote",
        "b",
        "-j",
        "2",
        "--progress",
        "never",
    ];
    // The agent is uploaded first, so that both hosts are ready at once.
    let mut warm = vec!["run", "--tag", "warm"];
    warm.extend(pool);
    run(&warm).expect_code(0);
    for k in 1..=2 {
        let (shard, out) = (format!("{k}/2"), format!("s{k}"));
        let mut args = vec!["run", "--shard", &shard, "--tag", "T", "-o", &out];
        args.extend(pool);
        run(&args).expect_code(0);
    }
    run(&["merge", "-o", "results", "--tag", "M", "s1", "s2"]).expect_code(0);
    let merged = p.path().join("results/M/g/hooks/before_first_test_remote");
    let mut kept = 0;
    for k in 1..=2 {
        let hook = p
            .path()
            .join(format!("s{k}/T/g/hooks/before_first_test_remote"));
        let Ok(hosts) = std::fs::read_dir(&hook) else {
            continue;
        };
        for h in hosts.flatten() {
            let host = h.file_name().to_string_lossy().into_owned();
            let want = std::fs::read_to_string(h.path().join("stdout")).unwrap();
            let at = merged.join(format!("shard-{k}-{host}"));
            let got = std::fs::read_to_string(at.join("stdout"))
                .unwrap_or_else(|e| panic!("{}: {e}", at.display()));
            assert_eq!(got, want);
            assert_eq!(
                std::fs::read_to_string(at.join("exit_code"))
                    .unwrap()
                    .trim(),
                "0"
            );
            kept += 1;
        }
    }
    assert!(
        kept >= 2,
        "both shards ran the hook on their hosts ({kept})"
    );
    // The page lists each shard's host's hook.
    let page = std::fs::read_to_string(p.path().join("results/M/index.html")).unwrap();
    assert!(
        page.contains("before_first_test_remote on shard-"),
        "{page}"
    );
}
