//! Unix: file descriptors, numbered from the lowest free one; `fcntl`; an
//! eventfd or a pipe for wake-ups; `timespec`, `timeval` and `pollfd` for
//! the backends.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use super::cvt;
use crate::backend::{interest_bits, poll_events, WakeSignal};
use crate::map::NIL;
use crate::timeout::{clamped, to_micros};
use crate::{Events, Fd, SelectorImpl, SelectorMap};

/// A raw descriptor, as the platform numbers what a selector watches: a
/// file descriptor ([`std::os::fd::RawFd`], an `i32`) on Unix.
///
/// [`FileObject::fileno`](crate::FileObject::fileno) returns one, and the
/// key map, the ready list and every look-up are keyed by it.
pub type RawFd = std::os::fd::RawFd;

/// `false` for the values no descriptor can have: the negative numbers.
#[inline]
pub(crate) fn is_valid(fd: RawFd) -> bool {
    fd >= 0
}

/// Checks that `fd` is an open descriptor (`fcntl(fd, F_GETFD)`), failing
/// with `EBADF` otherwise. Backends whose kernel interface accepts any number
/// (poll, select) call it at registration, so that every backend refuses a
/// closed descriptor the same way.
pub fn check_open(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD only reads the descriptor flags; an invalid fd is
    // reported through the return value, never undefined behaviour.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) }).map(drop)
}

// ------------------------------------------------------------ the key map

/// Descriptor → slot: a table indexed by descriptor number, since numbers
/// are small and dense (the lowest free one is always handed out).
#[derive(Default)]
pub(crate) struct SlotIndex {
    /// `by_fd[fd]` is the slot holding `fd`'s key, or `NIL`.
    by_fd: Vec<u32>,
}

impl SlotIndex {
    /// `by_fd`'s index for `fd`. Why `as u32`: it maps every negative
    /// descriptor to 2^31 or more, past the end of `by_fd` (whose length is
    /// at most `RawFd::MAX + 1` = 2^31), so the bounds check alone refuses
    /// negative numbers, with no branch of their own on the hot path.
    #[inline]
    fn index(fd: RawFd) -> usize {
        fd as u32 as usize
    }

    /// `fd`'s slot: `None` or `NIL` when it has none.
    #[inline]
    pub(crate) fn get(&self, fd: RawFd) -> Option<u32> {
        self.by_fd.get(Self::index(fd)).copied()
    }

    #[inline]
    pub(crate) fn set(&mut self, fd: RawFd, slot: u32) {
        let fd = Self::index(fd);
        if self.by_fd.len() <= fd {
            self.by_fd.resize(fd + 1, NIL);
        }
        self.by_fd[fd] = slot;
    }

    #[inline]
    pub(crate) fn clear(&mut self, fd: RawFd) {
        if let Some(slot) = self.by_fd.get_mut(Self::index(fd)) {
            *slot = NIL;
        }
    }
}

/// Numbers the key map's tests look up without registering them: negative
/// ones, which `SlotIndex::index` maps past the end of the table, and the
/// largest.
#[cfg(test)]
pub(crate) const UNREGISTERED: &[RawFd] = &[-3, -1, RawFd::MIN, RawFd::MAX];

// ----------------------------------------------------------- file objects

/// The I/O-safe borrow of a descriptor.
pub(crate) use std::os::fd::AsFd as AsDescriptor;

/// The descriptor of an I/O-safe value.
#[inline]
pub(crate) fn raw_of(value: &impl AsFd) -> RawFd {
    value.as_fd().as_raw_fd()
}

io_safe_file_objects!(
    BorrowedFd<'_>,
    OwnedFd,
    std::fs::File,
    std::net::TcpStream,
    std::net::TcpListener,
    std::net::UdpSocket,
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixListener,
    std::os::unix::net::UnixDatagram,
    std::process::ChildStdin,
    std::process::ChildStdout,
    std::process::ChildStderr,
    std::io::Stdin,
    std::io::Stdout,
    std::io::Stderr,
    std::io::StdinLock<'_>,
    std::io::StdoutLock<'_>,
    std::io::StderrLock<'_>,
);

