//! Containment (docs/containment.md): every process a pair or hook started, on both
//! sides, is gone when the pair is recorded, whatever it did to escape — `env -i`,
//! `setsid`, `nohup`, double forks, re-parenting itself over and over, a fork storm,
//! ignoring SIGHUP and SIGTERM — under cgroups and under the sweep; a killed pairbench
//! leaves nothing running and the next run says what it cleaned; a second Ctrl-C ends
//! everything at once; group.toml and --stop-signal choose the first signal; durations
//! that would overflow are refused up front.
//!
//! Survivors are found by a token in their command line (`exec -a TOKEN sleep`), since
//! `env -i` clears the environment.

mod common;
#[path = "common/sshd.rs"]
mod sshd;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Project, eventually, processes_with_cmdline, token};

fn required() -> bool {
    std::env::var("PAIRBENCH_REQUIRE_SSHD").is_ok_and(|v| v == "1")
        || std::env::var_os("CI").is_some()
}

/// Can this process make a cgroup v2 child of its own cgroup? (Where not, cgroup tests
/// skip loudly, and never in CI.)
fn cgroup2_usable() -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mount = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(str::to_string))?
    });
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string));
    let ok = match (mount, own) {
        (Some(m), Some(o)) => {
            let probe = Path::new(&m)
                .join(o.trim_start_matches('/'))
                .join(format!("pbprobe-{}", std::process::id()));
            let made = std::fs::create_dir(&probe).is_ok() && probe.join("cgroup.kill").exists();
            let _ = std::fs::remove_dir(&probe);
            made
        }
        _ => false,
    };
    if !ok {
        let msg = "CGROUP v2 TEST SKIPPED: no writable cgroup v2 with cgroup.kill here (run as root on Linux 5.14+, or in a delegated cgroup)";
        if required() {
            panic!("{msg} (CI forbids skipping)");
        }
        eprintln!("\n!!!!!!!!!! {msg} !!!!!!!!!!\n");
    }
    ok
}

/// The methods to test here: the sweep always, cgroup2 where it can be used.
fn methods() -> Vec<&'static str> {
    let mut m = vec!["sweep"];
    if cgroup2_usable() {
        m.insert(0, "cgroup2");
    }
    m
}

/// `pairbench ARGS` with containment `method`.
fn run_with(p: &Project, method: &str, args: &[&str]) -> common::Run {
    let out = p
        .cmd()
        .env("PAIRBENCH_CONTAINMENT", method)
        .args(args)
        .output()
        .expect("run pairbench");
    common::Run {
        out,
        project_dir: p.path().to_path_buf(),
    }
}

fn manifest(p: &Project) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p.latest().join("run.json")).unwrap()).unwrap()
}

/// Daemons in every way a script can start them, all named `$TOKEN` in argv and all
/// deaf to SIGHUP and SIGTERM.
const DAEMONS: &str = r#"
env -i setsid nohup bash -c "trap '' HUP TERM; exec -a $TOKEN sleep 600" </dev/null >/dev/null 2>&1 &
( ( env -i bash -c "trap '' HUP TERM; exec -a $TOKEN sleep 601" </dev/null >/dev/null 2>&1 & ) & )
nohup bash -c "trap '' HUP TERM; exec -a $TOKEN sleep 602" </dev/null >/dev/null 2>&1 &
bash -c "(trap '' HUP TERM; setsid bash -c 'exec -a $TOKEN sleep 603' </dev/null >/dev/null 2>&1 &) &"
"#;

/// A local test: wait until the remote test said `ready`, then count the live token
/// processes into `seen`.
const WAIT_READY_AND_COUNT: &str = r#"
for i in $(seq 400); do grep -q ready "$REMOTE_RESULTS_PATH/stdout" 2>/dev/null && break; sleep 0.05; done
sleep 0.3
pgrep -fc -- "$TOKEN" > seen
"#;

fn seen(p: &Project, pair: &str) -> usize {
    p.pair("g", pair).read("local/seen").trim().parse().unwrap()
}

fn assert_none_left(tok: &str) {
    let left = processes_with_cmdline(tok);
    assert!(
        eventually(Duration::from_secs(3), || processes_with_cmdline(tok)
            .is_empty()),
        "left running: {left:?}"
    );
}

