//! Waking a blocked `select` from another thread, or from a signal handler.
//!
//! Python's `selectors` has no way to do this (asyncio bolts a self-pipe on),
//! and since PEP 475 an interrupted wait is simply resumed, so a signal alone
//! cannot end it. A [`Waker`] can: [`Waker::wake`] makes the selector's
//! current or next `select` return, with [`Selector::was_woken`] set.
//!
//! Each backend supplies the mechanism as a [`WakeSignal`]: an `eventfd` on
//! Linux (epoll, poll, select), `EVFILT_USER` on kqueue, a connected pair of
//! loopback TCP sockets on Windows (asyncio's self-pipe there), a
//! non-blocking pipe elsewhere. [`wake_channel`] builds the kinds that use a
//! descriptor.
//!
//! [`Selector::was_woken`]: crate::Selector::was_woken

use std::fmt;
use std::io;
#[cfg(unix)]
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
#[cfg(windows)]
use std::os::windows::io::AsRawSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[cfg(unix)]
use crate::sys::cvt;
use crate::{Error, RawFd, Result};

/// The sending half of a backend's wake-up channel.
///
/// `signal` must be async-signal-safe: one system call (`write`, `kevent`),
/// no lock, no allocation. Signalling a channel that is already signalled
/// must succeed (wake-ups coalesce).
pub trait WakeSignal: Send + Sync + 'static {
    /// Makes the poller's current or next wait return.
    ///
    /// # Errors
    ///
    /// The kernel's, as an [`io::Error`] built from `errno` (no allocation).
    fn signal(&self) -> io::Result<()>;
}

struct Shared {
    /// Cleared when the selector is closed or dropped.
    alive: AtomicBool,
    signal: Box<dyn WakeSignal>,
}

/// Wakes a selector blocked in `select` (from any thread, or from a signal
/// handler).
///
/// Obtained with [`Selector::waker`](crate::Selector::waker); cheap to clone,
/// `Send` and `Sync`. Wake-ups coalesce (a thousand wakes before a `select`
/// make it return once) and are never lost (a wake racing a `select` is seen
/// by it or by the next one). The waker's own descriptor never appears in the
/// key map or the ready list.
///
/// # Async-signal safety
///
/// [`wake`](Waker::wake) is async-signal-safe: it is an atomic load and one
/// `write(2)` (or `kevent(2)`), with no lock and no allocation, so a signal
/// handler may call it (keep the `Waker` in a `static`, e.g. a `OnceLock`).
///
/// # Examples
///
/// ```
/// # #[cfg(unix)] { // Unix types; the conformance suite covers Windows
/// use std::time::{Duration, Instant};
/// use selectors_core::Selector;
/// use selectors_poll::PollSelector;
///
/// let mut sel = PollSelector::<std::os::fd::RawFd, ()>::new()?;
/// let waker = sel.waker()?;
/// let start = Instant::now();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(50));
///     waker.wake().unwrap();
/// });
/// let ready = sel.select(None)?; // would block forever without the wake
/// assert_eq!(ready.len(), 0);
/// assert!(sel.was_woken());
/// assert!(start.elapsed() >= Duration::from_millis(50));
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Waker {
    shared: Arc<Shared>,
}

impl Waker {
    pub(crate) fn new(signal: Box<dyn WakeSignal>) -> Waker {
        Waker {
            shared: Arc::new(Shared {
                alive: AtomicBool::new(true),
                signal,
            }),
        }
    }

    /// Makes the selector's current or next `select` return.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the selector has been closed or dropped (the
    /// waker then touches no descriptor at all), or the kernel's error as
    /// [`Error::Os`].
    #[inline]
    pub fn wake(&self) -> Result<()> {
        if !self.shared.alive.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.shared.signal.signal().map_err(Error::Os)
    }

