//! Remote tests over SSH, against a real OpenSSH sshd started by each test (see
//! common/sshd.rs): the pair's remote side runs on the remote host, comes back into the
//! local tree, and nothing is left running; host keys, logins and dead links behave
//! like OpenSSH and end as ERROR pairs with their reason, in bounded time.

mod common;
#[path = "common/sshd.rs"]
mod sshd;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Project, eventually, processes_with_env};
use sshd::Sshd;

/// `pairbench ARGS` with the test's HOME (its ~/.ssh) and no ssh-agent.
fn run(p: &Project, s: &Sshd, args: &[&str]) -> common::Run {
    p.run_with(|c| s.client(c), args)
}

/// A `[[remote]]` entry called `name` with its own work folder and `slots`.
fn remote_entry(name: &str, s: &Sshd, workdir: &Path, slots: usize) -> String {
    format!(
        "[[remote]]\nname = \"{name}\"\nhost = \"{}\"\nuser = \"{}\"\nport = {}\nidentity_file = \"~/.ssh/id_ed25519\"\nworkdir = \"{}\"\nslots = {slots}\n",
        s.host,
        s.user,
        s.port,
        workdir.display()
    )
}

/// pairbench.toml with a `[[remote]]` called `box`.
fn remote_def(p: &Project, s: &Sshd, workdir: &Path) {
    std::fs::write(
        p.path().join("pairbench.toml"),
        remote_entry("box", s, workdir, 1),
    )
    .unwrap();
}

/// pairbench.toml with a `[[remote]]` called `box` for `s`, its agent cached in the
/// build's temporary folder rather than the remote user's home; returns `box`.
fn boxed(p: &Project, s: &Sshd) -> String {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ssh-remote-work");
    std::fs::write(
        p.path().join("pairbench.toml"),
        remote_entry("box", s, &work, 1),
    )
    .unwrap();
    "box".into()
}

/// One client HOME (a's) that knows both hosts and whose key both accept.
fn one_client_for_both(a: &Sshd, b: &Sshd) {
    use std::io::Write;
    a.trust();
    std::fs::copy(
        a.home.join(".ssh/id_ed25519.pub"),
        b.dir.path().join("authorized_keys"),
    )
    .unwrap();
    let mut kh = std::fs::OpenOptions::new()
        .append(true)
        .open(a.known_hosts())
        .unwrap();
    writeln!(kh, "{} {}", b.known_name(), b.host_key()).unwrap();
}

fn unique(tag: &str) -> String {
    format!(
        "{tag}_{}_{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
    )
}

