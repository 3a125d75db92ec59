//! `DevpollSelector`: Python's `selectors.DevpollSelector`, on the
//! [`/dev/poll`](https://illumos.org/man/4D/poll) driver of illumos and
//! Solaris.
//!
//! `/dev/poll` keeps the set of watched descriptors in the kernel: a
//! `write(2)` of `pollfd`s adds descriptors (or ORs more events into a
//! cached one) or, with `POLLREMOVE`, removes them, and the `DP_POLL` ioctl
//! waits and returns the ready ones.
//!
//! - `register` writes one `pollfd`. The driver takes any number silently:
//!   a number closed when it is written is cached with no file behind it and
//!   never reported, and its events, which `POLLREMOVE` cannot clear, are
//!   ORed into a later registration at that number. So a closed descriptor
//!   is refused first with `EBADF`, as every backend does.
//! - `modify` writes `POLLREMOVE` and then the new mask, in one `write`:
//!   writing the new mask alone would be ORed into the old one.
//! - `unregister` writes `POLLREMOVE`.
//! - Every change is written at once, not batched until the next `select`,
//!   so its error reaches the call that caused it.
//! - `select` is one `DP_POLL` into a result buffer with room for every
//!   registered descriptor (grown in `register`, never in `select`), so one
//!   call reports them all. The room it declares (`dp_nfds`) stays below the
//!   soft `RLIMIT_NOFILE`, which the buffer, grown by doubling, can exceed:
//!   illumos clamps a larger `dp_nfds`, Oracle Solaris refuses it with
//!   `EINVAL`. Timeouts are rounded up to whole milliseconds.
//! - Hang-up, error and invalid-descriptor conditions (`POLLHUP`,
//!   `POLLERR`, `POLLNVAL`) are reported as both readable and writable,
//!   masked by what was registered, as Python does.
//! - A registered descriptor closed without `unregister` stays in the
//!   driver's set. The driver reports its number as `POLLNVAL` while it has
//!   the number marked as possibly ready, which the teardown of the file
//!   (its last descriptor closed) does for sockets and pipes, until
//!   `unregister` removes it; a new file at the number is adopted silently.
//!   Unregister before closing, as Python requires.
//! - `/dev/poll` is opened close-on-exec; its descriptor is Python's
//!   `fileno()` (`AsFd`, `AsRawFd`). Polled, it shows `POLLERR` whatever
//!   the set holds (the driver's answer), so, unlike epoll's and kqueue's,
//!   it cannot be watched by another selector.
//! - Like every `/dev/poll` instance, the selector's belongs to the first
//!   process that uses it after it is opened (writes to it or polls it; on
//!   Oracle Solaris, the process that opens it): any other process gets
//!   `EACCES`. A selector writes nothing before its first `register`,
//!   `select` or `waker`, so a child forked before that can take the
//!   selector from its parent.
//! - The `Waker` is a non-blocking pipe, watched for `POLLIN`.
//!
//! On every other platform this crate is empty (its platform-independent
//! logic is still unit-tested there), but on Linux under
//! `--cfg selectors_devpoll_emulation`, where its tests run on an emulation
//! of the driver (`cargo xtask devpoll`).
//!
//! This crate is all a user of the /dev/poll backend needs: it re-exports
//! the API of `selectors-core`.
//!
//! # Examples
//!
//! ```
//! # #[cfg(selectors_devpoll)] // Set by the build script, where the crate is not empty.
//! # fn main() -> std::io::Result<()> {
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use selectors_devpoll::{DevpollSelector, Selector, EVENT_READ, EVENT_WRITE};
//!
//! let (mut a, b) = UnixStream::pair()?;
//! let mut sel = DevpollSelector::new()?;
//! sel.register(b.as_raw_fd(), EVENT_READ, "b")?;
//! assert_eq!(sel.select(Some(Duration::ZERO))?.len(), 0);
//!
//! // A new mask replaces the old one (it is not ORed into it).
//! sel.modify(b.as_raw_fd(), EVENT_WRITE, "b, writable")?;
//! assert_eq!(sel.poller().polled_events(b.as_raw_fd())?, Some(EVENT_WRITE));
//!
//! a.write_all(b"x")?;
//! sel.modify(b.as_raw_fd(), EVENT_READ | EVENT_WRITE, "b")?;
//! let ready: Vec<_> = sel.select(None)?.map(|(key, ev)| (*key.data(), ev)).collect();
//! assert_eq!(ready, [("b", EVENT_READ | EVENT_WRITE)]);
//! # Ok(())
//! # }
//! # #[cfg(not(selectors_devpoll))]
//! # fn main() {}
//! ```
//!
//! # References
//!
//! [poll(4D)](https://illumos.org/man/4D/poll) (illumos),
//! [poll(4D)](https://docs.oracle.com/cd/E88353_01/html/E37851/poll-4d.html) (Solaris),
//! illumos's `<sys/devpoll.h>` and `uts/common/io/devpoll.c`,
//! CPython's `Lib/selectors.py` (`_PollLikeSelector`, `DevpollSelector`).
// illumos and Solaris (set by the crate's build script), and the unit tests
// on every Unix.
#![cfg(any(selectors_devpoll, all(test, unix)))]

