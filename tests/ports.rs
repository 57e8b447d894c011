//! The port helpers: `wait_for_remote_port_open` / `_close` check the listening state on
//! the remote host itself (its kernel's socket tables, in the remote test's network
//! namespace), never by connecting, so servers that serve exactly one client (`nc -l`)
//! are not used up. A fixture in mirage-bench's pattern (a one-shot `nc -l` server, a
//! client that waits for the port and connects once, hooks that use mirage-bench's
//! variables) runs on this machine and over SSH; a server that counts connections sees
//! exactly one; `--udp` waits for a bound UDP socket; a server in another network
//! namespace is seen there and nowhere else.

mod common;
#[path = "common/sshd.rs"]
mod sshd;

use std::path::Path;

use common::Project;
use sshd::Sshd;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Group `nc-example`: a one-shot `nc -l` server that must receive the client's line,
/// a client that waits for its port, sends one line over one connection and waits for
/// the server to end, and hooks that write what mirage-bench's variables say.
fn nc_group(p: &Project, port: u16) {
    p.bash(
        "nc-example/remote/nc_server",
        &format!(
            "nc -l {port} > received\n\
             grep -qx 'hello from the client' received || {{ echo \"got: $(cat received)\"; exit 1; }}\n\
             echo served once"
        ),
    );
    p.bash(
        "nc-example/local/client",
        &format!(
            "wait_for_remote_port_open {port} --timeout 30s || exit 1\n\
             exec 3<>/dev/tcp/$REMOTE_HOST/{port} || exit 1\n\
             echo 'hello from the client' >&3\n\
             exec 3>&-\n\
             wait_for_remote --timeout 30s"
        ),
    );
    for side in ["local", "remote"] {
        let root = if side == "local" {
            "LOCAL_RESULTS_ROOT_PATH"
        } else {
            "REMOTE_RESULTS_ROOT_PATH"
        };
        p.bash(
            &format!("nc-example/before_first_test_{side}"),
            &format!("echo \"$TEST $RESULTS_TAG $PWD\" > \"${root}/before_{side}\""),
        );
    }
    // After the last pair, every result has come back to this machine.
    p.bash(
        "nc-example/after_last_test_local",
        "cat \"$LOCAL_RESULTS_ROOT_PATH/client_x_nc_server/remote/received\" > \"$LOCAL_RESULTS_ROOT_PATH/gathered\"",
    );
}

fn check_nc_run(p: &Project, tag: &str) {
    let pair = p.pair("nc-example", "client_x_nc_server");
    assert_eq!(
        pair.status(),
        "SUCCESS",
        "{}\n--- local stderr\n{}\n--- remote stdout\n{}",
        pair.reason(),
        pair.read("local/stderr"),
        pair.read("remote/stdout")
    );
    assert_eq!(pair.read("remote/received"), "hello from the client\n");
    assert!(pair.read("remote/stdout").contains("served once"));
    let stderr = pair.read("local/stderr");
    assert!(
        stderr.contains("is listening after") && stderr.contains("without connecting"),
        "{stderr}"
    );
    let group = p.latest().join("nc-example");
    let read = |f: &str| std::fs::read_to_string(group.join(f)).unwrap_or_default();
    for side in ["local", "remote"] {
        let seen = read(&format!("before_{side}"));
        assert!(
            seen.starts_with(&format!("nc-example {tag} /")),
            "{side} hook saw: {seen:?}"
        );
    }
    assert_eq!(read("gathered"), "hello from the client\n");
}

#[test]
fn a_one_shot_nc_server_is_waited_for_and_then_served_exactly_once() {
    let p = Project::new();
    nc_group(&p, free_port());
    p.run(&["run", "--progress", "never", "--tag", "nc"])
        .expect_code(0);
    check_nc_run(&p, "nc");
}

#[test]
fn a_one_shot_nc_server_over_ssh_is_waited_for_on_the_remote_host() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    nc_group(&p, free_port());
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ssh-remote-work");
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
    p.run_with(
        |c| s.client(c),
        &[
            "run",
            "--progress",
            "never",
            "--tag",
            "nc",
            "--remote",
            "box",
        ],
    )
    .expect_code(0);
    check_nc_run(&p, "nc");
}

