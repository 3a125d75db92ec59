//! For backend authors: what a crate implementing a backend needs from core;
//! not part of the user-facing API (users never name these).
//!
//! A backend crate implements [`Poller`] — its system calls and nothing else —
//! and names its selector `SelectorImpl<ItsPoller, F, T>`; every argument
//! check, the key map, the masking of ready events, the PEP 475 retry policy
//! and the [`Waker`](crate::Waker) are [`SelectorImpl`]'s. What the system
//! calls themselves share is here:
//!
//! - the FFI result checks: [`cvt`] (with [`IsMinusOne`]) and [`check_open`]
//!   (and on Windows `last_socket_error`, for Winsock's);
//! - the timeout conversions: [`to_millis`], [`to_micros`], and on Unix
//!   `to_timespec` and `to_timeval` (clamped to [`MAX_WAIT_SECS`]);
//! - Python's readiness rule for `poll`-style masks, [`poll_events`], and its
//!   inverse [`interest_bits`] (typed for `pollfd` on Unix as `pollfd_events`
//!   and `pollfd_interest`);
//! - [`EventBuffer`], the result buffer of the kernels that report into one
//!   (epoll, kqueue, /dev/poll);
//! - the wake-up plumbing: [`WakeSignal`], and for the pollers that watch a
//!   descriptor for wake-ups, [`WakeSlot`], [`WakeReceiver`] and
//!   [`wake_channel`], which [`Poller`]'s provided methods use.

use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use crate::{Events, RawFd, SelectorImpl};

// What only one platform's backends use (Unix: `to_timespec`,
// `to_timeval`, `pollfd_events`, `pollfd_interest`; Windows:
// `last_socket_error`).
pub use crate::sys::backend_items::*;
pub use crate::sys::{check_open, cvt, IsMinusOne};
pub use crate::timeout::{to_micros, to_millis, MAX_WAIT_SECS};
pub use crate::waker::{wake_channel, WakeReceiver, WakeSignal, WakeSlot};

/// The system calls of one backend: the contract between
/// [`SelectorImpl`] and a kernel interface.
///
/// [`SelectorImpl`] validates every argument before calling in, and calls
/// `register`/`modify`/`unregister` only in a consistent order: `register` for
/// a descriptor not registered, `modify` and `unregister` for one that is
/// (with the events it was registered with).
///
/// A poller is `Send` and `Sync`, so every selector is whenever its file
/// objects and data are.
///
/// # Wake-ups
///
/// A poller that watches a descriptor for wake-ups (an eventfd or a pipe)
/// implements only [`wake_slot`](Poller::wake_slot) and
/// [`watch_waker`](Poller::watch_waker): the provided
/// [`add_waker`](Poller::add_waker) opens the channel ([`wake_channel`]) and
/// has the poller watch its descriptor, and the provided
/// [`take_woken`](Poller::take_woken) reads the slot. Its `wait` reports the
/// descriptor in no ready list and calls [`WakeSlot::fire`] instead. A poller
/// with another mechanism (kqueue's `EVFILT_USER`) overrides `add_waker`.
pub trait Poller: Send + Sync {
    /// The backend's name, as [`Selector::backend`](crate::Selector::backend)
    /// reports it.
    const NAME: &'static str;

    /// `true` if [`wait`](Poller::wait) reports only registered descriptors,
    /// each with non-empty events already masked by the registered ones.
    /// [`SelectorImpl`] then skips its own masking pass (a map look-up per
    /// ready descriptor). poll(2) and select(2) backends can promise this
    /// cheaply, from the arrays they hand the kernel; epoll cannot (it
    /// reports hang-ups whatever was asked, and keeps a file its owner closed
    /// without unregistering if a duplicate keeps it open).
    const REPORTS_MASKED: bool = false;

    /// `true` if the kernel itself refuses a closed descriptor in
    /// [`register`](Poller::register) and [`modify`](Poller::modify) (epoll
    /// and kqueue fail with `EBADF`). Otherwise (poll(2), select(2),
    /// /dev/poll take any number) [`SelectorImpl`] checks with one
    /// `fcntl(F_GETFD)` first, unless the file object is I/O-safe
    /// ([`FileObject::io_safe`](crate::FileObject::io_safe)), so every
    /// backend refuses a closed descriptor the same way.
    const REFUSES_CLOSED: bool = false;

