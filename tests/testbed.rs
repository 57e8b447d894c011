//! The testbed (docs/testbed.md), for real: namespaces, VDE switches and links, an sshd
//! per host, made by `pairbench testbed up` as root, each test with its own state folder
//! and subnet. What a user sees is checked: the commands' output and exit codes, what
//! runs (or no longer runs) on the machine, TCP connect times across shaped links, the
//! result tree of runs over the hosts, and that `down` leaves nothing behind.

#[path = "common/testbed.rs"]
mod bed;
mod common;
#[path = "common/sshd.rs"]
mod sshd;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bed::Bed;
use common::{alive, eventually, read_csv};

fn pids_of(st: &serde_json::Value) -> Vec<i32> {
    let mut v = vec![st["hub"]["pid"].as_i64().unwrap_or(0) as i32];
    for h in st["hosts"].as_array().unwrap() {
        for k in ["switch", "wire", "sshd"] {
            if let Some(p) = h[k]["pid"].as_i64() {
                v.push(p as i32);
            }
        }
    }
    v
}

fn cgroup_of(st: &serde_json::Value) -> Option<std::path::PathBuf> {
    st["cgroup"].as_str().map(std::path::PathBuf::from)
}

/// Everything the testbed made is gone.
fn assert_all_gone(b: &Bed, id: &str, pids: &[i32], cgroup: Option<&Path>) {
    assert!(b.namespaces(id).is_empty(), "{:?}", b.namespaces(id));
    assert!(!b.state.join("state.json").exists());
    assert!(
        !Path::new("/sys/class/net")
            .join(format!("pbtb-{id}"))
            .exists()
    );
    for p in pids {
        assert!(
            eventually(Duration::from_secs(5), || !alive(*p)),
            "pid {p} is still alive"
        );
    }
    if let Some(c) = cgroup {
        assert!(!c.exists(), "{} is still there", c.display());
    }
    let leftovers = processes_naming(&b.state);
    assert!(leftovers.is_empty(), "still running: {leftovers:?}");
}

