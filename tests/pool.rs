//! A pool of SSH hosts starts in parallel: every host connects and is prepared at the
//! same time, a host takes pairs as soon as it is ready (a slow one holds up nobody), and
//! the remote hooks of the hosts run at the same time. Real sshd's (common/sshd.rs).

mod common;
#[path = "common/sshd.rs"]
mod sshd;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Project;
use sshd::Sshd;

/// A `[[remote]]` entry for `s`, with its agent cached in the build's temporary folder
/// (`work`: one per test, so no two tests upload a new build into one folder at once).
fn entry(name: &str, s: &Sshd, work: &str) -> String {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(work);
    format!(
        "[[remote]]\nname = \"{name}\"\nhost = \"{}\"\nuser = \"{}\"\nport = {}\nidentity_file = \"~/.ssh/id_ed25519\"\nworkdir = \"{}\"\n",
        s.host,
        s.user,
        s.port,
        work.display()
    )
}

fn run(p: &Project, s: &Sshd, args: &[&str]) -> common::Run {
    p.run_with(|c| s.client(c), args)
}

/// The agent is uploaded first (once per build): a host still uploading is not ready,
/// and its pairs would go to another. A run of a trivial group over `remotes` first.
fn warm_up(p: &Project, s: &Sshd, remotes: &[&str]) {
    p.bash("warm/local/l", "true");
    p.bash("warm/remote/r", "true");
    let mut args = vec!["run", "--progress", "never", "--tag", "warm", "-j", "2"];
    for r in remotes {
        args.extend(["--remote", r]);
    }
    args.push("warm");
    run(p, s, &args).expect_code(0);
}

fn time_of(rfc3339: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap()
}

#[test]
fn a_host_slow_to_connect_holds_up_no_pair_of_the_others() {
    let Some(a) = Sshd::start() else { return };
    a.trust();
    // Accepts and never speaks SSH: down only when --connect-timeout has passed.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = mute.incoming().take(1).flatten().collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(conns);
    });
    let p = Project::new();
    std::fs::write(
        p.path().join("pairbench.toml"),
        format!(
            "[[remote]]\nname = \"mute\"\nhost = \"127.0.0.1\"\nport = {mute_port}\n{}",
            entry("a", &a, "pool-remote-work-slow")
        ),
    )
    .unwrap();
    for l in ["l1", "l2", "l3"] {
        p.bash(&format!("g1/local/{l}"), "sleep 0.2");
    }
    p.bash("g1/remote/r", "exec sleep 60");
    // A later group's local hook sees the first host that is up as the remote.
    p.bash("g2/local/l", "true");
    p.bash("g2/remote/r", "true");
    p.bash(
        "g2/before_first_test_local",
        "echo \"remote=$REMOTE_HOST:$REMOTE_PORT\"",
    );
    // The agent is uploaded first (once per build), so what is timed is the run.
    run(
        &p,
        &a,
        &[
            "run",
            "--progress",
            "never",
            "--tag",
            "warm",
            "--remote",
            "a",
            "g2",
        ],
    )
    .expect_code(0);
    let started = Instant::now();
    let r = run(
        &p,
        &a,
        &[
            "run",
            "--progress",
            "never",
            "--tag",
            "timed",
            "--connect-timeout",
            "10s",
            "-j",
            "2",
            "--remote",
            "mute",
            "--remote",
            "a",
        ],
    );
    r.expect_code(0);
    assert!(
        started.elapsed() >= Duration::from_secs(10),
        "the mute host was given its time"
    );
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.latest().join("run.json")).unwrap())
            .unwrap();
    let run_start = time_of(run_json["started_at"].as_str().unwrap());
    let rows = p.results_csv();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for row in rows.iter().filter(|r| r["group"] == "g1") {
        assert_eq!(row["remote_host"], "a", "{row:?}");
        let after = time_of(&row["started_at"]) - run_start;
        // Well before the mute host was given up on (10 s): pairs did not wait for it.
        assert!(
            after < chrono::Duration::seconds(6),
            "{} started {after} after the run",
            row["pair"]
        );
    }
    let hook = std::fs::read_to_string(p.latest().join("g2/hooks/before_first_test_local/stdout"))
        .unwrap();
    assert_eq!(hook.trim(), format!("remote=127.0.0.1:{}", a.port));
    assert!(r.stderr().contains("no SSH handshake"), "{}", r.stderr());
    drop(held);
}

/// `(start, end)` of each line `start END port` written by the hooks.
fn spans(log: &str, what: &str) -> Vec<(f64, f64, String)> {
    log.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[0] == what).then(|| {
                (
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].to_string(),
                )
            })
        })
        .collect()
}

