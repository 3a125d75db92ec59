//! Listening sockets: one with std, or several on the same address with
//! `SO_REUSEPORT`, among which the kernel spreads incoming connections.

use std::io;
use std::net::{SocketAddr, TcpListener};

/// The socket option that makes the kernel spread connections among the
/// listeners of one address, where the OS has one: `SO_REUSEPORT` on Linux
/// and DragonFly, `SO_REUSEPORT_LB` on FreeBSD. (macOS, NetBSD and OpenBSD
/// accept `SO_REUSEPORT` but hand every connection to one listener; Windows
/// has no such option: its `SO_REUSEADDR` lets a second socket take the
/// port over, not share it.)
#[cfg(any(target_os = "linux", target_os = "android", target_os = "dragonfly"))]
mod spread {
    pub use nix::sys::socket::sockopt::ReusePort as SpreadOption;
    pub const NAME: Option<&str> = Some("SO_REUSEPORT");
}
#[cfg(target_os = "freebsd")]
mod spread {
    pub use nix::sys::socket::sockopt::ReusePortLb as SpreadOption;
    pub const NAME: Option<&str> = Some("SO_REUSEPORT_LB");
}
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd"
)))]
mod spread {
    pub const NAME: Option<&str> = None;
}

/// The name of the socket option [`bind`] spreads connections with, or
/// `None` where the OS has none (then only one listener can be bound).
pub fn spread_option() -> Option<&'static str> {
    spread::NAME
}

/// Binds `count` listeners to `addr`.
///
/// One is bound with [`TcpListener::bind`]. Several are bound with
/// [`spread_option`] set, the first to `addr` and the others to the address
/// it got (so port 0 means one free port for all of them).
///
/// # Errors
///
/// [`io::ErrorKind::Unsupported`] for several listeners on an OS without
/// [`spread_option`], or the kernel's error (the address is in use, …).
pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    if count <= 1 {
        return Ok(vec![TcpListener::bind(addr)?]);
    }
    let first = bind_spread(addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(bind_spread(addr)?);
    }
    Ok(listeners)
}

/// A listener on `addr` with the [`spread`] option set before `bind`, which
/// std has no way to do: the socket is made, set up and bound with nix, then
/// handed to std.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd"
))]
fn bind_spread(addr: SocketAddr) -> io::Result<TcpListener> {
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{
        bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
        SockaddrStorage,
    };

    /// The length of the queue of connections not yet accepted: 128, what
    /// [`TcpListener::bind`] asks for, so that one listener and several
    /// behave alike.
    const BACKLOG: i32 = 128;

    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let socket = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    // `SO_REUSEADDR` too, as std sets it: a restart does not wait for the
    // old connections' TIME_WAIT.
    setsockopt(&socket, sockopt::ReuseAddr, &true)?;
    setsockopt(&socket, spread::SpreadOption, &true)?;
    // nix's `bind` takes a raw descriptor (it has no `AsFd` form).
    bind(socket.as_raw_fd(), &SockaddrStorage::from(addr))?;
    listen(&socket, Backlog::new(BACKLOG)?)?;
    Ok(TcpListener::from(socket))
}

/// Where the OS has no [`spread`] option, several listeners cannot share
/// one address usefully.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd"
)))]
fn bind_spread(_addr: SocketAddr) -> io::Result<TcpListener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "this OS cannot spread connections among listeners (no SO_REUSEPORT load balancing)",
    ))
}
