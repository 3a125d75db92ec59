//! Unix: file descriptors, numbered from the lowest free one; `fcntl`; an
//! eventfd or a pipe for wake-ups; `timespec`, `timeval` and `pollfd` for
//! the backends.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use super::cvt;
use crate::backend::{interest_bits, poll_events, WakeSignal};
use crate::map::NIL;
use crate::timeout::{clamped, to_micros};
use crate::{Events, Fd, SelectorImpl};

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
        preserving_errno(|| {
            // SAFETY: `fd` is open (we own it); the buffer is 8 valid bytes
            // (an eventfd needs exactly 8; a pipe takes any of them).
            let written =
                unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
            match cvt(written) {
                Ok(_) => Ok(()),
                // Full pipe, or eventfd counter at its maximum: a wake-up is
                // already pending, which is all a wake asks for.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(()),
                Err(err) => Err(err),
            }
        })
    }
}

/// Runs `f`, then puts `errno` back as it was: what a function called from a
/// signal handler must do, because the code the signal interrupted may be
/// about to read `errno` (a `write` that fails on a full pipe, or an
/// `EV_ERROR` from `kevent`, would overwrite it). CPython's wake-up fd does
/// the same. Async-signal-safe: two accesses to a thread-local.
pub fn preserving_errno<R>(f: impl FnOnce() -> R) -> R {
    let saved = nix::errno::Errno::last_raw();
    let result = f();
    nix::errno::Errno::set_raw(saved);
    result
}

/// An eventfd (Linux, Android) or a pipe (elsewhere), non-blocking and
/// close-on-exec.
pub(crate) fn wake_channel() -> io::Result<(WakeReceiver, Box<dyn WakeSignal>)> {
    let (read, write) = channel::open()?;
    Ok((WakeReceiver { fd: read }, Box::new(FdSignal { fd: write })))
}

/// The channel's descriptors, close-on-exec from the first instant where the
/// kernel allows it, so that a `fork` and `exec` in another thread cannot
/// leak them into a child.
mod channel {
    use super::*;

    cfg_if::cfg_if! {
        if #[cfg(any(target_os = "linux", target_os = "android"))] {
            /// An eventfd is emptied by one read.
            pub(super) const ONE_READ_DRAINS: bool = true;

            /// A non-blocking, close-on-exec eventfd: `(read, write)`, the
            /// same descriptor.
            pub(super) fn open() -> io::Result<(Arc<OwnedFd>, Arc<OwnedFd>)> {
                use nix::sys::eventfd::{EfdFlags, EventFd};

                let fd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
                let fd = Arc::new(OwnedFd::from(fd));
                Ok((Arc::clone(&fd), fd))
            }
        } else if #[cfg(any(
            target_os = "freebsd",
            target_os = "dragonfly",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "illumos",
            target_os = "solaris",
        ))] {
            /// A pipe is read until it would block.
            pub(super) const ONE_READ_DRAINS: bool = false;

            /// A pipe made non-blocking and close-on-exec by `pipe2`, at
            /// once: `(read end, write end)`.
            pub(super) fn open() -> io::Result<(Arc<OwnedFd>, Arc<OwnedFd>)> {
                use nix::fcntl::OFlag;

                let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
                Ok((Arc::new(read), Arc::new(write)))
            }
        } else {
            /// A pipe is read until it would block.
            pub(super) const ONE_READ_DRAINS: bool = false;

            /// A pipe, then made non-blocking and close-on-exec: `(read end,
            /// write end)`. Apple's systems (and the other Unix without
            /// `pipe2`) cannot do it in one call: a `fork` and `exec` in
            /// another thread between the two leaks the descriptors into the
            /// child, as mio documents for its own pipe there.
            pub(super) fn open() -> io::Result<(Arc<OwnedFd>, Arc<OwnedFd>)> {
                use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

                let (read, write) = nix::unistd::pipe()?;
                for fd in [&read, &write] {
                    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
                    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
                    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
                }
                Ok((Arc::new(read), Arc::new(write)))
            }
        }
    }
}

// ----------------------------------------------------------- the selector

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
    pub use super::{pollfd_events, pollfd_interest, preserving_errno, to_timespec, to_timeval};
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

    /// Fills the channel whose sending end is `write`, so that the next
    /// signal's `write` fails with `EAGAIN`.
    fn fill(write: &OwnedFd) {
        if channel::ONE_READ_DRAINS {
            // An eventfd: its counter to the maximum.
            let max: u64 = u64::MAX - 1;
            // SAFETY: `write` is an open eventfd; 8 valid bytes.
            let n = unsafe { libc::write(write.as_raw_fd(), (&max as *const u64).cast(), 8) };
            assert_eq!(n, 8, "{}", io::Error::last_os_error());
        } else {
            let chunk = [0u8; 4096];
            // SAFETY: `write` is an open, non-blocking pipe end; valid bytes.
            while unsafe { libc::write(write.as_raw_fd(), chunk.as_ptr().cast(), chunk.len()) } > 0
            {
            }
        }
    }

    /// `Waker::wake` from a real signal handler, on a channel so full that
    /// its `write` fails (`EAGAIN`): the interrupted code finds `errno` as
    /// it left it.
    #[test]
    fn a_wake_in_a_signal_handler_leaves_errno_alone() {
        use std::sync::OnceLock;

        static WAKER: OnceLock<Waker> = OnceLock::new();
        extern "C" fn on_signal(_: libc::c_int) {
            if let Some(waker) = WAKER.get() {
                let _ = waker.wake();
            }
        }

        let (read, write) = channel::open().unwrap();
        fill(&write);
        let waker = WAKER.get_or_init(|| Waker::new(Box::new(FdSignal { fd: write })));
        // The full channel: the write fails, and the wake succeeds.
        waker.wake().unwrap();
        // SAFETY: `sigaction` is plain old data (zeroed is valid); the
        // handler only loads a `OnceLock` and calls `wake`, which is
        // async-signal-safe; every return value is checked.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            assert_eq!(libc::sigemptyset(&mut action.sa_mask), 0);
            assert_eq!(
                libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
                0
            );
        }
        nix::errno::Errno::set_raw(libc::EILSEQ);
        // SAFETY: the handler is installed; `raise` runs it before it returns.
        let raised = unsafe { libc::raise(libc::SIGUSR2) };
        let errno = nix::errno::Errno::last_raw();
        assert_eq!(raised, 0);
        assert_eq!(errno, libc::EILSEQ, "the handler's wake overwrote errno");
        drop(read);
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
