//! The system calls: `open("/dev/poll")`, `write(2)` and the `DP_POLL` /
//! `DP_ISPOLLED` ioctls.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use selectors_core::backend::{cvt, to_millis, EventBuffer, Poller, ReadyList, WakeSlot};
use selectors_core::Events;

use crate::ffi::{Dvpoll, DP_ISPOLLED, DP_POLL};

/// The `/dev/poll` instance behind
/// [`DevpollSelector`](crate::DevpollSelector): its [`Poller`].
#[derive(Debug)]
pub struct Devpoll {
    dpfd: OwnedFd,
    /// Where `DP_POLL` writes, with room for every registered descriptor,
    /// the waker's included.
    results: EventBuffer<libc::pollfd>,
    /// The waker's pipe, registered for `POLLIN`.
    wake: WakeSlot,
    /// The soft `RLIMIT_NOFILE` as last read (at creation, and again when
    /// `DP_POLL` refuses a `dp_nfds` because the program lowered it since),
    /// which `dp_nfds` stays below: read once, not at every select.
    fd_limit: libc::rlim_t,
}

const EMPTY: libc::pollfd = libc::pollfd {
    fd: -1,
    events: 0,
    revents: 0,
};

impl Devpoll {
    /// One `DP_POLL` into the result buffer, with `dp_nfds` below the
    /// descriptor limit (see `poll_room`); how many entries it filled.
    #[inline]
    fn poll(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let room = crate::poll_room(self.results.len(), self.fd_limit);
        let mut dvpoll = Dvpoll::new(self.results.as_mut_ptr(), room, to_millis(timeout));
        // SAFETY: `dpfd` is open; `dvpoll` is a valid `struct dvpoll` alive
        // for the call, whose `dp_fds` points to at least `dp_nfds` writable
        // `pollfd`s (the driver writes at most that many).
        let n = cvt(unsafe { libc::ioctl(self.dpfd.as_raw_fd(), DP_POLL, &mut dvpoll) })?;
        // Non-negative after `cvt`, and at most `dp_nfds`.
        Ok(n as usize)
    }