    /// Marks the selector gone: every later `wake` fails with `Closed`.
    pub(crate) fn disconnect(&self) {
        self.shared.alive.store(false, Ordering::Release);
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker")
            .field("alive", &self.shared.alive.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// An `eventfd` (Linux, Android) or a pipe (elsewhere) signalled by writing
/// to it.
#[cfg(unix)]
#[derive(Debug)]
struct FdSignal {
    /// The eventfd itself, or the pipe's write end. Owned here, so the number
    /// can never be reused while a waker exists.
    fd: Arc<OwnedFd>,
}

#[cfg(unix)]
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

/// The sending socket of a loopback pair (Windows), signalled by sending
/// one byte to its peer.
#[cfg(windows)]
#[derive(Debug)]
struct SocketSignal {
    sender: std::net::TcpStream,
}

#[cfg(windows)]
impl WakeSignal for SocketSignal {
    fn signal(&self) -> io::Result<()> {
        use std::io::Write;
        match (&self.sender).write(&[1]) {
            Ok(_) => Ok(()),
            // Send buffer full: the receiver has bytes pending, which is all
            // a wake asks for.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// The descriptor half of a wake-up channel: what a poller watches for
/// reading, and drains when it fires.
#[derive(Debug)]
pub struct WakeReceiver {
    #[cfg(unix)]
    fd: Arc<OwnedFd>,
    #[cfg(windows)]
    socket: std::net::TcpStream,
}

impl WakeReceiver {
    /// The descriptor to watch for readability.
    pub fn fd(&self) -> RawFd {
        #[cfg(unix)]
        {
            self.fd.as_raw_fd()
        }
        #[cfg(windows)]
        {
            self.socket.as_raw_socket()
        }
    }

    /// Consumes every pending wake-up: reads the receiving socket until it
    /// would block.
    #[cfg(windows)]
    pub fn drain(&self) {
        use std::io::Read;
        let mut buf = [0u8; 64];
        // Any error (WouldBlock included) or end of stream means nothing is
        // left to drain.
        while matches!((&self.socket).read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Consumes every pending wake-up (one `read` for an eventfd, reads until
    /// empty for a pipe), so the level-triggered descriptor goes quiet until
    /// the next wake.
    #[cfg(unix)]
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: `fd` is open; `buf` is 64 writable bytes (an eventfd
            // read needs at least 8).
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            // An eventfd is emptied by one read; a pipe until EAGAIN. Any
            // error (EAGAIN included) means nothing is left to drain.
            if n <= 0 || cfg!(any(target_os = "linux", target_os = "android")) {
                break;
            }
        }
    }
}

/// A poller's end of a descriptor wake-up channel ([`wake_channel`]): the
/// descriptor it watches once [`open`](WakeSlot::open)ed, and whether the
/// last wait consumed a wake-up. Used by the backends that watch a
/// descriptor for wake-ups (epoll, poll, select, /dev/poll).
#[derive(Debug, Default)]
pub struct WakeSlot {
    receiver: Option<WakeReceiver>,
    woken: bool,
}

impl WakeSlot {
    /// Opens the channel and keeps its receiving end; returns the
    /// descriptor to watch for reading and the sending half for wakers.
    ///
    /// # Errors
    ///
    /// The kernel's (`EMFILE`…).
    pub fn open(&mut self) -> io::Result<(RawFd, Box<dyn WakeSignal>)> {
        let (receiver, signal) = wake_channel()?;
        let fd = receiver.fd();
        self.receiver = Some(receiver);
        Ok((fd, signal))
    }

    /// The descriptor to watch, once opened.
    #[inline]
    pub fn fd(&self) -> Option<RawFd> {
        self.receiver.as_ref().map(WakeReceiver::fd)
    }

    /// `true` once opened.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.receiver.is_some()
    }

    /// Records that a wait saw the descriptor readable, and drains it so it
    /// goes quiet until the next wake (level-triggered polls would otherwise
    /// report it again at once).
    #[inline]
    pub fn fire(&mut self) {
        self.woken = true;
        if let Some(receiver) = &self.receiver {
            receiver.drain();
        }
    }

    /// Whether a wait fired since the last call; clears the flag
    /// ([`Poller::take_woken`](crate::backend::Poller::take_woken)).
    #[inline]
    pub fn take_woken(&mut self) -> bool {
        std::mem::take(&mut self.woken)
    }
}

/// A new wake-up channel built on a descriptor: an `eventfd` on Linux and
/// Android, a connected pair of loopback TCP sockets on Windows, a pipe
/// elsewhere; non-blocking and close-on-exec (not inherited on Windows).
///
/// # Errors
///
/// The kernel's (`EMFILE`…).
pub fn wake_channel() -> io::Result<(WakeReceiver, Box<dyn WakeSignal>)> {
    #[cfg(windows)]
    {
        let (receiver, sender) = loopback_pair()?;
        Ok((
            WakeReceiver { socket: receiver },
            Box::new(SocketSignal { sender }),
        ))
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: no pointer arguments; the result is checked.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `fd` was just created, is open and owned by nothing else.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok((
            WakeReceiver {
                fd: Arc::clone(&fd),
            },
            Box::new(FdSignal { fd }),
        ))
    }
    #[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
    {
        let (read, write) = pipe()?;
        Ok((
            WakeReceiver { fd: Arc::new(read) },
            Box::new(FdSignal {
                fd: Arc::new(write),
            }),
        ))
    }
}

/// A connected pair of non-blocking TCP sockets on the IPv4 loopback:
/// `(receiver, sender)`, the sender without Nagle's delay. Windows has no
/// pipe that `select` can watch; this is what asyncio uses there.
#[cfg(windows)]
fn loopback_pair() -> io::Result<(std::net::TcpStream, std::net::TcpStream)> {
    use std::net::{Ipv4Addr, TcpListener, TcpStream};

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let sender = TcpStream::connect(listener.local_addr()?)?;
    let ours = sender.local_addr()?;
    // Another local program may connect to the listener meanwhile: accept
    // until the connection is ours (it is queued already, so this ends).
    let receiver = loop {
        let (stream, peer) = listener.accept()?;
        if peer == ours {
            break stream;
        }
    };
    sender.set_nodelay(true)?;
    sender.set_nonblocking(true)?;
    receiver.set_nonblocking(true)?;
    Ok((receiver, sender))
}

/// A non-blocking, close-on-exec pipe.
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
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
    Ok((read, write))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

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
}