/// Processes whose command line names `dir`.
fn processes_naming(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

/// The SSH banner of `addr:22`, if one comes within `within`.
fn banner(addr: &str, within: Duration) -> Option<String> {
    let a: SocketAddr = format!("{addr}:22").parse().unwrap();
    let mut s = TcpStream::connect_timeout(&a, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn up_status_shell_ssh_and_down_that_leaves_nothing() {
    if !bed::available() {
        return;
    }
    let b = Bed::new("");
    let up = b.run(&["testbed", "up", "--hosts", "2"]);
    up.expect_code(0);
    assert!(up.stdout().contains("server1, server2"), "{}", up.stdout());
    let st = b.state_json();
    let id = st["id"].as_str().unwrap().to_string();
    assert_eq!(b.namespaces(&id).len(), 2);

    let status = b.run(&["testbed", "status"]);
    status.expect_code(0);
    let out = status.stdout();
    for want in [
        "server1",
        "server2",
        &b.addr(1),
        &b.addr(2),
        "sshd",
        "unshaped",
    ] {
        assert!(out.contains(want), "{want} in {out}");
    }

    // Inside a host: its own address, no default route, the other host reachable.
    let addrs = b.run(&[
        "testbed", "shell", "server1", "--", "ip", "-4", "-br", "addr",
    ]);
    addrs.expect_code(0);
    assert!(addrs.stdout().contains(&b.addr(1)), "{}", addrs.stdout());
    assert!(!addrs.stdout().contains(&b.addr(2)));
    let routes = b.run(&["testbed", "shell", "server1", "--", "ip", "-4", "route"]);
    assert!(!routes.stdout().contains("default"), "{}", routes.stdout());
    let outside = b.run(&[
        "testbed",
        "shell",
        "server1",
        "--",
        "ip",
        "route",
        "get",
        "192.0.2.1",
    ]);
    assert_ne!(outside.code(), 0, "a host must have no way out");
    b.run(&[
        "testbed",
        "shell",
        "server1",
        "--",
        "nc",
        "-z",
        "-w",
        "5",
        &b.addr(2),
        "22",
    ])
    .expect_code(0);
    // The exit status of CMD comes back.
    let code = b.run(&["testbed", "shell", "server2", "--", "sh", "-c", "exit 7"]);
    assert_eq!(code.code(), 7);

    // The printed ssh line logs in, and so does the ssh_config.
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("ssh:") && l.contains(&format!("@{}", b.addr(2))))
        .expect("an ssh line for server2");
    let words = shlex::split(line.trim_start().trim_start_matches("ssh:").trim()).unwrap();
    let (dest, opts) = words.split_last().unwrap();
    let o = Command::new(&opts[0])
        .args(&opts[1..])
        .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=20", dest])
        .args(["ip", "-4", "-br", "addr"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&b.addr(2)));
    let o = Command::new("ssh")
        .arg("-F")
        .arg(b.state.join("ssh_config"))
        .args(["-o", "BatchMode=yes", "server1", "true"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let pids = pids_of(&st);
    assert!(pids.iter().all(|p| alive(*p)));
    let down = b.run(&["testbed", "down"]);
    down.expect_code(0);
    assert_all_gone(&b, &id, &pids, cgroup_of(&st).as_deref());
    let again = b.run(&["testbed", "down"]);
    again.expect_code(0);
    assert!(
        again.stdout().contains("no testbed is up"),
        "{}",
        again.stdout()
    );
}

#[test]
fn up_twice_is_idempotent_a_different_testbed_is_refused_and_bad_input_is_one_line() {
    if !bed::available() {
        return;
    }
    let b = Bed::new("");
    b.run(&["testbed", "up", "--hosts", "1"]).expect_code(0);
    let st = b.state_json();
    let again = b.run(&["testbed", "up", "--hosts", "1"]);
    again.expect_code(0);
    assert!(again.stdout().contains("already up"), "{}", again.stdout());
    assert_eq!(b.state_json(), st, "a second up changes nothing");
    let other = b.run(&["testbed", "up", "--hosts", "2"]);
    other.expect_code(2);
    assert!(other.stderr().contains("already up"), "{}", other.stderr());
    assert_eq!(other.stderr().trim().lines().count(), 1);
    assert_eq!(b.state_json()["hosts"].as_array().unwrap().len(), 1);

    // Bad names and a subnet this machine uses are refused before anything is made.
    let bad = Bed::new("[[testbed.host]]\nname = \"no/such name\"\n");
    let r = bad.run(&["testbed", "up"]);
    r.expect_code(2);
    assert!(
        r.stderr().contains("bad testbed host name"),
        "{}",
        r.stderr()
    );
    let r = b.run(&[
        "testbed",
        "up",
        "--hosts",
        "1",
        "--subnet",
        "127.0.0.0/8",
        "--state-dir",
        &bad.state.to_string_lossy(),
    ]);
    r.expect_code(2);
    assert!(r.stderr().contains("overlaps"), "{}", r.stderr());
    assert!(!bad.state.join("state.json").exists());
    let r = b.run(&["testbed", "link", "server9", "down"]);
    r.expect_code(2);
    assert!(
        r.stderr().contains("no testbed host 'server9'"),
        "{}",
        r.stderr()
    );
    let r = b.run(&["testbed", "link", "server1", "shape", "--rate", "fast"]);
    r.expect_code(2);
    assert!(r.stderr().contains("bad rate 'fast'"), "{}", r.stderr());
}

const RTT_PY: &str = r#"
import os, socket, statistics, sys, time
host, port = os.environ["PAIRBENCH_REMOTE_HOST"], 5000
def once():
    t = time.monotonic()
    s = socket.create_connection((host, port), timeout=float(sys.argv[1]) if len(sys.argv) > 1 else 5)
    ms = (time.monotonic() - t) * 1000
    s.close()
    return ms
if len(sys.argv) > 1:
    try:
        once(); print("reachable")
    except OSError:
        print("unreachable")
else:
    print("%.1f" % statistics.median(once() for _ in range(7)))
"#;

#[test]
fn a_script_shapes_cuts_and_heals_its_link_with_events_and_the_link_is_restored_after() {
    if !bed::available() {
        return;
    }
    let b = Bed::new("[[testbed.host]]\nname = \"server1\"\nlink = { delay = \"10ms\" }\n");
    b.run(&["testbed", "up"]).expect_code(0);
    let p = &b.project;
    p.file("net/rtt.py", RTT_PY);
    p.bash("net/remote/listen", "exec nc -lk 5000");
    p.bash(
        "net/local/probe",
        r#"wait_for_remote_port_open 5000 >/dev/null 2>&1
rtt() { python3 "$PAIRBENCH_GROUP_DIR/rtt.py" "$@"; }
echo "base $(rtt)"
testbed_link shape --delay 30ms
echo "shaped $(rtt)"
testbed_link down
echo "cut $(rtt 1)"
testbed_link up
echo "healed $(rtt)""#,
    );
    let r = b.run(&["run", "--remote", "server1", "--progress", "never"]);
    r.expect_code(0);
    let pair = p.pair("net", "probe_x_listen");
    let out = pair.read("local/stdout");
    let value = |k: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .unwrap_or_else(|| panic!("{k} in {out}"))
            .to_string()
    };
    let ms = |k: &str| value(k).parse::<f64>().unwrap();
    // A connect waits for one round trip: both directions are delayed. tc rounds a
    // delay to its clock ticks, so a round trip may be a little under 2 × delay (19.83 ms
    // for 2 × 10 ms was seen in CI): the lower bounds keep 10 % of slack.
    assert!(ms("base") >= 18.0 && ms("base") < 50.0, "{out}");
    assert!(ms("shaped") >= 54.0 && ms("shaped") < 120.0, "{out}");
    assert_eq!(value("cut"), "unreachable", "{out}");
    assert!(ms("healed") >= 54.0, "{out}");

    let events = read_csv(&pair.path().join("events.csv"));
    let changes: Vec<&str> = events.iter().map(|e| e["change"].as_str()).collect();
    assert_eq!(
        changes,
        [
            "link shape --delay 30ms",
            "link down",
            "link up",
            "restore (pair ended)"
        ],
        "{events:?}"
    );
    assert!(events.iter().all(|e| e["host"] == "server1"));
    let t: Vec<f64> = events.iter().map(|e| e["t_s"].parse().unwrap()).collect();
    assert!(t.windows(2).all(|w| w[0] <= w[1]) && t[0] >= 0.0, "{t:?}");
    assert!(events[1]["now"].starts_with("cut"), "{events:?}");
    assert!(!pair.path().join("local/.testbed-events.csv").exists());
    let page = std::fs::read_to_string(p.latest().join("index.html")).unwrap();
    assert!(
        page.contains("net/probe_x_listen/events.csv\">testbed events</a>"),
        "the report links the events"
    );
    // After the pair, the link is as `up` made it: 10ms again.
    let st = b.state_json();
    assert_eq!(st["hosts"][0]["link"]["delay_ms"], 10.0);
    assert_eq!(st["hosts"][0]["cut"], false);
    let rtt = bed::connect_ms(&format!("{}:22", b.addr(1)), 5);
    assert!((18.0..50.0).contains(&rtt), "{rtt}");
}

#[test]
fn hosts_stop_start_pause_and_resume() {
    if !bed::available() {
        return;
    }
    let b = Bed::new("");
    b.run(&["testbed", "up", "--hosts", "1"]).expect_code(0);
    let addr = b.addr(1);
    let started = b.run(&[
        "testbed",
        "shell",
        "server1",
        "--",
        "sh",
        "-c",
        "setsid sleep 300 >/dev/null 2>&1 < /dev/null & echo $!",
    ]);
    started.expect_code(0);
    let sleeper: i32 = started.stdout().trim().parse().unwrap();
    assert!(alive(sleeper));
    let status = b.run(&["testbed", "status"]).stdout();
    assert!(status.contains("sleep 300"), "{status}");
    assert!(banner(&addr, Duration::from_secs(10)).is_some_and(|b| b.starts_with("SSH-")));

    // Paused: the kernel still accepts, nothing inside answers.
    let r = b.run(&["testbed", "host", "server1", "pause"]);
    r.expect_code(0);
    assert!(r.stdout().contains("paused"), "{}", r.stdout());
    assert_eq!(banner(&addr, Duration::from_millis(1500)), None);
    let frozen = std::fs::read_to_string(format!("/proc/{sleeper}/status")).unwrap();
    assert!(alive(sleeper), "{frozen}");
    b.run(&["testbed", "host", "server1", "resume"])
        .expect_code(0);
    assert!(banner(&addr, Duration::from_secs(10)).is_some_and(|b| b.starts_with("SSH-")));

    // Stopped: sshd and everything inside are gone; the address refuses.
    let r = b.run(&["testbed", "host", "server1", "stop"]);
    r.expect_code(0);
    assert!(eventually(Duration::from_secs(5), || !alive(sleeper)));
    let a: SocketAddr = format!("{addr}:22").parse().unwrap();
    let e = TcpStream::connect_timeout(&a, Duration::from_secs(3)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    let status = b.run(&["testbed", "status"]).stdout();
    assert!(
        status.contains("stopped") && status.contains("runs: nothing"),
        "{status}"
    );
    let r = b.run(&["testbed", "host", "server1", "pause"]);
    r.expect_code(2);
    assert!(r.stderr().contains("start it first"), "{}", r.stderr());

    b.run(&["testbed", "host", "server1", "start"])
        .expect_code(0);
    let o = Command::new("ssh")
        .arg("-F")
        .arg(b.state.join("ssh_config"))
        .args(["-o", "BatchMode=yes", "server1", "echo", "back"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "back");
}

fn sha_id(state: &Path) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(state.as_os_str().as_encoded_bytes());
    d.iter().take(3).map(|b| format!("{b:02x}")).collect()
}

#[test]
fn run_testbed_makes_hosts_runs_over_both_and_removes_them() {
    if !bed::available() {
        return;
    }
    let b = Bed::new("");
    let p = &b.project;
    p.bash("g/remote/srv", "hostname -I > where; sleep 1");
    for l in ["a", "b", "c", "d"] {
        p.bash(
            &format!("g/local/{l}"),
            "echo \"$PAIRBENCH_REMOTE_HOST\"; wait_for_remote",
        );
    }
    let started = Instant::now();
    let r = b.run(&["run", "--testbed", "2", "-j", "2", "--progress", "never"]);
    r.expect_code(0);
    let rows = p.results_csv();
    assert_eq!(rows.len(), 4);
    let mut hosts: Vec<&str> = rows.iter().map(|r| r["remote_host"].as_str()).collect();
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts, ["server1", "server2"], "{rows:?}");
    // The remote side ran inside the host (its own address).
    let srv = p.pair("g", "a_x_srv").read("remote/where");
    assert!(srv.contains(&b.net), "{srv}");
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_all_gone(&b, &sha_id(&b.state), &[], None);
}

#[test]
fn down_after_kill_9_in_the_middle_of_up_removes_everything() {
    if !bed::available() {
        return;
    }
    let b = Bed::new("");
    let mut child = b
        .cmd()
        .args(["testbed", "up", "--hosts", "8"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = b.state.join("state.json");
    let end = Instant::now() + Duration::from_secs(20);
    while !state.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_micros(200));
    }
    std::thread::sleep(Duration::from_millis(15));
    let _ = child.kill();
    let _ = child.wait();
    let st = b.state_json();
    let id = st["id"].as_str().unwrap().to_string();
    if st["complete"] == false {
        let s = b.run(&["testbed", "status"]);
        s.expect_code(2);
        assert!(s.stderr().contains("half made"), "{}", s.stderr());
    }
    b.run(&["testbed", "down"]).expect_code(0);
    let st2: Vec<i32> = pids_of(&st);
    assert_all_gone(&b, &id, &st2, cgroup_of(&st).as_deref());
    // And a new testbed comes up cleanly in the same place.
    b.run(&["testbed", "up", "--hosts", "1"]).expect_code(0);
}

#[test]
fn without_privileges_up_says_so_in_one_line() {
    if !bed::available() {
        return;
    }
    let b = Bed::new("");
    // A copy the unprivileged user can run, wherever the build is.
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = bin_dir.path().join("pairbench");
    std::fs::copy(assert_cmd::cargo::cargo_bin!("pairbench"), &bin).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&bin)
        .args(["testbed", "up", "--hosts", "1", "--state-dir"])
        .arg(&b.state)
        .current_dir("/")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("needs root"), "{err}");
    assert!(err.contains("sudo pairbench testbed up"), "{err}");
    assert!(!b.state.join("state.json").exists());
}

#[test]
fn a_cut_link_mid_pair_is_an_error_within_the_connect_timeout_and_the_run_goes_on() {
    if !bed::available() {
        return;
    }
    let b = Bed::new("");
    let p = &b.project;
    // A first run uploads the agent (once per build), which a 3s limit may not allow for.
    p.bash("warm/remote/r", "true");
    p.bash("warm/local/l", "true");
    b.run(&["run", "warm", "--testbed", "2", "--progress", "never"])
        .expect_code(0);
    p.bash("g/remote/srv", "exec sleep 300");
    p.bash("g/local/a_cut", "testbed_link down; sleep 60");
    p.bash("g/local/b_ok", "sleep 3");
    p.bash("g/local/c_ok", "sleep 1");
    let r = b.run(&[
        "run",
        "g",
        "--testbed",
        "2",
        "-j",
        "2",
        "--connect-timeout",
        "3s",
        "--progress",
        "never",
    ]);
    r.expect_code(2);
    let rows = p.results_csv();
    let row = |pair: &str| rows.iter().find(|r| r["pair"] == pair).unwrap().clone();
    let cut = row("a_cut_x_srv");
    assert_eq!(cut["status"], "ERROR", "{rows:?}");
    assert!(cut["reason"].contains("ssh"), "{}", cut["reason"]);
    let took: f64 = cut["duration_s"].parse().unwrap();
    assert!(took < 20.0, "ended after {took}s");
    assert_eq!(row("b_ok_x_srv")["status"], "SUCCESS", "{rows:?}");
    assert_eq!(row("c_ok_x_srv")["status"], "SUCCESS", "{rows:?}");
    let events = read_csv(&p.pair("g", "a_cut_x_srv").path().join("events.csv"));
    assert_eq!(events[0]["change"], "link down");
}

#[test]
fn interactive_opens_a_shell_for_the_local_side_and_ends_the_pair_when_it_closes() {
    if !bed::available() {
        return;
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is needed: apt-get install tmux"
        );
        eprintln!("\n!!!!!!!!!! INTERACTIVE TEST SKIPPED: tmux not found !!!!!!!!!!\n");
        return;
    }
    let b = Bed::new("");
    b.run(&["testbed", "up", "--hosts", "1"]).expect_code(0);
    let p = &b.project;
    p.bash("g/remote/srv", "echo up > started; exec sleep 300");
    p.bash(
        "g/local/cli",
        "echo the local test itself must not run; exit 1",
    );
    let sock = format!("pbtb-test-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &sock])
            .args(args)
            .output()
            .unwrap()
    };
    let script = format!(
        "cd {dir} && env -u PAIRBENCH_TESTBED_DIR {bin} run --interactive g/cli_x_srv --remote server1; echo EXIT=$? > {dir}/exit; sleep 60",
        dir = p.path().display(),
        bin = assert_cmd::cargo::cargo_bin!("pairbench").display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-x",
        "160",
        "-y",
        "40",
        "bash",
        "--norc",
        "-c",
        &script,
    ]);
    let screen = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned();
    let prompt_seen = eventually(Duration::from_secs(90), || {
        screen().contains("[pairbench cli_x_srv]")
    });
    assert!(prompt_seen, "no prompt: {}", screen());
    tmux(&[
        "send-keys",
        "echo \"pair=$PAIRBENCH_PAIR script=$PAIRBENCH_LOCAL_SCRIPT\" > seen; testbed_link shape --delay 5ms",
        "Enter",
    ]);
    assert!(
        eventually(Duration::from_secs(20), || screen().contains("delay 5ms")),
        "{}",
        screen()
    );
    tmux(&["send-keys", "exit", "Enter"]);
    let exit = p.path().join("exit");
    assert!(
        eventually(Duration::from_secs(60), || exit.exists()),
        "{}",
        screen()
    );
    tmux(&["kill-server"]);
    assert_eq!(std::fs::read_to_string(&exit).unwrap().trim(), "EXIT=0");
    let pair = p.pair("g", "cli_x_srv");
    let (status, reason) = pair.marker();
    assert_eq!(status, "SUCCESS");
    assert!(reason.contains("interactive"), "{reason}");
    let seen = pair.read("local/seen");
    assert!(seen.contains("pair=cli_x_srv"), "{seen}");
    assert!(seen.contains("g/local/cli"), "{seen}");
    assert!(!pair.read("local/stdout").contains("must not run"));
    assert_eq!(pair.read("remote/started").trim(), "up");
    let rows = p.results_csv();
    assert_eq!(rows[0]["remote_ended"], "terminated");
    let events = read_csv(&pair.path().join("events.csv"));
    assert_eq!(events[0]["change"], "link shape --delay 5ms");
}

