//! Which ports are listening on this machine, as the kernel's socket tables say
//! (`/proc/<pid>/net/tcp`, `tcp6`, `udp`, `udp6`, read with procfs), never by
//! connecting: a probe connection would use up a server that serves one client (`nc -l`)
//! or crash one that expects a real client. The tables read are those of the network
//! namespace a process runs in, so a server in a namespace is seen where it listens.
//! Used by the transports to answer `wait_for_remote_port_open` / `_close`
//! (docs/groups-and-scripts.md, "Waiting for a port").

use std::time::{Duration, Instant};

use procfs::net::{TcpState, UdpState};
use serde::{Deserialize, Serialize};

/// How often the tables are read while waiting.
pub const EVERY: Duration = Duration::from_millis(20);

/// Which table: TCP (a socket in the LISTEN state) or UDP (a socket bound to the port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        }
    }

    /// `tcp` or `udp`, as the control socket and the agent protocol write it.
    pub fn word(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    pub fn from_word(w: &str) -> Option<Proto> {
        match w {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            _ => None,
        }
    }
}

/// How a wait for a port ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The port is in the state asked for.
    Reached,
    /// The script exited before the port opened.
    Exited,
    /// Neither within the time given.
    TimedOut,
}

impl Waited {
    pub fn word(self) -> &'static str {
        match self {
            Waited::Reached => "reached",
            Waited::Exited => "exited",
            Waited::TimedOut => "timeout",
        }
    }

    pub fn from_word(w: &str) -> Option<Waited> {
        match w {
            "reached" => Some(Waited::Reached),
            "exited" => Some(Waited::Exited),
            "timeout" => Some(Waited::TimedOut),
            _ => None,
        }
    }
}