#[test]
fn a_server_that_counts_its_connections_sees_exactly_one() {
    let p = Project::new();
    let port = free_port();
    p.script(
        "g/remote/counting",
        &format!(
            "#!/usr/bin/env python3\nimport socket, time\ntime.sleep(0.3)\n\
             s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('127.0.0.1', {port})); s.listen()\nn = 0\n\
             while True:\n    c, _ = s.accept(); n += 1\n    open('connections', 'w').write(str(n))\n    c.close()\n"
        ),
    );
    p.bash(
        "g/local/client",
        &format!(
            "wait_for_remote_port_open {port} --timeout 30s || exit 1\n\
             wait_for_remote_port_open {port} --timeout 30s || exit 1\n\
             exec 3<>/dev/tcp/127.0.0.1/{port}; exec 3>&-\n\
             for i in $(seq 100); do [ -s \"$REMOTE_RESULTS_PATH/connections\" ] && break; sleep 0.05; done\n\
             sleep 0.3"
        ),
    );
    p.run(&["run", "--progress", "never", "--kill-grace", "100ms"])
        .expect_code(0);
    assert_eq!(
        p.pair("g", "client_x_counting").read("remote/connections"),
        "1",
        "the helpers connected to the server"
    );
}

#[test]
fn udp_waits_for_a_bound_socket_which_a_tcp_wait_does_not_see() {
    let p = Project::new();
    let port = free_port();
    p.script(
        "g/remote/udp_server",
        &format!(
            "#!/usr/bin/env python3\nimport socket, time\ntime.sleep(0.3)\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             s.bind(('127.0.0.1', {port}))\ndata, _ = s.recvfrom(100)\n\
             open('received', 'wb').write(data)\n"
        ),
    );
    p.bash(
        "g/local/client",
        &format!(
            "wait_for_remote_port_open {port} --udp --timeout 30s; echo \"udp open $?\" > rc\n\
             wait_for_remote_port_open {port} --timeout 300ms; echo \"tcp open $?\" >> rc\n\
             echo datagram > /dev/udp/127.0.0.1/{port}\n\
             wait_for_remote_port_close {port} --udp --timeout 30s; echo \"udp close $?\" >> rc"
        ),
    );
    p.run(&["run", "--progress", "never"]).expect_code(0);
    let pair = p.pair("g", "client_x_udp_server");
    assert_eq!(
        pair.read("local/rc"),
        "udp open 0\ntcp open 124\nudp close 0\n",
        "{}",
        pair.read("local/stderr")
    );
    assert_eq!(pair.read("remote/received"), "datagram\n");
    assert!(pair.read("local/stderr").contains("UDP port"));
}

#[test]
fn the_socket_tables_read_are_those_of_the_remote_tests_network_namespace() {
    if !sshd::netns_available() {
        return;
    }
    let ns = sshd::Netns::create();
    let p = Project::new();
    let (inside, outside) = (free_port(), free_port());
    // Listening on `outside` here, in this machine's namespace, where the remote is not.
    let _here = std::net::TcpListener::bind(("127.0.0.1", outside)).unwrap();
    p.bash(
        "g/remote/in_namespace",
        &format!(
            "exec ip netns exec {} python3 -c 'import socket, time\n\
             s = socket.socket(); s.bind((\"127.0.0.1\", {inside})); s.listen(); time.sleep(300)'",
            ns.name
        ),
    );
    p.bash(
        "g/local/client",
        &format!(
            "wait_for_remote_port_open {inside} --timeout 30s; echo \"inside $?\" > rc\n\
             wait_for_remote_port_open {outside} --timeout 500ms; echo \"outside $?\" >> rc"
        ),
    );
    p.run(&["run", "--progress", "never", "--kill-grace", "100ms"])
        .expect_code(0);
    let pair = p.pair("g", "client_x_in_namespace");
    assert_eq!(
        pair.read("local/rc"),
        "inside 0\noutside 124\n",
        "{}",
        pair.read("local/stderr")
    );
}

