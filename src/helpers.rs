//! The helpers a local test calls (SPEC §4): `wait_for_remote`, `kill_remote`,
//! `wait_for_remote_port_open`, `wait_for_remote_port_close`, `report_metric`.
//!
//! They are the pairbench executable itself, called through links named after them (so
//! any language can run them), and they talk to the run over its control socket
//! ([`crate::control`]). Each says on stderr what it waits for and what it saw.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use clap::Parser;

/// Names of the helper executables.
pub const NAMES: [&str; 5] = [
    "wait_for_remote",
    "kill_remote",
    "wait_for_remote_port_open",
    "wait_for_remote_port_close",
    "report_metric",
];

/// Exit status of a helper that timed out (like `timeout(1)`).
pub const TIMED_OUT: i32 = 124;

#[derive(Debug, Parser)]
struct WaitArgs {
    /// Give up after this long [default: the run's --wait-timeout]
    #[arg(long)]
    timeout: Option<String>,
}

#[derive(Debug, Parser)]
struct PortArgs {
    /// TCP port on the remote host
    port: u16,
    /// Give up after this long [default: the run's --wait-timeout]
    #[arg(long)]
    timeout: Option<String>,
}

#[derive(Debug, Parser)]
struct MetricArgs {
    name: String,
    value: String,
    unit: Option<String>,
}

#[derive(Debug, Parser)]
struct NoArgs {}

/// Run helper `name`; returns its exit status.
pub fn main(name: &str, args: &[String]) -> i32 {
    let argv = std::iter::once(name.to_string()).chain(args.iter().cloned());
    let result = match name {
        "wait_for_remote" => parse::<WaitArgs>(argv).and_then(|a| wait_for_remote(&a)),
        "kill_remote" => parse::<NoArgs>(argv).and_then(|_| kill_remote()),
        "wait_for_remote_port_open" => parse::<PortArgs>(argv).and_then(|a| port_wait(&a, true)),
        "wait_for_remote_port_close" => parse::<PortArgs>(argv).and_then(|a| port_wait(&a, false)),
        "report_metric" => parse::<MetricArgs>(argv).and_then(|a| report_metric(&a)),
        other => Err(Failure(2, format!("unknown helper '{other}'"))),
    };
    match result {
        Ok(code) => code,
        Err(Failure(code, msg)) => {
            eprintln!("{name}: {msg}");
            code
        }
    }
}

/// A helper failure: exit status and message.
struct Failure(i32, String);

fn parse<T: Parser>(argv: impl Iterator<Item = String>) -> Result<T, Failure> {
    T::try_parse_from(argv).map_err(|e| Failure(2, e.to_string().trim().replace('\n', " ")))
}

fn env(var: &str) -> Result<String, Failure> {
    std::env::var(var).map_err(|_| {
        Failure(
            2,
            format!("{var} is not set: this helper works inside a local test run by pairbench"),
        )
    })
}

fn timeout(arg: &Option<String>) -> Result<Duration, Failure> {
    let text = match arg {
        Some(t) => t.clone(),
        None => std::env::var("PAIRBENCH_WAIT_TIMEOUT").unwrap_or_else(|_| "60s".into()),
    };
    crate::config::parse_duration("--timeout", &text).map_err(|e| Failure(2, e.to_string()))
}

/// A connection to the run's control socket.
struct Link {
    key: String,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Link {
    fn open() -> Result<Link, Failure> {
        let path = env("PAIRBENCH_CONTROL")?;
        let key = env("PAIRBENCH_PAIR_KEY")?;
        let stream = UnixStream::connect(&path)
            .map_err(|e| Failure(2, format!("cannot reach pairbench at {path}: {e}")))?;
        let writer = stream.try_clone().map_err(|e| Failure(2, e.to_string()))?;
        Ok(Link {
            key,
            reader: BufReader::new(stream),
            writer,
        })
    }

    fn ask(&mut self, verb: &str, extra: &str) -> Result<String, Failure> {
        let lost = |e: std::io::Error| Failure(2, format!("lost contact with pairbench: {e}"));
        self.writer
            .write_all(format!("{verb} {} {extra}\n", self.key).as_bytes())
            .map_err(lost)?;
        let mut line = String::new();
        self.reader.read_line(&mut line).map_err(lost)?;
        let line = line.trim().to_string();
        if let Some(msg) = line.strip_prefix("ERR ") {
            return Err(Failure(2, msg.to_string()));
        }
        if line.is_empty() {
            return Err(Failure(2, "lost contact with pairbench".into()));
        }
        Ok(line)
    }
}

fn wait_for_remote(a: &WaitArgs) -> Result<i32, Failure> {
    let limit = timeout(&a.timeout)?;
    let mut link = Link::open()?;
    eprintln!(
        "wait_for_remote: waiting up to {} for the remote test to exit",
        crate::outcome::human(limit)
    );
    let answer = link.ask("WAIT", &limit.as_millis().to_string())?;
    if let Some(exit) = answer.strip_prefix("EXITED ") {
        eprintln!("wait_for_remote: the remote test has exited ({exit})");
        Ok(0)
    } else {
        eprintln!(
            "wait_for_remote: timed out after {}: the remote test is still running",
            crate::outcome::human(limit)
        );
        Ok(TIMED_OUT)
    }
}

fn kill_remote() -> Result<i32, Failure> {
    let mut link = Link::open()?;
    eprintln!("kill_remote: terminating the remote test");
    let answer = link.ask("KILL", "")?;
    match answer.strip_prefix("EXITED ") {
        Some(exit) => eprintln!("kill_remote: the remote test had already exited ({exit})"),
        None => eprintln!("kill_remote: the remote test is gone"),
    }
    Ok(0)
}

fn remote_addrs(port: u16) -> Result<Vec<SocketAddr>, Failure> {
    let host = env("PAIRBENCH_REMOTE_HOST")?;
    (host.as_str(), port)
        .to_socket_addrs()
        .map(|a| a.collect())
        .map_err(|e| Failure(2, format!("cannot resolve remote host '{host}': {e}")))
}

fn port_open(addrs: &[SocketAddr]) -> bool {
    addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_millis(40)).is_ok())
}