impl<T: AsFd> AsFd for Fd<T> {
    #[inline]
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

// ---------------------------------------------------- the wake-up channel

/// The receiving end of a wake-up channel: the eventfd itself, or the
/// pipe's read end.
#[derive(Debug)]
pub(crate) struct WakeReceiver {
    fd: Arc<OwnedFd>,
}

impl WakeReceiver {
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// One `read` for an eventfd, reads until empty for a pipe.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: `fd` is open; `buf` is 64 writable bytes (an eventfd
            // read needs at least 8).
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            // An eventfd is emptied by one read; a pipe until EAGAIN. Any
            // error (EAGAIN included) means nothing is left to drain.
            if n <= 0 || channel::ONE_READ_DRAINS {
                break;
            }
        }
    }
}

/// An eventfd or a pipe, signalled by writing to it.
#[derive(Debug)]
struct FdSignal {
    /// The eventfd itself, or the pipe's write end. Owned here, so the number
    /// can never be reused while a waker exists.
    fd: Arc<OwnedFd>,
}

impl WakeSignal for FdSignal {
    fn signal(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: `fd` is open (we own it); the buffer is 8 valid bytes (an
        // eventfd needs exactly 8; a pipe takes any of them).
        let written = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        match cvt(written) {
            Ok(_) => Ok(()),
            // Full pipe, or eventfd counter at its maximum: a wake-up is
            // already pending, which is all a wake asks for.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// An eventfd (Linux, Android) or a pipe (elsewhere), non-blocking and
/// close-on-exec.
pub(crate) fn wake_channel() -> io::Result<(WakeReceiver, Box<dyn WakeSignal>)> {
    let (read, write) = channel::open()?;
    Ok((WakeReceiver { fd: read }, Box::new(FdSignal { fd: write })))
}

/// Where the kernel has an eventfd: one descriptor is both ends.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod channel {
    use super::*;

    /// An eventfd is emptied by one read.
    pub(super) const ONE_READ_DRAINS: bool = true;

    /// A non-blocking, close-on-exec eventfd: `(read, write)`, the same.
    pub(super) fn open() -> io::Result<(Arc<OwnedFd>, Arc<OwnedFd>)> {
        // SAFETY: no pointer arguments; the result is checked.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `fd` was just created, is open and owned by nothing else.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok((Arc::clone(&fd), fd))
    }
}

/// Elsewhere, a pipe.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod channel {
    use super::*;

    /// A pipe is read until it would block.
    pub(super) const ONE_READ_DRAINS: bool = false;

    /// A non-blocking, close-on-exec pipe: `(read end, write end)`.
    pub(super) fn open() -> io::Result<(Arc<OwnedFd>, Arc<OwnedFd>)> {
        let mut fds = [-1; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
        // SAFETY: pipe(2) succeeded: both are open and owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [&read, &write] {
            // SAFETY: plain flag updates on an open descriptor; results checked.
            unsafe {
                cvt(libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC))?;
                let flags = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
                cvt(libc::fcntl(
                    fd.as_raw_fd(),
                    libc::F_SETFL,
                    flags | libc::O_NONBLOCK,
                ))?;
            }
        }
        Ok((Arc::new(read), Arc::new(write)))
    }
}

// ----------------------------------------------------------- the selector

/// Runs `open` (which opens the wake-up channel) while placeholder
/// descriptors hold the numbers of the registrations whose descriptor is
/// closed, so that the channel gets another number (the kernel hands out
/// the lowest free one).
pub(crate) fn holding_closed_numbers<F, T, R>(
    map: &SelectorMap<F, T>,
    open: impl FnOnce() -> R,
) -> R {
    let held = hold_closed_numbers(map);
    let opened = open();
    drop(held);
    opened
}

/// Placeholder descriptors holding the numbers of the registrations whose
/// descriptor is closed, so that a descriptor opened meanwhile gets another
/// number. Best effort: without `/dev/null`, it holds nothing.
fn hold_closed_numbers<F, T>(map: &SelectorMap<F, T>) -> Vec<OwnedFd> {
    let closed: Vec<RawFd> = map.fds().filter(|&fd| check_open(fd).is_err()).collect();
    let Some(source) = closed
        .first()
        .and_then(|_| std::fs::File::open("/dev/null").ok())
    else {
        return Vec::new();
    };
    let mut held: Vec<OwnedFd> = closed
        .into_iter()
        .filter_map(|fd| {
            // SAFETY: F_DUPFD_CLOEXEC duplicates the open `source` to the
            // lowest free number at or above `fd` (`fd` itself, unless it was
            // reused meanwhile); failure is reported through the result.
            let dup = cvt(unsafe { libc::fcntl(source.as_raw_fd(), libc::F_DUPFD_CLOEXEC, fd) });
            // SAFETY: `dup` was just returned by fcntl: open, and owned by
            // nothing else.
            dup.ok().map(|dup| unsafe { OwnedFd::from_raw_fd(dup) })
        })
        .collect();
    held.push(source.into());
    held
}

impl<P: AsFd, F, T> AsFd for SelectorImpl<P, F, T> {
    /// The kernel object's descriptor (Python's `fileno()`), for the backends
    /// that have one (epoll, kqueue, /dev/poll). It stays open until the
    /// selector is dropped, even after [`Selector::close`](crate::Selector::close).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.poller.as_fd()
    }
}

