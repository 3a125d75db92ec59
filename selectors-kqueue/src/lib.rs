//! `KqueueSelector`: Python's `selectors.KqueueSelector`, on
//! [kqueue(2)](https://man.freebsd.org/cgi/man.cgi?query=kqueue&sektion=2),
//! for macOS, iOS and the BSDs (FreeBSD, NetBSD, OpenBSD, DragonFly).
//!
//! Each direction is one level-triggered kqueue filter: `EVENT_READ` is
//! `EVFILT_READ`, `EVENT_WRITE` is `EVFILT_WRITE`, so a descriptor registered
//! for both is two filters.
//!
//! - **Changes are answered one by one.** Every change is submitted with
//!   `EV_RECEIPT`, so the kernel reports each filter's outcome in its own
//!   entry instead of stopping at the first failure. A registration for
//!   `READ | WRITE` whose `WRITE` half is refused is rolled back: nothing is
//!   left watching the descriptor (CPython leaves the `READ` filter behind).
//!   `modify` adds the filters it needs before it deletes the ones it no
//!   longer wants, so a refused `modify` leaves the old registration intact.
//! - **One `select` sees every filter.** `select` is one `kevent(2)` into a
//!   buffer with room for every registered filter, two for a descriptor
//!   registered for both directions (CPython's gh-110038), and never for
//!   zero, which would make `kevent` return at once whatever the timeout
//!   (bpo-29255). The buffer grows in `register`, never in `select`.
//! - **One entry per descriptor.** The kernel reports the `READ` and `WRITE`
//!   filters of a descriptor as two entries; they are merged into one (CPython
//!   reports two).
//! - **Hang-up and errors are both directions.** An entry flagged `EV_EOF`
//!   or `EV_ERROR` makes the descriptor readable and writable, masked by what
//!   was registered, as Python's poll-like backends report `POLLHUP`.
//! - Timeouts have nanosecond precision. The kqueue is close-on-exec; its
//!   descriptor is Python's `fileno()` (`AsFd`, `AsRawFd`).
//! - The `Waker` is an `EVFILT_USER` event on the kqueue itself (no
//!   descriptor at all); on a kernel without `EVFILT_USER` it falls back to a
//!   pipe watched with `EVFILT_READ`.
//!
//! This crate is all a user of the kqueue backend needs: it re-exports
//! the API of `selectors-core`.
//!
//! # Where it exists
//!
//! The build script decides, once, which targets have a kqueue: Apple's
//! systems, FreeBSD, NetBSD, OpenBSD and DragonFly, and Linux with libkqueue
//! (below). There the crate is built with `--cfg selectors_kqueue`;
//! elsewhere it is empty.
//!
//! # libkqueue on Linux
//!
//! Built on Linux with `RUSTFLAGS='--cfg selectors_libkqueue'`, the crate
//! runs on [libkqueue](https://github.com/mheily/libkqueue), kqueue emulated
//! over epoll, so that the backend can be tested without a BSD. The build
//! script links it from `LIBKQUEUE_DIR=PREFIX` (the `PREFIX/lib` of a
//! `cmake --install`), or wherever `pkg-config libkqueue` says, with an
//! rpath so that the tests find it. The build script then sets
//! `--cfg libkqueue` too, and where libkqueue differs from a kernel kqueue
//! the code says so next to a `cfg(libkqueue)`:
//!
//! - it keeps a filter whose descriptor was closed while registered (the
//!   `EV_DELETE` of `unregister` removes it, and succeeds once; a kernel
//!   drops it on `close`, and then says `EBADF`);
//! - so a plain `EV_ADD` on a reused descriptor number updates that stale
//!   filter instead of watching the new file, until the old entry is
//!   deleted (the selector always unregisters before it registers a number
//!   again, so this shows only to the raw `Poller`);
//! - it reports at most 512 entries per `kevent` call (the rest come in the
//!   next `select`: readiness is level-triggered);
//! - its `kevent()` takes locks, so it is not async-signal-safe: the
//!   `Waker` is a pipe there, not `EVFILT_USER`;
//! - it converts timeouts to `int` milliseconds, which overflows past about
//!   24 days: longer waits are made in pieces.
//!
//! # Examples
//!
//! ```
//! # #[cfg(selectors_kqueue)] // Set by the build script, where the crate is not empty.
//! # fn main() -> std::io::Result<()> {
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use selectors_kqueue::{KqueueSelector, Selector, EVENT_READ, EVENT_WRITE};
//!
//! let (mut a, b) = UnixStream::pair()?;
//! let mut sel = KqueueSelector::new()?;
//! // Two filters for one descriptor, reported as one entry.
//! sel.register(b.as_raw_fd(), EVENT_READ | EVENT_WRITE, "b")?;
//! a.write_all(b"x")?;
//! let ready: Vec<_> = sel
//!     .select(Some(Duration::from_secs(5)))?
//!     .map(|(key, events)| (*key.data(), events))
//!     .collect();
//! assert_eq!(ready, [("b", EVENT_READ | EVENT_WRITE)]);
//! # Ok(())
//! # }
//! # #[cfg(not(selectors_kqueue))]
//! # fn main() {}
//! ```
//!
//! # References
//!
//! [kqueue(2)](https://man.freebsd.org/cgi/man.cgi?query=kqueue&sektion=2) (FreeBSD),
//! [kqueue(2)](https://man.netbsd.org/kqueue.2) (NetBSD, including its
//! `size_t` counts),
//! [kqueue(2)](https://man.openbsd.org/kqueue.2) (OpenBSD),
//! [kqueue(2)](https://developer.apple.com/library/archive/documentation/System/Conceptual/ManPages_iPhoneOS/man2/kqueue.2.html) (Apple),
//! libkqueue's `BUGS.md`,
//! CPython's `Lib/selectors.py` (`KqueueSelector`), gh-110038, bpo-29255.

// Where the target has a kqueue: set by the crate's build script.
#![cfg(selectors_kqueue)]

mod ffi;
mod poller;

pub use poller::Kqueue;
pub use selectors_core::api::*;

/// Python's `KqueueSelector`: a [`Selector`] on kqueue, holding file objects
/// `F` with data `T`.
pub type KqueueSelector<F = RawFd, T = ()> = SelectorImpl<Kqueue, F, T>;
