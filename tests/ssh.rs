//! Remote tests over SSH, against a real OpenSSH sshd started by each test.

mod common;
#[path = "common/sshd.rs"]
mod sshd;

use common::Project;
use sshd::Sshd;

/// pairbench run with the test's HOME, and its output.
fn run(p: &Project, s: &Sshd, args: &[&str]) -> common::Run {
    let mut cmd = p.cmd();
    s.client(&mut cmd);
    let out = cmd.args(args).output().expect("run pairbench");
    common::Run {
        out,
        project_dir: p.path().to_path_buf(),
    }
}

#[test]
fn a_pair_runs_on_the_remote_and_comes_back() {
    let Some(s) = Sshd::start() else { return };
    s.trust();
    let p = Project::new();
    p.bash("g/local/client", "echo client; cat /dev/null");
    p.bash(
        "g/remote/server",
        "echo \"server in $PWD\"; echo \"rps,100\" > metrics.csv; echo side=$PAIRBENCH_SIDE",
    );
    let r = run(
        &p,
        &s,
        &["run", "--progress", "never", "--remote", &s.spec()],
    );
    r.expect_code(0);
    let pair = p.pair("g", "client_x_server");
    assert_eq!(pair.status(), "SUCCESS", "{}", pair.reason());
    assert!(pair.read("remote/stdout").contains("side=remote"));
    assert_eq!(pair.read("remote/exit_code").trim(), "0");
    assert!(pair.read("remote/metrics.csv").contains("rps,100"));
}