    /// Opens the kernel object (close-on-exec), or prepares the buffers.
    ///
    /// # Errors
    ///
    /// The kernel's, e.g. `EMFILE`.
    fn new() -> io::Result<Self>
    where
        Self: Sized;

    /// The first descriptor value this backend cannot watch, if it has such a
    /// limit (`select(2)` where the platform caps it at `FD_SETSIZE`).
    fn fd_limit(&self) -> Option<RawFd> {
        None
    }

    /// Starts watching `fd` (non-negative, not registered, below
    /// [`fd_limit`](Poller::fd_limit)) for `events` (not empty).
    ///
    /// # Errors
    ///
    /// The kernel's refusal; the poller must then be as it was.
    fn register(&mut self, fd: RawFd, events: Events) -> io::Result<()>;

    /// Changes `fd`'s events from `old` to `new` (both non-empty, different).
    ///
    /// # Errors
    ///
    /// The kernel's refusal; the poller must then still watch `fd` for `old`.
    fn modify(&mut self, fd: RawFd, old: Events, new: Events) -> io::Result<()>;

    /// Stops watching `fd`, registered for `events`. Infallible: the kernel
    /// may already have forgotten `fd` (closed by its owner, or its number
    /// reused), and that is not an error.
    fn unregister(&mut self, fd: RawFd, events: Events);

    /// Waits once (one system call) for `timeout` (`None`: block) and pushes
    /// `(fd, events)` for every ready descriptor onto `ready`, which is empty
    /// on entry. The events need not be masked by the registered ones; each
    /// descriptor must appear at most once.
    ///
    /// # Errors
    ///
    /// The kernel's, including `EINTR` (the caller retries).
    fn wait(&mut self, ready: &mut ReadyList, timeout: Option<Duration>) -> io::Result<()>;

    /// Releases what the poller can release once every registration has been
    /// unregistered by [`Selector::close`](crate::Selector::close), and stops
    /// watching the wake-up channel: after `close` the kernel object watches
    /// nothing, so that a loop watching the selector's own descriptor never
    /// sees it ready again. The kernel object itself is released on drop.
    fn close(&mut self) {}

    /// Where the poller keeps the receiving end of its descriptor wake-up
    /// channel; `None` (the default) for a poller that watches no descriptor
    /// for wake-ups. The provided [`add_waker`](Poller::add_waker) and
    /// [`take_woken`](Poller::take_woken) work through it.
    #[inline]
    fn wake_slot(&mut self) -> Option<&mut WakeSlot> {
        None
    }