#[test]
fn wait_for_remote_port_open_sees_the_port_and_gives_up_at_once_when_the_remote_exits() {
    let p = Project::new();
    let port = free_port();
    p.bash(
        "g/local/client",
        &format!("wait_for_remote_port_open {port} --timeout 60s; echo $? > rc"),
    );
    p.script(
        "g/remote/listens",
        &format!(
            "#!/usr/bin/env python3\nimport socket, time\ntime.sleep(0.3)\n\
             s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(300)\n"
        ),
    );
    p.bash("g/remote/dies", "sleep 0.2; exit 0");
    let start = std::time::Instant::now();
    p.run(&["run", "--kill-grace", "100ms"]).expect_code(0);
    assert!(
        start.elapsed().as_secs() < 50,
        "did not wait for the 60 s timeout"
    );
    assert_eq!(p.pair("g", "client_x_listens").read("local/rc"), "0\n");
    let dies = p.pair("g", "client_x_dies");
    assert_eq!(dies.read("local/rc"), "1\n");
    assert!(
        dies.read("local/stderr").contains("exited"),
        "{}",
        dies.read("local/stderr")
    );
}

#[test]
fn wait_for_remote_port_close_waits_for_the_port_to_close() {
    let p = Project::new();
    let port = free_port();
    p.bash(
        "g/local/client",
        &format!(
            "wait_for_remote_port_open {port}; wait_for_remote_port_close {port} --timeout 30s; echo $? > rc\n\
             wait_for_remote_port_close 1 --timeout 1s; echo $? >> rc"
        ),
    );
    p.script(
        "g/remote/server",
        &format!(
            "#!/usr/bin/env python3\nimport socket, time\n\
             s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(0.5); s.close(); time.sleep(300)\n"
        ),
    );
    p.run(&["run", "--kill-grace", "100ms"]).expect_code(0);
    assert_eq!(p.pair("g", "client_x_server").read("local/rc"), "0\n0\n");
}

/// Group `served`: a server that binds `$PAIRBENCH_PORT` without SO_REUSEADDR and holds
/// it until it is ended, and a client that waits for that port, talks to the server and
/// stays connected a moment, so runs at the same time hold their ports together (the
/// client closes first, so the port is not left in TIME_WAIT). Both
/// sides write what PAIRBENCH_PORT and PAIRBENCH_SLOT said.
fn served_group(p: &Project) {
    p.script(
        "served/remote/server",
        "#!/usr/bin/env python3\n\
         import os, socket\n\
         port = int(os.environ['PAIRBENCH_PORT'])\n\
         open('seen', 'w').write(f\"{port} {os.environ['PAIRBENCH_SLOT']}\\n\")\n\
         s = socket.socket()\n\
         s.bind(('0.0.0.0', port))\n\
         s.listen()\n\
         print('listening on', port, flush=True)\n\
         while True:\n\
         \x20   c, _ = s.accept()\n\
         \x20   c.sendall(b'port %d\\n' % port)\n\
         \x20   c.recv(1)\n\
         \x20   c.close()\n",
    );
    p.bash(
        "served/local/client",
        "set -eu\n\
         echo \"$PAIRBENCH_PORT $PAIRBENCH_SLOT\" > seen\n\
         wait_for_remote_port_open \"$PAIRBENCH_PORT\"\n\
         exec 3<>\"/dev/tcp/$PAIRBENCH_REMOTE_HOST/$PAIRBENCH_PORT\"\n\
         read -r answer <&3\n\
         echo \"server said: $answer\"\n\
         sleep 0.3\n\
         exec 3>&-\n\
         [ \"$answer\" = \"port $PAIRBENCH_PORT\" ]",
    );
}

/// The (port, slot) each side of every run of `served` saw, by run folder.
fn seen_ports(p: &Project) -> Vec<(String, String, String)> {
    let group = p.latest().join("served/client_x_server");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&group).unwrap() {
        let dir = e.unwrap().path();
        let read = |side: &str| std::fs::read_to_string(dir.join(side).join("seen")).unwrap();
        out.push((
            dir.file_name().unwrap().to_string_lossy().into_owned(),
            read("local"),
            read("remote"),
        ));
    }
    out
}

