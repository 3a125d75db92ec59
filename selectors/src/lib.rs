//! Python's [`selectors`](https://docs.python.org/3/library/selectors.html)
//! module for Rust: high-level, level-triggered I/O readiness multiplexing.
//!
//! The package is `selectors-rs` on crates.io (the `selectors` package there
//! is another project); the library it provides is `selectors`:
//!
//! ```toml
//! [dependencies]
//! selectors-rs = "0.1"
//! ```
//!
//! (Beside Servo's `selectors`, rename this one:
//! `sel = { package = "selectors-rs", version = "0.1" }`, then `use sel::…`.)
//!
//! Register file objects with the events to watch ([`EVENT_READ`],
//! [`EVENT_WRITE`]) and any data; wait until some are ready; handle them.
//! Every backend Python has is here, behind one [`Selector`] trait, and
//! [`DefaultSelector`] is the most efficient one the platform has (see
//! [Backends](#backends)).
//!
//! # A server: `dispatch`
//!
//! Python's idiom keeps what handles a connection in its key's data and
//! calls it for each ready key; a handler may register, modify or unregister
//! file objects (an accept handler registers the new connection).
//! [`dispatch`](Selector::dispatch) does exactly that: it selects, then calls
//! a handler for each ready key, lending it the selector *and* its own key
//! ([`LentKey`]: the file object and the data, mutably), so the handler can
//! read its socket, change its data, register new connections and end its
//! own registration, with no `Rc` or `RefCell`:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use selectors::{DefaultSelector, FileObject, RawFd, Selector, EVENT_READ};
//!
//! enum Handler { Accept(TcpListener), Echo(TcpStream) }
//!
//! // std's sockets are file objects themselves (on Windows too).
//! impl FileObject for Handler {
//!     fn fileno(&self) -> RawFd {
//!         match self { Handler::Accept(l) => l.fileno(), Handler::Echo(s) => s.fileno() }
//!     }
//! }
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut client = TcpStream::connect(listener.local_addr()?)?;
//! let mut sel = DefaultSelector::<Handler, u64>::new()?;
//! sel.register(Handler::Accept(listener), EVENT_READ, 0)?;
//!
//! client.write_all(b"hi")?;
//! let mut echoed = 0;
//! while echoed < 2 {
//!     sel.dispatch(None, |sel, key, _events| {
//!         let (handler, bytes) = key.parts_mut();
//!         match handler {
//!             Handler::Accept(listener) => {
//!                 let (conn, _) = listener.accept()?;
//!                 sel.register(Handler::Echo(conn), EVENT_READ, 0)?;
//!             }
//!             Handler::Echo(conn) => {
//!                 let mut buf = [0; 512];
//!                 let n = conn.read(&mut buf)?;
//!                 conn.write_all(&buf[..n])?;
//!                 *bytes += n as u64;
//!                 echoed += n;
//!                 if n == 0 {
//!                     key.unregister(); // the socket closes when the handler returns
//!                 }
//!             }
//!         }
//!         Ok(())
//!     })?;
//! }
//! let mut back = [0; 2];
//! client.read_exact(&mut back)?;
//! assert_eq!(&back, b"hi");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The handler returns an `io::Result`, so `?` works on I/O and on this
//! crate's [`Error`]s alike, and `Ok(())` needs no annotation.
//! `examples/callbacks.rs` ports the echo server of Python's documentation
//! line for line, with a function in each key's data; the `echo-server`
//! package of the repository is a complete server (bounded buffers,
//! descriptor exhaustion survived, one selector per thread).
//!
//! # An object per connection that changes its own registration
//!
//! The most common shape of Python selector code keeps an object per
//! connection in the key's data (the `Message` classes of Real Python's
//! socket tutorial), whose `process_events(mask)` reads and writes and calls
//! `selector.modify(self.sock, events, data=self)` to switch between reading
//! and writing. Here the handler splits its key into the socket, the object
//! and a [`Registration`] handle ([`LentKey::split`]), and the object
//! changes its registration through the handle, with no `Rc` and without
//! taking itself out of the key: see [`Registration`] for the pattern, and
//! `examples/message.rs` for a server and a client written that way.
//!
//! # Waiting by hand: `select` and `select_into`
//!
//! [`select`](Selector::select) is Python's: it waits and returns the ready
//! keys with their events, read-only (the keys stay in the selector). It
//! suits a program that only asks what is ready: a client waiting for its
//! one socket, a loop that reads keys and acts elsewhere.
//!
//! ```
//! use std::io::Write;
//! use std::net::{TcpListener, TcpStream};
//! use std::time::Duration;
//! use selectors::{DefaultSelector, Selector, EVENT_READ, EVENT_WRITE};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut client = TcpStream::connect(listener.local_addr()?)?;
//! let (conn, _) = listener.accept()?;
//! let mut sel = DefaultSelector::new()?;
//! // The selector may own the socket: it stays open while registered.
//! let fd = sel.register(conn, EVENT_READ, "peer")?.fd();
//!
//! // Nothing to read yet: a zero timeout polls.
//! assert_eq!(sel.select(Some(Duration::ZERO))?.count(), 0);
//!
//! client.write_all(b"hello")?;
//! for (key, events) in sel.select(None)? {
//!     assert_eq!((key.fd(), *key.data(), events), (fd, "peer", EVENT_READ));
//! }
//!
//! // Changing only the data makes no system call; changing events does.
//! sel.modify(fd, EVENT_READ | EVENT_WRITE, "peer, writable too")?;
//! assert_eq!(sel.get_key(fd)?.events(), EVENT_READ | EVENT_WRITE);
//! let conn: TcpStream = sel.unregister(fd)?.into_parts().0;
//! # drop(conn);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! To change the selector while walking the ready list in a loop of one's
//! own, [`select_into`](Selector::select_into) collects it into a `Vec` the
//! caller owns, and [`with_key`](Selector::with_key) lends one key as
//! `dispatch` does.
//!
//! # Backends
//!
//! | OS | `DefaultSelector` | also available |
//! |---|---|---|
//! | Linux, Android | `EpollSelector` | [`PollSelector`], [`SelectSelector`] |
//! | macOS, iOS (every Apple OS), FreeBSD, NetBSD, OpenBSD, DragonFly | `KqueueSelector` | [`PollSelector`], [`SelectSelector`] |
//! | illumos, Solaris | `DevpollSelector` | [`PollSelector`], [`SelectSelector`] |
//! | other Unix | [`PollSelector`] | [`SelectSelector`] |
//! | Windows | [`SelectSelector`] (Winsock `select`, sockets only) | — |
//!
//! (`EpollSelector`, `KqueueSelector` and `DevpollSelector` exist only where
//! their kernel interface does, and `PollSelector` on Unix only; their
//! documentation is rendered for those targets.)
//!
//! On Windows, as in Python there, only sockets can be registered: a
//! descriptor is a Winsock `SOCKET` ([`RawFd`] is `RawSocket` there), and a
//! file or pipe handle is refused at registration (`WSAENOTSOCK`).
//!
//! The choice follows Python's order (kqueue, epoll, devpoll, poll, select)
//! and is made at compile time, by the build script; the compiler checks
//! this table (a change to the choice that disagrees with it does not
//! build). For testing, `--cfg selectors_force_poll` or
//! `--cfg selectors_force_select` in `RUSTFLAGS` makes `DefaultSelector` the
//! portable backend on any Unix (on Windows, where select is the only
//! backend, they change nothing).
//! On Linux, `--cfg selectors_libkqueue` (with libkqueue installed, see the
//! `selectors-kqueue` crate) adds `KqueueSelector` over libkqueue's
//! emulation; `DefaultSelector` stays `EpollSelector`. And
//! `--cfg selectors_devpoll_emulation` adds `DevpollSelector`, for the
//! emulation of the /dev/poll driver that `cargo xtask devpoll` preloads
//! into the tests (without it, `DevpollSelector::new` finds no
//! `/dev/poll`), and makes it `DefaultSelector`.
//!
//! # The file object and data types
//!
//! A selector is `Selector<F, T>`: it holds file objects of type `F` (what
//! `register` takes: a [`RawFd`], an owned socket, a
//! `Box<dyn FileObject>`, any `AsFd` type wrapped in [`Fd`]…) with data of
//! type `T`. They are usually inferred from the first `register`; when
//! nothing says what they are (a selector that is only woken, or registered
//! in another function), name them, once, in a type alias:
//!
//! ```
//! use std::net::TcpStream;
//! use selectors::{DefaultSelector, Selector};
//!
//! type Sel = DefaultSelector<TcpStream, u64>; // connections, with a byte count
//! let sel = Sel::new()?;
//! assert!(sel.get_map().is_empty());
//! // Or, with the defaults (bare descriptors, no data): `DefaultSelector` as a type.
//! let bare: DefaultSelector = DefaultSelector::new()?;
//! # drop(bare);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Waking a blocked `select`
//!
//! Python's `selectors` cannot be woken from another thread or from a signal
//! handler (and since PEP 475 a signal alone does not end the wait). Here
//! every backend can: [`Selector::waker`] hands out a [`Waker`], cheap to
//! clone and async-signal-safe, that makes the current or next `select`
//! return with [`Selector::was_woken`] set. The wake-up channel (an eventfd,
//! a kqueue user event, a pipe, or a loopback socket pair on Windows) is
//! created on the first call and never shows in the key map or the ready
//! list.
//!
//! ```
//! use std::thread;
//! use selectors::{DefaultSelector, RawFd, Selector};
//!
//! let mut sel = DefaultSelector::<RawFd, ()>::new()?;
//! let waker = sel.waker()?;
//! let stopper = thread::spawn(move || waker.wake());
//! let ready = sel.select(None)?; // returns although nothing is registered
//! assert!(ready.was_woken() && ready.len() == 0);
//! stopper.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Python programs pair `selectors` with `signal.set_wakeup_fd` to handle
//! `SIGINT` or `SIGTERM` in their loop; on Unix, [`Signals`] does that with
//! a waker and no `unsafe`: it installs handlers for the signals chosen,
//! each arrival wakes the selector, and the loop asks which arrived.
//!
//! # Choosing a backend at run time
//!
//! ```
//! # #[cfg(unix)] {
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
//! # }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Minimum supported Rust version
//!
//! Rust 1.80. It is raised only in a release that bumps the minor version
//! (0.1 → 0.2 while the major version is 0), never in a patch release, only
//! to a Rust that has been stable for at least six months, and every raise
//! is noted in the changelog.
// Where `PollSelector` and `Signals` are not in this crate (Windows), the
// docs link to their pages as docs.rs renders them for Unix.
#![cfg_attr(
    not(unix),
    doc = "",
    doc = "[`PollSelector`]: https://docs.rs/selectors-poll/latest/selectors_poll/struct.PollSelector.html",
    doc = "[`Signals`]: https://docs.rs/selectors-rs/latest/selectors/struct.Signals.html"
)]

