//! A host's link (docs/testbed.md, "Links"): its shape — delay, jitter, loss, rate — as the
//! user writes it, and the link emulator that applies it. The link is VDE's `wirefilter`
//! between the host's switch and the hub, changed while it runs through its management
//! socket; it needs no netem or tc classifier, so it shapes on any kernel. Both
//! directions get the same shape (a TCP connect waits 2 × the delay).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::TestbedError;
use crate::config::LinkConf;

/// A link's shape. All zero: as fast as the emulator goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkSpec {
    /// One-way delay, each direction.
    pub delay_ms: f64,
    /// The delay varies uniformly within ± this.
    pub jitter_ms: f64,
    /// Packets lost, in percent, each direction.
    pub loss_pct: f64,
    /// Bits per second on the wire (Ethernet frames); 0 = no limit.
    pub rate_bps: u64,
}

impl LinkSpec {
    /// `from` with the values `conf` gives replaced (a shape change keeps the others).
    pub fn merged(from: LinkSpec, conf: &LinkConf) -> Result<LinkSpec, TestbedError> {
        let mut s = from;
        if let Some(d) = &conf.delay {
            s.delay_ms = parse_ms("delay", d)?;
        }
        if let Some(j) = &conf.jitter {
            s.jitter_ms = parse_ms("jitter", j)?;
        }
        if let Some(l) = &conf.loss {
            s.loss_pct = parse_loss(l)?;
        }
        if let Some(r) = &conf.rate {
            s.rate_bps = parse_rate(r)?;
        }
        if s.jitter_ms > s.delay_ms {
            return Err(TestbedError::Invalid(format!(
                "jitter {} is larger than the delay {}: the delay varies within ± the jitter, so give a delay at least as large",
                fmt_ms(s.jitter_ms),
                fmt_ms(s.delay_ms)
            )));
        }
        Ok(s)
    }

    /// What wirefilter is told, in order (cut: every packet lost).
    pub fn commands(&self, cut: bool) -> Vec<String> {
        let delay = if self.jitter_ms > 0.0 {
            format!("delay {}+{}U", self.delay_ms, self.jitter_ms)
        } else {
            format!("delay {}", self.delay_ms)
        };
        let loss = if cut { 100.0 } else { self.loss_pct };
        vec![
            delay,
            format!("loss {loss}"),
            format!("bandwidth {}", self.rate_bps / 8),
        ]
    }
}

impl std::fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.delay_ms > 0.0 {
            parts.push(format!("delay {}", fmt_ms(self.delay_ms)));
        }
        if self.jitter_ms > 0.0 {
            parts.push(format!("jitter {}", fmt_ms(self.jitter_ms)));
        }
        if self.loss_pct > 0.0 {
            parts.push(format!("loss {}%", self.loss_pct));
        }
        if self.rate_bps > 0 {
            parts.push(format!("rate {}", fmt_rate(self.rate_bps)));
        }
        if parts.is_empty() {
            write!(f, "unshaped")
        } else {
            write!(f, "{}", parts.join(" "))
        }
    }
}

fn fmt_ms(ms: f64) -> String {
    format!("{ms}ms")
}

fn fmt_rate(bps: u64) -> String {
    for (div, unit) in [
        (1_000_000_000, "gbit"),
        (1_000_000, "mbit"),
        (1_000, "kbit"),
    ] {
        if bps >= div && bps.is_multiple_of(div) {
            return format!("{}{unit}", bps / div);
        }
    }
    format!("{bps}bit")
}

fn parse_ms(what: &str, text: &str) -> Result<f64, TestbedError> {
    let d = crate::config::parse_duration(what, text)
        .map_err(|e| TestbedError::Invalid(e.to_string()))?;
    if d > Duration::from_secs(60) {
        return Err(TestbedError::Invalid(format!(
            "{what} '{text}' is more than a minute: give at most 60s"
        )));
    }
    Ok(d.as_secs_f64() * 1000.0)
}