#[test]
fn detached_deaf_daemons_of_both_sides_are_gone_under_each_method() {
    for method in methods() {
        let p = Project::new();
        let tok = token("daemons");
        p.bash(
            "g/local/l",
            &format!("{DAEMONS}\n{WAIT_READY_AND_COUNT}\ncat /proc/self/cgroup > cgroup"),
        );
        p.bash(
            "g/remote/r",
            &format!("{DAEMONS}\ntrap '' HUP TERM\necho ready\nexec -a $TOKEN sleep 600"),
        );
        let env = format!("TOKEN={tok}");
        run_with(&p, method, &["run", "--kill-grace", "200ms", "--env", &env]).expect_code(0);
        let pair = p.pair("g", "l_x_r");
        assert_eq!(pair.status(), "SUCCESS", "{method}: {}", pair.reason());
        assert!(
            pair.reason().contains("remote terminated by SIGKILL"),
            "{method}: {}",
            pair.reason()
        );
        assert!(
            seen(&p, "l_x_r") >= 9,
            "{method}: the daemons ran during the pair ({})",
            seen(&p, "l_x_r")
        );
        assert_none_left(&tok);
        let m = manifest(&p);
        assert_eq!(m["containment"]["method"], method, "{m}");
        let cg = pair.read("local/cgroup");
        if method == "cgroup2" {
            let at = m["containment"]["at"].as_str().unwrap();
            assert!(at.contains("/pairbench/pb-"), "{at}");
            assert!(
                cg.contains("/pairbench/pb-"),
                "the local test ran in its side's cgroup: {cg}"
            );
            assert!(!Path::new(at).exists(), "the run's cgroup is removed: {at}");
            assert!(
                m["hosts"][0]["containment"]
                    .as_str()
                    .unwrap()
                    .starts_with("cgroup2 at "),
                "{m}"
            );
        } else {
            assert_eq!(
                m["containment"]["why"], "PAIRBENCH_CONTAINMENT=sweep",
                "{m}"
            );
            assert!(!cg.contains("/pairbench/"), "{cg}");
        }
    }
}

#[test]
fn a_fork_storm_and_a_script_that_keeps_reparenting_itself_leave_nothing() {
    // `jump N`: starts its successor detached (env -i, setsid), then exits; the last one
    // stays. While the pair runs the chain is still hopping.
    let jump = r#"#!/usr/bin/env bash
n=$1; t=$2
if [ "$n" -gt 0 ]; then
  ( env -i setsid bash "$0" $((n-1)) "$t" </dev/null >/dev/null 2>&1 & )
  exec -a "$t" sleep 0.03
fi
exec -a "$t" sleep 600
"#;
    for method in methods() {
        let p = Project::new();
        let tok = token("storm");
        p.script("g/jump", jump);
        p.bash("g/local/l", WAIT_READY_AND_COUNT);
        p.bash(
            "g/remote/storm",
            "for i in $(seq 200); do ( trap '' HUP TERM; exec -a $TOKEN sleep 600 ) & done\necho ready\nwait",
        );
        p.bash(
            "g/remote/hopper",
            "bash \"$PAIRBENCH_GROUP_DIR/jump\" 1000 \"$TOKEN\" &\nsleep 0.5\necho ready\nsleep 600",
        );
        let env = format!("TOKEN={tok}");
        run_with(&p, method, &["run", "--kill-grace", "200ms", "--env", &env]).expect_code(0);
        assert!(
            seen(&p, "l_x_storm") >= 200,
            "{method}: {}",
            seen(&p, "l_x_storm")
        );
        assert!(seen(&p, "l_x_hopper") >= 1, "{method}: the hopper hopped");
        eprintln!("checking {method}");
        assert_none_left(&tok);
    }
}

/// Start `pairbench run ARGS` in the background, with its stderr in `err`.
fn spawn_run(
    p: &Project,
    method: &str,
    args: &[&str],
    tmp: Option<&Path>,
    err: &Path,
) -> std::process::Child {
    let mut c = p.cmd();
    c.env("PAIRBENCH_CONTAINMENT", method)
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(err).unwrap());
    if let Some(t) = tmp {
        c.env("TMPDIR", t);
    }
    c.spawn().unwrap()
}