#[test]
fn pairs_and_hooks_run_on_the_remote_and_come_back_and_the_workdir_is_cleaned() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    let work = tempfile::tempdir().unwrap();
    remote_def(&p, &s, work.path());
    // Agents of other builds: an old one is pruned when this build's is uploaded.
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let day_old = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    for (name, when) in [
        ("pairbench-00000000000000aa", day_old),
        ("pairbench-00000000000000bb", std::time::SystemTime::now()),
    ] {
        let f = std::fs::File::create(bin.join(name)).unwrap();
        f.set_times(
            std::fs::FileTimes::new()
                .set_accessed(when)
                .set_modified(when),
        )
        .unwrap();
    }
    p.bash(
        "g/before_first_test_remote",
        "echo \"hook in $PWD\"; echo made > hook_file; env | sort > hook_env",
    );
    p.bash("g/after_last_test_remote", "echo after > after_file");
    p.file("g/remote/helper.txt", "helper data\n");
    p.file("shared.txt", "root data\n");
    std::os::unix::fs::symlink("/nonexistent/x", p.path().join("groups/g/dangling")).unwrap();
    p.bash(
        "g/local/client",
        "echo client; wait_for_remote --timeout 60s",
    );
    p.bash(
        "g/remote/server",
        "echo \"cwd=$PWD\"; echo \"dir=$PAIRBENCH_RESULT_DIR\"; cat \"$PAIRBENCH_GROUP_DIR/remote/helper.txt\" \"$REMOTE_ROOT_PATH/shared.txt\"\n\
         echo \"rps,100,req/s\" > metrics.csv; echo \"side=$PAIRBENCH_SIDE rh=$PAIRBENCH_REMOTE_HOST mrh=$REMOTE_HOST lh=$PAIRBENCH_LOCAL_HOST\"\n\
         echo \"pair=$PAIRBENCH_PAIR marker=${PAIRBENCH_MARKER:+set}\"; echo oops >&2; exit 0",
    );
    p.bash("g/remote/failing", "exit 3");
    let r = run(&p, &s, &["run", "--progress", "never", "--remote", "box"]);
    r.expect_code(1);
    let pair = p.pair("g", "client_x_server");
    assert_eq!(pair.status(), "SUCCESS", "{}", pair.reason());
    let out = pair.read("remote/stdout");
    let cwd = out
        .lines()
        .find_map(|l| l.strip_prefix("cwd="))
        .expect("cwd line")
        .to_string();
    assert!(
        cwd.starts_with(&work.path().display().to_string()),
        "remote cwd {cwd} is in the remote workdir"
    );
    assert!(out.contains(&format!("dir={cwd}")), "{out}");
    assert!(out.contains("helper data"), "{out}");
    assert!(out.contains("root data"), "{out}");
    assert!(
        out.contains("side=remote rh=127.0.0.1 mrh=127.0.0.1 lh=127.0.0.1"),
        "{out}"
    );
    assert!(out.contains("pair=client_x_server marker=set"), "{out}");
    assert_eq!(pair.read("remote/stderr"), "oops\n");
    assert_eq!(pair.read("remote/exit_code").trim(), "0");
    assert!(pair.read("remote/metrics.csv").contains("rps,100"));
    let failing = p.pair("g", "client_x_failing");
    assert_eq!(failing.status(), "FAILED");
    assert!(
        failing.reason().contains("remote exited 3"),
        "{}",
        failing.reason()
    );
    assert_eq!(failing.read("remote/exit_code").trim(), "3");

    // Remote hooks: logs and the files they wrote in the group's folder come back.
    let g = p.latest().join("g");
    let hook_out =
        std::fs::read_to_string(g.join("hooks/before_first_test_remote/stdout")).unwrap();
    assert!(
        hook_out.contains(&format!("hook in {}", work.path().display())),
        "{hook_out}"
    );
    assert_eq!(
        std::fs::read_to_string(g.join("hooks/before_first_test_remote/exit_code"))
            .unwrap()
            .trim(),
        "0"
    );
    assert_eq!(
        std::fs::read_to_string(g.join("hook_file")).unwrap(),
        "made\n"
    );
    assert_eq!(
        std::fs::read_to_string(g.join("after_file")).unwrap(),
        "after\n"
    );
    let env = std::fs::read_to_string(g.join("hook_env")).unwrap();
    assert!(env.contains("PAIRBENCH_SIDE=remote"), "{env}");
    assert!(env.contains("TEST=g"), "{env}");
    // No half pair folders from the group copy.
    let csv = p.results_csv();
    assert_eq!(csv.len(), 2);
    assert!(csv.iter().all(|r| r["remote_host"] == "box"));
    let metrics = std::fs::read_to_string(p.latest().join("metrics.csv")).unwrap();
    assert!(metrics.contains("rps"), "{metrics}");
    // run.json knows the remote host.
    let manifest = std::fs::read_to_string(p.latest().join("run.json")).unwrap();
    assert!(manifest.contains("\"box\""), "{manifest}");

    // The run's remote folder is gone; the cached agent stays.
    let runs = work.path().join("runs");
    let left: Vec<_> = std::fs::read_dir(&runs).unwrap().flatten().collect();
    assert!(left.is_empty(), "left in {}: {left:?}", runs.display());
    assert!(work.path().join("bin").read_dir().unwrap().count() >= 1);
    assert!(
        !bin.join("pairbench-00000000000000aa").exists(),
        "old agent pruned"
    );
    assert!(
        bin.join("pairbench-00000000000000bb").exists(),
        "recent agent kept"
    );

    // --keep-remote keeps it.
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            "box",
            "--keep-remote",
            "-f",
            "g/*_x_server",
        ],
    );
    r.expect_code(0);
    assert!(
        r.stderr().contains("kept the remote work folder"),
        "{}",
        r.stderr()
    );
    let kept: Vec<_> = std::fs::read_dir(&runs).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1);
    let found = walkdir::WalkDir::new(kept[0].path())
        .into_iter()
        .flatten()
        .any(|e| e.file_name() == "metrics.csv");
    assert!(found, "the kept remote folder still has the pair's files");
}

#[test]
fn processes_the_remote_test_started_are_gone_after_the_pair() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    let tag = unique("PB_SSH_DAEMON");
    // A daemon that escapes the group (setsid + double fork), and a main process that
    // ignores SIGHUP and SIGTERM: only SIGKILL ends it.
    p.bash(
        "g/remote/server",
        &format!(
            "export {tag}=1\n( setsid bash -c 'sleep 300 & sleep 300' & ) \n\
             trap '' HUP TERM\necho started\nwhile true; do sleep 0.05; done"
        ),
    );
    p.bash("g/local/client", "sleep 0.5");
    let start = Instant::now();
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &s.spec(),
            "--kill-grace",
            "200ms",
        ],
    );
    r.expect_code(0);
    let pair = p.pair("g", "client_x_server");
    assert_eq!(pair.status(), "SUCCESS", "{}", pair.reason());
    assert!(
        pair.reason().contains("remote terminated"),
        "{}",
        pair.reason()
    );
    assert_eq!(pair.read("remote/exit_code").trim(), "signal SIGKILL");
    assert!(pair.read("remote/stdout").contains("started"));
    let left = processes_with_env(&format!("{tag}=1"));
    assert!(left.is_empty(), "left running on the remote: {left:?}");
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn names_with_spaces_quotes_and_dollars_run_unharmed() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    let evil = "srv 'q' \"d\" $(touch PWNED) ; `touch PWNED` ü".to_string();
    let group = "grp $(id) 'x' é";
    p.bash(
        &format!("{group}/local/cli `x` ñ"),
        "echo local; wait_for_remote --timeout 60s",
    );
    p.bash(
        &format!("{group}/remote/{evil}"),
        "echo \"I am $PAIRBENCH_REMOTE_TEST in $PWD\"; echo value,1 > metrics.csv",
    );
    p.bash(&format!("{group}/before_first_test_remote"), "echo hook");
    let tag = "tag with space ü";
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &boxed(&p, &s),
            "--tag",
            tag,
        ],
    );
    r.expect_code(0);
    let pair_name = format!("cli `x` ñ_x_{evil}");
    let pair = p.pair(group, &pair_name);
    assert_eq!(pair.status(), "SUCCESS", "{}", pair.reason());
    let out = pair.read("remote/stdout");
    assert!(out.contains(&format!("I am {evil} in ")), "{out}");
    assert!(out.contains(tag), "{out}");
    assert!(pair.read("remote/metrics.csv").contains("value,1"));
    let pwned = walkdir::WalkDir::new(p.path())
        .into_iter()
        .flatten()
        .any(|e| e.file_name() == "PWNED");
    assert!(!pwned, "a name reached a shell");
    assert!(
        p.latest()
            .join(group)
            .join("hooks/before_first_test_remote/stdout")
            .exists()
    );
}

