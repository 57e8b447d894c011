//! What the report costs at the end of a run: synthetic result trees (pair.json, marker,
//! logs and metrics per pair, as a run leaves them) drawn by `report::write_all`:
//! a 32 × 32 group (1,024 pairs), a 44 × 44 group (the largest matrix still drawn as
//! PNG), a 1 × 1,000 group and a 100 × 100 group (10,000 pairs). Prints the median of
//! several renderings and the size of index.html, which must stay within its bound
//! (512 KiB, docs/results.md) at any size.
//!
//! `cargo bench --bench report`

use std::path::Path;
use std::time::{Duration, Instant};

use pairbench::tree::{PairRecord, Status};

fn make_tree(root: &Path, group: &str, locals: usize, remotes: usize) -> usize {
    let mut n = 0;
    for l in 0..locals {
        for r in 0..remotes {
            let (lt, rt) = (format!("client_{l:03}"), format!("server_{r:04}"));
            let pair = format!("{lt}_x_{rt}");
            let dir = root.join(group).join(&pair);
            for side in ["local", "remote"] {
                std::fs::create_dir_all(dir.join(side)).unwrap();
                std::fs::write(dir.join(side).join("stdout"), "some output\n".repeat(20)).unwrap();
                std::fs::write(dir.join(side).join("stderr"), "").unwrap();
                std::fs::write(dir.join(side).join("exit_code"), "0\n").unwrap();
            }
            std::fs::write(
                dir.join("local/metrics.csv"),
                format!(
                    "latency,{}.5,ms\nthroughput,{},req/s\n",
                    l + r,
                    100 * (l + 1)
                ),
            )
            .unwrap();
            std::fs::write(dir.join("remote/metrics.csv"), format!("cpu,{r},percent\n")).unwrap();
            let status = if (l + r) % 17 == 0 {
                Status::Failed
            } else {
                Status::Success
            };
            let rec = PairRecord {
                tag: "bench".into(),
                group: group.into(),
                local_test: lt,
                remote_test: rt,
                pair,
                status,
                reason: if status == Status::Failed {
                    "local exited 1".into()
                } else {
                    String::new()
                },
                local_exit: Some(i32::from(status == Status::Failed)),
                remote_exit: None,
                remote_ended: Some(pairbench::tree::Ended::Terminated),
                started_at: "2026-11-22T05:00:00.000+00:00".into(),
                duration_s: 0.01 * (l + r + 1) as f64,
                remote_host: "local".into(),
                attempt: 1,
                scripts_hash: String::new(),
                flaky: false,
                variant: String::new(),
                params: Default::default(),
                repetition: None,
                warmup: false,
                notes: Vec::new(),
                places: None,
                check: None,
                resources: Default::default(),
                unreached: false,
            };
            std::fs::write(
                dir.join("pair.json"),
                serde_json::to_vec_pretty(&rec).unwrap(),
            )
            .unwrap();
            std::fs::write(dir.join(status.marker()), "2026-11-22T05:00:00Z x\n").unwrap();
            n += 1;
        }
    }
    n
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench(name: &str, locals: usize, remotes: usize) {
    let dir = tempfile::tempdir().unwrap();
    let tag = dir.path().join("bench");
    let pairs = make_tree(&tag, "g", locals, remotes);
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let warnings = pairbench::report::write_all(&tag);
        times.push(t.elapsed());
        assert!(
            warnings
                .iter()
                .all(|w| w.contains("run.json") || w.contains("results.csv")),
            "{warnings:?}"
        );
    }
    let pngs = std::fs::read_dir(tag.join("plots"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    let index = std::fs::metadata(tag.join("index.html"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "report {name:<12} {pairs:>5} pairs: median {:>7.1} ms over {} renderings ({pngs} PNGs), index.html {:.1} KiB",
        median(times.clone()).as_secs_f64() * 1000.0,
        times.len(),
        index as f64 / 1024.0
    );
}

fn main() {
    bench("32 x 32", 32, 32);
    bench("44 x 44", 44, 44);
    bench("1 x 1000", 1, 1000);
    bench("100 x 100", 100, 100);
}