/// Is a socket listening on `port` (TCP: in LISTEN state; UDP: bound to it) in the
/// network namespace of process `pid`? When `pid` is gone, this process's own namespace
/// is read. `Err` when the tables cannot be read at all (no /proc).
pub fn listening(pid: i32, port: u16, proto: Proto) -> Result<bool, String> {
    let process = procfs::process::Process::new(pid).ok();
    // A table that is missing (no IPv6 in the kernel) holds no socket.
    let read = |v4: bool| -> Result<bool, procfs::ProcError> {
        let own = || -> Result<bool, procfs::ProcError> {
            Ok(match (proto, v4) {
                (Proto::Tcp, true) => tcp_listens(&procfs::net::tcp()?, port),
                (Proto::Tcp, false) => tcp_listens(&procfs::net::tcp6()?, port),
                (Proto::Udp, true) => udp_bound(&procfs::net::udp()?, port),
                (Proto::Udp, false) => udp_bound(&procfs::net::udp6()?, port),
            })
        };
        let Some(p) = &process else { return own() };
        let of_pid = match (proto, v4) {
            (Proto::Tcp, true) => p.tcp().map(|t| tcp_listens(&t, port)),
            (Proto::Tcp, false) => p.tcp6().map(|t| tcp_listens(&t, port)),
            (Proto::Udp, true) => p.udp().map(|t| udp_bound(&t, port)),
            (Proto::Udp, false) => p.udp6().map(|t| udp_bound(&t, port)),
        };
        // Gone since it was looked up (or not ours to read): our own namespace.
        of_pid.or_else(|_| own())
    };
    let mut errors = Vec::new();
    for v4 in [true, false] {
        match read(v4) {
            Ok(true) => return Ok(true),
            Ok(false) | Err(procfs::ProcError::NotFound(_)) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.len() == 2 {
        return Err(format!(
            "cannot read the kernel's socket tables (/proc/net): {}",
            errors.join("; ")
        ));
    }
    Ok(false)
}

/// Is TCP `port` taken on this machine (in this process's network namespace): a socket
/// in any state (listening, connected, closing) has it as its local port. Asked of the
/// kernel by binding the port without `SO_REUSEADDR` (IPv4 and IPv6), which any socket on
/// it refuses — a few microseconds, where reading the socket tables costs milliseconds
/// on a busy machine; the tables are read only where binding cannot tell (a port this
/// user may not bind). Used to choose a run's `PAIRBENCH_PORT` (docs/benchmarks.md,
/// "Ports").
pub fn tcp_port_taken(port: u16) -> Result<bool, String> {
    use nix::errno::Errno;
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6, bind, setsockopt, socket,
        sockopt::Ipv6V6Only,
    };
    let v4 = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .and_then(|fd| {
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrIn::new(0, 0, 0, 0, port),
        )
    });
    let v6 = || {
        socket(
            AddressFamily::Inet6,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .and_then(|fd| {
            setsockopt(&fd, Ipv6V6Only, &true)?;
            bind(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &SockaddrIn6::from(std::net::SocketAddrV6::new(
                    std::net::Ipv6Addr::UNSPECIFIED,
                    port,
                    0,
                    0,
                )),
            )
        })
    };
    match v4 {
        Err(Errno::EADDRINUSE) => return Ok(true),
        Ok(()) => match v6() {
            Err(Errno::EADDRINUSE) => return Ok(true),
            // No IPv6 here: IPv4 has told.
            Ok(()) | Err(Errno::EAFNOSUPPORT | Errno::EADDRNOTAVAIL) => return Ok(false),
            Err(_) => {}
        },
        Err(_) => {}
    }
    tcp_port_in_tables(port)
}

/// [`tcp_port_taken`] from the socket tables.
fn tcp_port_in_tables(port: u16) -> Result<bool, String> {
    let mut errors = Vec::new();
    for table in [procfs::net::tcp(), procfs::net::tcp6()] {
        match table {
            Ok(t) => {
                if t.iter().any(|e| e.local_address.port() == port) {
                    return Ok(true);
                }
            }
            Err(procfs::ProcError::NotFound(_)) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.len() == 2 {
        return Err(format!(
            "cannot read the kernel's socket tables (/proc/net): {}",
            errors.join("; ")
        ));
    }
    Ok(false)
}

fn tcp_listens(table: &[procfs::net::TcpNetEntry], port: u16) -> bool {
    table
        .iter()
        .any(|e| e.state == TcpState::Listen && e.local_address.port() == port)
}

fn udp_bound(table: &[procfs::net::UdpNetEntry], port: u16) -> bool {
    table.iter().any(|e| {
        matches!(e.state, UdpState::Close | UdpState::Established) && e.local_address.port() == port
    })
}

/// Read the tables of `pid`'s namespace every [`EVERY`] until `port` listens (`open`)
/// or nothing listens on it (`!open`), for at most `limit`. While waiting for `open`,
/// `exited()` is asked too: a script that has exited will not open the port.
pub fn wait(
    pid: i32,
    port: u16,
    proto: Proto,
    open: bool,
    limit: Duration,
    exited: impl Fn() -> bool,
) -> Result<Waited, String> {
    let end = Instant::now() + limit;
    loop {
        let round = Instant::now();
        if listening(pid, port, proto)? == open {
            return Ok(Waited::Reached);
        }
        if open && exited() {
            // It may have opened the port just before it exited: look once more.
            return Ok(if listening(pid, port, proto)? {
                Waited::Reached
            } else {
                Waited::Exited
            });
        }
        let now = Instant::now();
        if now >= end {
            return Ok(Waited::TimedOut);
        }
        let next = (round + EVERY).min(end);
        std::thread::sleep(next.saturating_duration_since(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_is_seen_and_a_closed_one_is_not() {
        let me = std::process::id() as i32;
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        assert_eq!(listening(me, port, Proto::Tcp), Ok(true));
        assert_eq!(listening(me, port, Proto::Udp), Ok(false));
        drop(tcp);
        assert_eq!(listening(me, port, Proto::Tcp), Ok(false));
        let udp = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        assert_eq!(listening(me, port, Proto::Udp), Ok(true));
        // A TCP client's connected socket is not a listener.
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let client_port = client.local_addr().unwrap().port();
        assert_eq!(listening(me, client_port, Proto::Tcp), Ok(false));
    }

    #[test]
    fn a_port_is_taken_by_a_socket_of_any_state_on_any_address() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        assert_eq!(tcp_port_taken(port), Ok(true), "a listener on one address");
        let client = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let client_port = client.local_addr().unwrap().port();
        assert_eq!(
            tcp_port_taken(client_port),
            Ok(true),
            "a client's connection"
        );
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        let v6_port = v6.local_addr().unwrap().port();
        assert_eq!(tcp_port_taken(v6_port), Ok(true), "an IPv6 listener");
        drop(v6);
        // Freed, and checking it leaves nothing behind: it can be taken twice in a row.
        assert_eq!(tcp_port_taken(v6_port), Ok(false));
        assert_eq!(tcp_port_taken(v6_port), Ok(false));
        assert_eq!(tcp_port_in_tables(port), Ok(true), "the tables agree");
    }
}