// The build script names, once, the backends of the target (`has_epoll`,
// `has_kqueue`, `has_devpoll`) and the one that is the default
// (`selectors_default`); the crate docs' table says the same in words.

pub use selectors_core::api::*;

#[cfg(unix)]
pub use selectors_poll::PollSelector;
pub use selectors_select::SelectSelector;

#[cfg(has_epoll)]
pub use selectors_epoll::EpollSelector;

#[cfg(has_kqueue)]
pub use selectors_kqueue::KqueueSelector;

#[cfg(has_devpoll)]
pub use selectors_devpoll::DevpollSelector;

/// The most efficient selector of this platform: [`EpollSelector`].
#[cfg(selectors_default = "epoll")]
pub type DefaultSelector<F = RawFd, T = ()> = EpollSelector<F, T>;

/// The most efficient selector of this platform: [`KqueueSelector`].
#[cfg(selectors_default = "kqueue")]
pub type DefaultSelector<F = RawFd, T = ()> = KqueueSelector<F, T>;

/// The most efficient selector of this platform: [`DevpollSelector`].
#[cfg(selectors_default = "devpoll")]
pub type DefaultSelector<F = RawFd, T = ()> = DevpollSelector<F, T>;

/// The most efficient selector of this platform: [`PollSelector`] (on a
/// Unix without epoll, kqueue or /dev/poll, or where
/// `--cfg selectors_force_poll` forces it).
#[cfg(selectors_default = "poll")]
pub type DefaultSelector<F = RawFd, T = ()> = PollSelector<F, T>;

