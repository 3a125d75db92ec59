//! Python's [`selectors`](https://docs.python.org/3/library/selectors.html)
//! module for Rust: high-level, level-triggered I/O readiness multiplexing.
//!
//! Register file objects with the events to watch ([`EVENT_READ`],
//! [`EVENT_WRITE`]) and any data; [`select`](Selector::select) waits until
//! some are ready and returns their keys. Every backend Python has is here,
//! behind one [`Selector`] trait, and [`DefaultSelector`] is the most
//! efficient one the platform has:
//!
//! | OS | `DefaultSelector` | also available |
//! |---|---|---|
//! | Linux, Android | [`EpollSelector`] | [`PollSelector`], [`SelectSelector`] |
//! | macOS, iOS, FreeBSD, NetBSD, OpenBSD, DragonFly | `KqueueSelector` | [`PollSelector`], [`SelectSelector`] |
//! | illumos, Solaris | `DevpollSelector` | [`PollSelector`], [`SelectSelector`] |
//! | other Unix | [`PollSelector`] | [`SelectSelector`] |
//!
//! The choice follows Python's order (kqueue, epoll, devpoll, poll, select)
//! and is made at compile time. For testing, `--cfg selectors_force_poll` or
//! `--cfg selectors_force_select` in `RUSTFLAGS` makes `DefaultSelector` the
//! portable backend on any platform.
//!
//! # Examples
//!
//! ```
//! use std::io::Write;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use selectors::{DefaultSelector, Selector, EVENT_READ, EVENT_WRITE};
//!
//! let (mut a, b) = UnixStream::pair()?;
//! let mut sel = DefaultSelector::new()?;
//! // The selector may own the socket: it stays open while registered.
//! let fd = sel.register(b, EVENT_READ, "peer")?.fd();
//!
//! // Nothing to read yet: a zero timeout polls.
//! assert_eq!(sel.select(Some(Duration::ZERO))?.count(), 0);
//!
//! a.write_all(b"hello")?;
//! for (key, events) in sel.select(None)? {
//!     assert_eq!((key.fd(), *key.data(), events), (fd, "peer", EVENT_READ));
//! }
//!
//! // Changing only the data makes no system call; changing events does.
//! sel.modify(fd, EVENT_READ | EVENT_WRITE, "peer, writable too")?;
//! assert_eq!(sel.get_key(fd)?.events(), EVENT_READ | EVENT_WRITE);
//! let b: UnixStream = sel.unregister(fd)?.into_parts().0;
//! # drop(b);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Dispatching to handlers
//!
//! Python's idiom keeps a callback in each key's data and calls it for each
//! ready key; a callback may register, modify or unregister other file
//! objects (an accept handler registers the new connection). In Rust the data
//! is a handler value (an enum, or a boxed closure), and the ready list is
//! collected by [`select_into`](Selector::select_into) into a `Vec` the caller
//! owns, so the selector is free to change while the list is walked:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::os::fd::{AsRawFd, RawFd};
//! use selectors::{DefaultSelector, Events, FileObject, Selector, EVENT_READ};
//!
//! enum Handler { Accept(TcpListener), Echo(TcpStream) }
//!
//! impl FileObject for Handler {
//!     fn fileno(&self) -> RawFd {
//!         match self { Handler::Accept(l) => l.as_raw_fd(), Handler::Echo(s) => s.as_raw_fd() }
//!     }
//! }
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut client = TcpStream::connect(listener.local_addr()?)?;
//! let mut sel = DefaultSelector::<Handler, u64>::new()?;
//! sel.register(Handler::Accept(listener), EVENT_READ, 0)?;
//!
//! client.write_all(b"hi")?;
//! let mut ready: Vec<(RawFd, Events)> = Vec::new();
//! let mut echoed = 0;
//! while echoed < 2 {
//!     sel.select_into(&mut ready, None)?;
//!     for &(fd, _events) in &ready {
//!         // A handler earlier in this list may have unregistered `fd`.
//!         let Ok(key) = sel.get_key_mut(fd) else { continue };
//!         let (handler, bytes) = key.parts_mut();
//!         match handler {
//!             Handler::Accept(listener) => {
//!                 let (conn, _) = listener.accept()?;
//!                 sel.register(Handler::Echo(conn), EVENT_READ, 0)?;
//!             }
//!             Handler::Echo(conn) => {
//!                 let mut conn: &TcpStream = conn;
//!                 let mut buf = [0; 512];
//!                 let n = conn.read(&mut buf)?;
//!                 conn.write_all(&buf[..n])?;
//!                 *bytes += n as u64;
//!                 echoed += n;
//!                 if n == 0 {
//!                     sel.unregister(fd)?; // dropping the key closes the socket
//!                 }
//!             }
//!         }
//!     }
//! }
//! let mut back = [0; 2];
//! client.read_exact(&mut back)?;
//! assert_eq!(&back, b"hi");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! `examples/echo_server.rs` is the complete version: per-connection output
//! buffers, WRITE interest while they drain, and clean handling of clients
//! that disconnect, reset or half-close.
//!
//! # Choosing a backend at run time
//!
//! ```
//! use std::os::fd::RawFd;
//! use selectors::{PollSelector, SelectSelector, Selector};
//!
//! let small = true;
//! let sel: Box<dyn Selector<RawFd, ()>> = if small {
//!     Box::new(SelectSelector::new()?)
//! } else {
//!     Box::new(PollSelector::new()?)
//! };
//! assert_eq!(sel.backend(), "select");
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

pub use selectors_core::*;

#[cfg(unix)]
pub use selectors_poll::{Poll, PollSelector};
#[cfg(unix)]
pub use selectors_select::{Select, SelectSelector};

#[cfg(any(target_os = "linux", target_os = "android"))]
pub use selectors_epoll::{Epoll, EpollSelector};

cfg_if::cfg_if! {
    if #[cfg(selectors_force_select)] {
        /// The most efficient selector of this platform; forced to
        /// [`SelectSelector`] by `--cfg selectors_force_select`.
        pub type DefaultSelector<F = std::os::fd::RawFd, T = ()> = SelectSelector<F, T>;
    } else if #[cfg(selectors_force_poll)] {
        /// The most efficient selector of this platform; forced to
        /// [`PollSelector`] by `--cfg selectors_force_poll`.
        pub type DefaultSelector<F = std::os::fd::RawFd, T = ()> = PollSelector<F, T>;
    } else if #[cfg(any(target_os = "linux", target_os = "android"))] {
        /// The most efficient selector of this platform: [`EpollSelector`].
        pub type DefaultSelector<F = std::os::fd::RawFd, T = ()> = EpollSelector<F, T>;
    } else if #[cfg(unix)] {
        /// The most efficient selector of this platform: [`PollSelector`]
        /// (until the kqueue and /dev/poll backends land).
        pub type DefaultSelector<F = std::os::fd::RawFd, T = ()> = PollSelector<F, T>;
    } else {
        compile_error!("selectors supports Unix platforms only");
    }
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
