//! Socket set-up for sessions: control listeners, passive ports, backend choice.
//!
//! Control listeners use SO_REUSEPORT so that one worker process per core can share them.
//! Passive data listeners never do (STYLE.md pitfall 14): with it, two workers could bind
//! the same passive port and the kernel would hand a client's data connection to the wrong
//! one. A passive port in use is skipped, so overlapping ranges cost a retry, not a failure.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::limits::BACKEND_DOWN_SECONDS;
use crate::policy::{Backend, Balance};

/// Backlog of a control listener.
const CONTROL_BACKLOG: i32 = 1024;
/// Backlog of a passive data listener: the legitimate client plus a few intruders.
const PASSIVE_BACKLOG: i32 = 8;

/// Compares addresses across IPv4 and IPv4-mapped IPv6 forms.
pub fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Binds a control listener shared by all workers (SO_REUSEPORT).
pub fn bind_control_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(CONTROL_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// TCP_NODELAY (a relayed reply must not wait for Nagle) and inline urgent data (Telnet
/// IP/DM before ABOR arrive in the stream, where the Telnet filter drops them).
pub fn tune_control_socket(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = SockRef::from(stream).set_out_of_band_inline(true);
}

/// Data connections carry bulk bytes: no Nagle delay on the last segment either.
pub fn tune_data_socket(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
}

/// Starts a non-blocking connect to `target` from the local address `source` (port chosen
/// by the kernel), for active-mode data connections to the client.
pub fn connect_from(source: IpAddr, target: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    if source.is_ipv4() == target.is_ipv4() {
        socket.bind(&SocketAddr::new(source, 0).into())?;
    }
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// This worker's slice of the passive port range, handed out round-robin.
pub struct PassivePorts {
    first: u16,
    last: u16,
    next: u16,
}

impl PassivePorts {
    pub fn new(first: u16, last: u16) -> PassivePorts {
        let (first, last) = if first <= last {
            (first, last)
        } else {
            (last, first)
        };
        PassivePorts {
            first,
            last,
            next: first,
        }
    }

    /// The slice of `first..=last` that worker `index` of `count` uses.
    pub fn slice(first: u16, last: u16, index: usize, count: usize) -> PassivePorts {
        let total = usize::from(last.saturating_sub(first)) + 1;
        let count = count.max(1);
        if total < count {
            return PassivePorts::new(first, last);
        }
        let per = total / count;
        let start = usize::from(first) + per * index.min(count - 1);
        let end = if index + 1 >= count {
            usize::from(last)
        } else {
            start + per - 1
        };
        PassivePorts::new(
            u16::try_from(start).unwrap_or(first),
            u16::try_from(end).unwrap_or(last),
        )
    }

    pub fn range(&self) -> (u16, u16) {
        (self.first, self.last)
    }

    /// Binds a listener on `ip` at the next free port of the range.
    pub fn open(&mut self, ip: IpAddr) -> io::Result<(TcpListener, u16)> {
        let size = u32::from(self.last - self.first) + 1;
        let mut last_error = io::Error::new(io::ErrorKind::AddrInUse, "passive range exhausted");
        for _ in 0..size {
            let port = self.next;
            self.next = if self.next >= self.last {
                self.first
            } else {
                self.next + 1
            };
            match bind_passive(SocketAddr::new(ip, port)) {
                Ok(listener) => return Ok((listener, port)),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_error = e,
                Err(e) => return Err(e),
            }
        }
        Err(last_error)
    }
}

fn bind_passive(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR only (ports in TIME_WAIT are reusable); never SO_REUSEPORT here.
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(PASSIVE_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// The worker's memory of backend pools: whose turn it is, and who failed recently.
#[derive(Default)]
pub struct BackendBook {
    next: HashMap<String, usize>,
    down_until: HashMap<SocketAddr, Instant>,
    /// Sessions whose backend connection is in progress.
    waiting: u32,
}

impl BackendBook {
    pub fn new() -> BackendBook {
        BackendBook::default()
    }

    /// The servers of `backend` in the order to try them: round-robin or first-available
    /// order, with servers that failed recently moved to the end (still tried, last).
    pub fn candidates(&mut self, backend: &Backend, now: Instant) -> Vec<SocketAddr> {
        let servers = &backend.servers;
        if servers.is_empty() {
            return Vec::new();
        }
        let start = match backend.balance {
            Balance::RoundRobin => {
                let next = self.next.entry(backend.name.clone()).or_insert(0);
                let start = *next % servers.len();
                *next = next.wrapping_add(1);
                start
            }
            Balance::FirstAvailable => 0,
        };
        self.down_until.retain(|_, until| *until > now);
        let mut up = Vec::with_capacity(servers.len());
        let mut down = Vec::new();
        for i in 0..servers.len() {
            let addr = servers[(start + i) % servers.len()];
            if self.down_until.contains_key(&addr) {
                down.push(addr);
            } else {
                up.push(addr);
            }
        }
        up.extend(down);
        up
    }

    pub fn waiting(&self) -> u32 {
        self.waiting
    }

    pub fn start_waiting(&mut self) {
        self.waiting = self.waiting.saturating_add(1);
    }

    pub fn stop_waiting(&mut self) {
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// Takes a server out of rotation for a while after a failed connect.
    pub fn mark_down(&mut self, addr: SocketAddr, now: Instant) {
        self.down_until
            .insert(addr, now + Duration::from_secs(BACKEND_DOWN_SECONDS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(balance: Balance, n: u16) -> Backend {
        Backend {
            name: "pool".into(),
            servers: (0..n)
                .map(|i| SocketAddr::from(([127, 0, 0, 1], 2000 + i)))
                .collect(),
            balance,
            tls: Default::default(),
            source_address: None,
            tls_settings: Default::default(),
            feature_probe: true,
        }
    }

    #[test]
    fn round_robin_rotates_and_skips_failed_servers() {
        let mut book = BackendBook::new();
        let b = backend(Balance::RoundRobin, 3);
        let now = Instant::now();
        assert_eq!(book.candidates(&b, now)[0].port(), 2000);
        assert_eq!(book.candidates(&b, now)[0].port(), 2001);
        book.mark_down(b.servers[2], now);
        let order: Vec<u16> = book.candidates(&b, now).iter().map(|a| a.port()).collect();
        assert_eq!(order, vec![2000, 2001, 2002], "failed server goes last");
        let later = now + Duration::from_secs(BACKEND_DOWN_SECONDS + 1);
        let order: Vec<u16> = book
            .candidates(&b, later)
            .iter()
            .map(|a| a.port())
            .collect();
        assert_eq!(order, vec![2000, 2001, 2002]);
    }

    #[test]
    fn first_available_always_starts_at_the_first_server() {
        let mut book = BackendBook::new();
        let b = backend(Balance::FirstAvailable, 2);
        let now = Instant::now();
        assert_eq!(book.candidates(&b, now)[0].port(), 2000);
        assert_eq!(book.candidates(&b, now)[0].port(), 2000);
        book.mark_down(b.servers[0], now);
        assert_eq!(book.candidates(&b, now)[0].port(), 2001);
    }

    #[test]
    fn passive_slices_cover_the_range_without_overlap() {
        let a = PassivePorts::slice(50000, 50999, 0, 2);
        let b = PassivePorts::slice(50000, 50999, 1, 2);
        assert_eq!(a.range(), (50000, 50499));
        assert_eq!(b.range(), (50500, 50999));
        let tiny = PassivePorts::slice(50000, 50000, 1, 4);
        assert_eq!(tiny.range(), (50000, 50000));
    }

    #[test]
    fn passive_ports_skip_ports_in_use() {
        let ip = IpAddr::from([127, 0, 0, 1]);
        let busy = std::net::TcpListener::bind((ip, 0)).expect("bind");
        let port = busy.local_addr().expect("addr").port();
        let mut only_busy = PassivePorts::new(port, port);
        let err = only_busy.open(ip).expect_err("the only port is taken");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        drop(busy);
        let (_listener, got) = only_busy.open(ip).expect("free again");
        assert_eq!(got, port);
    }

    #[test]
    fn mapped_addresses_compare_equal() {
        let v4: IpAddr = "127.0.0.1".parse().expect("v4");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("mapped");
        assert!(same_ip(v4, mapped));
        assert!(!same_ip(v4, "127.0.0.2".parse().expect("v4")));
    }
}
