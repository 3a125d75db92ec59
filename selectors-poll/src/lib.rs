//! `PollSelector`: Python's `selectors.PollSelector`, on
//! [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html), for every Unix.
//!
//! The `pollfd` array is kept dense and maintained incrementally: registering
//! appends, unregistering swap-removes (a table indexed by descriptor finds the
//! entry), modifying rewrites one `events` field. None of these makes a system
//! call beyond the `fcntl(F_GETFD)` that refuses a closed descriptor (`EBADF`,
//! as epoll does). `select` is one `poll(2)` on the array as it stands, then a
//! scan that stops at the last ready entry.
//!
//! Hang-up, error and invalid-descriptor conditions (`POLLHUP`, `POLLERR`,
//! `POLLNVAL`) are reported as both readable and writable, masked by what was
//! registered, as Python does. Timeouts are rounded up to whole milliseconds.
//!
//! This crate is all a user of the poll backend needs: it re-exports
//! the API of `selectors-core`.
//!
//! # Examples
//!
//! ```
//! use std::io::Write;
//! use std::os::unix::net::UnixStream;
//! use selectors_poll::{PollSelector, Selector, EVENT_READ, EVENT_WRITE};
//!
//! let (mut a, b) = UnixStream::pair()?;
//! a.write_all(b"x")?;
//! // The selector owns `b`: it cannot be closed behind its back.
//! let mut sel = PollSelector::new()?;
//! let key = sel.register(b, EVENT_READ | EVENT_WRITE, 7)?;
//! let fd = key.fd();
//! let ready: Vec<_> = sel.select(None)?.map(|(key, ev)| (key.fd(), ev)).collect();
//! assert_eq!(ready, [(fd, EVENT_READ | EVENT_WRITE)]);
//! let (b, data) = sel.unregister(fd)?.into_parts();
//! assert_eq!(data, 7);
//! # drop(b);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # References
//!
//! [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html) (Linux),
//! [poll(2)](https://man.freebsd.org/cgi/man.cgi?query=poll&sektion=2) (FreeBSD),
//! CPython's `Lib/selectors.py` (`_PollLikeSelector`, `PollSelector`).
#![cfg(unix)]

use std::io;
use std::time::Duration;

pub use selectors_core::api::*;

use selectors_core::backend::{
    cvt, pollfd_events, pollfd_interest, to_millis, Poller, ReadyList, WakeSlot,
};

/// Python's `PollSelector`: a [`Selector`] on `poll(2)`, holding file
/// objects `F` with data `T`.
pub type PollSelector<F = RawFd, T = ()> = SelectorImpl<Poll, F, T>;

const NONE: u32 = u32::MAX;

/// The `pollfd` array behind [`PollSelector`]: its [`Poller`].
#[derive(Debug, Default)]
pub struct Poll {
    fds: Vec<libc::pollfd>,
    /// `index[fd]` is `fd`'s position in `fds`, or `NONE`.
    index: Vec<u32>,
    /// The waker's eventfd or pipe, an entry of `fds` like any other.
    wake: WakeSlot,
}

impl Poll {
    /// `fd`'s position in `fds`, if it is there.
    fn position(&self, fd: RawFd) -> Option<usize> {
        match self.index.get(usize::try_from(fd).ok()?) {
            Some(&position) if position != NONE => Some(position as usize),
            _ => None,
        }
    }

    fn insert(&mut self, fd: RawFd, events: libc::c_short) {
        let slot = fd as usize;
        if self.index.len() <= slot {
            self.index.resize(slot + 1, NONE);
        }
        self.index[slot] = u32::try_from(self.fds.len()).expect("too many registrations");
        self.fds.push(libc::pollfd {
            fd,
            events,
            revents: 0,
        });
    }
}

impl Poller for Poll {
    const NAME: &'static str = "poll";
    // `wait` masks each entry by its `pollfd.events`, and the array holds
    // exactly the registrations (plus the waker, never reported).
    const REPORTS_MASKED: bool = true;

    fn new() -> io::Result<Self> {
        Ok(Poll::default())
    }

    fn register(&mut self, fd: RawFd, events: Events) -> io::Result<()> {
        self.insert(fd, pollfd_interest(events));
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, _old: Events, new: Events) -> io::Result<()> {
        // `SelectorImpl` modifies only what it registered; an unknown `fd`
        // would be its bug, refused rather than trusted.
        let position = self.position(fd).ok_or(io::ErrorKind::NotFound)?;
        self.fds[position].events = pollfd_interest(new);
        Ok(())
    }

    fn unregister(&mut self, fd: RawFd, _events: Events) {
        let Some(position) = self.position(fd) else {
            return;
        };
        self.index[fd as usize] = NONE;
        self.fds.swap_remove(position);
        if let Some(moved) = self.fds.get(position) {
            self.index[moved.fd as usize] = position as u32;
        }
    }

    #[inline]
    fn wait(&mut self, ready: &mut ReadyList, timeout: Option<Duration>) -> io::Result<()> {
        // SAFETY: `fds` points to `fds.len()` initialised `pollfd`s, which the
        // kernel reads and whose `revents` it writes, within the call.
        let n = cvt(unsafe {
            libc::poll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                to_millis(timeout),
            )
        })? as usize;
        if n > 0 {
            let waker = self.wake.fd();
            let mut woken = false;
            let mut found = 0;
            for pollfd in &self.fds {
                if pollfd.revents != 0 {
                    found += 1;
                    if Some(pollfd.fd) == waker {
                        woken = true;
                    } else {
                        // Masked here (see `REPORTS_MASKED`): `events` holds
                        // only POLLIN/POLLOUT, which the same rule reads back
                        // as exactly the registered events.
                        let events = pollfd_events(pollfd.revents) & pollfd_events(pollfd.events);
                        if !events.is_empty() {
                            ready.push((pollfd.fd, events));
                        }
                    }
                    if found == n {
                        break;
                    }
                }
            }
            if woken {
                self.wake.fire();
            }
        }
        Ok(())
    }

    fn close(&mut self) {
        *self = Poll::default();
    }

    #[inline]
    fn wake_slot(&mut self) -> Option<&mut WakeSlot> {
        Some(&mut self.wake)
    }

    fn watch_waker(&mut self, fd: RawFd) -> io::Result<()> {
        self.insert(fd, libc::POLLIN);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_remove_keeps_the_index_consistent() {
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;

        let pairs: Vec<_> = (0..3).map(|_| UnixStream::pair().unwrap()).collect();
        let fds: Vec<RawFd> = pairs
            .iter()
            .flat_map(|(a, b)| [a.as_raw_fd(), b.as_raw_fd()])
            .collect();
        let mut poll = Poll::new().unwrap();
        for &fd in &fds {
            poll.register(fd, Events::READ).unwrap();
        }
        for &gone in &[fds[0], fds[3], fds[5]] {
            poll.unregister(gone, Events::READ);
            assert_eq!(poll.index[gone as usize], NONE);
        }
        assert_eq!(poll.fds.len(), 3);
        for (position, pollfd) in poll.fds.iter().enumerate() {
            assert_eq!(poll.position(pollfd.fd), Some(position));
        }
        let mut left: Vec<RawFd> = poll.fds.iter().map(|p| p.fd).collect();
        left.sort_unstable();
        assert_eq!(left, [fds[1], fds[2], fds[4]]);
    }
}
