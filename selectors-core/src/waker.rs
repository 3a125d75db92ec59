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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::{sys, Error, RawFd, Result};

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
/// use std::time::{Duration, Instant};
/// use selectors::{DefaultSelector, Selector};
///
/// let mut sel: DefaultSelector = DefaultSelector::new()?;
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

/// The descriptor half of a wake-up channel: what a poller watches for
/// reading, and drains when it fires.
pub struct WakeReceiver {
    imp: sys::WakeReceiver,
}

impl WakeReceiver {
    /// The descriptor to watch for readability.
    pub fn fd(&self) -> RawFd {
        self.imp.fd()
    }

    /// Consumes every pending wake-up (one `read` for an eventfd, reads until
    /// empty for a pipe or the receiving socket on Windows), so the
    /// level-triggered descriptor goes quiet until the next wake.
    pub fn drain(&self) {
        self.imp.drain();
    }
}

impl fmt::Debug for WakeReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.imp.fmt(f)
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
    /// Opens the channel, with a receiving descriptor for which `taken` is
    /// `false`, and keeps its receiving end; returns the descriptor to watch
    /// for reading and the sending half for wakers.
    ///
    /// A channel whose descriptor is taken is kept open while the next one
    /// is opened, so that the next gets another number, and closed once one
    /// fits: at most one channel more than `taken` holds numbers.
    ///
    /// # Errors
    ///
    /// The kernel's (`EMFILE`…).
    pub fn open(
        &mut self,
        taken: &dyn Fn(RawFd) -> bool,
    ) -> io::Result<(RawFd, Box<dyn WakeSignal>)> {
        let mut refused = Vec::new();
        let (receiver, signal) = loop {
            let channel = wake_channel()?;
            if !taken(channel.0.fd()) {
                break channel;
            }
            refused.push(channel);
        };
        drop(refused);
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
    let (imp, signal) = sys::wake_channel()?;
    Ok((WakeReceiver { imp }, signal))
}