/// `1%`, `0.1%` or `1` (percent).
pub fn parse_loss(text: &str) -> Result<f64, TestbedError> {
    let t = text.trim();
    let n = t.strip_suffix('%').unwrap_or(t).trim();
    match n.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(TestbedError::Invalid(format!(
            "bad loss '{text}': write a percentage from 0% to 100%, like 1% or 0.1%"
        ))),
    }
}

/// A rate as `tc` writes it: `100mbit`, `512kbit`, `1gbit`, `10mbps` (bytes), `8000` (bit/s).
pub fn parse_rate(text: &str) -> Result<u64, TestbedError> {
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit.trim() {
        "" | "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        _ => f64::NAN,
    };
    match num.parse::<f64>() {
        Ok(v) if mult.is_finite() && v >= 0.0 && (v * mult) < 1e12 => Ok((v * mult) as u64),
        _ => Err(TestbedError::Invalid(format!(
            "bad rate '{text}': write it like 50mbit, 512kbit or 1gbit (bps, kbps, mbps: bytes per second)"
        ))),
    }
}

/// Tell the wirefilter at `mgmt` to take these settings; each must succeed.
pub fn apply(mgmt: &Path, commands: &[String]) -> Result<(), TestbedError> {
    let fail = |why: String| {
        TestbedError::Failed(format!(
            "cannot change the link ({}): {why}; if the testbed is broken, run `pairbench testbed down` and `up` again",
            mgmt.display()
        ))
    };
    let mut sock = UnixStream::connect(mgmt).map_err(|e| fail(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    read_prompt(&mut sock, deadline).map_err(fail)?;
    for c in commands {
        sock.write_all(format!("{c}\n").as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        let answer = read_prompt(&mut sock, deadline).map_err(fail)?;
        if !answer.contains("1000 Success") {
            let line = answer.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(fail(format!("wirefilter refused '{c}': {line}")));
        }
    }
    Ok(())
}

/// Read up to wirefilter's prompt; the text before it.
fn read_prompt(sock: &mut UnixStream, deadline: Instant) -> Result<String, String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(b"$ ") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("wirefilter did not answer within 5s".into());
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match sock.read(&mut buf) {
            Ok(0) => return Err("wirefilter closed its management socket".into()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("50mbit").unwrap(), 50_000_000);
        assert_eq!(parse_rate("512Kbit").unwrap(), 512_000);
        assert_eq!(parse_rate("1.5gbit").unwrap(), 1_500_000_000);
        assert_eq!(parse_rate("10mbps").unwrap(), 80_000_000);
        assert_eq!(parse_rate("8000").unwrap(), 8000);
        for bad in ["", "fast", "10 furlongs", "-1mbit"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert_eq!(fmt_rate(50_000_000), "50mbit");
        assert_eq!(fmt_rate(1_500_000), "1500kbit");
    }

    #[test]
    fn losses() {
        assert_eq!(parse_loss("1%").unwrap(), 1.0);
        assert_eq!(parse_loss("0.1").unwrap(), 0.1);
        assert!(parse_loss("101%").is_err());
        assert!(parse_loss("x").is_err());
    }

    #[test]
    fn merging_and_commands() {
        let conf = LinkConf {
            delay: Some("20ms".into()),
            jitter: Some("5ms".into()),
            loss: Some("1%".into()),
            rate: Some("50mbit".into()),
        };
        let s = LinkSpec::merged(LinkSpec::default(), &conf).unwrap();
        assert_eq!(s.to_string(), "delay 20ms jitter 5ms loss 1% rate 50mbit");
        assert_eq!(
            s.commands(false),
            ["delay 20+5U", "loss 1", "bandwidth 6250000"]
        );
        assert_eq!(s.commands(true)[1], "loss 100");
        let only_delay = LinkConf {
            delay: Some("30ms".into()),
            ..LinkConf::default()
        };
        let t = LinkSpec::merged(s, &only_delay).unwrap();
        assert_eq!(t.delay_ms, 30.0);
        assert_eq!(t.rate_bps, 50_000_000);
        let bad = LinkConf {
            jitter: Some("50ms".into()),
            ..LinkConf::default()
        };
        assert!(LinkSpec::merged(s, &bad).is_err());
        assert_eq!(LinkSpec::default().to_string(), "unshaped");
    }
}