#[test]
fn the_testbed_example_runs_with_its_shaped_link_and_fault_and_draws_the_fault_window() {
    if !bed::available() {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let b = Bed::new("");
    // The example's own configuration, with this test's subnet and state folder.
    let example = std::fs::read_to_string(repo.join("examples/testbed/pairbench.toml")).unwrap();
    let config = example.replace(
        "subnet = \"10.213.0.0/24\"",
        &format!(
            "subnet = \"{}.0/24\"\nstate_dir = \"{}\"",
            b.net,
            b.state.display()
        ),
    );
    assert_ne!(config, example, "the example names its subnet");
    std::fs::write(b.project.path().join("pairbench.toml"), config).unwrap();
    let groups = repo.join("examples/testbed");
    let g = groups.to_string_lossy();
    b.run(&["run", "-g", &g, "--testbed", "--progress", "never"])
        .expect_code(0);
    let p = &b.project;
    let pair = p.pair("shaped-link", "rtt_probe_x_echo_server");
    let metrics = common::script_metrics(&p.latest().join("metrics.csv"));
    let metric = |n: &str| -> f64 {
        metrics
            .iter()
            .find(|m| m["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {metrics:?}"))["value"]
            .parse()
            .unwrap()
    };
    // 10 ms each way: a connect takes about 20 ms (tc rounds: 10 % slack); the cut loses probes.
    assert!(metric("rtt_before_ms") >= 18.0, "{metrics:?}");
    assert!(metric("rtt_after_ms") >= 18.0, "{metrics:?}");
    assert!(metric("probes_lost") >= 1.0, "{metrics:?}");
    let events = read_csv(&pair.path().join("events.csv"));
    let changes: Vec<&str> = events.iter().map(|e| e["change"].as_str()).collect();
    assert_eq!(changes, ["link down", "link up"]);
    b.run(&["report", "-g", &g]).expect_code(0);
    let svg = std::fs::read_to_string(
        p.latest()
            .join("shaped-link/rtt-rtt_probe_x_echo_server.svg"),
    )
    .unwrap();
    assert!(svg.contains("class=\"fault\""), "{svg}");
    assert_all_gone(&b, &sha_id(&b.state), &[], None);
}