#[test]
fn an_ssh_config_alias_gives_host_user_port_and_identity_file() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let ssh = s.home.join(".ssh");
    // Only the named key can log in; the default names do not exist.
    std::fs::rename(ssh.join("id_ed25519"), ssh.join("lab key")).unwrap();
    std::fs::rename(ssh.join("id_ed25519.pub"), ssh.join("lab key.pub")).unwrap();
    std::fs::write(
        ssh.join("config"),
        format!(
            "Host other\n  User nobody\nHost lab-box\n  HostName {}\n  User {}\n  Port {}\n  IdentityFile \"~/.ssh/lab key\"\n",
            s.host, s.user, s.port
        ),
    )
    .unwrap();
    let p = Project::new();
    p.bash("g/local/c", "wait_for_remote --timeout 60s");
    p.bash(
        "g/remote/r",
        "echo user=$(id -un) port=$REMOTE_PORT user_var=$REMOTE_USER",
    );
    let r = run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", "lab-box"],
    );
    r.expect_code(0);
    let pair = p.pair("g", "c_x_r");
    let out = pair.read("remote/stdout");
    assert!(
        out.contains(&format!(
            "user={} port={} user_var={}",
            s.user, s.port, s.user
        )),
        "{out}"
    );
    assert_eq!(p.results_csv()[0]["remote_host"], "lab-box");
}

#[test]
fn unknown_host_keys_are_refused_unless_accepted_and_changed_ones_always() {
    let Some(s) = Sshd::start() else { return };
    let p = Project::new();
    p.bash("g/local/c", "true");
    p.bash("g/remote/r", "true");
    // Unknown: refused, with what to do.
    let r = run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", &boxed(&p, &s)],
    );
    r.expect_code(2);
    let reason = p.pair("g", "c_x_r").reason();
    assert_eq!(p.pair("g", "c_x_r").status(), "ERROR");
    assert!(reason.contains("is not known"), "{reason}");
    // The fingerprint as `ssh-keygen -l` shows it, so the user can compare.
    let fp = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(s.dir.path().join("host_ed25519.pub"))
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&fp.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(reason.contains(&fp), "{fp} in {reason}");
    assert!(reason.contains("--accept-new-host-keys"), "{reason}");
    assert!(
        !s.known_hosts().exists() || std::fs::read_to_string(s.known_hosts()).unwrap().is_empty()
    );

    // Accepted: added in the [host]:port form, then known.
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &boxed(&p, &s),
            "--accept-new-host-keys",
        ],
    );
    r.expect_code(0);
    let kh = std::fs::read_to_string(s.known_hosts()).unwrap();
    assert!(
        kh.contains(&format!("{} {}", s.known_name(), s.host_key())),
        "{kh}"
    );
    run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", &boxed(&p, &s)],
    )
    .expect_code(0);

    // Hashed entries work too.
    let out = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(s.known_hosts())
        .output()
        .unwrap();
    assert!(out.status.success());
    let kh = std::fs::read_to_string(s.known_hosts()).unwrap();
    assert!(kh.starts_with("|1|"), "{kh}");
    run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", &boxed(&p, &s)],
    )
    .expect_code(0);

    // Changed: refused, even with --accept-new-host-keys.
    let other = tempfile::tempdir().unwrap();
    let key = other.path().join("k");
    assert!(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut f = pubkey.split_whitespace();
    std::fs::write(
        s.known_hosts(),
        format!(
            "{} {} {}\n",
            s.known_name(),
            f.next().unwrap(),
            f.next().unwrap()
        ),
    )
    .unwrap();
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &boxed(&p, &s),
            "--accept-new-host-keys",
        ],
    );
    r.expect_code(2);
    let reason = p.pair("g", "c_x_r").reason();
    assert!(reason.contains("CHANGED"), "{reason}");
    assert!(reason.contains("ssh-keygen -R"), "{reason}");
}

#[test]
fn refused_connections_and_logins_are_errors_with_their_reason() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    p.bash("g/local/c", "true");
    p.bash("g/remote/r", "true");
    p.bash("h/local/c", "true");
    p.bash("h/remote/r", "true");

    // Nothing listens on that port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &format!("{}@127.0.0.1:{port}", s.user),
        ],
    );
    r.expect_code(2);
    for g in ["g", "h"] {
        let pair = p.pair(g, "c_x_r");
        assert_eq!(pair.status(), "ERROR");
        assert!(
            pair.reason()
                .contains(&format!("ssh: connection refused (127.0.0.1:{port})")),
            "{}",
            pair.reason()
        );
    }

    // A key the host does not accept: login refused, no prompt.
    let ssh = s.home.join(".ssh");
    std::fs::remove_file(ssh.join("id_ed25519")).unwrap();
    std::fs::remove_file(ssh.join("id_ed25519.pub")).unwrap();
    assert!(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(ssh.join("id_ed25519"))
            .status()
            .unwrap()
            .success()
    );
    let r = run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", &boxed(&p, &s)],
    );
    r.expect_code(2);
    let reason = p.pair("g", "c_x_r").reason();
    assert!(reason.contains("login refused"), "{reason}");
    assert!(reason.contains("id_ed25519"), "{reason}");
    assert!(reason.contains("authorized_keys"), "{reason}");
}