fn kill9(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// The keeper of run `pid`: its child whose command line says `keeper`.
fn keeper_of(pid: u32) -> Option<u32> {
    std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
        let c: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{c}/stat")).ok()?;
        let ppid: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        let cmd = std::fs::read(format!("/proc/{c}/cmdline")).ok()?;
        (ppid == pid && cmd.split(|&b| b == 0).any(|a| a == b"keeper")).then_some(c)
    })
}

/// Once both sides and their daemons run, kill -9 `child` (pairbench): nothing of the
/// run may be left 5 s later.
fn kill9_mid_run(child: &mut std::process::Child, tok: &str, what: &str) {
    assert!(
        eventually(Duration::from_secs(60), || processes_with_cmdline(tok)
            .len()
            >= 10),
        "{what}: both sides and their daemons started"
    );
    let killed = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(5), || processes_with_cmdline(tok)
            .is_empty()),
        "{what}: left running 5 s after kill -9: {:?}",
        processes_with_cmdline(tok)
    );
    eprintln!("{what}: nothing left {:?} after kill -9", killed.elapsed());
}

fn slow_pair(p: &Project) {
    p.bash(
        "g/local/l",
        &format!("{DAEMONS}\necho ready > ready\nexec -a $TOKEN sleep 600"),
    );
    p.bash(
        "g/remote/r",
        &format!("{DAEMONS}\necho ready\nexec -a $TOKEN sleep 600"),
    );
}

#[test]
fn a_killed_pairbench_leaves_nothing_running_and_the_next_run_says_what_it_cleaned() {
    for method in methods() {
        let p = Project::new();
        let tok = token("kill9");
        slow_pair(&p);
        let env = format!("TOKEN={tok}");
        let err = p.path().join("err1");
        let mut child = spawn_run(
            &p,
            method,
            &["run", "--tag", "t", "--env", &env],
            None,
            &err,
        );
        kill9_mid_run(&mut child, &tok, method);
        assert!(
            eventually(Duration::from_secs(10), || std::fs::read_to_string(&err)
                .unwrap()
                .contains("its keeper ended")),
            "{method}: {}",
            std::fs::read_to_string(&err).unwrap()
        );
        let r = run_with(
            &p,
            method,
            &["run", "--tag", "t", "--env", &env, "-f", "none"],
        );
        assert!(
            r.stderr()
                .contains("removed 1 unfinished pair folders and temporary files (.partial, .old, .tmp) of tag 't'"),
            "{method}: {}",
            r.stderr()
        );
        let partials = walkdir::WalkDir::new(p.path().join("results"))
            .into_iter()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .count();
        assert_eq!(partials, 0);
    }
}