// Compiled in the unit tests on every Unix too, for `POLLREMOVE`.
#[cfg_attr(not(selectors_devpoll), allow(dead_code))]
mod ffi;

#[cfg(selectors_devpoll)]
mod poller;

#[cfg(selectors_devpoll)]
pub use poller::Devpoll;
pub use selectors_core::api::*;

/// Python's `DevpollSelector`: a [`Selector`] on `/dev/poll`, holding file
/// objects `F` with data `T`.
#[cfg(selectors_devpoll)]
pub type DevpollSelector<F = RawFd, T = ()> = SelectorImpl<Devpoll, F, T>;

use selectors_core::backend::{pollfd_events, pollfd_interest, ReadyList};

use ffi::POLLREMOVE;

// ---------------------------------------------------------------------------
// The logic that is not a system call: compiled on illumos and Solaris, and
// in this crate's unit tests on every Unix, so that it is tested on Linux too.

/// The events a cached mask watches (the answer of `DP_ISPOLLED`).
#[inline]
fn watched_events(mask: std::ffi::c_short) -> Events {
    let mut events = Events::EMPTY;
    if mask & libc::POLLIN != 0 {
        events |= Events::READ;
    }
    if mask & libc::POLLOUT != 0 {
        events |= Events::WRITE;
    }
    events
}

/// The `pollfd` that starts watching `fd` for `events`.
#[inline]
fn add_entry(fd: RawFd, events: Events) -> [libc::pollfd; 1] {
    [libc::pollfd {
        fd,
        events: pollfd_interest(events),
        revents: 0,
    }]
}

/// The `pollfd`s that change `fd`'s events to `events`: a removal, then the
/// new mask. The driver ORs a mask into the one it has cached, so the new
/// mask alone could only add events.
#[inline]
fn modify_entries(fd: RawFd, events: Events) -> [libc::pollfd; 2] {
    [remove_entry(fd)[0], add_entry(fd, events)[0]]
}

/// The `pollfd` that stops watching `fd`.
#[inline]
fn remove_entry(fd: RawFd) -> [libc::pollfd; 1] {
    [libc::pollfd {
        fd,
        events: POLLREMOVE,
        revents: 0,
    }]
}

/// The `dp_nfds` of a `DP_POLL` into a result buffer of `buffer_len`
/// entries, with a soft `RLIMIT_NOFILE` of `soft_limit`: the buffer's
/// length, but below the limit. The buffer grows by doubling, so its length
/// can exceed the limit (registering more than half of a limit that is not
/// a power of two is enough); illumos clamps a `dp_nfds` above twice the
/// limit (devpoll.c), Oracle Solaris refuses one "greater than or equal to
/// {OPEN_MAX}" with `EINVAL` (poll(4D)), which would fail every select.
/// Nothing is lost: a set cannot hold more descriptors than the process can
/// have open besides `/dev/poll` itself.
#[inline]
fn poll_room(buffer_len: usize, soft_limit: libc::rlim_t) -> libc::nfds_t {
    // In u128, whatever the widths of the three types on this platform.
    let below_limit = (soft_limit as u128).saturating_sub(1).max(1);
    let room = (buffer_len as u128)
        .min(below_limit)
        .min(libc::nfds_t::MAX as u128);
    room as libc::nfds_t
}