#[test]
fn a_remote_test_that_cannot_start_is_an_error_with_its_reason() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    p.bash("g/local/c", "true");
    p.script("g/remote/r", "#!/nonexistent/interpreter\n");
    let r = run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", &boxed(&p, &s)],
    );
    r.expect_code(2);
    let pair = p.pair("g", "c_x_r");
    assert_eq!(pair.status(), "ERROR");
    assert!(
        pair.reason().contains("remote test could not start"),
        "{}",
        pair.reason()
    );
    assert!(
        pair.reason().contains("/nonexistent/interpreter"),
        "{}",
        pair.reason()
    );
}

#[test]
fn in_its_own_network_namespace_the_remote_is_reached_at_its_address() {
    let Some(s) = Sshd::start_in_netns() else {
        return;
    };
    s.trust();
    let ns = s.netns.as_ref().unwrap();
    let p = Project::new();
    p.bash(
        "g/remote/server",
        "echo \"lh=$PAIRBENCH_LOCAL_HOST rh=$PAIRBENCH_REMOTE_HOST\"\n\
         exec python3 -c 'import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind((\"0.0.0.0\", 7777))\ns.listen()\nwhile True:\n  c,a=s.accept()\n  c.sendall(b\"hello from the namespace\\n\")\n  c.close()'",
    );
    p.bash(
        "g/local/client",
        "wait_for_remote_port_open 7777 --timeout 30s || exit 1\n\
         exec 3<>/dev/tcp/$PAIRBENCH_REMOTE_HOST/7777; cat <&3; echo \"rh=$REMOTE_HOST\"",
    );
    let r = run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", &boxed(&p, &s)],
    );
    r.expect_code(0);
    let pair = p.pair("g", "client_x_server");
    assert_eq!(pair.status(), "SUCCESS", "{}", pair.reason());
    let local = pair.read("local/stdout");
    assert!(local.contains("hello from the namespace"), "{local}");
    assert!(local.contains(&format!("rh={}", ns.ns_addr)), "{local}");
    let remote = pair.read("remote/stdout");
    assert!(
        remote.contains(&format!("lh={} rh={}", ns.host_addr, ns.ns_addr)),
        "{remote}"
    );
}

#[test]
fn an_unreachable_host_is_an_error_in_bounded_time() {
    let Some(s) = Sshd::start_in_netns() else {
        return;
    };
    s.trust();
    s.netns.as_ref().unwrap().cut();
    let p = Project::new();
    p.bash("g/local/c", "true");
    p.bash("g/remote/r", "true");
    let start = Instant::now();
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &boxed(&p, &s),
            "--connect-timeout",
            "2s",
        ],
    );
    r.expect_code(2);
    assert!(start.elapsed() < Duration::from_secs(60));
    let reason = p.pair("g", "c_x_r").reason();
    eprintln!("{reason}");
    assert!(reason.contains("host unreachable"), "{reason}");
    assert!(reason.contains(&s.host), "{reason}");
}

#[test]
fn a_link_cut_in_the_middle_of_a_pair_is_an_error_and_nothing_hangs() {
    let Some(s) = Sshd::start_in_netns() else {
        return;
    };
    s.trust();
    let p = Project::new();
    let tag = unique("PB_SSH_CUT");
    p.bash("g/remote/r", &format!("export {tag}=1\nsleep 120"));
    p.bash("g/local/c", "wait_for_remote --timeout 120s");
    p.bash("h/remote/r", "true");
    p.bash("h/local/c", "true");
    let mut cmd = p.cmd();
    s.client(&mut cmd);
    cmd.args([
        "run",
        "--progress",
        "never",
        "--remote",
        &boxed(&p, &s),
        "--connect-timeout",
        "3s",
        "--kill-grace",
        "200ms",
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().unwrap();
    assert!(
        eventually(Duration::from_secs(60), || !processes_with_env(&format!(
            "{tag}=1"
        ))
        .is_empty()),
        "the remote test started"
    );
    s.netns.as_ref().unwrap().cut();
    let cut_at = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = cut_at.elapsed();
    let r = common::Run {
        out,
        project_dir: p.path().to_path_buf(),
    };
    r.expect_code(2);
    assert!(
        took < Duration::from_secs(60),
        "the run ended {took:?} after the cut (connect timeout 3s)"
    );
    let pair = p.pair("g", "c_x_r");
    eprintln!("the run ended {took:?} after the cut: {}", pair.reason());
    assert_eq!(pair.status(), "ERROR");
    assert!(pair.reason().contains("lost"), "{}", pair.reason());
    // The next group's pairs are errors too (the host is gone), with a reason.
    let next = p.pair("h", "c_x_r");
    assert_eq!(next.status(), "ERROR");
    assert!(!next.reason().is_empty());
    // The agent notices the silence and ends what it started.
    assert!(
        eventually(Duration::from_secs(30), || processes_with_env(&format!(
            "{tag}=1"
        ))
        .is_empty()),
        "the remote test was ended after the cut"
    );
    assert!(start.elapsed() < Duration::from_secs(150));
}

#[test]
fn ssh_agent_keys_log_in_when_no_key_file_does() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let ssh = s.home.join(".ssh");
    let keep = s.dir.path().join("agent_key");
    std::fs::rename(ssh.join("id_ed25519"), &keep).unwrap();
    std::fs::remove_file(ssh.join("id_ed25519.pub")).unwrap();
    let agent = sshd::Agent::start(&[&keep]);
    let p = Project::new();
    p.bash("g/local/c", "true");
    p.bash("g/remote/r", "true");
    // Without the agent: no key at all.
    let r = run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", &boxed(&p, &s)],
    );
    r.expect_code(2);
    assert!(p.pair("g", "c_x_r").reason().contains("login refused"));
    // With it.
    let mut cmd = p.cmd();
    s.client(&mut cmd);
    cmd.env("SSH_AUTH_SOCK", &agent.socket);
    let out = cmd
        .args(["run", "--progress", "never", "--remote", &boxed(&p, &s)])
        .output()
        .unwrap();
    common::Run {
        out,
        project_dir: p.path().to_path_buf(),
    }
    .expect_code(0);
}

