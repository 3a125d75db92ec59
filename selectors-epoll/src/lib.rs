//! `EpollSelector`: Python's `selectors.EpollSelector`, on Linux's
//! [epoll(7)](https://man7.org/linux/man-pages/man7/epoll.7.html).
//!
//! Level-triggered `EPOLLIN`/`EPOLLOUT`; `select` is one `epoll_wait(2)` into
//! a buffer with room for every registration (so one call sees them all),
//! grown on `register`, never in `select`. Modifying the events is one
//! `EPOLL_CTL_MOD`; modifying only the data is no system call. Hang-up and
//! error (`EPOLLHUP`, `EPOLLERR`) are reported as both readable and writable,
//! masked by what was registered, as Python does. epoll refuses regular
//! files (`EPERM`): the error is returned and nothing is registered.
//!
//! This crate is all a user of the epoll backend needs: it re-exports
//! the API of `selectors-core`.
//!
//! # Examples
//!
//! ```
//! # #[cfg(selectors_epoll)] // Set by the build script, where the crate is not empty.
//! # fn main() -> std::io::Result<()> {
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use selectors_epoll::{EpollSelector, Selector, EVENT_READ};
//!
//! let (mut a, b) = UnixStream::pair()?;
//! let mut sel = EpollSelector::new()?;
//! sel.register(b.as_raw_fd(), EVENT_READ, "b")?;
//! assert_eq!(sel.select(Some(Duration::ZERO))?.len(), 0);
//!
//! a.write_all(b"x")?;
//! let ready: Vec<_> = sel.select(None)?.map(|(key, ev)| (*key.data(), ev)).collect();
//! assert_eq!(ready, [("b", EVENT_READ)]);
//! # Ok(())
//! # }
//! # #[cfg(not(selectors_epoll))]
//! # fn main() {}
//! ```
//!
//! # References
//!
//! [epoll_create1(2)](https://man7.org/linux/man-pages/man2/epoll_create1.2.html),
//! [epoll_ctl(2)](https://man7.org/linux/man-pages/man2/epoll_ctl.2.html),
//! [epoll_wait(2)](https://man7.org/linux/man-pages/man2/epoll_wait.2.html),
//! CPython's `Lib/selectors.py` (`_PollLikeSelector`, `EpollSelector`).
// Linux and Android: set by the crate's build script.
#![cfg(selectors_epoll)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

pub use selectors_core::api::*;

use selectors_core::backend::{
    cvt, interest_bits, poll_events, to_millis, EventBuffer, Poller, ReadyList, WakeSlot,
};

/// Python's `EpollSelector`: a [`Selector`] on epoll, holding file objects
/// `F` with data `T`.
pub type EpollSelector<F = RawFd, T = ()> = SelectorImpl<Epoll, F, T>;

/// The epoll instance behind [`EpollSelector`]: its [`Poller`].
#[derive(Debug)]
pub struct Epoll {
    epfd: OwnedFd,
    /// Where `epoll_wait` writes, with room for every registration, the
    /// waker's included.
    events: EventBuffer<libc::epoll_event>,
    /// The waker's eventfd, registered with [`WAKE_TOKEN`] as its data.
    wake: WakeSlot,
}

/// The epoll data of the waker's eventfd: not a descriptor number (those are
/// `0..=i32::MAX`), so it cannot be mistaken for a registration.
const WAKE_TOKEN: u64 = u64::MAX;

const EPOLLIN: u32 = libc::EPOLLIN as u32;
const EPOLLOUT: u32 = libc::EPOLLOUT as u32;

impl Epoll {
    fn ctl(&self, op: libc::c_int, fd: RawFd, events: Events) -> io::Result<()> {
        self.ctl_data(op, fd, interest_bits(events, EPOLLIN, EPOLLOUT), fd as u64)
    }

    fn ctl_data(&self, op: libc::c_int, fd: RawFd, mask: u32, data: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: mask,
            u64: data,
        };
        // SAFETY: `epfd` is an open epoll instance and `event` a valid,
        // initialised `epoll_event` that outlives the call (the kernel copies
        // it). An invalid `fd` is reported as an error, never UB.
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut event) }).map(drop)
    }
}

impl Poller for Epoll {
    const NAME: &'static str = "epoll";
    // EPOLL_CTL_ADD/MOD and EV_ADD fail with EBADF for a closed descriptor.
    const REFUSES_CLOSED: bool = true;

    fn new() -> io::Result<Self> {
        // SAFETY: no pointer arguments; the result is checked.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll {
            // SAFETY: `fd` was just returned by `epoll_create1`, is open, and
            // is owned by nothing else.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: EventBuffer::new(libc::epoll_event { events: 0, u64: 0 }),
            wake: WakeSlot::default(),
        })
    }

    fn register(&mut self, fd: RawFd, events: Events) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events)?;
        self.events.add(1);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, _old: Events, new: Events) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, new)
    }

    fn unregister(&mut self, fd: RawFd, events: Events) {
        self.events.remove(1);
        // Failure is expected, and ignored as CPython ignores it: `EBADF`
        // when the owner already closed `fd`, `ENOENT` when the number now
        // names another file that was never added. The kernel dropped the old
        // entry when the file's last descriptor closed — unless the owner
        // `dup`ed it first: epoll(7) keys entries by file, so that entry
        // lives on, unreachable by number, and keeps reporting the old file's
        // readiness under `fd` (epoll(7), "Questions and answers", Q6).
        // Nothing short of keeping a duplicate of every descriptor can undo
        // that; the documented rule is to unregister before closing.
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, events);
    }

    #[inline]
    fn wait(&mut self, ready: &mut ReadyList, timeout: Option<Duration>) -> io::Result<()> {
        let max = libc::c_int::try_from(self.events.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `events` points to `self.events.len() >= max` writable
        // `epoll_event`s; the kernel writes at most `max` of them.
        let n = cvt(unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                max,
                to_millis(timeout),
            )
        })?;
        for event in &self.events[..n as usize] {
            // Copy the fields out: `epoll_event` is packed on x86_64.
            let (bits, data) = (event.events, event.u64);
            if data == WAKE_TOKEN {
                self.wake.fire();
                continue;
            }
            ready.push((data as RawFd, poll_events(bits, EPOLLIN, EPOLLOUT)));
        }
        Ok(())
    }

    fn close(&mut self) {
        // Every registration was unregistered; the waker's eventfd goes too,
        // so that after `close` the epoll instance watches nothing (a wake
        // racing the close cannot make it readable for an outer loop).
        if let Some(fd) = self.wake.fd() {
            let _ = self.ctl_data(libc::EPOLL_CTL_DEL, fd, 0, WAKE_TOKEN);
            self.events.remove(1);
        }
        self.wake = WakeSlot::default();
        self.events.reset();
    }

    #[inline]
    fn wake_slot(&mut self) -> Option<&mut WakeSlot> {
        Some(&mut self.wake)
    }

    fn watch_waker(&mut self, fd: RawFd) -> io::Result<()> {
        self.ctl_data(libc::EPOLL_CTL_ADD, fd, EPOLLIN, WAKE_TOKEN)?;
        self.events.add(1);
        Ok(())
    }
}

impl AsFd for Epoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epfd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoll_fd_is_close_on_exec() {
        let poller = Epoll::new().unwrap();
        // SAFETY: F_GETFD on an open descriptor only reads its flags.
        let flags = unsafe { libc::fcntl(poller.as_fd().as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    }
}
