//! `SelectSelector`: Python's `selectors.SelectSelector`, on
//! [select(2)](https://man7.org/linux/man-pages/man2/select.2.html) on Unix
//! and Winsock's
//! [`select`](https://learn.microsoft.com/en-us/windows/win32/api/winsock2/nf-winsock2-select)
//! on Windows, where it is the [`DefaultSelector`] of the `selectors` facade,
//! as in Python.
//!
//! # Unix
//!
//! The read and write sets are growable bitmaps (`Vec`s of `fd_set` words)
//! kept up to date by `register`/`modify`/`unregister`; `select` copies the
//! words in use and makes one `select(2)` with `nfds = max fd + 1`.
//!
//! `FD_SETSIZE` (1024) is a limit of the C `fd_set` type, not of every kernel.
//! Linux, Android and FreeBSD read as many words as `nfds` needs, so there
//! this backend watches any descriptor the process can open (tested with
//! ~19,000). Elsewhere it refuses a descriptor `>= FD_SETSIZE` at
//! registration with [`Error::FdOutOfRange`], instead of failing later in
//! `select` as CPython does.
//!
//! Timeouts have microsecond precision (rounded up). `select(2)` fails with
//! `EBADF` if a registered descriptor is closed before it is unregistered:
//! unregister first, as with every backend.
//!
//! # Windows
//!
//! Winsock's `select` watches sockets only: a handle that is not a socket
//! (or a closed one) is refused at registration with `WSAENOTSOCK` (Python
//! accepts it there and fails in `select`). Winsock's `fd_set` is a count
//! and an array of sockets, and `select` reads as many as the count says:
//! the arrays are sized to the registrations, so there is no 64-socket
//! ceiling. A failed non-blocking connect is reported by Winsock as an
//! exceptional condition; as in Python, it is write readiness (the sockets
//! registered for writing are watched for both). With nothing registered,
//! `select` sleeps for the timeout (Winsock refuses three empty sets).
//! Timeouts have microsecond precision (rounded up).
//!
//! # Both
//!
//! This crate is all a user of the select backend needs: it re-exports
//! the API of `selectors-core`.
//!
//! # Examples
//!
//! ```
//! # #[cfg(unix)] {
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use selectors_select::{SelectSelector, Selector, EVENT_READ, EVENT_WRITE};
//!
//! let (a, b) = UnixStream::pair()?;
//! let mut sel = SelectSelector::new()?;
//! sel.register(a.as_raw_fd(), EVENT_READ, "reader")?;
//! sel.register(b.as_raw_fd(), EVENT_WRITE, "writer")?;
//! let ready: Vec<_> = sel.select(Some(Duration::ZERO))?.map(|(k, ev)| (*k.data(), ev)).collect();
//! assert_eq!(ready, [("writer", EVENT_WRITE)]);
//! # }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # References
//!
//! [select(2)](https://man7.org/linux/man-pages/man2/select.2.html) (Linux:
//! "no limit on nfds other than RLIMIT_NOFILE" in practice, see `core_sys_select`),
//! [select(2)](https://man.freebsd.org/cgi/man.cgi?query=select&sektion=2) (FreeBSD),
//! [Winsock `select`](https://learn.microsoft.com/en-us/windows/win32/api/winsock2/nf-winsock2-select),
//! CPython's `Lib/selectors.py` (`SelectSelector`).
//!
//! [`DefaultSelector`]: https://docs.rs/selectors-rs/latest/selectors/type.DefaultSelector.html
#![cfg(any(unix, windows))]

pub use selectors_core::api::*;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::Select;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::Select;

/// Python's `SelectSelector`: a [`Selector`] on `select`, holding file
/// objects `F` with data `T`.
pub type SelectSelector<F = RawFd, T = ()> = SelectorImpl<Select, F, T>;