fn check_ports(p: &Project, runs: usize, jobs: usize) {
    let seen = seen_ports(p);
    assert_eq!(seen.len(), runs, "{seen:?}");
    for (run, local, remote) in &seen {
        assert_eq!(
            local, remote,
            "{run}: both sides get the same port and slot"
        );
        let (port, slot) = local.trim().split_once(' ').unwrap();
        let port: u16 = port.parse().unwrap();
        let slot: usize = slot.parse().unwrap();
        assert!(port >= 1024, "{run}: {port}");
        assert!(slot < jobs, "{run}: slot {slot} of {jobs}");
    }
}

#[test]
fn every_run_gets_its_own_port_and_slot_the_same_on_both_sides() {
    let p = Project::new();
    served_group(&p);
    let run = p.run(&["run", "--progress", "never", "-j", "4", "--repeat", "8"]);
    run.expect_code(0);
    let rows = p.results_csv();
    assert_eq!(rows.len(), 8);
    for r in &rows {
        assert_eq!(r["status"], "SUCCESS", "{r:?}");
    }
    check_ports(&p, 8, 4);
}

/// A range of `n` TCP ports free here right now.
fn free_range(n: u16) -> u16 {
    'search: for _ in 0..200 {
        let first = 40000 + rand_u16() % 20000;
        for port in first..first + n {
            if std::net::TcpListener::bind(("0.0.0.0", port)).is_err() {
                continue 'search;
            }
        }
        return first;
    }
    panic!("no {n} free ports in a row");
}

fn rand_u16() -> u16 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id()) as u16
}

#[test]
fn a_taken_port_is_never_given_to_a_run_and_a_full_range_is_an_error() {
    let p = Project::new();
    served_group(&p);
    let first = free_range(6);
    // Ports first, first+2 and first+4 are held by someone else.
    let held: Vec<std::net::TcpListener> = (0..3)
        .map(|k| std::net::TcpListener::bind(("0.0.0.0", first + 2 * k)).unwrap())
        .collect();
    let range = format!("{first}-{}", first + 5);
    p.run(&[
        "run",
        "--progress",
        "never",
        "-j",
        "2",
        "--repeat",
        "6",
        "--ports",
        &range,
    ])
    .expect_code(0);
    check_ports(&p, 6, 2);
    for (run, local, _) in seen_ports(&p) {
        let port: u16 = local.split(' ').next().unwrap().parse().unwrap();
        assert!((first..=first + 5).contains(&port), "{run}: {port}");
        assert!(
            (port - first) % 2 == 1,
            "{run} was given {port}, which is held"
        );
    }
    // Every port of the range held: the run is an ERROR that says so.
    let more: Vec<std::net::TcpListener> = (0..3)
        .map(|k| std::net::TcpListener::bind(("0.0.0.0", first + 2 * k + 1)).unwrap())
        .collect();
    p.run(&["run", "--progress", "never", "--ports", &range])
        .expect_code(2);
    let pair = p.pair("served", "client_x_server");
    assert_eq!(pair.status(), "ERROR");
    assert!(
        pair.reason().contains("no free TCP port"),
        "{}",
        pair.reason()
    );
    drop((held, more));
    // A range that is not one is refused before anything runs.
    let bad = p.run(&["run", "--ports", "30000-2000"]);
    bad.expect_code(2);
    assert!(bad.stderr().contains("--ports"), "{}", bad.stderr());
}

#[test]
fn runs_over_ssh_get_a_port_free_on_the_remote_host() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    served_group(&p);
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ssh-remote-work");
    std::fs::write(
        p.path().join("pairbench.toml"),
        format!(
            "[[remote]]\nname = \"box\"\nhost = \"{}\"\nuser = \"{}\"\nport = {}\nidentity_file = \"~/.ssh/id_ed25519\"\nworkdir = \"{}\"\nslots = 3\n",
            s.host,
            s.user,
            s.port,
            work.display()
        ),
    )
    .unwrap();
    p.run_with(
        |c| s.client(c),
        &[
            "run",
            "--progress",
            "never",
            "--remote",
            "box",
            "--repeat",
            "6",
        ],
    )
    .expect_code(0);
    check_ports(&p, 6, 3);
}