/// Pushes the ready descriptors of a `DP_POLL` result onto `ready` (the
/// driver reports each descriptor once), except the waker's, and tells
/// whether the waker's was among them.
#[inline]
fn collect(results: &[libc::pollfd], waker: Option<RawFd>, ready: &mut ReadyList) -> bool {
    let mut woken = false;
    ready.reserve(results.len());
    for pollfd in results {
        if Some(pollfd.fd) == waker {
            woken = true;
        } else {
            ready.push((pollfd.fd, pollfd_events(pollfd.revents)));
        }
    }
    woken
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pollfd(fd: RawFd, revents: std::ffi::c_short) -> libc::pollfd {
        libc::pollfd {
            fd,
            events: 0,
            revents,
        }
    }

    #[test]
    fn cached_masks_read_back_as_the_registered_events() {
        for events in [Events::READ, Events::WRITE, Events::ALL] {
            assert_eq!(watched_events(pollfd_interest(events)), events);
        }
        assert_eq!(watched_events(0), Events::EMPTY);
    }

    #[test]
    fn pollremove_is_no_event_bit() {
        for bit in [
            libc::POLLIN,
            libc::POLLOUT,
            libc::POLLPRI,
            libc::POLLERR,
            libc::POLLHUP,
            libc::POLLNVAL,
            libc::POLLRDNORM,
        ] {
            assert_eq!(POLLREMOVE & bit, 0, "{bit:#x}");
        }
    }

    #[test]
    fn modify_removes_before_it_adds() {
        let [remove, add] = modify_entries(7, Events::WRITE);
        assert_eq!((remove.fd, remove.events), (7, POLLREMOVE));
        assert_eq!((add.fd, add.events), (7, libc::POLLOUT));
        let [add] = add_entry(9, Events::ALL);
        assert_eq!((add.fd, add.events), (9, libc::POLLIN | libc::POLLOUT));
        let [remove] = remove_entry(9);
        assert_eq!((remove.fd, remove.events), (9, POLLREMOVE));
    }

    #[test]
    fn poll_room_stays_below_the_descriptor_limit() {
        // A buffer grown past a limit that is not a power of two.
        assert_eq!(poll_room(1024, 1000), 999);
        assert_eq!(poll_room(32768, 20000), 19999);
        assert_eq!(poll_room(1024, 1024), 1023);
        // Below the limit: the whole buffer.
        assert_eq!(poll_room(512, 1000), 512);
        assert_eq!(poll_room(1, libc::RLIM_INFINITY), 1);
        assert_eq!(poll_room(1 << 20, libc::RLIM_INFINITY), 1 << 20);
        // Never no room at all (DP_POLL would only sleep).
        assert_eq!(poll_room(4, 0), 1);
    }

    #[test]
    fn results_become_the_ready_list_without_the_waker() {
        let results = [
            pollfd(4, libc::POLLIN),
            pollfd(9, libc::POLLIN), // the waker
            pollfd(5, libc::POLLOUT),
            pollfd(6, libc::POLLIN | libc::POLLOUT),
            pollfd(7, libc::POLLHUP),
        ];
        let mut ready = Vec::new();
        assert!(collect(&results, Some(9), &mut ready));
        assert_eq!(
            ready,
            [
                (4, Events::READ),
                (5, Events::WRITE),
                (6, Events::ALL),
                (7, Events::ALL)
            ]
        );
        ready.clear();
        assert!(!collect(&results[2..], Some(9), &mut ready));
        assert_eq!(ready.len(), 3);
        ready.clear();
        assert!(!collect(&results, None, &mut ready));
        assert_eq!(ready.len(), 5);
    }
}
