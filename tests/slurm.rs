//! `pairbench slurm`: the script quotes what reaches a shell and chains a merge job after
//! the shards; against a real single-node Slurm (common/slurm.rs) a submit runs every
//! shard as an array task into its own results folder, and the shards' trees together
//! hold exactly the pairs of a plain run; with `--nodes 2` a task's second node is its
//! remote host.

mod common;
#[path = "common/slurm.rs"]
mod slurm;
#[path = "common/sshd.rs"]
mod sshd;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::Project;

/// A small suite: 7 pairs in two groups, one of them with awkward names.
fn suite() -> Project {
    let p = Project::new();
    for l in ["l1", "l2", "l3"] {
        p.bash(&format!("g/local/{l}"), "true");
    }
    for r in ["r1", "r2"] {
        p.bash(&format!("g/remote/{r}"), "echo \"$REMOTE_HOST\"");
    }
    p.bash("odd group/local/it's", "true");
    p.bash("odd group/remote/$HOME x", "true");
    p
}

/// `(group, pair)` of every row of the results.csv files under `trees`.
fn pairs_of(trees: &[std::path::PathBuf]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in trees {
        for row in common::read_csv(&t.join("results.csv")) {
            out.push((row["group"].clone(), row["pair"].clone()));
        }
    }
    out.sort();
    out
}

/// `pairbench slurm script ARGS` in `p`: the script it prints.
fn script_of(p: &Project, args: &[&str]) -> String {
    let out = p
        .cmd()
        .args(["slurm", "script"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_script_quotes_everything_and_chains_the_merge_after_the_shards() {
    let p = suite();
    let script = script_of(
        &p,
        &[
            "--shards",
            "4",
            "--tag",
            "night ly",
            "--sbatch=--partition=lab",
            "--",
            "--env",
            "X=$(rm -rf /) 'q'",
            "odd group",
        ],
    );
    let root = std::fs::canonicalize(p.path()).unwrap();
    let results = root.join("results");
    for want in [
        "'--array=1-4'",
        "'--partition=lab'",
        "--dependency=afterany:\"$array\"",
        "run --shard \"$shard/4\" --tag 'night ly'",
    ] {
        assert!(script.contains(want), "{want} in:\n{script}");
    }
    // The shard's command line, as bash hands it to pairbench: every word intact.
    let exec = script
        .lines()
        .find(|l| l.starts_with("exec ") && l.contains(" run "))
        .expect("the shard's exec line");
    let words = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "remote=(); shard=2; printf '%s\\n' {}",
            exec.trim_start_matches("exec ")
        ))
        .output()
        .unwrap();
    let words: Vec<String> = String::from_utf8(words.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let tail: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "run",
            "--shard",
            "2/4",
            "--tag",
            "night ly",
            "--results-dir",
            &format!("{}/.shards/night ly/2", results.display()),
            "--env",
            "X=$(rm -rf /) 'q'",
            "odd group"
        ]
    );
    let trees: Vec<String> = (1..=4)
        .map(|k| format!("'{}/.shards/night ly/{k}/night ly'", results.display()))
        .collect();
    assert!(
        script.contains(&format!(
            "merge -o {} --tag 'night ly' {}",
            results.display(),
            trees.join(" ")
        )),
        "{script}"
    );
    // bash reads it as it is written.
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    for (args, want) in [
        (
            vec!["--shards", "2", "--", "--tag", "x"],
            "pairbench slurm --tag T",
        ),
        (
            vec!["--shards", "2", "--", "--shard", "1/2"],
            "--shard is set by",
        ),
        (
            vec!["--shards", "2", "--", "-o", "r"],
            "pairbench slurm -o DIR",
        ),
        (vec!["--shards", "0"], "bad --shards 0"),
        (vec!["--shards", "2", "--nodes", "3"], "bad --nodes 3"),
        (
            vec!["--shards", "2", "--nodes", "2", "--", "--remote", "h"],
            "second node is its remote host",
        ),
        (
            vec!["--shards", "2", "--", "--bogus"],
            "not valid for `pairbench run`",
        ),
        (vec!["--shards", "2", "--tag", "a/b"], "bad tag"),
    ] {
        let mut all = vec!["slurm", "script"];
        all.extend(args.iter());
        let out = p.cmd().args(&all).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {err}");
        assert!(err.contains(want), "{all:?}: {err}");
        assert!(out.stdout.is_empty(), "{all:?}");
    }
}

