//! The one place where C return values become `io::Result`s.
//!
//! Backends wrap every `libc` call in [`cvt`] (or check it as documented next
//! to the call), so `-1` turns into [`io::Error::last_os_error`] the same way
//! everywhere.

use std::io;
use std::os::fd::RawFd;

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
/// use selectors_core::backend::cvt;
///
/// // SAFETY: closing a descriptor that is not open is harmless and fails.
/// let err = cvt(unsafe { libc::close(-1) }).unwrap_err();
/// assert_eq!(err.raw_os_error(), Some(libc::EBADF));
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
pub fn check_open(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD only reads the descriptor flags; an invalid fd is
    // reported through the return value, never undefined behaviour.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) }).map(drop)
}

#[cfg(test)]
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