#[test]
fn a_host_known_by_another_key_type_is_checked_with_that_type() {
    let Some(s) = Sshd::start() else { return };
    // known_hosts has the host's ECDSA key only; the host prefers to show ed25519.
    std::fs::write(
        s.known_hosts(),
        format!("{} {}\n", s.known_name(), s.host_key_of("ecdsa")),
    )
    .unwrap();
    let p = Project::new();
    p.bash("g/local/c", "true");
    p.bash("g/remote/r", "true");
    run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", &boxed(&p, &s)],
    )
    .expect_code(0);
    // Nothing was added: the known key was enough.
    let kh = std::fs::read_to_string(s.known_hosts()).unwrap();
    assert_eq!(kh.lines().count(), 1, "{kh}");
}

#[test]
fn parallel_pairs_share_the_connection_and_helpers_work_over_it() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        p.path().join("pairbench.toml"),
        remote_entry("box", &s, work.path(), 4),
    )
    .unwrap();
    for l in ["a", "b", "c"] {
        p.bash(
            &format!("g/local/{l}"),
            "sleep 2; kill_remote && echo killed",
        );
    }
    for r in ["x", "y"] {
        p.bash(
            &format!("g/remote/{r}"),
            "report_metric rps 5 req/s && echo reported; exec sleep 100",
        );
    }
    let start = Instant::now();
    let r = run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", "box", "-j", "4"],
    );
    r.expect_code(0);
    assert!(start.elapsed() < Duration::from_secs(60));
    for l in ["a", "b", "c"] {
        for rr in ["x", "y"] {
            let pair = p.pair("g", &format!("{l}_x_{rr}"));
            assert_eq!(pair.status(), "SUCCESS", "{}", pair.reason());
            assert!(pair.read("local/stdout").contains("killed"));
            assert!(pair.read("remote/stdout").contains("reported"));
            assert_eq!(pair.read("remote/metrics.csv"), "rps,5,req/s\n");
            assert_eq!(pair.read("remote/exit_code").trim(), "signal SIGHUP");
        }
    }
    let metrics = common::script_metrics(&p.latest().join("metrics.csv"));
    assert_eq!(metrics.iter().filter(|m| m["side"] == "remote").count(), 6);
}

#[test]
fn a_pool_of_ssh_hosts_shares_the_pairs_and_a_dead_host_is_left_out() {
    let Some(a) = Sshd::start() else { return };
    let Some(b) = Sshd::start() else { return };
    one_client_for_both(&a, &b);
    let p = Project::new();
    let (wa, wb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    std::fs::write(
        p.path().join("pairbench.toml"),
        format!(
            "{}{}[[remote]]\nname = \"gone\"\nhost = \"127.0.0.1\"\nport = {dead_port}\n",
            remote_entry("a", &a, wa.path(), 2),
            remote_entry("b", &b, wb.path(), 2),
        ),
    )
    .unwrap();
    for l in ["l1", "l2", "l3", "l4"] {
        p.bash(
            &format!("g/local/{l}"),
            "wait_for_remote --timeout 60s; sleep 0.3",
        );
    }
    for r in ["r1", "r2"] {
        p.bash(&format!("g/remote/{r}"), "echo \"port=$REMOTE_PORT\"");
    }
    let r = run(
        &p,
        &a,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            "a",
            "--remote",
            "gone",
            "--remote",
            "b",
            "-j",
            "4",
        ],
    );
    r.expect_code(0);
    let rows = p.results_csv();
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r["status"] == "SUCCESS"), "{rows:?}");
    let on = |h: &str| rows.iter().filter(|r| r["remote_host"] == h).count();
    assert!(on("a") > 0 && on("b") > 0, "{rows:?}");
    assert_eq!(on("gone"), 0);
    for row in &rows {
        let port = if row["remote_host"] == "a" {
            a.port
        } else {
            b.port
        };
        let pair = p.pair("g", &row["pair"]);
        assert!(
            pair.read("remote/stdout").contains(&format!("port={port}")),
            "{} ran on {}",
            row["pair"],
            row["remote_host"]
        );
    }
    assert!(r.stderr().contains("connection refused"), "{}", r.stderr());
}

