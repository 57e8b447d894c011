//! Overhead benchmark: what pairbench costs per pair beyond the scripts themselves.
//!
//! `cargo bench --bench overhead` prints, for 100 trivial pairs (`exit 0` × `exit 0`),
//! the milliseconds per pair of `pairbench run` next to a floor: a shell loop that starts
//! the same processes and writes the same files. Also: planning a dry run of a 1,000 ×
//! 1,000 group, the speed-up of `-j 4` over `-j 1` on sleeping pairs, and (`large`) the
//! time and peak memory of a 10,000-pair run and of its `pairbench report`.
//! Pass section names to run only some: `cargo bench --bench overhead -- trivial`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pairbench");

fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn group(dir: &Path, name: &str, locals: usize, remotes: usize, local: &str, remote: &str) {
    for i in 0..locals {
        script(&dir.join(format!("groups/{name}/local/l{i:04}")), local);
    }
    for i in 0..remotes {
        script(&dir.join(format!("groups/{name}/remote/r{i:04}")), remote);
    }
}

fn pairbench(dir: &Path, args: &[&str]) -> Duration {
    pairbench_with(dir, args, "auto")
}

/// `pairbench ARGS` with containment `method` (`auto`, `cgroup2`, `sweep`).
fn pairbench_with(dir: &Path, args: &[&str], method: &str) -> Duration {
    let start = Instant::now();
    let st = Command::new(BIN)
        .args(args)
        .env("PAIRBENCH_CONTAINMENT", method)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let t = start.elapsed();
    assert!(st.code().is_some_and(|c| c <= 1), "pairbench failed: {st}");
    t
}

