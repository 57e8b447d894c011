//! Ansible inventories: what `pairbench inventory --list` reads from a set of INI and
//! YAML inventories (the tricky cases included) equals what Ansible's own
//! `ansible-inventory --list` reads (with `group_vars/` and `host_vars/`); a group's hosts come in Ansible's order; and a run
//! with `--inventory` (or `inventory = [...]` in pairbench.toml) reaches its hosts over
//! SSH with the user, port and key the inventory gives.

mod common;
#[path = "common/sshd.rs"]
mod sshd;

use std::path::Path;
use std::process::Command;

use common::Project;

/// Ansible's reading of `file`, or `None` (after a loud line; a failure in CI) when
/// ansible-core is not installed.
fn ansible(args: &[&str], file: &Path) -> Option<String> {
    let Ok(out) = Command::new("ansible-inventory")
        .arg("--version")
        .env("HOME", std::env::temp_dir())
        .output()
    else {
        let msg = "INVENTORY TEST SKIPPED: ansible-inventory not found: install it with `apt-get install ansible-core`";
        if std::env::var_os("CI").is_some()
            || std::env::var("PAIRBENCH_REQUIRE_SSHD").is_ok_and(|v| v == "1")
        {
            panic!("{msg} (CI forbids skipping)");
        }
        eprintln!("\n!!!!!!!!!! {msg} !!!!!!!!!!\n");
        return None;
    };
    assert!(out.status.success());
    let home = tempfile::tempdir().unwrap();
    let prog = if args.first() == Some(&"--list") {
        "ansible-inventory"
    } else {
        "ansible"
    };
    let out = Command::new(prog)
        .arg("-i")
        .arg(file)
        .args(args)
        .env("HOME", home.path())
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{prog} failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn pairbench(args: &[&str]) -> std::process::Output {
    Command::new(assert_cmd::cargo::cargo_bin!("pairbench"))
        .args(args)
        .output()
        .unwrap()
}

const INI: &str = r#"
# hosts before any section are ungrouped
lonely.example ansible_port=2200
alone[1:2].example:2201 # a host line ends at '#' (a ';' here would be an error)
; a comment line
[web]
web[01:03].lab ansible_user=deploy pairbench_slots=2   # inline comment
web[08:10:2].lab
db-[a:c].lab:2222 note='quoted # hash' empty= eq=a=b
[web:vars]
ansible_user=webuser
note = "group note"
num = 042
flag = True
ratio = 1.5
list = [1, 'two']

[db]
web02.lab ansible_user=dbuser ansible_host=10.1.2.3
db-b.lab

[db:vars]
ansible_ssh_private_key_file=/keys/db key
tier=db

[prod:children]
web
db
staging

[staging]
stage[A:C]

[staging:vars]
tier=staging
ansible_group_priority=10

[prod:vars]
tier=prod
ansible_group_priority=5

[all:vars]
ansible_user=everyone
tier=all
"#;

const YAML: &str = r#"
all:
  vars:
    ansible_user: everyone
    tier: all
  hosts:
    lonely.example:
      ansible_port: 2200
    "[::1]:2202":
  children:
    web:
      hosts:
        web[01:03].lab:
          ansible_user: deploy
          pairbench_slots: 2
        db-[a:c].lab:2222:
      vars: &webvars
        ansible_user: webuser
        flag: yes
        quoted: "yes"
        octal: 0755
        big: 1_000
        nothing: ~
    db:
      hosts:
        web02.lab: {ansible_user: dbuser, ansible_host: 10.1.2.3}
        db-b.lab:
      vars:
        <<: *webvars
        tier: db
    prod:
      children:
        web:
        db:
        deep:
          children:
            deeper:
              hosts:
                web01.lab:
              vars:
                tier: deeper
      vars:
        tier: prod
"#;

const JSON: &str = r#"{
  "all": {"children": {"edge": {"hosts": {"e[1:3]": {"ansible_port": 2022}}, "vars": {"role": "edge"}}}}
}"#;