    /// Writes `entries` to `/dev/poll`, which applies them in order. On
    /// error, the entries before the one that failed may have been applied:
    /// the caller undoes them.
    fn write(&self, entries: &[libc::pollfd]) -> io::Result<()> {
        let bytes = std::mem::size_of_val(entries);
        loop {
            // SAFETY: `dpfd` is open; `entries` is `bytes` bytes of
            // initialised `pollfd`s, which the driver only reads.
            let written =
                unsafe { libc::write(self.dpfd.as_raw_fd(), entries.as_ptr().cast(), bytes) };
            match cvt(written) {
                Ok(n) if n as usize == bytes => return Ok(()),
                // The driver copies in the whole buffer or fails: a short
                // count would be a driver bug, reported as such.
                Ok(_) => return Err(io::ErrorKind::WriteZero.into()),
                // A signal while the driver waited for another writer, before
                // it applied anything (devpoll.c, `dpwrite`): safe to retry.
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// The events the driver has cached for `fd` (`DP_ISPOLLED`), or `None`
    /// if it does not watch `fd`. A backend-specific query, reached through
    /// [`SelectorImpl::poller`](crate::SelectorImpl::poller).
    ///
    /// # Errors
    ///
    /// The kernel's, e.g. `EACCES` in a forked child.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use selectors_devpoll::{DevpollSelector, Selector, EVENT_READ};
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// let mut sel = DevpollSelector::new()?;
    /// sel.register(a.as_raw_fd(), EVENT_READ, ())?;
    /// assert_eq!(sel.poller().polled_events(a.as_raw_fd())?, Some(EVENT_READ));
    /// sel.unregister(a.as_raw_fd())?;
    /// assert_eq!(sel.poller().polled_events(a.as_raw_fd())?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[doc(alias = "DP_ISPOLLED")]
    pub fn polled_events(&self, fd: RawFd) -> io::Result<Option<Events>> {
        let mut query = libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        // The answer is in `revents`: the driver writes the cached events
        // there (devpoll.c, DP_ISPOLLED: `pollfd.revents = pdp->pd_events`,
        // then a copyout of the struct), although poll(4D) says that the
        // struct is not modified. This query relies on that write.
        // SAFETY: `dpfd` is open; DP_ISPOLLED reads and writes one `pollfd`,
        // which `query` is, alive for the call.
        let cached = cvt(unsafe { libc::ioctl(self.dpfd.as_raw_fd(), DP_ISPOLLED, &mut query) })?;
        Ok((cached == 1).then(|| crate::watched_events(query.revents)))
    }
}

impl Poller for Devpoll {
    const NAME: &'static str = "devpoll";

    fn new() -> io::Result<Self> {
        // SAFETY: a valid C string; no other pointer; the result is checked.
        let fd = cvt(unsafe { libc::open(c"/dev/poll".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) })?;
        Ok(Devpoll {
            // SAFETY: `fd` was just returned by open(2), is open, and is
            // owned by nothing else.
            dpfd: unsafe { OwnedFd::from_raw_fd(fd) },
            results: EventBuffer::new(EMPTY),
            wake: WakeSlot::default(),
            fd_limit: soft_fd_limit()?,
        })
    }

    fn register(&mut self, fd: RawFd, events: Events) -> io::Result<()> {
        if let Err(err) = self.write(&crate::add_entry(fd, events)) {
            // The driver may have cached the descriptor before the poll of it
            // failed; leave nothing behind.
            let _ = self.write(&crate::remove_entry(fd));
            return Err(err);
        }
        self.results.add(1);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, old: Events, new: Events) -> io::Result<()> {
        if let Err(err) = self.write(&crate::modify_entries(fd, new)) {
            // The removal may have been applied before the new mask failed:
            // put the old registration back, so that a failed modify changes
            // nothing (best effort: this write fails only if the same poll
            // fails again).
            let _ = self.write(&crate::add_entry(fd, old));
            return Err(err);
        }
        Ok(())
    }

    fn unregister(&mut self, fd: RawFd, _events: Events) {
        self.results.remove(1);
        // The driver skips a removal of a descriptor it does not cache, so
        // this fails only in a forked child (EACCES), where no DP_POLL can
        // see the entry anyway. CPython ignores errors here too.
        let _ = self.write(&crate::remove_entry(fd));
    }

    #[inline]
    fn wait(&mut self, ready: &mut ReadyList, timeout: Option<Duration>) -> io::Result<()> {
        let n = match self.poll(timeout) {
            // Oracle Solaris refuses a `dp_nfds` at or above the limit, which
            // the program may have lowered since it was read: read it again,
            // and try once more if it changed (illumos clamps instead).
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                let limit = soft_fd_limit()?;
                if limit == self.fd_limit {
                    return Err(err);
                }
                self.fd_limit = limit;
                self.poll(timeout)?
            }
            result => result?,
        };
        if crate::collect(&self.results[..n], self.wake.fd(), ready) {
            self.wake.fire();
        }
        Ok(())
    }

    fn close(&mut self) {
        // Every registration was unregistered; the waker's pipe goes too, so
        // that after `close` the set is empty.
        if let Some(fd) = self.wake.fd() {
            let _ = self.write(&crate::remove_entry(fd));
            self.results.remove(1);
        }
        self.wake = WakeSlot::default();
        self.results.reset();
    }

    #[inline]
    fn wake_slot(&mut self) -> Option<&mut WakeSlot> {
        Some(&mut self.wake)
    }

    fn watch_waker(&mut self, fd: RawFd) -> io::Result<()> {
        self.write(&crate::add_entry(fd, Events::READ))?;
        self.results.add(1);
        Ok(())
    }
}

/// The soft `RLIMIT_NOFILE`.
fn soft_fd_limit() -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid resource and a pointer to a live `rlimit`.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    Ok(limit.rlim_cur)
}

impl AsFd for Devpoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.dpfd.as_fd()
    }
}
