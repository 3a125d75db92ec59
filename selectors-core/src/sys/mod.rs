//! Everything that differs between Unix and Windows, in one place.
//!
//! `unix.rs` and `windows.rs` provide the same items, and the rest of the
//! crate is written once against them, with no `cfg` of its own. Each
//! platform provides:
//!
//! - `RawFd`: how the platform numbers what a selector watches (a file
//!   descriptor on Unix, a Winsock socket handle on Windows);
//! - `is_valid`: `false` for the values no descriptor can have;
//! - `check_open`: whether a number is an open descriptor (Windows: an open
//!   socket), for the backends whose kernel takes any number;
//! - `SlotIndex`: the key map's descriptor → slot index (a table indexed by
//!   descriptor number on Unix, a hash map on Windows);
//! - `WakeReceiver` and `wake_channel`: the wake-up channel built on a
//!   descriptor (an eventfd or a pipe on Unix, a loopback socket pair on
//!   Windows), behind [`crate::backend::WakeReceiver`] and
//!   [`crate::backend::wake_channel`];
//! - `AsDescriptor` and `raw_of`: the I/O-safe borrow trait (`AsFd`,
//!   `AsSocket`) and the raw descriptor of a value that has it; the
//!   [`FileObject`](crate::FileObject) implementations of the standard
//!   library's I/O-safe types (with `io_safe_file_objects!`), and the
//!   borrow trait for [`Fd`](crate::Fd);
//! - `backend_items`: what only that platform's backends use, which
//!   [`crate::backend`] re-exports (`to_timespec`, `to_timeval`,
//!   `pollfd_events`, `pollfd_interest` on Unix; `last_socket_error` on
//!   Windows);
//! - for the unit tests, `UNREGISTERED`: numbers the key map's tests look up
//!   without registering them.
//!
//! Unix also gives every selector over a kernel object `AsFd` and `AsRawFd`
//! (Python's `fileno()`).
//!
//! What is the same on both is here: [`cvt`], the one place where C return
//! values become `io::Result`s. Backends wrap every `libc` call in it (or
//! check it as documented next to the call), so `-1` turns into
//! [`io::Error::last_os_error`] the same way everywhere.

use std::io;

/// Implements [`FileObject`](crate::FileObject) for I/O-safe types (which
/// guarantee an open descriptor for as long as they live): the descriptor
/// through the platform's borrow trait (`raw_of`), no closed-descriptor
/// check. Each platform lists its types.
macro_rules! io_safe_file_objects {
    ($($ty:ty),* $(,)?) => {
        $(
            impl crate::FileObject for $ty {
                #[inline]
                fn fileno(&self) -> crate::RawFd {
                    crate::sys::raw_of(self)
                }

                #[inline]
                fn io_safe(&self) -> bool {
                    true
                }
            }
        )*
    };
}

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

#[cfg(test)]
pub(crate) use imp::UNREGISTERED;
pub(crate) use imp::{
    backend_items, is_valid, raw_of, wake_channel, AsDescriptor, SlotIndex, WakeReceiver,
};
pub use imp::{check_open, RawFd};

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