#[test]
fn remote_hooks_of_the_hosts_run_at_the_same_time() {
    let Some(a) = Sshd::start() else { return };
    let Some(b) = Sshd::start() else { return };
    sshd::one_client(&[&a, &b]);
    let p = Project::new();
    std::fs::write(
        p.path().join("pairbench.toml"),
        format!(
            "{}{}",
            entry("a", &a, "pool-remote-work-hooks"),
            entry("b", &b, "pool-remote-work-hooks")
        ),
    )
    .unwrap();
    let log = p.path().join("hooks.log");
    // Hosts are on this machine: the hooks append to one log, in one write each.
    let hook = |what: &str| {
        format!(
            "s=$(date +%s.%N); sleep 1.5; echo \"{what} $s $(date +%s.%N) $REMOTE_PORT\" >> \"$HOOK_LOG\""
        )
    };
    p.bash("g/before_first_test_remote", &hook("before"));
    p.bash("g/after_last_test_remote", &hook("after"));
    for l in ["l1", "l2"] {
        p.bash(&format!("g/local/{l}"), "sleep 0.2");
    }
    p.bash("g/remote/r", "exec sleep 60");
    warm_up(&p, &a, &["a", "b"]);
    let r = run(
        &p,
        &a,
        &[
            "run",
            "--progress",
            "never",
            "--tag",
            "timed",
            "-j",
            "2",
            "--remote",
            "a",
            "--remote",
            "b",
            "--env",
            &format!("HOOK_LOG={}", log.display()),
            "g",
        ],
    );
    r.expect_code(0);
    let text = std::fs::read_to_string(&log).unwrap();
    for what in ["before", "after"] {
        let s = spans(&text, what);
        assert_eq!(s.len(), 2, "{what} once per host:\n{text}");
        let mut ports: Vec<&str> = s.iter().map(|x| x.2.as_str()).collect();
        ports.sort();
        let mut want = [a.port.to_string(), b.port.to_string()];
        want.sort();
        assert_eq!(ports, want, "{text}");
        // One after another they could not overlap: each sleeps 1.5 s.
        let overlap = s[0].1.min(s[1].1) - s[0].0.max(s[1].0);
        assert!(overlap > 0.0, "{what} hooks ran one after another:\n{text}");
    }
    let rows = p.results_csv();
    assert_eq!(rows.len(), 2);
    let hosts: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["remote_host"].as_str()).collect();
    assert_eq!(hosts.len(), 2, "each host took a pair: {rows:?}");
    // Each host's hook keeps its own logs and exit code, and the page lists both.
    let hooks = p.path().join("results/timed/g/hooks");
    for host in ["a", "b"] {
        for what in ["before_first_test_remote", "after_last_test_remote"] {
            let code = std::fs::read_to_string(hooks.join(what).join(host).join("exit_code"))
                .unwrap_or_else(|e| panic!("{what} on {host}: {e}"));
            assert_eq!(code.trim(), "0", "{what} on {host}");
        }
    }
    let page = std::fs::read_to_string(p.path().join("results/timed/index.html")).unwrap();
    for host in ["a", "b"] {
        assert!(
            page.contains(&format!("after_last_test_remote on {host}")),
            "the page lists the hook on {host}"
        );
    }
}

#[test]
fn a_host_given_twice_keeps_both_hook_logs() {
    let Some(a) = Sshd::start() else { return };
    sshd::one_client(&[&a]);
    let p = Project::new();
    std::fs::write(
        p.path().join("pairbench.toml"),
        entry("a", &a, "pool-twice-hooks"),
    )
    .unwrap();
    p.bash("g/before_first_test_remote", "echo before");
    // Each pair holds its host a while: the second pair goes to the other slot.
    p.bash("g/local/l1", "sleep 1");
    p.bash("g/local/l2", "sleep 1");
    p.bash("g/remote/r", "true");
    warm_up(&p, &a, &["a"]);
    let r = run(
        &p,
        &a,
        &[
            "run",
            "--progress",
            "never",
            "--tag",
            "twice",
            "-j",
            "2",
            "--remote",
            "a",
            "--remote",
            "a",
            "g",
        ],
    );
    r.expect_code(0);
    let hooks = p
        .path()
        .join("results/twice/g/hooks/before_first_test_remote");
    let mut folders: Vec<String> = std::fs::read_dir(&hooks)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    assert_eq!(folders, ["a", "a-2"], "one folder per host given");
    for f in &folders {
        assert_eq!(
            std::fs::read_to_string(hooks.join(f).join("stdout"))
                .unwrap()
                .trim(),
            "before",
            "{f}"
        );
    }
}
