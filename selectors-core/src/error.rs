//! The error type every selector returns, with the same variant on every backend.

use crate::RawFd;
use std::fmt;
use std::io;

/// What went wrong in a selector call.
///
/// Every backend returns the same variant for the same mistake, whatever its
/// kernel says (or does not say) about it; only [`Error::Os`] carries the
/// kernel's own answer. A failed call never leaves a half-made registration
/// behind: the key map and the kernel's interest set are as they were before.
///
/// `Error` converts into [`std::io::Error`] (so `?` works in functions that
/// return `io::Result`), with these kinds:
///
/// | variant | [`io::ErrorKind`] | Python raises |
/// |---|---|---|
/// | [`InvalidEvents`](Error::InvalidEvents) | `InvalidInput` | `ValueError` |
/// | [`InvalidFd`](Error::InvalidFd) | `InvalidInput` | `ValueError` |
/// | [`AlreadyRegistered`](Error::AlreadyRegistered) | `AlreadyExists` | `KeyError` |
/// | [`NotRegistered`](Error::NotRegistered) | `NotFound` | `KeyError` |
/// | [`FdOutOfRange`](Error::FdOutOfRange) | `InvalidInput` | `ValueError` |
/// | [`Closed`](Error::Closed) | `Other` | `RuntimeError` / varies |
/// | [`Busy`](Error::Busy) | `Other` | (no equivalent) |
/// | [`FdChanged`](Error::FdChanged) | `InvalidData` | (no equivalent) |
/// | [`Os`](Error::Os) | the OS error's own | `OSError` |
///
/// # Examples
///
/// ```
/// use selectors::Error;
///
/// let err: std::io::Error = Error::NotRegistered(7).into();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// assert_eq!(err.to_string(), "file descriptor 7 is not registered");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The event mask was empty.
    InvalidEvents,
    /// The file object's descriptor is no descriptor: negative on Unix,
    /// `INVALID_SOCKET` on Windows.
    InvalidFd(RawFd),
    /// The descriptor is already registered (through this or another object).
    AlreadyRegistered(RawFd),
    /// The descriptor is not registered.
    NotRegistered(RawFd),
    /// The backend cannot watch a descriptor this large (`select(2)` where the
    /// platform caps it at `FD_SETSIZE`).
    FdOutOfRange {
        /// The descriptor that was refused.
        fd: RawFd,
        /// The first descriptor value the backend cannot take.
        limit: RawFd,
    },
    /// The selector was closed with [`Selector::close`](crate::Selector::close).
    Closed,
    /// The descriptor's key is lent to a handler that
    /// [`Selector::dispatch`](crate::Selector::dispatch) is running: it is
    /// registered, but reached through the handler's
    /// [`LentKey`](crate::LentKey) until the handler returns.
    Busy(RawFd),
    /// A file object lent mutably changed its descriptor (it was replaced
    /// while registered). The registration was withdrawn: the kernel no
    /// longer watches `old`, and the key was dropped.
    FdChanged {
        /// The descriptor the registration was made for.
        old: RawFd,
        /// What the file object's `fileno()` returned afterwards.
        new: RawFd,
    },
    /// The kernel refused the operation (for example `EPERM` from epoll for a
    /// regular file, or `EBADF` for a closed descriptor).
    Os(io::Error),
}

/// `Result` with [`Error`] as its default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The [`io::ErrorKind`] this error converts to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::InvalidEvents | Error::InvalidFd(_) | Error::FdOutOfRange { .. } => {
                io::ErrorKind::InvalidInput
            }
            Error::AlreadyRegistered(_) => io::ErrorKind::AlreadyExists,
            Error::NotRegistered(_) => io::ErrorKind::NotFound,
            Error::Closed | Error::Busy(_) => io::ErrorKind::Other,
            Error::FdChanged { .. } => io::ErrorKind::InvalidData,
            Error::Os(err) => err.kind(),
        }
    }

    /// The OS error code, for [`Error::Os`] only.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Os(err) => err.raw_os_error(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidEvents => f.write_str("invalid events: the mask is empty"),
            Error::InvalidFd(fd) => write!(f, "invalid file descriptor {fd}"),
            Error::AlreadyRegistered(fd) => write!(f, "file descriptor {fd} is already registered"),
            Error::NotRegistered(fd) => write!(f, "file descriptor {fd} is not registered"),
            Error::FdOutOfRange { fd, limit } => write!(
                f,
                "file descriptor {fd} is out of range for this selector (limit {limit})"
            ),
            Error::Closed => f.write_str("the selector is closed"),
            Error::Busy(fd) => write!(
                f,
                "file descriptor {fd} is lent to the running handler: use its key"
            ),
            Error::FdChanged { old, new } => write!(
                f,
                "the file object registered as descriptor {old} changed to {new}: \
                 its registration was withdrawn"
            ),
            Error::Os(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os(err) => err.source(),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::Os(err)
    }
}

