//! The one place where C return values become `io::Result`s.
//!
//! Backends wrap every `libc` call in [`cvt`] (or check it as documented next
//! to the call), so `-1` turns into [`io::Error::last_os_error`] the same way
//! everywhere.

use std::io;

/// A raw descriptor, as the platform numbers what a selector watches: a
/// file descriptor ([`std::os::fd::RawFd`], an `i32`) on Unix.
///
/// [`FileObject::fileno`](crate::FileObject::fileno) returns one, and the
/// key map, the ready list and every look-up are keyed by it.
#[cfg(unix)]
pub type RawFd = std::os::fd::RawFd;

/// A raw descriptor, as the platform numbers what a selector watches: a
/// Winsock socket handle ([`std::os::windows::io::RawSocket`], a `u64`) on
/// Windows, where `select` watches sockets only.
///
/// [`FileObject::fileno`](crate::FileObject::fileno) returns one, and the
/// key map, the ready list and every look-up are keyed by it.
#[cfg(windows)]
pub type RawFd = std::os::windows::io::RawSocket;

/// `false` for the values no descriptor can have: the negative numbers on
/// Unix, `INVALID_SOCKET` on Windows.
#[inline]
pub(crate) fn is_valid(fd: RawFd) -> bool {
    #[cfg(unix)]
    {
        fd >= 0
    }
    #[cfg(windows)]
    {
        fd != RawFd::MAX
    }
}

/// Integer return types whose `-1` means "failed, see `errno`".
pub trait IsMinusOne: Copy {
    /// `true` for the failure value.
    fn is_minus_one(self) -> bool;
}

macro_rules! impl_is_minus_one {
    ($($t:ty)*) => {$(
        impl IsMinusOne for $t {
            #[inline]
            fn is_minus_one(self) -> bool {
                self == -1
            }
        }
    )*};
}

impl_is_minus_one!(i8 i16 i32 i64 isize);

/// Turns a C-style return value into an `io::Result`: `-1` becomes the
/// thread's `errno` as an [`io::Error`], anything else is returned as is.
///
/// # Examples
///
/// ```
/// # #[cfg(unix)] { // Unix types; the conformance suite covers Windows
/// use selectors_core::backend::cvt;
///
/// // SAFETY: closing a descriptor that is not open is harmless and fails.
/// let err = cvt(unsafe { libc::close(-1) }).unwrap_err();
/// assert_eq!(err.raw_os_error(), Some(libc::EBADF));
/// # }
/// ```
#[inline]
pub fn cvt<T: IsMinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Checks that `fd` is an open descriptor (`fcntl(fd, F_GETFD)`), failing
/// with `EBADF` otherwise. Backends whose kernel interface accepts any number
/// (poll, select) call it at registration, so that every backend refuses a
/// closed descriptor the same way.
#[cfg(unix)]
pub fn check_open(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD only reads the descriptor flags; an invalid fd is
    // reported through the return value, never undefined behaviour.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) }).map(drop)
}

/// Checks that `fd` is an open socket (`getsockopt(SO_TYPE)`), failing with
/// `WSAENOTSOCK` for a closed handle or one that is not a socket (a file, a
/// pipe): Winsock's `select` takes sockets only, so the selector refuses the
/// others at registration rather than at the next `select`.
#[cfg(windows)]
pub fn check_open(fd: RawFd) -> io::Result<()> {
    let mut kind: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as i32;
    // SAFETY: `kind` and `len` are valid for writes and `len` is `kind`'s
    // size; a bad handle is reported through the return value.
    let ret = unsafe {
        winsock::getsockopt(
            fd as winsock::SOCKET,
            winsock::SOL_SOCKET,
            winsock::SO_TYPE,
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

/// The calling thread's last Winsock error (`WSAGetLastError`), for a
/// Winsock call that returned `SOCKET_ERROR`.
#[cfg(windows)]
#[must_use]
pub fn last_socket_error() -> io::Error {
    // SAFETY: reads a thread-local error code; no arguments.
    io::Error::from_raw_os_error(unsafe { winsock::WSAGetLastError() })
}

/// The Winsock items core calls, declared by hand (the card's packages have
/// no Windows bindings).
#[cfg(windows)]
mod winsock {
    /// `SOCKET`: `UINT_PTR`.
    #[allow(clippy::upper_case_acronyms)]
    pub type SOCKET = usize;
    pub const SOL_SOCKET: i32 = 0xffff;
    pub const SO_TYPE: i32 = 0x1008;

    #[link(name = "ws2_32")]
    extern "system" {
        pub fn getsockopt(
            s: SOCKET,
            level: i32,
            optname: i32,
            optval: *mut u8,
            optlen: *mut i32,
        ) -> i32;
        pub fn WSAGetLastError() -> i32;
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn check_open_tells_open_from_closed() {
        assert!(check_open(0).is_ok() || check_open(1).is_ok() || check_open(2).is_ok());
        let err = check_open(i32::MAX).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert_eq!(
            check_open(-5).unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
    }
}

#[cfg(all(test, windows))]
mod tests {
    use super::*;
    use std::os::windows::io::{AsRawHandle, AsRawSocket};

    #[test]
    fn check_open_takes_open_sockets_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = listener.as_raw_socket();
        check_open(socket).unwrap();
        drop(listener);
        let err = check_open(socket).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(10038), "WSAENOTSOCK: {err}");
        let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        let err = check_open(file.as_raw_handle() as RawFd).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(10038), "WSAENOTSOCK: {err}");
        assert!(!is_valid(RawFd::MAX) && is_valid(socket));
    }
}