#[test]
fn a_submit_runs_each_shard_as_an_array_task_and_the_shards_hold_a_plain_runs_pairs() {
    let Some(s) = slurm::Slurm::start() else {
        return;
    };
    let p = suite();
    p.run(&["run", "--progress", "never", "--tag", "plain"])
        .expect_code(0);
    let plain = pairs_of(&[p.path().join("results/plain")]);
    assert_eq!(plain.len(), 7);

    let slurm_cmd = |args: &[&str]| {
        let mut c = p.cmd();
        c.env("SLURM_CONF", &s.conf).args(args);
        c.output().unwrap()
    };
    // `submit` submits; `script` prints the same submission for bash to run.
    let out = slurm_cmd(&[
        "slurm",
        "submit",
        "--shards",
        "3",
        "--tag",
        "sub",
        "--",
        "--progress",
        "never",
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("submitted 3 shards as job array"), "{said}");
    let out = slurm_cmd(&[
        "slurm",
        "script",
        "--shards",
        "2",
        "--tag",
        "scr",
        "--",
        "--progress",
        "never",
    ]);
    assert!(out.status.success());
    let script = p.path().join("submit.sh");
    std::fs::write(&script, &out.stdout).unwrap();
    let ran = std::process::Command::new("bash")
        .arg(&script)
        .current_dir(p.path())
        .env("SLURM_CONF", &s.conf)
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(String::from_utf8_lossy(&ran.stdout).contains("submitted 2 shards"));
    s.wait_idle(Duration::from_secs(240));

    for (tag, n) in [("sub", 3), ("scr", 2)] {
        let root = p.path().join("results/.shards").join(tag);
        let trees: Vec<_> = (1..=n)
            .map(|k| root.join(k.to_string()).join(tag))
            .collect();
        for (k, t) in trees.iter().enumerate() {
            let manifest = std::fs::read_to_string(t.join("run.json"))
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", t.display(), s.logs()));
            assert!(
                manifest.contains(&format!("{}/{n}", k + 1)),
                "shard {} of {n}: {manifest}",
                k + 1
            );
        }
        // Together exactly the plain run's pairs: none missing, none twice.
        assert_eq!(pairs_of(&trees), plain, "tag {tag}");
        // The merge job ran after the shards (its command comes with `pairbench merge`).
        let merge_out = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("slurm-merge-"));
        assert!(merge_out, "no merge job output in {}", root.display());
    }
}

#[test]
fn with_two_nodes_a_task_uses_its_second_node_as_the_remote_host() {
    let Some(s) = slurm::Slurm::start() else {
        return;
    };
    let Some(ssh) = sshd::Sshd::start() else {
        return;
    };
    ssh.trust();
    let p = suite();
    // The second node, `box2`, is this machine's sshd, with a work folder of its own.
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("slurm-remote-work");
    std::fs::write(
        p.path().join("pairbench.toml"),
        format!(
            "[[remote]]\nname = \"box2\"\nhost = \"{}\"\nport = {}\nuser = \"{}\"\nworkdir = \"{}\"\n",
            ssh.host,
            ssh.port,
            ssh.user,
            work.display()
        ),
    )
    .unwrap();
    let script = script_of(
        &p,
        &[
            "--shards",
            "1",
            "--nodes",
            "2",
            "--tag",
            "two",
            "--",
            "--progress",
            "never",
            "g",
        ],
    );
    assert!(script.contains("'--nodes=2'"), "{script}");
    // The array task's own script, run as Slurm runs it on the first node of two.
    let job = script
        .split("<<'PAIRBENCH_SHARD_JOB'\n")
        .nth(1)
        .and_then(|rest| rest.split("PAIRBENCH_SHARD_JOB\n").next())
        .expect("the shard job script");
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(job)
        .current_dir(p.path())
        .env("SLURM_CONF", &s.conf)
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_JOB_NODELIST", format!("{},box2", s.node));
    ssh.client(&mut cmd);
    let ran = cmd.output().unwrap();
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    let tree = p.path().join("results/.shards/two/1/two");
    let rows = common::read_csv(&tree.join("results.csv"));
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["remote_host"] == "box2"), "{rows:?}");
    let out = std::fs::read_to_string(tree.join("g/l1_x_r1/remote/stdout")).unwrap();
    assert_eq!(out.trim(), ssh.host);
    // One node only: the task says so instead of running without its remote host.
    let ran = std::process::Command::new("bash")
        .arg("-c")
        .arg(job)
        .current_dir(p.path())
        .env("SLURM_CONF", &s.conf)
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_JOB_NODELIST", &s.node)
        .output()
        .unwrap();
    assert_eq!(ran.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ran.stderr).contains("not two: submit with --nodes 2"));
}

#[test]
fn a_slurm_submit_ends_in_one_merged_tag_equal_to_a_plain_run() {
    let Some(s) = slurm::Slurm::start() else {
        return;
    };
    let p = suite();
    p.run(&["run", "--progress", "never", "--tag", "plain"])
        .expect_code(0);
    let out = p
        .cmd()
        .env("SLURM_CONF", &s.conf)
        .args([
            "slurm",
            "submit",
            "--shards",
            "4",
            "--tag",
            "merged",
            "--",
            "--progress",
            "never",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    s.wait_idle(Duration::from_secs(240));
    let merged: BTreeSet<_> = pairs_of(&[p.path().join("results/merged")])
        .into_iter()
        .collect();
    let plain: BTreeSet<_> = pairs_of(&[p.path().join("results/plain")])
        .into_iter()
        .collect();
    assert_eq!(merged, plain);
    let statuses = |tag: &str| -> BTreeSet<(String, String, String)> {
        common::read_csv(&p.path().join("results").join(tag).join("results.csv"))
            .into_iter()
            .map(|r| (r["group"].clone(), r["pair"].clone(), r["status"].clone()))
            .collect()
    };
    assert_eq!(statuses("merged"), statuses("plain"));
    // The merge job folded all four shards, and said so.
    let run: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.path().join("results/merged/run.json")).unwrap(),
    )
    .unwrap();
    let ks: Vec<u64> = run["merged"]["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["shard"]["k"].as_u64().unwrap())
        .collect();
    assert_eq!(ks, [1, 2, 3, 4], "{run}");
    let root = p.path().join("results/.shards/merged");
    let said: String = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("slurm-merge-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(
        said.contains("merged 4 trees (1/4, 2/4, 3/4, 4/4)"),
        "{said}"
    );
    assert!(!said.contains("INCOMPLETE"), "{said}");
    p.run(&["report", "merged"]).expect_code(0);
}