#[test]
fn what_pairbench_reads_is_what_ansible_inventory_reads() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("hosts.ini", INI),
        ("hosts.yml", YAML),
        ("hosts.json", JSON),
        // No extension: YAML when it is a YAML mapping, else INI.
        ("yaml-named-hosts", YAML),
        ("ini-named-hosts", INI),
    ];
    // Variables files beside the inventories, as Ansible's host_group_vars plugin reads them.
    let vars = dir.path();
    for (rel, text) in [
        (
            "group_vars/all.yml",
            "ansible_user: from-group-vars\nfile_all: 1\n",
        ),
        ("group_vars/web/a.yml", "file_web: a\ntier: web-file\n"),
        ("group_vars/web/b.yaml", "file_web: b\n"),
        (
            "group_vars/db.json",
            "{\"file_db\": true, \"tier\": \"db-file\"}",
        ),
        ("host_vars/web01.lab", "ansible_user: host-file\n"),
    ] {
        let f = vars.join(rel);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let Some(theirs) = ansible(&["--list"], &path) else {
            return;
        };
        let out = pairbench(&["inventory", "--list", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let theirs: serde_json::Value = serde_json::from_str(&theirs).unwrap();
        assert_eq!(
            ours,
            theirs,
            "{name}: pairbench (left) and ansible-inventory (right) differ:\n{}\n{}",
            serde_json::to_string_pretty(&ours).unwrap(),
            serde_json::to_string_pretty(&theirs).unwrap()
        );
    }
}

/// Host names `ansible -i FILE PATTERN --list-hosts` prints.
fn ansible_hosts(file: &Path, group: &str) -> Option<Vec<String>> {
    let out = ansible(&[group, "--list-hosts"], file)?;
    Some(
        out.lines()
            .skip(1)
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
    )
}

/// Host names `pairbench inventory FILE:GROUP` prints, and its table.
fn our_hosts(spec: &str) -> (Vec<String>, String) {
    let out = pairbench(&["inventory", spec]);
    assert!(
        out.status.success(),
        "{spec}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let names = text
        .lines()
        .skip(1)
        .filter(|l| l.contains('\t'))
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    (names, text)
}

#[test]
fn a_group_gives_its_hosts_and_its_childrens_in_ansibles_order() {
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("hosts.ini");
    std::fs::write(&ini, INI).unwrap();
    let yml = dir.path().join("hosts.yml");
    std::fs::write(&yml, YAML).unwrap();
    for (file, group) in [
        (&ini, "web"),
        (&ini, "db"),
        (&ini, "staging"),
        (&ini, "ungrouped"),
        (&yml, "web"),
        (&yml, "deeper"),
        (&yml, "ungrouped"),
    ] {
        let Some(theirs) = ansible_hosts(file, group) else {
            return;
        };
        let spec = format!("{}:{group}", file.display());
        let (ours, _) = our_hosts(&spec);
        assert_eq!(ours, theirs, "{spec}");
    }
    // Groups with children hold the same hosts (Ansible's order of nested groups is
    // not fixed, so as sets).
    for (file, group) in [(&ini, "prod"), (&ini, "all"), (&yml, "prod"), (&yml, "all")] {
        let Some(mut theirs) = ansible_hosts(file, group) else {
            return;
        };
        let (mut ours, _) = our_hosts(&format!("{}:{group}", file.display()));
        theirs.sort();
        ours.sort();
        assert_eq!(ours, theirs, "{}:{group}", file.display());
    }
    // What a host becomes: address, port, user, key and slots from its variables.
    let (_, table) = our_hosts(&format!("{}:db", ini.display()));
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} in\n{table}"))
            .to_string()
    };
    assert_eq!(
        row("web02.lab"),
        "web02.lab\t10.1.2.3\t-\tdbuser\t/keys/db key\t2\tweb,db"
    );
    assert_eq!(
        row("db-b.lab"),
        "db-b.lab\tdb-b.lab\t2222\twebuser\t/keys/db key\t1\tweb,db"
    );
}

