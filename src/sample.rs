//! `--sample D` (docs/resources.md): while a pair runs, a thread reads the host's /proc
//! every D — CPU busy by mode (`/proc/stat`), memory used (`/proc/meminfo`), network bytes
//! and packets per interface (`/proc/net/dev`) — and the CPU of each side's own
//! processes (its cgroup's `cpu.stat`), and writes each side's `samples.csv`
//! (`t_s,name,value,unit`, `t_s` in seconds since the sampling started) into its folder,
//! never through a link.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::tree::nofollow;

/// The file each sampled side gets.
pub const FILE: &str = "samples.csv";

/// One side to sample: its folder (where samples.csv goes) and its cgroup, if any.
#[derive(Debug, Clone)]
pub struct Target {
    pub dir: PathBuf,
    pub cgroup: Option<PathBuf>,
}

/// One row of samples.csv.
type Row = (f64, String, f64, &'static str);

/// The sampling of one pair's sides on this host, until [`Sampler::stop`].
pub struct Sampler {
    stop: Arc<(Mutex<bool>, Condvar)>,
    /// The sampling thread, or why it could not start.
    thread: Result<JoinHandle<Vec<Vec<Row>>>, String>,
    targets: Vec<Target>,
}

/// What the host's /proc said at one moment.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    at: f64,
    /// user nice system idle iowait irq softirq steal (clock ticks).
    cpu: Vec<u64>,
    mem_used_kib: Option<u64>,
    /// interface -> (rx bytes, rx packets, tx bytes, tx packets)
    net: BTreeMap<String, [u64; 4]>,
    /// each target's cgroup `usage_usec`
    side_us: Vec<Option<u64>>,
}

const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

fn read_cpu(text: &str) -> Vec<u64> {
    text.lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn read_mem_used(text: &str) -> Option<u64> {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some(field("MemTotal:")?.saturating_sub(field("MemAvailable:")?))
}

fn read_net(text: &str) -> BTreeMap<String, [u64; 4]> {
    let mut out = BTreeMap::new();
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() >= 10 {
            out.insert(name.trim().to_string(), [v[0], v[1], v[8], v[9]]);
        }
    }
    out
}

fn cgroup_usage(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
    crate::contain::usage::stat_field(&text, "usage_usec")
}

fn snapshot(at: f64, targets: &[Target]) -> Snapshot {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    Snapshot {
        at,
        cpu: read_cpu(&read("/proc/stat")),
        mem_used_kib: read_mem_used(&read("/proc/meminfo")),
        net: read_net(&read("/proc/net/dev")),
        side_us: targets
            .iter()
            .map(|t| t.cgroup.as_deref().and_then(cgroup_usage))
            .collect(),
    }
}

/// The rows of the interval from `a` to `b`, for each target.
fn rows(a: &Snapshot, b: &Snapshot, n: usize) -> Vec<Vec<Row>> {
    let t = (b.at * 1000.0).round() / 1000.0;
    let secs = (b.at - a.at).max(1e-6);
    let mut host: Vec<Row> = Vec::new();
    if a.cpu.len() == b.cpu.len() && !b.cpu.is_empty() {
        let d: Vec<u64> = b
            .cpu
            .iter()
            .zip(&a.cpu)
            .map(|(x, y)| x.saturating_sub(*y))
            .collect();
        let total: u64 = d.iter().sum();
        if total > 0 {
            for (mode, v) in CPU_MODES.iter().zip(&d) {
                if *mode != "idle" {
                    host.push((
                        t,
                        format!("cpu_{mode}_pct"),
                        *v as f64 * 100.0 / total as f64,
                        "%",
                    ));
                }
            }
            let idle = d.get(3).copied().unwrap_or(0) + d.get(4).copied().unwrap_or(0);
            host.push((
                t,
                "cpu_busy_pct".into(),
                (total - idle.min(total)) as f64 * 100.0 / total as f64,
                "%",
            ));
        }
    }
    if let Some(m) = b.mem_used_kib {
        host.push((t, "mem_used_kib".into(), m as f64, "KiB"));
    }
    for (name, now) in &b.net {
        let Some(before) = a.net.get(name) else {
            continue;
        };
        let rate = |i: usize| now[i].saturating_sub(before[i]) as f64 / secs;
        host.push((t, format!("net.{name}.rx_bytes_per_s"), rate(0), "B/s"));
        host.push((t, format!("net.{name}.rx_packets_per_s"), rate(1), "1/s"));
        host.push((t, format!("net.{name}.tx_bytes_per_s"), rate(2), "B/s"));
        host.push((t, format!("net.{name}.tx_packets_per_s"), rate(3), "1/s"));
    }
    (0..n)
        .map(|i| {
            let mut r = host.clone();
            if let (Some(Some(x)), Some(Some(y))) = (b.side_us.get(i), a.side_us.get(i)) {
                // Percent of one CPU.
                let pct = x.saturating_sub(*y) as f64 / 1e6 / secs * 100.0;
                r.push((t, "side_cpu_pct".into(), pct, "%"));
            }
            r
        })
        .collect()
}