/// The same processes and files, by a plain shell loop.
const FLOOR: &str = r#"
set -u
out=floor/$1
mkdir -p "$out/g"
echo "tag,group,local_test,remote_test,pair,status" > "$out/results.csv"
for l in groups/trivial/local/*; do
  for r in groups/trivial/remote/*; do
    p="$out/g/$(basename "$l")_x_$(basename "$r")"
    mkdir -p "$p/local" "$p/remote"
    (cd "$p/remote" && exec "$OLDPWD/$r" >stdout 2>stderr) &
    rpid=$!
    (cd "$p/local" && exec "$OLDPWD/$l" >stdout 2>stderr)
    echo $? > "$p/local/exit_code"
    wait $rpid; echo $? > "$p/remote/exit_code"
    echo "$(date +%FT%T) local exited 0" > "$p/SUCCESS"
    echo "t,g,$l,$r,p,SUCCESS" >> "$out/results.csv"
  done
done
"#;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn trivial() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    group(
        dir,
        "trivial",
        10,
        10,
        "#!/bin/sh\nexit 0\n",
        "#!/bin/sh\nexit 0\n",
    );
    std::fs::write(dir.join("floor.sh"), FLOOR).unwrap();
    let rounds = 5;
    let mut ours = Vec::new();
    let mut sweep = Vec::new();
    let mut floor = Vec::new();
    let mut method = String::new();
    for i in 0..rounds {
        let tag = format!("t{i}");
        ours.push(
            pairbench(dir, &["run", "--progress", "never", "--tag", &tag]).as_secs_f64() * 10.0,
        );
        if method.is_empty() {
            let manifest = std::fs::read_to_string(dir.join("results").join(&tag).join("run.json"))
                .unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&manifest).unwrap_or_default();
            method = v["containment"]["method"]
                .as_str()
                .unwrap_or("?")
                .to_string();
        }
        let tag = format!("s{i}");
        sweep.push(
            pairbench_with(dir, &["run", "--progress", "never", "--tag", &tag], "sweep")
                .as_secs_f64()
                * 10.0,
        );
        let start = Instant::now();
        let st = Command::new("bash")
            .args(["floor.sh", &tag])
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(st.success());
        floor.push(start.elapsed().as_secs_f64() * 10.0);
    }
    let (o, sw, f) = (median(ours), median(sweep), median(floor));
    let procs = median((0..rounds).map(|_| processes_only(dir)).collect());
    println!(
        "trivial pairs (100 x `exit 0` x `exit 0`, median of {rounds}): pairbench {o:.2} ms/pair ({method}), \
         {sw:.2} ms/pair (sweep), floor (shell loop, same processes and files) {f:.2} ms/pair, \
         ratio {:.2}x (target: <= 3 ms, <= 1.5x); the two scripts alone (started and waited \
         by this program, no files) {procs:.2} ms/pair: what this machine charges for the processes",
        o / f
    );
}

/// ms per pair of starting each pair's two scripts side by side and waiting for both:
/// the machine's price for the processes themselves, which no runner can go below.
fn processes_only(dir: &Path) -> f64 {
    let scripts = |side: &str| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir.join("groups/trivial").join(side))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let (locals, remotes) = (scripts("local"), scripts("remote"));
    let start = Instant::now();
    let mut n = 0;
    for l in &locals {
        for r in &remotes {
            let mut server = Command::new(r).spawn().unwrap();
            assert!(Command::new(l).status().unwrap().success());
            assert!(server.wait().unwrap().success());
            n += 1;
        }
    }
    start.elapsed().as_secs_f64() * 1000.0 / n as f64
}

fn dry_run_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    group(
        dir,
        "huge",
        1000,
        1000,
        "#!/bin/sh\nexit 0\n",
        "#!/bin/sh\nexit 0\n",
    );
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(BIN)
        .args(["run", "-n"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let t = start.elapsed().as_secs_f64();
    let rss = out
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .lines()
                .last()
                .map(str::to_string)
        })
        .and_then(|l| l.trim().parse::<f64>().ok())
        .map(|kb| format!("{:.0} MB peak RSS", kb / 1024.0))
        .unwrap_or_else(|| "peak RSS unknown (install `time`)".into());
    println!(
        "dry run of a 1,000 x 1,000 group (1,000,000 pairs, listing each): {t:.2} s, {rss} (target: <= 2 s, <= 200 MB)"
    );
}

fn parallel() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    group(
        dir,
        "sleepy",
        4,
        4,
        "#!/bin/sh\nsleep 0.25\n",
        "#!/bin/sh\nexit 0\n",
    );
    let j1 = pairbench(
        dir,
        &["run", "--progress", "never", "-j", "1", "--tag", "j1"],
    )
    .as_secs_f64();
    let j4 = pairbench(
        dir,
        &["run", "--progress", "never", "-j", "4", "--tag", "j4"],
    )
    .as_secs_f64();
    println!(
        "16 pairs sleeping 0.25 s: -j 1 {j1:.2} s, -j 4 {j4:.2} s, speed-up {:.2}x (target: near 4x)",
        j1 / j4
    );
}

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let on = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    if on("trivial") {
        trivial();
    }
    if on("parallel") {
        parallel();
    }
    if on("plan") {
        dry_run_plan();
    }
    if on("large") {
        large();
    }
}

/// Run `pairbench ARGS` in `dir`; its wall time and peak resident memory in MiB (its
/// own: the scripts it starts are separate processes with their own).
fn peak_of(dir: &Path, args: &[&str]) -> (Duration, f64) {
    let start = Instant::now();
    // Reaped by wait4 below, which also reads its usage (Child::wait does not).
    #[allow(clippy::zombie_processes)]
    let child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; `status` and `usage` outlive the call.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let t = start.elapsed();
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) <= 1,
        "pairbench {args:?} failed: {status}"
    );
    (t, usage.ru_maxrss as f64 / 1024.0)
}

/// A 100 × 100 group of trivial pairs: a run and its report, with the peak memory of
/// each against the bound of 100 MB (docs/results.md, "Large runs").
fn large() {
    let d = tempfile::tempdir().unwrap();
    group(
        d.path(),
        "large",
        100,
        100,
        "#!/bin/sh\nexit 0\n",
        "#!/bin/sh\nexit 0\n",
    );
    let (t, run_mb) = peak_of(d.path(), &["run", "--progress", "never", "--tag", "big"]);
    let (rt, report_mb) = peak_of(d.path(), &["report", "big"]);
    let mb = |mib: f64| mib * 1.048_576;
    println!(
        "10,000 trivial pairs (100 x 100): run {:.1} s ({:.2} ms/pair), peak {:.0} MB; `pairbench report` {:.2} s, peak {:.0} MB (target: <= 100 MB each)",
        t.as_secs_f64(),
        t.as_secs_f64() * 1000.0 / 10_000.0,
        mb(run_mb),
        rt.as_secs_f64(),
        mb(report_mb)
    );
}
