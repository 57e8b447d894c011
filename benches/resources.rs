//! What measuring each side costs, and how right it is (docs/resources.md).
//!
//! `cargo bench --bench resources` prints:
//! - `accounting`: the work accounting adds to each side of a pair — the per-side v1
//!   memory cgroup (made, joined, removed), reading the side's cgroup files into its
//!   usage, and finding a reaped orphan's side (`/proc/<pid>/cgroup`) — in µs per pair
//!   (two sides), against the 0.5 ms target; and, for scale, `pairbench run`'s ms per
//!   trivial pair (the overhead bench's measure) with accounting on.
//! - `sampling`: the CPU the sampler thread uses at `--sample 100ms` (of one CPU; target
//!   ≤ 1%), measured with getrusage of this process while it samples two sides.
//! - `accuracy`: a setsid grandchild that burns 1.0 s of user CPU, and one that touches
//!   200 MiB, run by pairbench 5 times under each containment method: the reported
//!   `cpu_user_s` and `max_rss_kib` against 1.0 s and 200 MiB.
//!
//! Pass section names to run only some: `cargo bench --bench resources -- sampling`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pairbench::contain::cgroup;
use pairbench::contain::usage::{self, Rusage};

const BIN: &str = env!("CARGO_BIN_EXE_pairbench");

fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn cpu_of_self() -> Duration {
    // SAFETY: plain data the kernel fills in.
    let mut ru: nix::libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a local.
    unsafe { nix::libc::getrusage(nix::libc::RUSAGE_SELF, &mut ru) };
    let t = |v: nix::libc::timeval| Duration::new(v.tv_sec as u64, v.tv_usec as u32 * 1000);
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn accounting() {
    let n = 300;
    // The per-side v1 memory cgroup: made, its cgroup.procs opened, removed.
    let v1 = cgroup::own_memory_v1().map(|own| {
        let parent = own
            .join("pairbench")
            .join(format!("bench-{}", std::process::id()));
        std::fs::create_dir_all(&parent).unwrap();
        let start = Instant::now();
        for i in 0..n {
            let d = parent.join(format!("{i}-local"));
            std::fs::create_dir(&d).unwrap();
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(d.join("cgroup.procs"))
                .unwrap();
            drop(f);
            std::fs::remove_dir(&d).unwrap();
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        // Joining it: a process moved into the side's v1 cgroup and back, each way timed
        // (a script joins once, before it execs).
        let d = parent.join("join");
        std::fs::create_dir(&d).unwrap();
        let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
        let pid = sleeper.id().to_string();
        let start = Instant::now();
        for _ in 0..50 {
            std::fs::write(d.join("cgroup.procs"), &pid).unwrap();
            std::fs::write(own.join("cgroup.procs"), &pid).unwrap();
        }
        let join = start.elapsed().as_secs_f64() * 1e6 / 100.0;
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        let _ = std::fs::remove_dir(&d);
        let _ = std::fs::remove_dir(&parent);
        (us, join)
    });
    // Reading a side's cgroup files into its usage (a live v2 cgroup: ours).
    let own = cgroup::own_cgroup().ok();
    let mem = cgroup::own_memory_v1();
    let read_us = own.as_ref().map(|dir| {
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(usage::from_cgroup(
                dir,
                usage::Files {
                    memory: true,
                    io: true,
                },
                mem.as_deref(),
                &Rusage::default(),
            ));
        }
        start.elapsed().as_secs_f64() * 1e6 / n as f64
    });
    // Finding a reaped orphan's side.
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(std::fs::read_to_string("/proc/self/cgroup").unwrap());
    }
    let which_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let side = v1.map_or(0.0, |(a, b)| a + b) + read_us.unwrap_or(0.0) + which_us;
    println!(
        "accounting, per side: v1 memory cgroup made and removed {}, joined {}, reading the usage {} µs, an orphan's side {which_us:.1} µs; \
         per pair (two sides) {:.3} ms (target: <= 0.5 ms)",
        v1.map_or("(none here)".into(), |(v, _)| format!("{v:.1} µs")),
        v1.map_or("(none here)".into(), |(_, j)| format!("{j:.1} µs")),
        read_us.map_or("(no cgroup2 here)".into(), |v| format!("{v:.1}")),
        side * 2.0 / 1000.0
    );
    // For scale: pairbench's ms per trivial pair, accounting on.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for i in 0..10 {
        script(
            &dir.join(format!("groups/trivial/local/l{i}")),
            "#!/bin/sh\nexit 0\n",
        );
        script(
            &dir.join(format!("groups/trivial/remote/r{i}")),
            "#!/bin/sh\nexit 0\n",
        );
    }
    let mut per_pair = Vec::new();
    for r in 0..5 {
        let start = Instant::now();
        let st = Command::new(BIN)
            .args(["run", "--progress", "never", "--tag", &format!("t{r}")])
            .current_dir(dir)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        per_pair.push(start.elapsed().as_secs_f64() * 10.0);
    }
    println!(
        "trivial pairs (100 x `exit 0` x `exit 0`, median of 5) with accounting: {:.2} ms/pair",
        median(per_pair)
    );
}