#[test]
fn a_host_lost_mid_run_has_its_pair_in_error_and_the_other_pairs_move_to_the_host_left() {
    let Some(b) = Sshd::start_in_netns() else {
        return;
    };
    let Some(a) = Sshd::start() else { return };
    one_client_for_both(&a, &b);
    let p = Project::new();
    let (wa, wb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(
        p.path().join("pairbench.toml"),
        format!(
            "{}{}",
            remote_entry("a", &a, wa.path(), 1),
            remote_entry("b", &b, wb.path(), 1),
        ),
    )
    .unwrap();
    // `on_b` appears (holding the pair's name) once a pair runs on b; pairs on a wait for
    // `gate`, which opens only after b's pair has its result, so the pairs still to run
    // when b is lost must go to a (or wrongly to b) rather than all finish on a first.
    let flags = tempfile::tempdir().unwrap();
    let (on_b, gate) = (flags.path().join("on_b"), flags.path().join("gate"));
    let tag = unique("PB_SSH_POOL_CUT");
    p.bash("g/remote/r", &format!("export {tag}=1\nsleep 300"));
    let local = format!(
        "if [ \"$REMOTE_HOST\" = '{bhost}' ]; then\n  echo \"$PAIRBENCH_PAIR\" > '{on_b}'\n  sleep 300\nfi\n\
         for _ in $(seq 1200); do [ -e '{gate}' ] && exit 0; sleep 0.1; done\nexit 1",
        bhost = b.host,
        on_b = on_b.display(),
        gate = gate.display()
    );
    let locals = ["l1", "l2", "l3", "l4", "l5", "l6"];
    for l in locals {
        p.bash(&format!("g/local/{l}"), &local);
    }
    let mut cmd = p.cmd();
    a.client(&mut cmd);
    cmd.args([
        "run",
        "--progress",
        "never",
        "--remote",
        "a",
        "--remote",
        "b",
        "-j",
        "2",
        "--connect-timeout",
        "3s",
        "--kill-grace",
        "200ms",
    ]);
    let (out_path, err_path) = (flags.path().join("stdout"), flags.path().join("stderr"));
    cmd.stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let stderr = || std::fs::read_to_string(&err_path).unwrap_or_default();
    let fail = |child: &mut std::process::Child, what: &str| -> ! {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what}; pairbench's stderr:\n{}", stderr());
    };
    if !eventually(Duration::from_secs(90), || {
        std::fs::read_to_string(&on_b).is_ok_and(|s| s.ends_with('\n'))
    }) {
        fail(&mut child, "no pair started on b");
    }
    let lost_pair = std::fs::read_to_string(&on_b).unwrap().trim().to_string();
    b.netns.as_ref().unwrap().cut();
    // b's pair ends (its result is written) while a's pair still waits at the gate.
    let csv_has_error = || {
        std::fs::read_dir(p.path().join("results"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_to_string(e.path().join("results.csv"))
                    .is_ok_and(|s| s.contains(",ERROR,"))
            })
    };
    if !eventually(Duration::from_secs(90), csv_has_error) {
        fail(
            &mut child,
            "the pair on b did not end after its link was cut",
        );
    }
    std::fs::write(&gate, "").unwrap();
    let end = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            fail(&mut child, "the run did not end after b was lost");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("run took {:?}; stderr:\n{}", start.elapsed(), stderr());
    assert_eq!(status.code(), Some(2), "{}", stderr());

    let rows = p.results_csv();
    assert_eq!(rows.len(), 6, "{rows:?}");
    for l in locals {
        assert!(
            rows.iter().any(|r| r["pair"] == format!("{l}_x_r")),
            "{l} has a result: {rows:?}"
        );
    }
    for row in &rows {
        if row["pair"] == lost_pair {
            assert_eq!(row["remote_host"], "b", "{row:?}");
            assert_eq!(row["status"], "ERROR", "{row:?}");
            assert!(row["reason"].contains("lost"), "{row:?}");
            let pair = p.pair("g", &lost_pair);
            assert_eq!(pair.status(), "ERROR");
            eprintln!("{lost_pair} on b: {}", pair.reason());
            assert!(pair.reason().contains("lost"), "{}", pair.reason());
        } else {
            assert_eq!(row["remote_host"], "a", "only one pair ran on b: {rows:?}");
            assert_eq!(row["status"], "SUCCESS", "{row:?}");
        }
    }
    // Nothing the remote tests started is left: a's ended with their pairs, b's agent
    // ends its own when it hears nothing more from pairbench.
    assert!(
        eventually(Duration::from_secs(60), || processes_with_env(&format!(
            "{tag}=1"
        ))
        .is_empty()),
        "the remote tests were ended"
    );
}

#[test]
fn verbose_runs_stream_the_remote_output_live() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    p.bash(
        "g/remote/r",
        "echo hello-from-remote; echo err-line >&2; sleep 0.3; echo second-line; exec sleep 100",
    );
    p.bash("g/local/c", "sleep 2; echo local-line");
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &boxed(&p, &s),
            "-v",
        ],
    );
    r.expect_code(0);
    let out = r.stdout();
    for line in ["hello-from-remote", "second-line", "err-line"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("remote ") && l.ends_with(line)),
            "{line} streamed:\n{out}"
        );
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("local ") && l.ends_with("local-line"))
    );
    let pair = p.pair("g", "c_x_r");
    assert_eq!(
        pair.read("remote/stdout"),
        "hello-from-remote\nsecond-line\n"
    );
    assert_eq!(pair.read("remote/stderr"), "err-line\n");
}

#[test]
fn an_agent_that_cannot_run_on_the_remote_is_an_error_that_says_why() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    let work = tempfile::tempdir().unwrap();
    let fake = p.path().join("not-pairbench");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'cannot execute binary file' >&2\nexit 126\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        p.path().join("pairbench.toml"),
        format!(
            "{}agent = \"{}\"\n",
            remote_entry("box", &s, work.path(), 1),
            fake.display()
        ),
    )
    .unwrap();
    p.bash("g/local/c", "true");
    p.bash("g/remote/r", "true");
    let r = run(&p, &s, &["run", "--progress", "never", "--remote", "box"]);
    r.expect_code(2);
    let reason = p.pair("g", "c_x_r").reason();
    assert!(reason.contains("agent did not start"), "{reason}");
    assert!(reason.contains("cannot execute binary file"), "{reason}");
}

