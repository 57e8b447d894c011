//! The line protocol between pairbench and its agent on a remote host: one JSON object
//! per line, requests on the agent's stdin, answers and events on its stdout. File
//! contents travel base64-encoded.

use serde::{Deserialize, Serialize};

/// pairbench → agent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// "I am still here"; the agent ends everything when these stop coming.
    Ping,
    Mkdir {
        id: u64,
        path: String,
    },
    /// Write (or append to) a file, creating its folders.
    Put {
        id: u64,
        path: String,
        mode: u32,
        data: String,
        append: bool,
    },
    /// Start a script; its id is the process id of later `exited` events.
    Start {
        id: u64,
        program: String,
        cwd: String,
        env: Vec<(String, String)>,
        stdout: String,
        stderr: String,
        marker: String,
        /// Send the script's output as it comes (`output` events), for `-v`.
        #[serde(default)]
        stream: bool,
        /// When the script ends on its own and leaves nothing running, send this folder
        /// back at once, as the answer to request `pack_id` (`done` with `packed`
        /// true; false when it is left to `terminate`): no round trip to end it.
        #[serde(default)]
        pack_on_exit: Option<(u64, PackAfter)>,
        /// Run it under this tracer (docs/resources.md).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trace: Option<crate::config::Trace>,
        /// Sample the host this often while it runs, into `<cwd>/samples.csv`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sample_ms: Option<u64>,
    },
    /// End process `proc_id`'s side: the grace sequence starting with `signal`
    /// (default SIGHUP), then whatever is left at once.
    Terminate {
        id: u64,
        proc_id: u64,
        grace_ms: u64,
        #[serde(default)]
        signal: Option<String>,
        /// Once the side is gone, send this folder back (`file`/`dir`/`link` events
        /// before the answer), as `pack` would: one round trip less per pair.
        #[serde(default)]
        pack: Option<PackAfter>,
    },
    /// Send a folder's files back (`file`/`dir`/`link` events), then remove it if asked.
    Pack {
        id: u64,
        path: String,
        /// Relative paths (and everything under them) to leave out.
        exclude: Vec<String>,
        remove: bool,
    },
    /// `rm -r`, without a shell.
    Remove {
        id: u64,
        path: String,
    },
    /// Wait up to `timeout_ms` until `port` listens (`open`) or does not, in the network
    /// namespace of process `proc_id`, reading the socket tables on the remote host;
    /// answered with a `port` event.
    WaitPort {
        id: u64,
        proc_id: u64,
        port: u16,
        proto: crate::sockets::Proto,
        open: bool,
        timeout_ms: u64,
    },
    /// Is TCP `port` taken on the remote host (a socket of any state has it)? Answered
    /// with a `port` event, state `taken` or `free`.
    PortTaken {
        id: u64,
        port: u16,
    },
}

/// The folder a `terminate` sends back once the side is gone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackAfter {
    pub path: String,
    /// Remove it (and its parent, if that leaves it empty) once sent.
    pub remove: bool,
}

/// agent → pairbench.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// First line: facts about the remote host.
    Hello {
        version: String,
        uname: String,
        cpuinfo: String,
        meminfo: String,
        /// `$SSH_CONNECTION`: client address, client port, server address, server port.
        ssh_connection: String,
        home: String,
        /// How the agent contains scripts on that host.
        #[serde(default)]
        containment: crate::contain::Description,
        /// What it cleaned up after runs that are over (one line), if anything.
        #[serde(default)]
        cleaned: Option<String>,
        /// Where its sides' resource metrics come from (docs/resources.md).
        #[serde(default)]
        accounting: Option<crate::contain::Sources>,
    },
    /// The agent is alive.
    Tick,
    /// Request `re` succeeded.
    Done {
        re: u64,
        #[serde(default)]
        pid: Option<i32>,
        #[serde(default)]
        terminated: Option<bool>,
        /// Written like an `exit_code` file.
        #[serde(default)]
        exit: Option<String>,
        /// The signal after which the main process exited (`SIGTERM`), when ended.
        #[serde(default)]
        stopped_by: Option<String>,
        /// What the script's side used, once it was ended (docs/resources.md).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<crate::contain::Usage>,
        /// A `terminate` with `pack`: why the folder could not be sent (all of it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pack_error: Option<String>,
        /// The answer to a `pack_on_exit`: was the folder sent? For a `terminate`:
        /// false when the folder went with the `pack_on_exit` answer instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        packed: Option<bool>,
    },
    /// Request `re` failed.
    Failed { re: u64, error: String },
    /// The answer to a `wait_port`: `reached`, `exited` or `timeout`
    /// ([`crate::sockets::Waited::word`]).
    Port { re: u64, state: String },
    /// Part of a `pack` answer: a chunk of a file.
    File {
        re: u64,
        rel: String,
        mode: u32,
        data: String,
        append: bool,
    },
    /// Part of a `pack` answer: an empty folder.
    Dir { re: u64, rel: String },
    /// Part of a `pack` answer: a symbolic link.
    Link {
        re: u64,
        rel: String,
        target: String,
    },
    /// A started script's main process ended.
    Exited { proc_id: u64, exit: String },
    /// New output of a streamed script: `stream` 1 is stdout, 2 stderr.
    Output {
        proc_id: u64,
        stream: u8,
        data: String,
    },
}

impl Event {
    /// The request this event answers, if any.
    pub fn re(&self) -> Option<u64> {
        match self {
            Event::Done { re, .. }
            | Event::Failed { re, .. }
            | Event::Port { re, .. }
            | Event::File { re, .. }
            | Event::Dir { re, .. }
            | Event::Link { re, .. } => Some(*re),
            _ => None,
        }
    }
}

/// The largest file chunk in one message.
pub const CHUNK: usize = 1 << 20;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decode what [`b64_encode`] wrote; `None` on anything else.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let val = |b: u8| -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for q in bytes.chunks(4) {
        let pad = q.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for (i, &b) in q.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { val(b)? };
            n = (n << 6) | v;
        }
        out.push((n >> 16) as u8);
        if pad < 2 {
            out.push((n >> 8) as u8);
        }
        if pad < 1 {
            out.push(n as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        assert_eq!(b64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(b64_encode(b""), "");
        assert_eq!(b64_encode(b"ab"), "YWI=");
        for n in 0..300usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
            assert_eq!(b64_decode(&b64_encode(&data)).unwrap(), data);
        }
        assert!(b64_decode("a").is_none());
        assert!(b64_decode("a$==").is_none());
    }

    #[test]
    fn messages_are_one_line() {
        let r = Request::Start {
            id: 1,
            program: "/x/it's $(rm) ü".into(),
            cwd: "/".into(),
            env: vec![("A".into(), "line\nbreak".into())],
            stdout: "o".into(),
            stderr: "e".into(),
            marker: "m".into(),
            stream: false,
            pack_on_exit: Some((
                2,
                PackAfter {
                    path: "/r/a b".into(),
                    remove: true,
                },
            )),
            trace: None,
            sample_ms: None,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(!s.contains('\n'));
        let back: Request = serde_json::from_str(&s).unwrap();
        assert!(matches!(back, Request::Start { id: 1, .. }));
    }
}