    /// Starts watching `fd`, the descriptor of a wake-up channel, for
    /// reading (called once, by [`add_wake_channel`]). `wait` must then
    /// report it in no ready list, and call [`WakeSlot::fire`] when it is
    /// readable.
    ///
    /// # Errors
    ///
    /// The kernel's refusal; the poller must then be as it was. The default
    /// fails with `Unsupported`.
    fn watch_waker(&mut self, fd: RawFd) -> io::Result<()> {
        let _ = fd;
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Sets up the poller's wake-up channel (called at most once, on the
    /// first [`Selector::waker`](crate::Selector::waker)) and returns its
    /// sending half, with the descriptor the poller watches for it, if it
    /// uses one (that number is then refused by `register`). The descriptor
    /// must be one for which `taken` is `false`: `taken` says which numbers
    /// registrations hold (some may be closed already, their numbers free
    /// for the kernel to hand out again), and a channel that shared one
    /// would be ended with that registration. A wake-up must never be
    /// reported in the ready list: `wait` consumes it and
    /// [`take_woken`](Poller::take_woken) reports it.
    ///
    /// The default is [`add_wake_channel`]: a descriptor channel, through
    /// [`wake_slot`](Poller::wake_slot) and
    /// [`watch_waker`](Poller::watch_waker).
    ///
    /// # Errors
    ///
    /// The kernel's; `Unsupported` for a poller without wake-ups (no
    /// [`wake_slot`](Poller::wake_slot)).
    fn add_waker(
        &mut self,
        taken: &dyn Fn(RawFd) -> bool,
    ) -> io::Result<(Option<RawFd>, Box<dyn WakeSignal>)> {
        add_wake_channel(self, taken)
    }

    /// Whether the last `wait` consumed a wake-up; clears the flag. The
    /// default reads the [`wake_slot`](Poller::wake_slot).
    #[inline]
    fn take_woken(&mut self) -> bool {
        self.wake_slot().is_some_and(|slot| slot.take_woken())
    }
}

/// The ready list a [`Poller::wait`] fills: `(descriptor, ready events)`
/// pairs, as [`Selector::select_into`](crate::Selector::select_into) hands
/// them out.
pub type ReadyList = Vec<(RawFd, Events)>;

/// Gives `poller` a descriptor wake-up channel: opens it, at a number for
/// which `taken` is `false` ([`WakeSlot::open`]), has the poller watch its
/// descriptor ([`Poller::watch_waker`]), and keeps its receiving end in the
/// poller's [`Poller::wake_slot`]. What [`Poller::add_waker`] does by
/// default, and the fallback of a poller that overrides it.
///
/// # Errors
///
/// `Unsupported` if the poller has no wake slot; otherwise the kernel's
/// (opening the channel, or watching it). On error the channel is closed
/// and the slot left as it was.
pub fn add_wake_channel<P: Poller + ?Sized>(
    poller: &mut P,
    taken: &dyn Fn(RawFd) -> bool,
) -> io::Result<(Option<RawFd>, Box<dyn WakeSignal>)> {
    if poller.wake_slot().is_none() {
        return Err(io::ErrorKind::Unsupported.into());
    }
    let mut opened = WakeSlot::default();
    let (fd, signal) = opened.open(taken)?;
    poller.watch_waker(fd)?;
    if let Some(slot) = poller.wake_slot() {
        *slot = opened;
    }
    Ok((Some(fd), signal))
}

/// Python's readiness rule for `poll`-style kernel masks (poll, epoll,
/// /dev/poll): WRITE if any bit other than `in_bits` is set, READ if any bit
/// other than `out_bits` is set. So hang-up and error conditions (`POLLHUP`,
/// `POLLERR`, `POLLNVAL`, `EPOLLRDHUP`) make a descriptor both readable and
/// writable; the caller then masks by what was registered.
///
/// # Examples
///
/// ```
/// use selectors_core::backend::poll_events;
/// use selectors_core::Events;
///
/// let (pollin, pollout, pollhup) = (0x1, 0x4, 0x10);
/// assert_eq!(poll_events(pollin, pollin, pollout), Events::READ);
/// assert_eq!(poll_events(pollout, pollin, pollout), Events::WRITE);
/// assert_eq!(poll_events(pollhup, pollin, pollout), Events::ALL);
/// assert_eq!(poll_events(0, pollin, pollout), Events::EMPTY);
/// ```
#[inline]
#[must_use]
pub const fn poll_events(revents: u32, in_bits: u32, out_bits: u32) -> Events {
    let mut bits = 0;
    if revents & !out_bits != 0 {
        bits |= Events::READ.0;
    }
    if revents & !in_bits != 0 {
        bits |= Events::WRITE.0;
    }
    Events(bits)
}

/// The kernel mask that watches `events`: `in_bits` for READ, `out_bits` for
/// WRITE. [`poll_events`] reads it back as `events`.
///
/// # Examples
///
/// ```
/// use selectors_core::backend::{interest_bits, poll_events};
/// use selectors_core::Events;
///
/// let (pollin, pollout) = (0x1, 0x4);
/// assert_eq!(interest_bits(Events::ALL, pollin, pollout), pollin | pollout);
/// let mask = interest_bits(Events::WRITE, pollin, pollout);
/// assert_eq!(poll_events(mask, pollin, pollout), Events::WRITE);
/// ```
#[inline]
#[must_use]
pub const fn interest_bits(events: Events, in_bits: u32, out_bits: u32) -> u32 {
    let mut bits = 0;
    if events.is_readable() {
        bits |= in_bits;
    }
    if events.is_writable() {
        bits |= out_bits;
    }
    bits
}

/// The buffer a kernel writes its ready entries into (`epoll_wait`,
/// `kevent`, `DP_POLL`), with room for every registration so that one wait
/// reports them all.
///
/// It counts the registrations (kqueue counts filters: two for a descriptor
/// registered for both directions) and grows, by doubling, when they are
/// [`add`](EventBuffer::add)ed: at registration, so that a wait never
/// allocates. It is never empty (a kqueue wait with no room returns at once,
/// whatever its timeout: bpo-29255), and [`reset`](EventBuffer::reset) gives
/// the memory back on close. The entries themselves are a slice (`Deref`).
pub struct EventBuffer<E> {
    entries: Vec<E>,
    registered: usize,
    /// What new entries are filled with.
    fill: E,
}

impl<E: Copy> EventBuffer<E> {
    /// A buffer of one entry, `fill`, for no registration.
    pub fn new(fill: E) -> Self {
        EventBuffer {
            entries: vec![fill],
            registered: 0,
            fill,
        }
    }