#[test]
fn a_link_cut_in_a_remote_hook_ends_the_hook_and_its_pairs_as_errors() {
    let Some(s) = Sshd::start_in_netns() else {
        return;
    };
    s.trust();
    let p = Project::new();
    let tag = unique("PB_SSH_HOOKCUT");
    p.bash(
        "g/before_first_test_remote",
        &format!("export {tag}=1\nsleep 120"),
    );
    p.bash("g/remote/r", "true");
    p.bash("g/local/c", "true");
    let mut cmd = p.cmd();
    s.client(&mut cmd);
    cmd.args([
        "run",
        "--progress",
        "never",
        "--remote",
        &boxed(&p, &s),
        "--connect-timeout",
        "3s",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    assert!(
        eventually(Duration::from_secs(60), || !processes_with_env(&format!(
            "{tag}=1"
        ))
        .is_empty()),
        "the hook started"
    );
    s.netns.as_ref().unwrap().cut();
    let cut_at = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = cut_at.elapsed();
    common::Run {
        out,
        project_dir: p.path().to_path_buf(),
    }
    .expect_code(2);
    assert!(
        took < Duration::from_secs(60),
        "ended {took:?} after the cut"
    );
    let reason = p.pair("g", "c_x_r").reason();
    assert!(reason.contains("before_first_test_remote"), "{reason}");
    assert!(reason.contains("lost"), "{reason}");
    assert!(
        eventually(Duration::from_secs(30), || processes_with_env(&format!(
            "{tag}=1"
        ))
        .is_empty()),
        "the hook was ended after the cut"
    );
}

#[test]
fn when_pairbench_dies_the_remote_agent_ends_what_it_started() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    let tag = unique("PB_SSH_ORPHAN");
    p.bash(
        "g/remote/r",
        &format!("export {tag}=1\n( setsid sleep 300 & ) ; sleep 300"),
    );
    // The local test is this test's to clean up: a killed pairbench cannot.
    p.bash(
        "g/local/c",
        &format!("export {tag}_LOCAL=1\nexec sleep 300"),
    );
    let mut cmd = p.cmd();
    s.client(&mut cmd);
    cmd.args(["run", "--progress", "never", "--remote", &boxed(&p, &s)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    assert!(
        eventually(Duration::from_secs(60), || processes_with_env(&format!(
            "{tag}=1"
        ))
        .len()
            >= 2),
        "the remote test and its daemon started"
    );
    // No goodbye: the connection just closes.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(30), || processes_with_env(&format!(
            "{tag}=1"
        ))
        .is_empty()),
        "the agent ended the remote test and its daemon"
    );
    for pid in processes_with_env(&format!("{tag}_LOCAL=1")) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn a_host_that_accepts_but_never_speaks_ssh_is_an_error_in_bounded_time() {
    // Needs no sshd: a listener that accepts and stays silent.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = silent.incoming().take(1).flatten().collect();
        std::thread::sleep(Duration::from_secs(20));
        drop(conns);
    });
    let p = Project::new();
    p.bash("g/local/c", "true");
    p.bash("g/remote/r", "true");
    let home = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = p
        .cmd()
        .env("HOME", home.path())
        .env_remove("SSH_AUTH_SOCK")
        .args([
            "run",
            "--progress",
            "never",
            "--remote",
            &format!("127.0.0.1:{port}"),
            "--connect-timeout",
            "2s",
        ])
        .output()
        .unwrap();
    let r = common::Run {
        out,
        project_dir: p.path().to_path_buf(),
    };
    r.expect_code(2);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    let reason = p.pair("g", "c_x_r").reason();
    assert!(reason.contains("no SSH handshake"), "{reason}");
    assert!(reason.contains("within 2s"), "{reason}");
    drop(held);
}

#[test]
fn links_a_remote_host_sends_are_not_recreated_and_nothing_is_written_through_them() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    let secret = p.path().join("secret");
    std::fs::write(&secret, "PRIVATE KEY\n").unwrap();
    // The remote side makes links to a file of this machine, and writes a file that a
    // local link (planted by the local test) points at.
    p.bash(
        "g/local/l",
        &format!(
            "ln -s '{}' ../remote/data.txt; wait_for_remote --timeout 60s; exit 1",
            secret.display()
        ),
    );
    p.bash(
        "g/remote/r",
        &format!(
            "exec 2>/dev/null; rm -f stdout; ln -s '{}' stdout; ln -s / root; echo overwritten > data.txt",
            secret.display()
        ),
    );
    let r = run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", &boxed(&p, &s)],
    );
    r.expect_code(1);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "PRIVATE KEY\n");
    let pair = p.pair("g", "l_x_r");
    for l in ["remote/stdout", "remote/root"] {
        assert!(
            std::fs::symlink_metadata(pair.path().join(l)).is_err(),
            "{l} was recreated"
        );
    }
    assert_eq!(pair.read("remote/data.txt"), "overwritten\n");
    assert!(
        !std::fs::symlink_metadata(pair.path().join("remote/data.txt"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let rec: serde_json::Value = serde_json::from_str(&pair.read("pair.json")).unwrap();
    let notes = rec["notes"].to_string();
    assert!(
        notes.contains("stdout ->") && notes.contains("not recreated"),
        "{notes}"
    );
    let junit = std::fs::read_to_string(p.latest().join("junit.xml")).unwrap();
    assert!(!junit.contains("PRIVATE KEY"));
}

#[test]
fn the_new_group_skeleton_runs_green_over_ssh() {
    // The skeleton must work on two machines: its server and client agree on the port
    // through PAIRBENCH_PORT, not through a file only a shared folder would show.
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    p.run(&["new", "echo"]).expect_code(0);
    // This test's "remote" shares this machine's files, so a skeleton that read the
    // remote's folder from the local side would pass here and fail between two machines.
    let client = std::fs::read_to_string(p.path().join("groups/echo/local/echo_client")).unwrap();
    assert!(!client.contains("REMOTE_RESULTS_PATH"), "{client}");
    assert!(
        client.contains("wait_for_remote_port_open \"$PAIRBENCH_PORT\""),
        "{client}"
    );
    let host = boxed(&p, &s);
    run(
        &p,
        &s,
        &[
            "run",
            "echo",
            "--progress",
            "never",
            "--remote",
            &host,
            "--repeat",
            "2",
        ],
    )
    .expect_code(0);
    let rows = p.results_csv();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["status"], "SUCCESS", "{r:?}");
        assert_eq!(r["remote_host"], "box");
    }
    let metrics = common::read_csv(&p.latest().join("metrics.csv"));
    assert!(
        metrics.iter().any(|m| m["name"] == "round_trip"),
        "{metrics:?}"
    );
}