#[test]
fn when_pairbench_and_its_keeper_are_killed_the_next_run_ends_and_removes_what_they_left() {
    // Only cgroups name env -i daemons after both are gone (docs/containment.md).
    if !cgroup2_usable() {
        return;
    }
    let p = Project::new();
    let tmp = tempfile::tempdir().unwrap();
    let tok = token("keeper");
    slow_pair(&p);
    let env = format!("TOKEN={tok}");
    let err = p.path().join("err1");
    let mut child = spawn_run(
        &p,
        "cgroup2",
        &["run", "--env", &env],
        Some(tmp.path()),
        &err,
    );
    assert!(eventually(
        Duration::from_secs(30),
        || processes_with_cmdline(&tok).len() >= 10
    ));
    let keeper = keeper_of(child.id()).expect("the run has a keeper");
    kill9(keeper);
    child.kill().unwrap();
    child.wait().unwrap();
    // (Another test's run may clean the run's cgroup first; the control folder is ours.)
    let control: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
    assert_eq!(control.len(), 1, "the control folder is left: {control:?}");
    let out = p
        .cmd()
        .env("TMPDIR", tmp.path())
        .args(["run", "-f", "none"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    let line = said
        .lines()
        .find(|l| l.contains("cleaned up after"))
        .unwrap_or_else(|| panic!("no cleaning line: {said}"));
    assert!(line.contains(&format!("pid {}", child.id())), "{line}");
    assert!(
        line.contains(&control[0].path().display().to_string()),
        "{line}"
    );
    assert_none_left(&tok);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn a_second_ctrl_c_ends_everything_at_once_and_leaves_no_partial_folder() {
    for method in methods() {
        let p = Project::new();
        let tok = token("ctrlc");
        slow_pair(&p);
        let env = format!("TOKEN={tok}");
        let err = p.path().join("err");
        // A long grace: the first Ctrl-C's orderly end would take a minute.
        let mut child = spawn_run(
            &p,
            method,
            &["run", "--tag", "t", "--kill-grace", "30s", "--env", &env],
            None,
            &err,
        );
        assert!(eventually(
            Duration::from_secs(30),
            || processes_with_cmdline(&tok).len() >= 10
        ));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let second = Instant::now();
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(130),
            "{method}: {}",
            std::fs::read_to_string(&err).unwrap()
        );
        assert!(
            second.elapsed() < Duration::from_secs(15),
            "{method}: stopping at once took {:?}",
            second.elapsed()
        );
        assert_none_left(&tok);
        let partials: Vec<_> = walkdir::WalkDir::new(p.path().join("results"))
            .into_iter()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(partials.is_empty(), "{method}: {partials:?}");
        assert_eq!(
            std::fs::read_link(p.path().join("results/latest")).unwrap(),
            Path::new("t")
        );
    }
}

#[test]
fn stop_signal_term_ends_servers_that_reload_or_ignore_on_sighup_without_the_grace() {
    let p = Project::new();
    p.file("g/group.toml", "stop_signal = \"TERM\"\n");
    p.bash("g/local/l", "sleep 0.2");
    // nginx: SIGHUP means "reload"; redis: SIGHUP is ignored. Both stop on SIGTERM.
    p.bash(
        "g/remote/nginx_like",
        "trap 'echo reload >> signals' HUP\ntrap 'echo term >> signals; exit 0' TERM\n\
         while true; do sleep 0.05; done",
    );
    p.bash("g/remote/redis_like", "trap '' HUP\nexec sleep 600");
    let start = Instant::now();
    p.run(&["run", "--kill-grace", "30s"]).expect_code(0);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "the pairs waited out the grace: {took:?}"
    );
    for r in ["nginx_like", "redis_like"] {
        let pair = p.pair("g", &format!("l_x_{r}"));
        assert_eq!(
            pair.reason().split_once(' ').unwrap().1.trim(),
            "local exited 0, remote terminated by SIGTERM",
            "{r}"
        );
    }
    assert_eq!(
        p.pair("g", "l_x_nginx_like").read("remote/signals"),
        "term\n"
    );
    let m = manifest(&p);
    assert_eq!(m["group_settings"]["g"]["stop_signal"], "SIGTERM", "{m}");
    assert_eq!(
        m["group_settings"]["g"]["sources"]["stop_signal"], "group_toml",
        "{m}"
    );
}

#[test]
fn group_toml_sits_between_the_command_line_and_pairbench_toml() {
    let p = Project::new();
    std::fs::write(
        p.path().join("pairbench.toml"),
        "stop_signal = \"INT\"\nkill_grace = \"200ms\"\n[env]\nA = \"toml\"\nB = \"toml\"\nC = \"toml\"\n",
    )
    .unwrap();
    p.file(
        "g/group.toml",
        "# a helper file to mirage-bench\nstop_signal = \"SIGTERM\"\n[env]\nB = \"group\"\nC = \"group\"\n",
    );
    p.bash("g/local/l", "echo \"$A $B $C\"; sleep 0.2");
    p.bash(
        "g/remote/r",
        "for s in HUP INT QUIT TERM; do trap \"echo $s > got; exit 0\" $s; done\n\
         while true; do sleep 0.05; done",
    );
    p.file("slow/group.toml", "timeout = \"1s\"\n");
    p.bash("slow/local/l", "sleep 30");
    p.bash("slow/remote/r", "exit 0");
    p.run(&["run", "--env", "C=cli"]).expect_code(1);
    let pair = p.pair("g", "l_x_r");
    assert_eq!(pair.read("local/stdout"), "toml group cli\n");
    assert_eq!(
        pair.read("remote/got"),
        "TERM\n",
        "group.toml wins over pairbench.toml"
    );
    let slow = p.pair("slow", "l_x_r");
    assert_eq!(slow.status(), "FAILED");
    assert!(
        slow.reason().contains("local timed out after 1s"),
        "{}",
        slow.reason()
    );

    p.run(&["run", "g", "--stop-signal", "QUIT"]).expect_code(0);
    assert_eq!(
        p.pair("g", "l_x_r").read("remote/got"),
        "QUIT\n",
        "the command line wins"
    );

    // pairbench list sees no test in it: group.toml is a helper file.
    let list = p.run(&["list"]);
    list.expect_code(0);
    assert!(!list.stdout().contains("group.toml"), "{}", list.stdout());
}

#[test]
fn a_bad_group_toml_is_refused_naming_the_file_and_the_key() {
    let cases = [
        ("tiemout = \"1s\"\n", "unknown key 'tiemout'"),
        ("kill_grace = 5\n", "'kill_grace' must be a string"),
        (
            "stop_signal = \"RELOAD\"\n",
            "'stop_signal' is not a signal",
        ),
        ("timeout = \"0s\"\n", "365d"),
        (
            "timeout = \"9223372036854775808s\"\n",
            "the longest pairbench accepts is 365d",
        ),
        ("[env]\nX = 1\n", "'env.X' must be a string"),
        ("exclusive = \n", "is not valid TOML"),
    ];
    for (text, says) in cases {
        let p = Project::new();
        p.file("g/group.toml", text);
        p.bash("g/local/l", "touch ran")
            .bash("g/remote/r", "exit 0");
        let r = p.run(&["run"]);
        r.expect_code(2);
        let err = r.stderr();
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains("g/group.toml"), "{text}: {err}");
        assert!(err.contains(says), "{text}: {err}");
        assert!(!p.path().join("results").exists(), "nothing ran");
    }
}

