//! Sockets as ftpgate sets them up: the control listeners every worker shares
//! (SO_REUSEPORT), passive data listeners (never SO_REUSEPORT: STYLE.md pitfall 14 — two
//! workers could bind the same passive port and the kernel would hand a client's data
//! connection to the wrong one), connects from a chosen source address, and the options of
//! control and data connections.

use std::io;
use std::net::{IpAddr, SocketAddr};

use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::limits::{CONTROL_BACKLOG, PASSIVE_BACKLOG, SHARED_PASSIVE_BACKLOG};

/// Completes a non-blocking connect, mio's protocol: writable, then `take_error`, then
/// `peer_addr` (STYLE.md pitfall 6). `writable` is the socket's last known readiness; it is
/// cleared when the connect is still in progress. `Some(Ok)` once connected, `Some(Err)` on
/// failure, `None` while in progress.
pub fn finish_connect(stream: &TcpStream, writable: &mut bool) -> Option<io::Result<()>> {
    if !*writable {
        return None;
    }
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => return Some(Err(e)),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => Some(Ok(())),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => {
            *writable = false;
            None
        }
        Err(e) => Some(Err(e)),
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

/// Binds a passive data listener on `addr` (SO_REUSEADDR only).
pub fn bind_passive(addr: SocketAddr) -> io::Result<TcpListener> {
    bind_passive_with(addr, PASSIVE_BACKLOG)
}

/// Binds a shared passive listener (`passive.shared`): the same, with room in its backlog
/// for the connections of every session that waits on it.
pub fn bind_passive_shared(addr: SocketAddr) -> io::Result<TcpListener> {
    bind_passive_with(addr, SHARED_PASSIVE_BACKLOG)
}

fn bind_passive_with(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR only (ports in TIME_WAIT are reusable); never SO_REUSEPORT here.
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}