impl<P: AsFd, F, T> AsRawFd for SelectorImpl<P, F, T> {
    fn as_raw_fd(&self) -> RawFd {
        self.poller.as_fd().as_raw_fd()
    }
}

// ----------------------------------------------------------- for backends

/// What only the Unix backends use; [`crate::backend`] re-exports it.
pub(crate) mod backend_items {
    pub use super::{pollfd_events, pollfd_interest, to_timespec, to_timeval};
}

/// `timeout` as a `timespec` for `kevent(2)` (nanosecond precision), clamped
/// to [`MAX_WAIT_SECS`](crate::backend::MAX_WAIT_SECS); `None` stays `None`
/// (a null pointer: block).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use selectors_core::backend::to_timespec;
///
/// let ts = to_timespec(Some(Duration::new(2, 5))).unwrap();
/// assert_eq!((ts.tv_sec, ts.tv_nsec), (2, 5));
/// assert!(to_timespec(None).is_none());
/// assert_eq!(to_timespec(Some(Duration::MAX)).unwrap().tv_sec, 100_000_000);
/// ```
#[inline]
pub fn to_timespec(timeout: Option<Duration>) -> Option<libc::timespec> {
    timeout.map(|t| {
        let (secs, nanos) = clamped(t);
        // SAFETY: `timespec` is plain old data; all-zero is a valid value, and
        // zeroing also covers the padding fields some targets have.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // Both fit: secs <= 10^8 and nanos < 10^9.
        ts.tv_sec = secs as libc::time_t;
        ts.tv_nsec = nanos as _;
        ts
    })
}

/// `timeout` as a `timeval` for `select(2)`, rounded *up* to whole
/// microseconds and clamped to
/// [`MAX_WAIT_SECS`](crate::backend::MAX_WAIT_SECS); `None` stays `None`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use selectors_core::backend::to_timeval;
///
/// let tv = to_timeval(Some(Duration::from_nanos(1))).unwrap();
/// assert_eq!((tv.tv_sec, tv.tv_usec), (0, 1));
/// let tv = to_timeval(Some(Duration::from_nanos(1_999_999_001))).unwrap();
/// assert_eq!((tv.tv_sec, tv.tv_usec), (2, 0));
/// ```
#[inline]
pub fn to_timeval(timeout: Option<Duration>) -> Option<libc::timeval> {
    to_micros(timeout).map(|(secs, micros)| {
        // SAFETY: `timeval` is plain old data; all-zero is a valid value.
        let mut tv: libc::timeval = unsafe { std::mem::zeroed() };
        tv.tv_sec = secs as libc::time_t;
        tv.tv_usec = micros as libc::suseconds_t;
        tv
    })
}

