//! Windows: Winsock socket handles, the only handles `select` watches;
//! `getsockopt` for the open check; a loopback socket pair for wake-ups.

use std::collections::HashMap;
use std::io;
use std::net::TcpStream;
use std::os::windows::io::{AsRawSocket, AsSocket, BorrowedSocket, OwnedSocket};

use windows_sys::Win32::Networking::WinSock;

use crate::backend::WakeSignal;
use crate::Fd;

/// A raw descriptor, as the platform numbers what a selector watches: a
/// Winsock socket handle ([`std::os::windows::io::RawSocket`], a `u64`) on
/// Windows, where `select` watches sockets only.
///
/// [`FileObject::fileno`](crate::FileObject::fileno) returns one, and the
/// key map, the ready list and every look-up are keyed by it.
pub type RawFd = std::os::windows::io::RawSocket;

/// `false` for the values no descriptor can have: `INVALID_SOCKET`.
#[inline]
pub(crate) fn is_valid(fd: RawFd) -> bool {
    fd != RawFd::MAX
}

/// Checks that `fd` is an open socket (`getsockopt(SO_TYPE)`), failing with
/// `WSAENOTSOCK` for a closed handle or one that is not a socket (a file, a
/// pipe): Winsock's `select` takes sockets only, so the selector refuses the
/// others at registration rather than at the next `select`.
pub fn check_open(fd: RawFd) -> io::Result<()> {
    let mut kind: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as i32;
    // SAFETY: `kind` and `len` are valid for writes and `len` is `kind`'s
    // size; a bad handle is reported through the return value.
    let ret = unsafe {
        WinSock::getsockopt(
            fd as WinSock::SOCKET,
            WinSock::SOL_SOCKET,
            WinSock::SO_TYPE,
            (&mut kind as *mut i32).cast(),
            &mut len,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(last_socket_error())
    }
}

/// The calling thread's last Winsock error, for a Winsock call that returned
/// `SOCKET_ERROR`: [`io::Error::last_os_error`], which reads the same value
/// as `WSAGetLastError` (on Win32, "`WSAGetLastError()` will invoke
/// `GetLastError()`", says the Windows Sockets 1.1 specification; mio
/// reads the errors of its Winsock calls so too).
#[must_use]
#[inline]
pub fn last_socket_error() -> io::Error {
    io::Error::last_os_error()
}

// ------------------------------------------------------------ the key map

/// Descriptor → slot: a hash map, since socket handles are opaque 64-bit
/// values that a table cannot be indexed by.
#[derive(Default)]
pub(crate) struct SlotIndex {
    by_fd: HashMap<RawFd, u32>,
}

impl SlotIndex {
    /// `fd`'s slot, if it has one.
    #[inline]
    pub(crate) fn get(&self, fd: RawFd) -> Option<u32> {
        self.by_fd.get(&fd).copied()
    }

    #[inline]
    pub(crate) fn set(&mut self, fd: RawFd, slot: u32) {
        self.by_fd.insert(fd, slot);
    }

    #[inline]
    pub(crate) fn clear(&mut self, fd: RawFd) {
        self.by_fd.remove(&fd);
    }
}

/// Numbers the key map's tests look up without registering them:
/// `INVALID_SOCKET`.
#[cfg(test)]
pub(crate) const UNREGISTERED: &[RawFd] = &[RawFd::MAX];

// ----------------------------------------------------------- file objects

/// The I/O-safe borrow of a socket.
pub(crate) use std::os::windows::io::AsSocket as AsDescriptor;

/// The socket handle of an I/O-safe value.
#[inline]
pub(crate) fn raw_of(value: &impl AsSocket) -> RawFd {
    value.as_socket().as_raw_socket()
}

io_safe_file_objects!(
    BorrowedSocket<'_>,
    OwnedSocket,
    std::net::TcpStream,
    std::net::TcpListener,
    std::net::UdpSocket,
);

impl<T: AsSocket> AsSocket for Fd<T> {
    #[inline]
    fn as_socket(&self) -> BorrowedSocket<'_> {
        self.0.as_socket()
    }
}

// ---------------------------------------------------- the wake-up channel

/// The receiving socket of a loopback pair.
#[derive(Debug)]
pub(crate) struct WakeReceiver {
    socket: TcpStream,
}

impl WakeReceiver {
    pub(crate) fn fd(&self) -> RawFd {
        self.socket.as_raw_socket()
    }

    /// Reads the receiving socket until it would block.
    pub(crate) fn drain(&self) {
        use std::io::Read;
        let mut buf = [0u8; 64];
        // Any error (WouldBlock included) or end of stream means nothing is
        // left to drain.
        while matches!((&self.socket).read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// The sending socket of a loopback pair, signalled by sending one byte to
/// its peer.
#[derive(Debug)]
struct SocketSignal {
    sender: TcpStream,
}

impl WakeSignal for SocketSignal {
    fn signal(&self) -> io::Result<()> {
        use std::io::Write;
        match (&self.sender).write(&[1]) {
            Ok(_) => Ok(()),
            // Send buffer full: the receiver has bytes pending, which is all
            // a wake asks for.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// A connected pair of loopback TCP sockets, non-blocking and not
/// inherited.
pub(crate) fn wake_channel() -> io::Result<(WakeReceiver, Box<dyn WakeSignal>)> {
    let (receiver, sender) = loopback_pair()?;
    Ok((
        WakeReceiver { socket: receiver },
        Box::new(SocketSignal { sender }),
    ))
}

/// A connected pair of non-blocking TCP sockets on the IPv4 loopback:
/// `(receiver, sender)`, the sender without Nagle's delay. Windows has no
/// pipe that `select` can watch; this is what asyncio uses there.
fn loopback_pair() -> io::Result<(TcpStream, TcpStream)> {
    use std::net::{Ipv4Addr, TcpListener};

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let sender = TcpStream::connect(listener.local_addr()?)?;
    let ours = sender.local_addr()?;
    // Another local program may connect to the listener meanwhile: accept
    // until the connection is ours (it is queued already, so this ends).
    let receiver = loop {
        let (stream, peer) = listener.accept()?;
        if peer == ours {
            break stream;
        }
    };
    sender.set_nodelay(true)?;
    sender.set_nonblocking(true)?;
    receiver.set_nonblocking(true)?;
    Ok((receiver, sender))
}

// ----------------------------------------------------------- for backends

/// What only the Windows backend uses; [`crate::backend`] re-exports it.
pub(crate) mod backend_items {
    pub use super::last_socket_error;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::windows::io::AsRawHandle;

    #[test]
    fn check_open_takes_open_sockets_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = listener.as_raw_socket();
        check_open(socket).unwrap();
        drop(listener);
        let err = check_open(socket).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(WinSock::WSAENOTSOCK), "{err}");
        let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        let err = check_open(file.as_raw_handle() as RawFd).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(WinSock::WSAENOTSOCK), "{err}");
        assert!(!is_valid(RawFd::MAX) && is_valid(socket));
    }
}