impl Sampler {
    /// Start sampling `targets` every `every`.
    pub fn start(every: Duration, targets: Vec<Target>) -> Sampler {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (s, t) = (stop.clone(), targets.clone());
        let thread = std::thread::Builder::new()
            .name("pairbench-sample".into())
            .spawn(move || {
                let start = Instant::now();
                let n = t.len();
                let mut out: Vec<Vec<Row>> = vec![Vec::new(); n];
                let mut prev = snapshot(0.0, &t);
                let mut k = 1u32;
                loop {
                    let next = start + every * k;
                    let stopped = {
                        let (m, cv) = &*s;
                        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
                        while !*g {
                            let left = next.saturating_duration_since(Instant::now());
                            if left.is_zero() {
                                break;
                            }
                            g = cv
                                .wait_timeout(g, left)
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                        }
                        *g
                    };
                    let now = snapshot(start.elapsed().as_secs_f64(), &t);
                    // A last, shorter interval only when it is long enough to mean much.
                    if !stopped || now.at - prev.at >= every.as_secs_f64() / 2.0 {
                        for (o, r) in out.iter_mut().zip(rows(&prev, &now, n)) {
                            o.extend(r);
                        }
                    }
                    if stopped {
                        return out;
                    }
                    prev = now;
                    // Behind (a busy machine): skip the moments already past.
                    k = k.max((start.elapsed().as_secs_f64() / every.as_secs_f64()) as u32) + 1;
                }
            })
            .map_err(|e| e.to_string());
        Sampler {
            stop,
            thread,
            targets,
        }
    }

    /// Stop, and write each side's samples.csv; one line per problem.
    pub fn stop(self) -> Vec<String> {
        {
            let (m, cv) = &*self.stop;
            *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
            cv.notify_all();
        }
        let thread = match self.thread {
            Ok(t) => t,
            Err(e) => return vec![format!("the sampling thread could not start: {e}")],
        };
        let Ok(rows) = thread.join() else {
            return vec!["the sampling thread failed: no samples were written".into()];
        };
        let mut problems = Vec::new();
        for (t, r) in self.targets.iter().zip(rows) {
            if let Err(e) = write(&t.dir, &r) {
                problems.push(format!("cannot write {}: {e}", t.dir.join(FILE).display()));
            }
        }
        problems
    }
}

fn write(dir: &Path, rows: &[Row]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["t_s", "name", "value", "unit"])?;
    for (t, name, v, unit) in rows {
        w.write_record([
            format!("{t:.3}"),
            name.clone(),
            format!("{v:.3}"),
            unit.to_string(),
        ])?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut f = nofollow::create_beneath(dir, Path::new(FILE), false, 0o644)?;
    std::io::Write::write_all(&mut f, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read() {
        assert_eq!(
            read_cpu("cpu  10 0 5 85 0 0 0 0 0 0\ncpu0 1 2\n"),
            vec![10, 0, 5, 85, 0, 0, 0, 0]
        );
        assert_eq!(
            read_mem_used("MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 400 kB\n"),
            Some(600)
        );
        let net =
            "Inter-|   Receive\n face |bytes packets\n  lo: 100 2 0 0 0 0 0 0 300 4 0 0 0 0 0 0\n";
        assert_eq!(read_net(net)["lo"], [100, 2, 300, 4]);
    }

    #[test]
    fn an_interval_is_rates_and_shares() {
        let a = Snapshot {
            at: 0.0,
            cpu: vec![0; 8],
            mem_used_kib: Some(1),
            net: [("lo".to_string(), [0, 0, 0, 0])].into(),
            side_us: vec![Some(0)],
        };
        let b = Snapshot {
            at: 0.5,
            cpu: vec![25, 0, 25, 50, 0, 0, 0, 0],
            mem_used_kib: Some(2),
            net: [("lo".to_string(), [1000, 10, 0, 0])].into(),
            side_us: vec![Some(250_000)],
        };
        let r = &rows(&a, &b, 1)[0];
        let get = |n: &str| r.iter().find(|x| x.1 == n).map(|x| x.2);
        assert_eq!(get("cpu_busy_pct"), Some(50.0));
        assert_eq!(get("cpu_user_pct"), Some(25.0));
        assert_eq!(get("net.lo.rx_bytes_per_s"), Some(2000.0));
        assert_eq!(get("side_cpu_pct"), Some(50.0));
        assert_eq!(get("mem_used_kib"), Some(2.0));
    }
}