#[test]
fn durations_that_would_overflow_and_a_zero_timeout_are_refused_up_front() {
    let p = Project::new();
    p.bash("g/local/l", "exit 0")
        .bash("g/remote/r", "sleep 600");
    let huge = "9223372036854775808s";
    for (flag, value, says) in [
        ("--timeout", huge, "the longest pairbench accepts is 365d"),
        ("--kill-grace", huge, "365d"),
        ("--hook-timeout", "1e30", "365d"),
        ("--wait-timeout", "18446744073709551616s", "365d"),
        ("--connect-timeout", "400d", "365d"),
        (
            "--timeout",
            "0",
            "for no practical limit give a long one, e.g. 365d",
        ),
        ("--connect-timeout", "0s", "give e.g. 30s"),
    ] {
        let r = p.run(&["run", flag, value]);
        r.expect_code(2);
        let err = r.stderr();
        assert_eq!(err.trim().lines().count(), 1, "{flag} {value}: {err}");
        assert!(
            err.contains(flag) && err.contains(says),
            "{flag} {value}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::write(
        p.path().join("pairbench.toml"),
        format!("kill_grace = \"{huge}\"\n"),
    )
    .unwrap();
    let r = p.run(&["run"]);
    r.expect_code(2);
    assert!(
        r.stderr().contains("kill_grace in the config file"),
        "{}",
        r.stderr()
    );
    assert!(!p.path().join("results").exists(), "nothing ran");
    // The longest accepted values run (no clock overflow anywhere).
    std::fs::remove_file(p.path().join("pairbench.toml")).unwrap();
    p.run(&[
        "run",
        "--timeout",
        "365d",
        "--hook-timeout",
        "365d",
        "--kill-grace",
        "100ms",
    ])
    .expect_code(0);
}

/// `pairbench ARGS` against sshd `s` (its client HOME), with containment `method`.
fn ssh_run(p: &Project, s: &sshd::Sshd, args: &[&str]) -> common::Run {
    p.run_with(|c| s.client(c), args)
}

/// The SSH tests share one remote work folder (in the build's temporary folder, so the
/// agent is uploaded once), one test at a time, with no run folders left from before.
fn workdir() -> (std::sync::MutexGuard<'static, ()>, std::path::PathBuf) {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let w = Path::new(env!("CARGO_TARGET_TMPDIR")).join("contain-remote-work");
    let _ = std::fs::remove_dir_all(w.join("runs"));
    (guard, w)
}

/// pairbench.toml with a `[[remote]]` called `box` working in `work`.
fn remote_box(p: &Project, s: &sshd::Sshd, work: &Path) {
    std::fs::write(
        p.path().join("pairbench.toml"),
        format!(
            "[[remote]]\nname = \"box\"\nhost = \"{}\"\nuser = \"{}\"\nport = {}\nidentity_file = \"~/.ssh/id_ed25519\"\nworkdir = \"{}\"\n",
            s.host,
            s.user,
            s.port,
            work.display()
        ),
    )
    .unwrap();
}

#[test]
fn over_ssh_remote_daemons_are_contained_and_old_run_folders_are_removed() {
    let Some(s) = sshd::Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    let (_one, work) = workdir();
    remote_box(&p, &s, &work);
    // Left by runs that are over (a free lock), and by one that is not (a held lock).
    let old = work.join("runs/old-run");
    let live = work.join("runs/live-run");
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for d in [&old, &live] {
        std::fs::create_dir_all(d.join("results")).unwrap();
        let f = std::fs::File::create(d.join(".lock")).unwrap();
        f.set_modified(long_ago).unwrap();
    }
    let held = nix::fcntl::Flock::lock(
        std::fs::OpenOptions::new()
            .write(true)
            .open(live.join(".lock"))
            .unwrap(),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .unwrap();
    let tok = token("ssh");
    p.bash("g/local/l", WAIT_READY_AND_COUNT);
    p.bash(
        "g/remote/r",
        &format!("{DAEMONS}\nfor i in $(seq 50); do ( exec -a $TOKEN sleep 600 ) & done\ntrap '' HUP TERM\necho ready\nexec -a $TOKEN sleep 600"),
    );
    let env = format!("TOKEN={tok}");
    let r = ssh_run(
        &p,
        &s,
        &[
            "run",
            "--remote",
            "box",
            "--kill-grace",
            "200ms",
            "--env",
            &env,
        ],
    );
    r.expect_code(0);
    assert!(seen(&p, "l_x_r") >= 55, "{}", seen(&p, "l_x_r"));
    assert_none_left(&tok);
    let m = manifest(&p);
    let remote = m["hosts"][1]["containment"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if cgroup2_usable() {
        assert!(remote.starts_with("cgroup2 at "), "{m}");
    }
    assert!(!old.exists(), "the folder of a run that is over is removed");
    assert!(live.exists(), "the folder of a live run is kept");
    assert!(
        r.stderr().contains("runs that are over") && r.stderr().contains("old-run"),
        "{}",
        r.stderr()
    );
    drop(held);
    let runs: Vec<_> = std::fs::read_dir(work.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        runs,
        vec![std::ffi::OsString::from("live-run")],
        "this run's folder is gone"
    );
}

#[test]
fn over_ssh_a_killed_pairbench_leaves_nothing_running_on_either_side() {
    let Some(s) = sshd::Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    let (_one, work) = workdir();
    remote_box(&p, &s, &work);
    let tok = token("sshkill");
    slow_pair(&p);
    let env = format!("TOKEN={tok}");
    let mut cmd = p.cmd();
    s.client(&mut cmd);
    let mut child = cmd
        .args(["run", "--remote", "box", "--env", &env])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill9_mid_run(&mut child, &tok, "ssh");
    // The agent removed its run folder too.
    assert!(
        eventually(Duration::from_secs(10), || std::fs::read_dir(
            work.join("runs")
        )
        .map(|d| d.count() == 0)
        .unwrap_or(true)),
        "the remote run folder is removed"
    );
}

#[test]
fn over_ssh_a_second_ctrl_c_ends_both_sides_at_once() {
    let Some(s) = sshd::Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    let (_one, work) = workdir();
    remote_box(&p, &s, &work);
    let tok = token("sshctrlc");
    slow_pair(&p);
    let env = format!("TOKEN={tok}");
    let mut cmd = p.cmd();
    s.client(&mut cmd);
    let mut child = cmd
        .args([
            "run",
            "--remote",
            "box",
            "--kill-grace",
            "30s",
            "--env",
            &env,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(60), || {
        processes_with_cmdline(&tok).len() >= 10
    }));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(
        eventually(Duration::from_secs(10), || processes_with_cmdline(&tok)
            .is_empty()),
        "left running: {:?}",
        processes_with_cmdline(&tok)
    );
}