#[test]
fn accepting_a_new_host_key_says_so_once_as_openssh_does() {
    let Some(s) = Sshd::start() else { return };
    let p = Project::new();
    for l in ["a", "b", "c"] {
        p.bash(&format!("g/local/{l}"), "true");
    }
    p.bash("g/remote/r", "true");
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &boxed(&p, &s),
            "--accept-new-host-keys",
        ],
    );
    r.expect_code(0);
    let want = format!(
        "Warning: Permanently added '{}' (ED25519) to the list of known hosts.",
        s.known_name()
    );
    assert_eq!(r.stderr().matches(&want).count(), 1, "{}", r.stderr());
    // Known now: nothing is added or said again.
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &boxed(&p, &s),
            "--accept-new-host-keys",
            "-B",
        ],
    );
    r.expect_code(0);
    assert!(!r.stderr().contains("Permanently added"), "{}", r.stderr());
}

#[test]
fn a_refused_host_key_is_said_once_and_its_pairs_run_again_on_the_next_run() {
    let Some(s) = Sshd::start() else { return };
    let p = Project::new();
    for l in ["a", "b", "c"] {
        p.bash(&format!("g/local/{l}"), "true");
    }
    p.bash("g/remote/r", "true");
    let host = boxed(&p, &s);
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &host,
            "--tag",
            "t",
        ],
    );
    r.expect_code(2);
    let out = r.stdout();
    // Once in the progress lines, once in the summary: not once per pair.
    assert_eq!(out.matches("is not known").count(), 2, "{out}");
    assert!(out.contains("ERROR   3 pairs not run: "), "{out}");
    assert!(
        out.contains("not run: no remote host could be reached (the reason is above)"),
        "{out}"
    );
    // The reason stays in each pair's record.
    assert!(p.pair("g", "a_x_r").reason().contains("is not known"));
    // Trusted now: a run of the tag runs them again without --recheck.
    s.trust();
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &host,
            "--tag",
            "t",
        ],
    );
    r.expect_code(0);
    assert!(r.stdout().contains("3 pairs: 3 SUCCESS"), "{}", r.stdout());
    // And a result is a result: nothing runs a third time.
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &host,
            "--tag",
            "t",
            "-n",
        ],
    );
    r.expect_code(0);
    assert!(
        r.stdout().contains("0 of 3 pairs would run"),
        "{}",
        r.stdout()
    );
}

#[test]
fn a_revoked_host_key_is_refused_and_never_added() {
    let Some(s) = Sshd::start() else { return };
    let p = Project::new();
    p.bash("g/local/c", "true");
    p.bash("g/remote/r", "true");
    std::fs::create_dir_all(s.known_hosts().parent().unwrap()).unwrap();
    let revoked = format!("@revoked * {}\n", s.host_key());
    std::fs::write(s.known_hosts(), &revoked).unwrap();
    let r = run(
        &p,
        &s,
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            &boxed(&p, &s),
            "--accept-new-host-keys",
        ],
    );
    r.expect_code(2);
    let reason = p.pair("g", "c_x_r").reason();
    assert!(reason.contains("@revoked"), "{reason}");
    assert_eq!(std::fs::read_to_string(s.known_hosts()).unwrap(), revoked);
    // Even next to a plain line that trusts it.
    std::fs::write(
        s.known_hosts(),
        format!("{}{} {}\n", revoked, s.known_name(), s.host_key()),
    )
    .unwrap();
    run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", &boxed(&p, &s)],
    )
    .expect_code(2);
    assert!(p.pair("g", "c_x_r").reason().contains("@revoked"));
}

#[test]
fn a_cert_authority_line_for_the_host_is_named_in_the_refusal() {
    let Some(s) = Sshd::start() else { return };
    let p = Project::new();
    p.bash("g/local/c", "true");
    p.bash("g/remote/r", "true");
    std::fs::create_dir_all(s.known_hosts().parent().unwrap()).unwrap();
    // Some CA key (the host's certificate is not what libssh2 checks).
    std::fs::write(
        s.known_hosts(),
        format!(
            "@cert-authority {} {}\n",
            s.known_name(),
            s.host_key_of("ecdsa")
        ),
    )
    .unwrap();
    run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", &boxed(&p, &s)],
    )
    .expect_code(2);
    let reason = p.pair("g", "c_x_r").reason();
    assert!(
        reason.contains("@cert-authority") && reason.contains("does not check host certificates"),
        "{reason}"
    );
}