/// Poll a TCP connect to the remote host's port at least every 50 ms until it is open
/// (or, with `open == false`, closed).
fn port_wait(a: &PortArgs, open: bool) -> Result<i32, Failure> {
    let limit = timeout(&a.timeout)?;
    let addrs = remote_addrs(a.port)?;
    let host = std::env::var("PAIRBENCH_REMOTE_HOST").unwrap_or_default();
    let what = if open { "open" } else { "close" };
    let mut link = Link::open()?;
    eprintln!(
        "wait_for_remote_port_{what}: waiting up to {} for {host}:{} to {what}",
        crate::outcome::human(limit),
        a.port
    );
    let start = Instant::now();
    loop {
        let round = Instant::now();
        if port_open(&addrs) == open {
            eprintln!(
                "wait_for_remote_port_{what}: {host}:{} is {} after {:.3}s",
                a.port,
                if open { "open" } else { "closed" },
                start.elapsed().as_secs_f64()
            );
            return Ok(0);
        }
        if open {
            let status = link.ask("STATUS", "")?;
            if let Some(exit) = status.strip_prefix("EXITED ") {
                eprintln!(
                    "wait_for_remote_port_open: the remote test exited ({exit}) before {host}:{} opened",
                    a.port
                );
                return Ok(1);
            }
        }
        if start.elapsed() >= limit {
            eprintln!(
                "wait_for_remote_port_{what}: timed out after {}: {host}:{} is still {}",
                crate::outcome::human(limit),
                a.port,
                if open { "closed" } else { "open" }
            );
            return Ok(TIMED_OUT);
        }
        let spent = round.elapsed();
        if spent < Duration::from_millis(10) {
            std::thread::sleep(Duration::from_millis(10) - spent);
        }
    }
}

fn report_metric(a: &MetricArgs) -> Result<i32, Failure> {
    let value: f64 = a.value.trim().parse().map_err(|_| {
        Failure(
            2,
            format!("value '{}' of metric '{}' is not a number", a.value, a.name),
        )
    })?;
    if !value.is_finite() {
        return Err(Failure(
            2,
            format!("value '{}' is not a finite number", a.value),
        ));
    }
    if a.name.trim().is_empty() {
        return Err(Failure(2, "a metric needs a name".into()));
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut fields = vec![a.name.as_str(), a.value.trim()];
    if let Some(u) = &a.unit {
        fields.push(u);
    }
    w.write_record(&fields)
        .map_err(|e| Failure(2, e.to_string()))?;
    let line = w.into_inner().map_err(|e| Failure(2, e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("metrics.csv")
        .map_err(|e| Failure(2, format!("cannot write metrics.csv: {e}")))?;
    // One write call, so concurrent helpers never interleave a row.
    f.write_all(&line)
        .map_err(|e| Failure(2, format!("cannot write metrics.csv: {e}")))?;
    eprintln!(
        "report_metric: {} = {}{}",
        a.name,
        a.value.trim(),
        a.unit
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default()
    );
    Ok(0)
}

/// PATH with the helpers' folder `bin` first (the user's PATH from `--env` if given, else
/// ours): for scripts on this machine, and by the SSH agent for `report_metric` on the
/// remote host.
pub fn path_with(bin: &std::path::Path, env: &[(String, String)]) -> String {
    let base = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    format!("{}:{base}", bin.display())
}
