//! Listening sockets: one with std, or several on the same address with
//! `SO_REUSEPORT`, among which the kernel spreads incoming connections.

use std::ffi::c_int;
use std::io;
use std::net::{SocketAddr, TcpListener};

/// The socket option that makes the kernel spread connections among the
/// listeners of one address, where the OS has one: `SO_REUSEPORT` on Linux
/// and DragonFly, `SO_REUSEPORT_LB` on FreeBSD. (macOS, NetBSD and OpenBSD
/// accept `SO_REUSEPORT` but hand every connection to one listener; Windows
/// has no such option: its `SO_REUSEADDR` lets a second socket take the
/// port over, not share it.)
#[cfg(any(target_os = "linux", target_os = "android", target_os = "dragonfly"))]
const SPREAD_OPTION: Option<(c_int, &str)> = Some((libc::SO_REUSEPORT, "SO_REUSEPORT"));
#[cfg(target_os = "freebsd")]
const SPREAD_OPTION: Option<(c_int, &str)> = Some((libc::SO_REUSEPORT_LB, "SO_REUSEPORT_LB"));
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd"
)))]
const SPREAD_OPTION: Option<(c_int, &str)> = None;

/// The length of the queue of connections not yet accepted: 128, what
/// [`TcpListener::bind`] asks for, so that one listener and several behave
/// alike.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd"
))]
const BACKLOG: c_int = 128;

/// The name of the socket option [`bind`] spreads connections with, or
/// `None` where the OS has none (then only one listener can be bound).
pub fn spread_option() -> Option<&'static str> {
    SPREAD_OPTION.map(|(_, name)| name)
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

/// A listener on `addr` with [`SPREAD_OPTION`] set before `bind`, which std
/// has no way to do: the socket is made, set up and bound with libc, then
/// handed to std.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd"
))]
fn bind_spread(addr: SocketAddr) -> io::Result<TcpListener> {
    use std::mem;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    let Some((option, _)) = SPREAD_OPTION else {
        unreachable!("this OS has a spread option");
    };
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain system call with constant arguments; the result is
    // checked before use.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a socket just created and owned by nobody else, so
    // `OwnedFd` may take it; from here on any early return closes it.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let fd = socket.as_raw_fd();

    // `SO_REUSEADDR` too, as std sets it: a restart does not wait for the
    // old connections' TIME_WAIT.
    for name in [libc::SO_REUSEADDR, option] {
        let on: c_int = 1;
        // SAFETY: the pointer and length describe `on`, which outlives the
        // call; the kernel only reads it.
        let ret = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&on as *const c_int).cast(),
                mem::size_of::<c_int>() as libc::socklen_t,
            )
        };
        if ret != 0 {
            return Err(io::Error::last_os_error());
        }
    }

    // SAFETY: `sockaddr_storage` is plain old data, all-zero is valid; it is
    // large enough and aligned for both `sockaddr_in` and `sockaddr_in6`.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: see `storage`; nothing else refers to it.
            let sin = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            #[cfg(any(target_os = "dragonfly", target_os = "freebsd"))]
            {
                sin.sin_len = mem::size_of::<libc::sockaddr_in>() as u8;
            }
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: see `storage`; nothing else refers to it.
            let sin6 = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_scope_id = v6.scope_id();
            #[cfg(any(target_os = "dragonfly", target_os = "freebsd"))]
            {
                sin6.sin6_len = mem::size_of::<libc::sockaddr_in6>() as u8;
            }
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: `storage` holds a valid address of `len` bytes for `domain`,
    // and outlives the call.
    let ret = unsafe {
        libc::bind(
            fd,
            (&storage as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain system call on a socket we own; the result is checked.
    if unsafe { libc::listen(fd, BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(socket))
}

/// Where the OS has no [`SPREAD_OPTION`], several listeners cannot share
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