    /// Counts `n` more registrations, and grows the buffer to fit them all.
    pub fn add(&mut self, n: usize) {
        self.registered += n;
        if self.entries.len() < self.registered {
            self.entries
                .resize(self.registered.next_power_of_two(), self.fill);
        }
    }

    /// Counts `n` registrations fewer (the buffer keeps its size).
    pub fn remove(&mut self, n: usize) {
        self.registered -= n;
    }

    /// The registrations counted.
    #[must_use]
    pub fn registered(&self) -> usize {
        self.registered
    }

    /// Shrinks the buffer to fit the registrations still counted (the
    /// waker's, after a close), and never below one entry.
    pub fn reset(&mut self) {
        self.entries = vec![self.fill; self.registered.max(1).next_power_of_two()];
    }
}

impl<E> Deref for EventBuffer<E> {
    type Target = [E];

    #[inline]
    fn deref(&self) -> &[E] {
        &self.entries
    }
}

impl<E> DerefMut for EventBuffer<E> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [E] {
        &mut self.entries
    }
}

impl<E> fmt::Debug for EventBuffer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBuffer")
            .field("registered", &self.registered)
            .field("len", &self.entries.len())
            .finish()
    }
}

// Every selector is `Send` and `Sync` when its file objects and data are:
// checked once here for every poller (`Poller: Send + Sync`), so no backend
// has to assert it.
const _: () = {
    fn send_and_sync<S: Send + Sync>() {}
    #[allow(dead_code)]
    fn every_selector<P: Poller>() {
        send_and_sync::<SelectorImpl<P>>();
        send_and_sync::<SelectorImpl<P, std::net::TcpStream, Box<dyn Send + Sync>>>();
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_fits_every_registration_and_is_never_empty() {
        let mut buffer = EventBuffer::new(0u8);
        assert_eq!((buffer.len(), buffer.registered()), (1, 0));
        for registered in 1..10_000 {
            buffer.add(1);
            assert_eq!(buffer.registered(), registered);
            assert!(buffer.len() >= registered, "room for every registration");
            assert!(buffer.len() < 2 * registered, "grows by doubling only");
        }
        let len = buffer.len();
        buffer.remove(9_998);
        assert_eq!(buffer.len(), len, "does not shrink before the close");
        buffer.reset();
        assert_eq!(
            (buffer.len(), buffer.registered()),
            (1, 1),
            "room for the waker's"
        );
        buffer.remove(1);
        buffer.reset();
        assert_eq!(buffer.len(), 1, "never empty");
        // Two at once: kqueue's filters of a descriptor for both directions.
        buffer.add(1);
        buffer.add(2);
        assert_eq!((buffer.len(), buffer.registered()), (4, 3));
    }
}