#[test]
fn a_bad_inventory_or_group_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[web:children]\nnowhere\n", "undefined group: nowhere"),
        ("[web]\nh1 port\n", "expected key=value"),
        ("[web]\nh[01:3]\n", "equal-length"),
        ("[web:weird]\nh1\n", "unknown type"),
        ("[web]\nh1 ansible_port=99999\n", "ansible_port is 99999"),
        (
            "[web]\nh1 ansible_host='{{ lookup(\"x\") }}'\n",
            "Jinja template",
        ),
        (
            "[web]\nh1 ansible_connection=docker\n",
            "ansible_connection is",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.ini"));
        std::fs::write(&path, text).unwrap();
        let out = pairbench(&["inventory", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(want), "{text}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("bad{i}.ini")), "{err}");
    }
    let good = dir.path().join("good.ini");
    std::fs::write(&good, "[web]\nh1\n").unwrap();
    let out = pairbench(&["inventory", &format!("{}:nope", good.display())]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no group 'nope'") && err.contains("web"),
        "{err}"
    );
    let out = pairbench(&["inventory", "/nonexistent/hosts.ini"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read inventory"));
}

#[test]
fn a_run_over_an_inventory_reaches_its_hosts_with_their_user_port_and_key() {
    let Some(s) = sshd::Sshd::start() else { return };
    s.trust();
    // The key is only where the inventory says, so the login proves it was used.
    let key = s.dir.path().join("inventory_key");
    std::fs::rename(s.home.join(".ssh/id_ed25519"), &key).unwrap();
    let p = Project::new();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inventory-remote-work");
    std::fs::write(
        p.path().join("lab.ini"),
        format!(
            "[servers]\nbox ansible_host={} ansible_port={} ansible_user={} ansible_ssh_private_key_file='{}' pairbench_workdir='{}'\n[clients]\nother.invalid\n",
            s.host,
            s.port,
            s.user,
            key.display(),
            work.display()
        ),
    )
    .unwrap();
    p.bash("g/local/l", "wait_for_remote --timeout 30s");
    p.bash("g/remote/r", "echo \"on $REMOTE_HOST:$REMOTE_PORT\"");
    let run = |args: &[&str]| {
        let mut cmd = p.cmd();
        s.client(&mut cmd);
        common::Run {
            out: cmd.args(args).output().unwrap(),
            project_dir: p.path().to_path_buf(),
        }
    };
    run(&[
        "run",
        "--progress",
        "never",
        "--inventory",
        "lab.ini:servers",
    ])
    .expect_code(0);
    let rows = p.results_csv();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["remote_host"], "box");
    assert!(
        p.pair("g", "l_x_r")
            .read("remote/stdout")
            .contains(&format!("on {}:{}", s.host, s.port))
    );
    // The same from pairbench.toml.
    std::fs::write(
        p.path().join("pairbench.toml"),
        "inventory = [\"lab.ini:servers\"]\n",
    )
    .unwrap();
    run(&["run", "--progress", "never", "--tag", "from-toml"]).expect_code(0);
    assert_eq!(p.results_csv()[0]["remote_host"], "box");
    // A group that does not exist stops the run before it starts.
    let r = run(&["run", "--progress", "never", "--inventory", "lab.ini:nope"]);
    r.expect_code(2);
    assert!(r.stderr().contains("no group 'nope'"), "{}", r.stderr());
}

#[test]
fn a_host_with_a_local_connection_runs_on_this_machine() {
    let p = Project::new();
    std::fs::write(
        p.path().join("here.yml"),
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n",
    )
    .unwrap();
    p.bash("g/local/l", "wait_for_remote --timeout 30s");
    p.bash("g/remote/r", "echo \"$REMOTE_TEST_ROOT_PATH\"");
    p.run(&["run", "--progress", "never", "--inventory", "here.yml"])
        .expect_code(0);
    let rows = p.results_csv();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["remote_host"], "local");
}