/// [`poll_events`] for a `pollfd`'s `revents` (poll(2), /dev/poll).
#[inline]
#[must_use]
pub fn pollfd_events(revents: libc::c_short) -> Events {
    poll_events(revents as u16 as u32, POLLIN, POLLOUT)
}

/// [`interest_bits`] for a `pollfd`'s `events`: `POLLIN`, `POLLOUT` or both
/// (poll(2), /dev/poll).
#[inline]
#[must_use]
pub fn pollfd_interest(events: Events) -> libc::c_short {
    // Only `POLLIN | POLLOUT`, which fit: the cast back is lossless.
    interest_bits(events, POLLIN, POLLOUT) as u16 as libc::c_short
}

const POLLIN: u32 = libc::POLLIN as u16 as u32;
const POLLOUT: u32 = libc::POLLOUT as u16 as u32;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{wake_channel, MAX_WAIT_SECS};
    use crate::{Error, Waker};

    #[test]
    fn check_open_tells_open_from_closed() {
        assert!(check_open(0).is_ok() || check_open(1).is_ok() || check_open(2).is_ok());
        let err = check_open(i32::MAX).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert_eq!(
            check_open(-5).unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
    }

    fn readable(fd: RawFd) -> bool {
        let mut pollfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; zero timeout.
        let n = unsafe { libc::poll(&mut pollfd, 1, 0) };
        n == 1
    }

    #[test]
    fn wakes_coalesce_and_drain_clears_them() {
        let (rx, tx) = wake_channel().unwrap();
        let waker = Waker::new(tx);
        assert!(!readable(rx.fd()));
        for _ in 0..1000 {
            waker.wake().unwrap();
        }
        assert!(readable(rx.fd()));
        rx.drain();
        assert!(!readable(rx.fd()));
        waker.clone().wake().unwrap();
        assert!(readable(rx.fd()));
    }

    #[test]
    fn a_disconnected_waker_fails_without_writing() {
        let (rx, tx) = wake_channel().unwrap();
        let waker = Waker::new(tx);
        waker.disconnect();
        assert!(matches!(waker.wake(), Err(Error::Closed)));
        assert!(!readable(rx.fd()));
    }

    #[test]
    fn timeval_rounds_up_and_clamps() {
        let tv = to_timeval(Some(Duration::from_nanos(999))).unwrap();
        assert_eq!((tv.tv_sec, tv.tv_usec), (0, 1));
        let tv = to_timeval(Some(Duration::new(3, 999_999_999))).unwrap();
        assert_eq!((tv.tv_sec, tv.tv_usec), (4, 0));
        let tv = to_timeval(Some(Duration::MAX)).unwrap();
        assert_eq!((tv.tv_sec, tv.tv_usec), (MAX_WAIT_SECS as libc::time_t, 0));
    }

    #[test]
    fn hang_up_and_errors_are_both_directions() {
        for events in [Events::READ, Events::WRITE, Events::ALL] {
            assert_eq!(pollfd_events(pollfd_interest(events)), events);
        }
        assert_eq!(pollfd_interest(Events::READ), libc::POLLIN);
        assert_eq!(pollfd_interest(Events::WRITE), libc::POLLOUT);
        assert_eq!(pollfd_events(0), Events::EMPTY);
        for condition in [libc::POLLHUP, libc::POLLERR, libc::POLLNVAL] {
            assert_eq!(pollfd_events(condition), Events::ALL);
            assert_eq!(pollfd_events(condition | libc::POLLIN), Events::ALL);
        }
        // epoll's bits, which `c_short` cannot hold all of.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let (epollin, epollout) = (libc::EPOLLIN as u32, libc::EPOLLOUT as u32);
            for events in [Events::READ, Events::WRITE, Events::ALL] {
                let bits = interest_bits(events, epollin, epollout);
                assert_eq!(poll_events(bits, epollin, epollout), events);
            }
            for condition in [libc::EPOLLHUP, libc::EPOLLERR, libc::EPOLLRDHUP] {
                assert_eq!(
                    poll_events(condition as u32, epollin, epollout),
                    Events::ALL
                );
            }
        }
    }
}