/// The most efficient selector of this platform: [`SelectSelector`] (on
/// Windows, where it is Winsock's `select`, sockets only; or where
/// `--cfg selectors_force_select` forces it).
#[cfg(selectors_default = "select")]
pub type DefaultSelector<F = RawFd, T = ()> = SelectSelector<F, T>;

#[cfg(not(any(unix, windows)))]
compile_error!("selectors supports Unix and Windows only");

// The OS table of the crate docs, checked by the compiler on every target
// CI builds: `DefaultSelector` is exactly the backend the table names.
#[cfg(all(
    unix,
    not(any(selectors_force_poll, selectors_force_select, devpoll_emulation))
))]
const _: () = {
    use static_assertions::assert_type_eq_all as same;
    #[cfg(has_epoll)]
    same!(DefaultSelector, EpollSelector);
    #[cfg(all(has_kqueue, not(has_epoll)))]
    same!(DefaultSelector, KqueueSelector);
    #[cfg(has_devpoll)]
    same!(DefaultSelector, DevpollSelector);
    #[cfg(not(any(has_epoll, has_kqueue, has_devpoll)))]
    same!(DefaultSelector, PollSelector);
};
// Windows has select only (`selectors_force_poll` changes nothing there).
#[cfg(all(windows, not(selectors_force_select)))]
static_assertions::assert_type_eq_all!(DefaultSelector, SelectSelector);
// What the testing cfgs force.
#[cfg(all(unix, selectors_force_poll, not(selectors_force_select)))]
static_assertions::assert_type_eq_all!(DefaultSelector, PollSelector);
#[cfg(selectors_force_select)]
static_assertions::assert_type_eq_all!(DefaultSelector, SelectSelector);
#[cfg(all(
    devpoll_emulation,
    not(any(selectors_force_poll, selectors_force_select))
))]
static_assertions::assert_type_eq_all!(DefaultSelector, DevpollSelector);

/// This package's README (what crates.io shows), its examples compiled and
/// run as doctests (on Windows too: they use TCP on the loopback). The
/// workspace's README repeats its Rust examples verbatim (`cargo xtask ci`
/// checks that they agree).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