fn sampling() {
    let own = cgroup::own_cgroup().ok();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let targets = dirs
        .iter()
        .map(|d| pairbench::sample::Target {
            dir: d.path().to_path_buf(),
            cgroup: own.clone(),
        })
        .collect();
    let wall = Duration::from_secs(10);
    let before = cpu_of_self();
    let start = Instant::now();
    let s = pairbench::sample::Sampler::start(Duration::from_millis(100), targets);
    std::thread::sleep(wall);
    let problems = s.stop();
    let cpu = cpu_of_self() - before;
    let elapsed = start.elapsed();
    assert!(problems.is_empty(), "{problems:?}");
    let rows = std::fs::read_to_string(dirs[0].path().join("samples.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    println!(
        "sampling at 100ms, two sides, {:.0} s: {:.3}% of one CPU ({:.1} ms of CPU; {rows} rows per side) (target: <= 1%)",
        elapsed.as_secs_f64(),
        cpu.as_secs_f64() / elapsed.as_secs_f64() * 100.0,
        cpu.as_secs_f64() * 1000.0
    );
}

fn accuracy() {
    let burn = "( setsid perl -e 'while ((times)[0] < 1.0) { for (1..200000) {} } open(F, \">burnt\"); close F' & )\n\
                while [ ! -e burnt ]; do sleep 0.05; done";
    let touch = "( /usr/bin/python3 -c 'b = b\"\\x01\" * (200 << 20); open(\"touched\", \"w\")' & )\n\
                 while [ ! -e touched ]; do sleep 0.05; done";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    script(
        &dir.join("groups/cpu/local/client"),
        &format!("#!/usr/bin/env bash\n{burn}\nwait_for_remote\n"),
    );
    script(
        &dir.join("groups/cpu/remote/server"),
        &format!("#!/usr/bin/env bash\n{burn}\n"),
    );
    script(
        &dir.join("groups/mem/local/client"),
        &format!("#!/usr/bin/env bash\n{touch}\nwait_for_remote\n"),
    );
    script(
        &dir.join("groups/mem/remote/server"),
        &format!("#!/usr/bin/env bash\n{touch}\n"),
    );
    for method in ["auto", "sweep"] {
        let mut cpu = Vec::new();
        let mut peak = Vec::new();
        for r in 0..5 {
            let tag = format!("{method}{r}");
            let st = Command::new(BIN)
                .args(["run", "--progress", "never", "--tag", &tag])
                .env("PAIRBENCH_CONTAINMENT", method)
                .current_dir(dir)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success());
            let mut rdr =
                csv::Reader::from_path(dir.join("results").join(&tag).join("metrics.csv")).unwrap();
            let h = rdr.headers().unwrap().clone();
            let col = |n: &str| h.iter().position(|x| x == n).unwrap();
            let (g, name, value) = (col("group"), col("name"), col("value"));
            for rec in rdr.records().flatten() {
                let v: f64 = rec[value].parse().unwrap();
                match (&rec[g], &rec[name]) {
                    ("cpu", "cpu_user_s") => cpu.push(v),
                    ("mem", "max_rss_kib") => peak.push(v / 1024.0),
                    _ => {}
                }
            }
        }
        let err = |v: &[f64], want: f64| {
            let worst = v
                .iter()
                .map(|x| (x - want) / want * 100.0)
                .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            (mean, worst)
        };
        let (cm, cw) = err(&cpu, 1.0);
        let (pm, pw) = err(&peak, 200.0);
        println!(
            "accuracy ({method}, both sides, 5 runs): cpu_user_s of a setsid grandchild burning 1.0 s: mean {cm:.3} s, worst {cw:+.1}%; \
             peak of 200 MiB touched (python3): mean {pm:.1} MiB, worst {pw:+.1}% (target: within 5%)"
        );
    }
}

fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |s: &str| only.is_empty() || only.iter().any(|o| o == s);
    if want("accounting") {
        accounting();
    }
    if want("sampling") {
        sampling();
    }
    if want("accuracy") {
        accuracy();
    }
}
