//! Windows: a TCP connection on the loopback for a socket pair (Windows
//! has none), counterparts of the raw-descriptor traits over socket
//! handles, Winsock's values (from windows-sys).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::windows::io::{AsRawSocket, FromRawSocket, IntoRawSocket};

use selectors_core::RawFd;
use windows_sys::Win32::Networking::WinSock;

/// The connected stream sockets the tests use: a TCP connection on the
/// loopback (Windows has no socket pair).
pub type Stream = TcpStream;

/// The owned descriptor type ([`std::os::windows::io::OwnedSocket`]).
pub type OwnedDescriptor = std::os::windows::io::OwnedSocket;

/// A value no descriptor has: `INVALID_SOCKET`.
pub const BAD_FD: RawFd = RawFd::MAX;

/// A valid number that no test opens (handles are multiples of 4).
pub const UNUSED_FD: RawFd = (i32::MAX - 2) as RawFd;

/// What registering a closed descriptor fails with: `WSAENOTSOCK`.
pub const CLOSED_ERRNO: i32 = WinSock::WSAENOTSOCK;

/// Never compared on Windows (no backend refuses files there).
pub(crate) const EPERM: i32 = 1;

/// Winsock's default `fd_set` capacity.
pub const FD_SETSIZE: usize = WinSock::FD_SETSIZE as usize;

/// Winsock's sets are arrays sized to the registrations: no cap.
pub(crate) const SELECT_FD_LIMIT: Option<RawFd> = None;

/// `std::os::fd::AsRawFd`'s counterpart: a socket's handle.
pub trait AsRawFd {
    fn as_raw_fd(&self) -> RawFd;
}

impl<T: AsRawSocket + ?Sized> AsRawFd for T {
    fn as_raw_fd(&self) -> RawFd {
        self.as_raw_socket()
    }
}

/// `std::os::fd::FromRawFd`'s counterpart.
pub trait FromRawFd {
    /// # Safety
    ///
    /// As [`FromRawSocket::from_raw_socket`].
    unsafe fn from_raw_fd(fd: RawFd) -> Self;
}

impl<T: FromRawSocket> FromRawFd for T {
    unsafe fn from_raw_fd(fd: RawFd) -> Self {
        // SAFETY: the caller upholds `from_raw_socket`'s contract.
        unsafe { T::from_raw_socket(fd) }
    }
}

/// `std::os::fd::IntoRawFd`'s counterpart.
pub trait IntoRawFd {
    fn into_raw_fd(self) -> RawFd;
}

impl<T: IntoRawSocket> IntoRawFd for T {
    fn into_raw_fd(self) -> RawFd {
        self.into_raw_socket()
    }
}

/// A non-blocking TCP socket with a connect to `addr` under way.
pub fn connect_nonblocking(addr: std::net::SocketAddrV4) -> std::io::Result<OwnedDescriptor> {
    use selectors_core::backend::last_socket_error;
    use windows_sys::Win32::Networking::WinSock::{
        connect, ioctlsocket, socket, AF_INET, FIONBIO, INVALID_SOCKET, IN_ADDR, IN_ADDR_0,
        SOCKADDR_IN, SOCK_STREAM, WSAEWOULDBLOCK,
    };

    // Winsock is started by the standard library's first socket.
    drop(std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?);
    // SAFETY: no pointer arguments; the result is checked.
    let raw = unsafe { socket(AF_INET.into(), SOCK_STREAM, 0) };
    if raw == INVALID_SOCKET {
        return Err(last_socket_error());
    }
    // SAFETY: `raw` was just created and is owned by nothing else.
    let socket = unsafe { OwnedDescriptor::from_raw_socket(raw as RawFd) };
    let mut on: u32 = 1;
    // SAFETY: `on` is a valid `u_long` for FIONBIO to read.
    if unsafe { ioctlsocket(raw, FIONBIO, &mut on) } != 0 {
        return Err(last_socket_error());
    }
    let sin = SOCKADDR_IN {
        sin_family: AF_INET,
        sin_port: addr.port().to_be(),
        sin_addr: IN_ADDR {
            S_un: IN_ADDR_0 {
                S_addr: u32::from(*addr.ip()).to_be(),
            },
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<SOCKADDR_IN>() as i32;
    // SAFETY: `sin` is a valid `sockaddr_in` of the length given.
    if unsafe { connect(raw, (&sin as *const SOCKADDR_IN).cast(), len) } == 0 {
        return Ok(socket);
    }
    let err = last_socket_error();
    if err.raw_os_error() == Some(WSAEWOULDBLOCK) {
        Ok(socket)
    } else {
        Err(err)
    }
}

/// A connected pair of TCP sockets on the IPv4 loopback (blocking).
pub fn try_socketpair() -> std::io::Result<(Stream, Stream)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let a = TcpStream::connect(listener.local_addr()?)?;
    let ours = a.local_addr()?;
    loop {
        let (b, peer) = listener.accept()?;
        if peer == ours {
            return Ok((a, b));
        }
    }
}

/// Windows has no open-file limit to read: a budget of 600 pairs, far above
/// Winsock's default `FD_SETSIZE` of 64 (the size of the C `fd_set`, which
/// the select backend does not use).
pub fn fd_budget() -> (usize, usize) {
    (1600, 0)
}
