//! A result that cannot be recorded (here: a full disk, for real, on a small tmpfs) makes
//! the run exit 2 with a line naming the path and the OS error; the tree stays consistent
//! (every results.csv row has its folder, no temporary files), and the next run on the
//! tag recovers.
mod common;
use common::{Project, read_csv};

/// A small tmpfs mounted on a folder, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Option<Tmpfs> {
        if !nix::unistd::Uid::effective().is_root() {
            let must = std::env::var_os("CI").is_some()
                || std::env::var_os("PAIRBENCH_REQUIRE_SSHD").is_some();
            assert!(!must, "the full-disk test needs root in CI");
            eprintln!("SKIPPED: the full-disk test needs root to mount a tmpfs");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs on {}", dir.display());
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn files_named_like_temporaries(dir: &std::path::Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && (name.contains(".tmp") || name.ends_with(".partial")) {
            out.push(e.path().display().to_string());
        }
        if e.file_type().unwrap().is_dir() {
            files_named_like_temporaries(&e.path(), out);
        }
    }
}

#[test]
fn a_full_disk_exits_2_naming_the_path_and_the_next_run_recovers() {
    let p = Project::new();
    let Some(_disk) = Tmpfs::mount(&p.path().join("results"), "1m") else {
        return;
    };
    let flag = p.path().join("fill");
    std::fs::write(&flag, "").unwrap();
    p.bash(
        "g/local/a",
        &format!(
            "[ -e '{}' ] && head -c 4M /dev/zero > big 2>/dev/null; exit 0",
            flag.display()
        ),
    );
    p.bash("g/local/b", "exit 0");
    p.bash("g/remote/r", "exit 0");
    let r = p.run(&["run", "--tag", "T", "--progress", "never"]);
    r.expect_code(2);
    let out = format!("{}{}", r.stdout(), r.stderr());
    let line = out
        .lines()
        .find(|l| l.contains("No space left on device"))
        .unwrap_or_else(|| panic!("no line names the OS error:\n{out}"));
    assert!(line.contains("/results/T/g/"), "the path is named: {line}");
    assert_eq!(
        out.matches("No space left on device").count(),
        1,
        "said once:\n{out}"
    );
    let tag = p.path().join("results/T");
    for row in read_csv(&tag.join("results.csv")) {
        assert!(
            tag.join(&row["group"])
                .join(&row["pair"])
                .join(&row["status"])
                .is_file(),
            "a results.csv row without its folder: {row:?}"
        );
    }
    let mut temps = Vec::new();
    files_named_like_temporaries(&tag, &mut temps);
    assert!(temps.is_empty(), "{temps:?}");

    std::fs::remove_file(&flag).unwrap();
    p.run(&["run", "--tag", "T", "--progress", "never"])
        .expect_code(0);
    let rows = read_csv(&tag.join("results.csv"));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["status"] == "SUCCESS"));
}
