//! Listening sockets (TCP and Unix) and the accept loops that start connections.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::ServerState;
use super::{connection, Server};
use crate::protocol::session::Peer;

/// Where to listen.
#[derive(Debug, Clone)]
pub enum ListenAddr {
    /// A TCP port on a host (an IP literal or a name; none means every address).
    Tcp {
        /// Host to bind.
        host: Option<String>,
        /// Port (0 = ephemeral).
        port: u16,
        /// Listen backlog.
        backlog: i32,
        /// Accept IPv6 only on an IPv6 socket.
        ipv6_only: bool,
        /// Share the port with other processes (SO_REUSEPORT).
        reuse_port: bool,
    },
    /// A Unix domain socket path.
    Unix {
        /// Socket path.
        path: String,
        /// Listen backlog.
        backlog: i32,
    },
}

/// What a listener ended up bound to (`server.address()`).
#[derive(Debug, Clone)]
pub enum Bound {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(String),
}

/// Turns a socket address into the normalized text smtp-server stores.
pub fn normalize_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

fn resolve_host(host: &Option<String>, port: u16) -> io::Result<Vec<SocketAddr>> {
    match host.as_deref() {
        None | Some("") => Ok(vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ]),
        Some("localhost") => Ok(vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)]),
        Some(h) => {
            if let Ok(ip) = h.parse::<IpAddr>() {
                return Ok(vec![SocketAddr::new(ip, port)]);
            }
            let addrs: Vec<SocketAddr> = (h, port).to_socket_addrs()?.collect();
            if addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("getaddrinfo ENOTFOUND {h}"),
                ));
            }
            Ok(addrs)
        }
    }
}

fn bind_tcp(
    addr: SocketAddr,
    backlog: i32,
    ipv6_only: bool,
    reuse_port: bool,
) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
    let _ = reuse_port;
    if addr.is_ipv6() {
        socket.set_only_v6(ipv6_only)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Binds the listening socket and starts accepting connections on the runtime.
pub fn listen(server: Arc<Server>, addr: ListenAddr) -> io::Result<Bound> {
    match addr {
        ListenAddr::Tcp {
            host,
            port,
            backlog,
            ipv6_only,
            reuse_port,
        } => {
            let candidates = resolve_host(&host, port)?;
            let mut last_err = None;
            for candidate in candidates {
                match bind_tcp(candidate, backlog, ipv6_only, reuse_port) {
                    Ok(listener) => {
                        let bound = listener.local_addr()?;
                        server.keep_listener(Socket::from(listener.try_clone()?), None);
                        server.listening.store(true, Ordering::SeqCst);
                        napi::bindgen_prelude::spawn(accept_loop(
                            server,
                            listener,
                            accept_tcp,
                            Server::serve_tcp,
                        ));
                        return Ok(Bound::Tcp(bound));
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            Err(last_err.unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to bind")
            }))
        }
        #[cfg(unix)]
        ListenAddr::Unix { path, backlog } => {
            let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            socket.set_nonblocking(true)?;
            socket.bind(&socket2::SockAddr::unix(&path)?)?;
            socket.listen(backlog)?;
            server.keep_listener(socket.try_clone()?, Some(path.clone()));
            let listener: std::os::unix::net::UnixListener = socket.into();
            server.listening.store(true, Ordering::SeqCst);
            napi::bindgen_prelude::spawn(accept_loop(
                server,
                listener,
                accept_unix,
                |server, stream, peer| {
                    tokio::spawn(connection::run(Arc::clone(server), stream, peer));
                },
            ));
            Ok(Bound::Unix(path))
        }
        #[cfg(not(unix))]
        ListenAddr::Unix { .. } => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "Unix sockets are not supported here",
        )),
    }
}

/// After a failed `accept()`: false when the listener is gone for good (it was shut
/// down by `close()`), true after a short pause for a passing shortage (EMFILE, ...).
async fn accept_failed(server: &Server, err: &io::Error) -> bool {
    if *server.state.borrow() != ServerState::Running || err.kind() == io::ErrorKind::InvalidInput {
        return false;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    true
}

/// Waits for a connection. Built on `AsyncFd` so that every wake-up goes back through the
/// caller's `select!`: a listening socket shut down by `close()` keeps reporting
/// readiness, and the caller must get to see the server state to stop.
async fn accept_one<L, S>(fd: &AsyncFd<L>, accept: impl Fn(&L) -> io::Result<S>) -> io::Result<S>
where
    L: std::os::fd::AsRawFd,
{
    let mut guard = fd.readable().await?;
    match guard.try_io(|inner| accept(inner.get_ref())) {
        Ok(result) => result,
        Err(_would_block) => Err(io::Error::from(io::ErrorKind::WouldBlock)),
    }
}

/// Accepts connections on `listener` until the server stops, and has `serve` serve
/// each one. `accept` takes one connection off the listener and returns it with its
/// addresses, or `None` to drop a socket that could not be set up.
async fn accept_loop<L, S>(
    server: Arc<Server>,
    listener: L,
    accept: impl Fn(&L) -> io::Result<Option<(S, Peer)>>,
    serve: impl Fn(&Arc<Server>, S, Peer),
) where
    L: std::os::fd::AsRawFd,
{
    // SAFETY: a std listener owns its file descriptor until it is dropped, and
    // `as_raw_fd()` always returns that same descriptor, which is what `register`
    // requires; the AsyncFd takes ownership of the listener.
    let registered = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) };
    let fd = match registered {
        Ok(fd) => fd,
        Err(_) => {
            finish(&server);
            return;
        }
    };
    let mut state = server.state();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = super::stopped(&mut state) => break,
            r = accept_one(&fd, &accept) => r,
        };
        match accepted {
            Ok(Some((stream, peer))) => serve(&server, stream, peer),
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                if !accept_failed(&server, &e).await {
                    break;
                }
            }
        }
    }
    drop(fd);
    finish(&server);
}

/// Serves a connection on the native threads.
pub fn serve_natively(server: Arc<Server>, socket: std::net::TcpStream, peer: Peer) {
    if let Ok(stream) = tokio::net::TcpStream::from_std(socket) {
        tokio::spawn(connection::run(server, stream, peer));
    }
}

/// One TCP connection (non-blocking), with its normalized addresses.
fn accept_tcp(listener: &std::net::TcpListener) -> io::Result<Option<(std::net::TcpStream, Peer)>> {
    let (stream, remote) = listener.accept()?;
    if stream.set_nonblocking(true).is_err() {
        return Ok(None);
    }
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok();
    let peer = Peer {
        local_address: local
            .map(|a| normalize_ip(a.ip()))
            .unwrap_or_default()
            .into(),
        local_port: local.map(|a| a.port()).unwrap_or(0),
        remote_address: normalize_ip(remote.ip()).into(),
        remote_port: remote.port(),
    };
    Ok(Some((stream, peer)))
}

/// One Unix socket connection (no addresses).
#[cfg(unix)]
fn accept_unix(
    listener: &std::os::unix::net::UnixListener,
) -> io::Result<Option<(tokio::net::UnixStream, Peer)>> {
    let (stream, _) = listener.accept()?;
    Ok(stream
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(stream))
        .ok()
        .map(|stream| (stream, Peer::default())))
}

fn finish(server: &Server) {
    server.listening.store(false, Ordering::SeqCst);
    server.report_if_closed();
}