impl From<Error> for io::Error {
    /// An [`Error::Os`] becomes the OS error itself; every other variant
    /// becomes an `io::Error` of the kind in the table above, whose
    /// [`get_ref`](io::Error::get_ref) downcasts back to [`Error`].
    fn from(err: Error) -> io::Error {
        match err {
            Error::Os(err) => err,
            other => io::Error::new(other.kind(), other),
        }
    }
}

/// A failed [`Selector::try_register`](crate::Selector::try_register): the
/// error, with the file object and the data handed back.
///
/// A server can so answer "busy" on a connection the selector refused before
/// closing it. It converts into [`Error`] and [`io::Error`] (dropping the
/// object), so `?` works as with [`Selector::register`](crate::Selector::register).
pub struct RegisterError<F, T> {
    error: Error,
    fileobj: F,
    data: T,
}

impl<F, T> RegisterError<F, T> {
    pub(crate) fn new(error: Error, fileobj: F, data: T) -> Self {
        RegisterError {
            error,
            fileobj,
            data,
        }
    }

    /// Why the registration was refused.
    #[must_use]
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The error, dropping the file object and the data.
    #[must_use]
    pub fn into_error(self) -> Error {
        self.error
    }

    /// The error, the file object and the data.
    #[must_use]
    pub fn into_parts(self) -> (Error, F, T) {
        (self.error, self.fileobj, self.data)
    }
}

impl<F, T> fmt::Debug for RegisterError<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<F, T> fmt::Display for RegisterError<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<F, T> std::error::Error for RegisterError<F, T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<F, T> From<RegisterError<F, T>> for Error {
    fn from(err: RegisterError<F, T>) -> Error {
        err.error
    }
}

impl<F, T> From<RegisterError<F, T>> for io::Error {
    fn from(err: RegisterError<F, T>) -> io::Error {
        err.error.into()
    }
}

/// A failed [`Selector::with_fileobj_mut`](crate::Selector::with_fileobj_mut):
/// the error, with what the closure returned if it ran.
///
/// The closure runs only if the key could be lent; it may still fail
/// afterwards, with [`Error::FdChanged`], when the closure replaced the file
/// object by one of another descriptor. What it returned is then handed
/// back here rather than dropped: `|f, _| std::mem::replace(f, new)` gets
/// the old object back. It converts into [`Error`] and [`io::Error`]
/// (dropping the value), so `?` works as with the other calls.
pub struct LendError<R> {
    error: Error,
    value: Option<R>,
}

impl<R> LendError<R> {
    /// The closure did not run.
    pub(crate) fn new(error: Error) -> Self {
        LendError { error, value: None }
    }

    /// The closure ran and returned `value`.
    pub(crate) fn with_value(error: Error, value: R) -> Self {
        LendError {
            error,
            value: Some(value),
        }
    }

    /// The error.
    #[must_use]
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The error, dropping the value.
    #[must_use]
    pub fn into_error(self) -> Error {
        self.error
    }

    /// What the closure returned, if it ran.
    #[must_use]
    pub fn into_value(self) -> Option<R> {
        self.value
    }

    /// The error and what the closure returned, if it ran.
    #[must_use]
    pub fn into_parts(self) -> (Error, Option<R>) {
        (self.error, self.value)
    }
}

impl<R> fmt::Debug for LendError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LendError")
            .field("error", &self.error)
            .field("ran", &self.value.is_some())
            .finish_non_exhaustive()
    }
}

impl<R> fmt::Display for LendError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<R> std::error::Error for LendError<R> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<R> From<LendError<R>> for Error {
    fn from(err: LendError<R>) -> Error {
        err.error
    }
}

impl<R> From<LendError<R>> for io::Error {
    fn from(err: LendError<R>) -> io::Error {
        err.error.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_conversion_keeps_kind_and_variant() {
        let cases = [
            (Error::InvalidEvents, io::ErrorKind::InvalidInput),
            (Error::InvalidFd(7), io::ErrorKind::InvalidInput),
            (Error::AlreadyRegistered(3), io::ErrorKind::AlreadyExists),
            (Error::NotRegistered(3), io::ErrorKind::NotFound),
            (
                Error::FdOutOfRange {
                    fd: 5000,
                    limit: 1024,
                },
                io::ErrorKind::InvalidInput,
            ),
            (Error::Closed, io::ErrorKind::Other),
            (Error::Busy(4), io::ErrorKind::Other),
            (
                Error::FdChanged { old: 4, new: 9 },
                io::ErrorKind::InvalidData,
            ),
        ];
        for (err, kind) in cases {
            let text = err.to_string();
            let io: io::Error = err.into();
            assert_eq!(io.kind(), kind);
            let back = io.get_ref().and_then(|e| e.downcast_ref::<Error>());
            assert_eq!(back.map(ToString::to_string), Some(text));
        }
    }

    #[test]
    fn os_errors_pass_through() {
        let err = Error::from(io::Error::from_raw_os_error(libc::EBADF));
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        let io: io::Error = err.into();
        assert_eq!(io.raw_os_error(), Some(libc::EBADF));
    }
}
