//! The kqueue itself: [`Kqueue`], the [`Poller`] behind
//! [`KqueueSelector`](crate::KqueueSelector).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

#[cfg(not(libkqueue))]
use selectors_core::backend::preserving_errno;
use selectors_core::backend::{
    add_wake_channel, to_timespec, EventBuffer, Poller, ReadyList, WakeSignal, WakeSlot,
};
use selectors_core::Events;

use crate::ffi::{
    self, Filter, Flags, Kevent, EVFILT_READ, EVFILT_WRITE, EV_ADD, EV_DELETE, EV_EOF, EV_ERROR,
};

/// The kqueue behind [`KqueueSelector`](crate::KqueueSelector): its
/// [`Poller`].
pub struct Kqueue {
    /// The kqueue. Shared with the waker's `EVFILT_USER` signal, so that its
    /// number cannot be reused while a waker may still trigger it.
    kq: Arc<OwnedFd>,
    /// Where `kevent` writes ready events, with room for every registered
    /// filter, the waker's included: one per direction of each registered
    /// descriptor.
    events: EventBuffer<Kevent>,
    /// While a ready list is built, `slots[fd]` is the position of `fd`'s
    /// entry in it. Stale values are harmless: a slot counts only if it
    /// points at an entry for that very descriptor, so the table is never
    /// reset. Covers every registered descriptor.
    slots: Vec<u32>,
    /// Whether the last wait saw the waker's event, and the waker's pipe
    /// where it is one (without `EVFILT_USER`).
    wake: WakeSlot,
}

// SAFETY: (`Poller` requires both.) The only part of `Kqueue` that is
// not `Send` and `Sync` by itself is the `udata` pointer inside each
// `Kevent` of the event buffer. It is always null when set by this crate,
// the kernel merely copies it back, and it is never dereferenced; the
// buffer is only touched through `&mut self`.
unsafe impl Send for Kqueue {}
// SAFETY: as for `Send`; `&Kqueue` gives access to the kqueue descriptor
// only.
unsafe impl Sync for Kqueue {}

/// The identifier of the waker's `EVFILT_USER` event. User events have
/// their own identifier space, so it clashes with no descriptor.
#[cfg(not(libkqueue))]
const WAKE_IDENT: usize = 0;

/// `slots` entry for "no position".
const NO_SLOT: u32 = u32::MAX;

/// The filters of each direction, in the order changes are submitted.
const FILTERS: [(Events, Filter); 2] = [(Events::READ, EVFILT_READ), (Events::WRITE, EVFILT_WRITE)];

/// How many filters watch `events`.
const fn filter_count(events: Events) -> usize {
    events.is_readable() as usize + events.is_writable() as usize
}

/// The events in `a` but not in `b`.
fn difference(a: Events, b: Events) -> Events {
    a & Events::from_bits(!b.bits() & Events::ALL.bits()).unwrap_or(Events::EMPTY)
}

/// What a ready entry of `filter` with `flags` means: `None` for a filter
/// this crate does not register descriptors with.
///
/// `EV_EOF` (the peer hung up, or the descriptor reached end of file) and
/// `EV_ERROR` make the descriptor ready both ways, as `POLLHUP` does for
/// Python's poll-like backends; the caller masks by what was registered.
#[inline]
fn filter_events(filter: Filter, flags: Flags) -> Option<Events> {
    let direction = if filter == EVFILT_READ {
        Events::READ
    } else if filter == EVFILT_WRITE {
        Events::WRITE
    } else {
        return None;
    };
    if flags & (EV_EOF | EV_ERROR) != 0 {
        Some(Events::ALL)
    } else {
        Some(direction)
    }
}

/// Adds `events` of `fd` to the ready list, merged into `fd`'s entry if it
/// already has one (the two filters of one descriptor come as two entries).
#[inline]
fn merge(ready: &mut Vec<(RawFd, Events)>, slots: &mut [u32], fd: RawFd, events: Events) {
    let Some(slot) = usize::try_from(fd).ok().and_then(|i| slots.get_mut(i)) else {
        // Not a registered descriptor (the table covers them all): the
        // selector drops the entry, so it needs no merging.
        ready.push((fd, events));
        return;
    };
    match ready.get_mut(*slot as usize) {
        Some(entry) if entry.0 == fd => entry.1 |= events,
        _ => {
            *slot = u32::try_from(ready.len()).unwrap_or(NO_SLOT);
            ready.push((fd, events));
        }
    }
}

/// A change the kernel did not fully apply.
struct Refused {
    /// The filters that may have been applied (all but those the kernel
    /// answered with an error): what a rollback must delete.
    maybe_applied: Events,
    error: io::Error,
}

impl Kqueue {
    /// Applies `action` (`EV_ADD` or `EV_DELETE`) to the filters of `events`
    /// on `fd`, in one `kevent` call.
    ///
    /// `EV_RECEIPT` makes the kernel answer every change with an `EV_ERROR`
    /// entry whose `data` is 0 or the change's `errno`, and keeps it from
    /// scanning for events (so the zero timeout never matters). Without it,
    /// the first failing change would end the call and leave the later ones
    /// unapplied. (kqueue(2): "EV_RECEIPT … useful for making bulk changes
    /// to a kqueue without draining any pending events".)
    fn submit(&self, fd: RawFd, events: Events, action: Flags) -> Result<(), Refused> {
        let mut changes = [ffi::empty(); 2];
        let mut n = 0;
        for (direction, filter) in FILTERS {
            if events.contains(direction) {
                changes[n] = ffi::change(fd as usize, filter, action | ffi::EV_RECEIPT);
                n += 1;
            }
        }
        let mut receipts = [ffi::empty(); 2];
        let zero = to_timespec(Some(Duration::ZERO));
        let answered = ffi::kevent(
            self.kq.as_fd(),
            &changes[..n],
            &mut receipts[..n],
            zero.as_ref(),
        )
        .map_err(|error| Refused {
            maybe_applied: events,
            error,
        })?;
        let mut confirmed = Events::EMPTY;
        let mut refused = Events::EMPTY;
        let mut error = None;
        for receipt in &receipts[..answered] {
            let (filter, flags) = (receipt.filter, receipt.flags);
            let direction = if filter == EVFILT_READ {
                Events::READ
            } else if filter == EVFILT_WRITE {
                Events::WRITE
            } else {
                continue;
            };
            if flags & EV_ERROR == 0 || ffi::ident_fd(receipt) != fd {
                continue; // not a receipt of ours; cannot happen
            }
            match ffi::receipt_errno(receipt) {
                0 => confirmed |= direction,
                errno => {
                    refused |= direction;
                    error.get_or_insert(io::Error::from_raw_os_error(errno));
                }
            }
        }
        if confirmed == events {
            return Ok(());
        }
        Err(Refused {
            maybe_applied: difference(events, refused),
            error: error.unwrap_or_else(|| {
                io::Error::other("kevent answered fewer changes than it was given")
            }),
        })
    }

    /// Deletes the filters of `events` on `fd`, ignoring failures: used where
    /// the filters may already be gone (see `unregister`) and for rollbacks.
    fn delete(&self, fd: RawFd, events: Events) {
        if !events.is_empty() {
            let _ = self.submit(fd, events, EV_DELETE);
        }
    }

    /// Adds the filters of `events` on `fd`: all of them, or none.
    fn add(&self, fd: RawFd, events: Events) -> io::Result<()> {
        self.submit(fd, events, EV_ADD).map_err(|refused| {
            // Undo the half that was applied, so that a failure leaves
            // nothing behind (CPython keeps the READ filter of a failed
            // READ|WRITE registration). The filters were not registered
            // before, so deleting them restores the old state exactly.
            self.delete(fd, refused.maybe_applied);
            refused.error
        })
    }

    /// Grows the slot table to cover `fd`: amortised here, so that `wait`
    /// never allocates.
    fn reserve_slot(&mut self, fd: RawFd) {
        let needed = fd as usize + 1;
        if self.slots.len() < needed {
            self.slots.resize(needed.next_power_of_two(), NO_SLOT);
        }
    }

    /// The number of filters the kqueue watches for the registered
    /// descriptors and the waker, as the poller counts them.
    pub fn filters(&self) -> usize {
        self.events.registered()
    }
}

impl Poller for Kqueue {
    const NAME: &'static str = "kqueue";
    // EPOLL_CTL_ADD/MOD and EV_ADD fail with EBADF for a closed descriptor.
    const REFUSES_CLOSED: bool = true;

    fn new() -> io::Result<Self> {
        Ok(Kqueue {
            kq: Arc::new(ffi::kqueue()?),
            events: EventBuffer::new(ffi::empty()),
            slots: Vec::new(),
            wake: WakeSlot::default(),
        })
    }

    fn register(&mut self, fd: RawFd, events: Events) -> io::Result<()> {
        self.add(fd, events)?;
        self.events.add(filter_count(events));
        self.reserve_slot(fd);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, old: Events, new: Events) -> io::Result<()> {
        // Add first: if the kernel refuses, `old` is still fully in place
        // (the strong guarantee). Deleting first could not be undone if the
        // add then failed.
        let added = difference(new, old);
        let removed = difference(old, new);
        if !added.is_empty() {
            self.add(fd, added)?;
        }
        // A delete fails only if the kernel already forgot the filter, as in
        // `unregister`; the filter is gone either way.
        self.delete(fd, removed);
        self.events.remove(filter_count(removed));
        self.events.add(filter_count(added));
        Ok(())
    }

    fn unregister(&mut self, fd: RawFd, events: Events) {
        self.events.remove(filter_count(events));
        // Failure is expected and harmless. `EBADF`: the owner already closed
        // `fd`, and the kernel removed its filters then (kqueue(2): "calling
        // close() on a file descriptor will remove any kevents that reference
        // the descriptor"). `ENOENT`: the number now names another file, which
        // was never added. Either way nothing watches the old file any more;
        // CPython ignores these errors too.
        //
        // libkqueue deviation (`cfg(libkqueue)`): it cannot see a
        // close, so the filters of a closed descriptor survive it, and this
        // EV_DELETE is what removes them (it then succeeds once, where a
        // kernel says EBADF).
        self.delete(fd, events);
    }

    #[inline]
    fn wait(&mut self, ready: &mut ReadyList, timeout: Option<Duration>) -> io::Result<()> {
        #[cfg(libkqueue)]
        // libkqueue deviation: it turns the timeout into an `int` of
        // milliseconds (`1000 * tv_sec + tv_nsec / 1000000`), which overflows
        // past about 24.8 days. Wait at most ~23 days at a time; the caller's
        // deadline loop waits again for the rest.
        let timeout = timeout.map(|t| t.min(Duration::from_secs(2_000_000)));
        let timeout = to_timespec(timeout);
        let n = ffi::kevent(self.kq.as_fd(), &[], &mut self.events, timeout.as_ref())?;
        ready.reserve(n);
        // The waker's pipe, where the waker is one.
        let waker = self.wake.fd();
        let mut woken = false;
        for kev in &self.events[..n] {
            // Copy the fields out: `kevent` is packed on Apple targets.
            let (filter, flags) = (kev.filter, kev.flags);
            #[cfg(not(libkqueue))]
            if filter == ffi::EVFILT_USER {
                // The waker's user event (EV_CLEAR: already reset).
                woken = true;
                continue;
            }
            let Some(events) = filter_events(filter, flags) else {
                continue;
            };
            let fd = ffi::ident_fd(kev);
            if Some(fd) == waker {
                woken = true;
                continue;
            }
            merge(ready, &mut self.slots, fd, events);
        }
        if woken {
            // Drains the pipe, if the waker is one.
            self.wake.fire();
        }
        Ok(())
    }

    fn close(&mut self) {
        // Every registration was unregistered; the waker's filter goes too,
        // so that after `close` the kqueue watches nothing (a wake racing
        // the close cannot make it readable for an outer loop).
        if let Some(fd) = self.wake.fd() {
            self.delete(fd, Events::READ);
            self.events.remove(1);
        }
        #[cfg(not(libkqueue))]
        if self.delete_user_event() {
            self.events.remove(1);
        }
        self.wake = WakeSlot::default();
        self.events.reset();
        self.slots = Vec::new();
    }

    #[inline]
    fn wake_slot(&mut self) -> Option<&mut WakeSlot> {
        Some(&mut self.wake)
    }

    /// Watches the waker's pipe, where the waker is one (see `add_waker`).
    fn watch_waker(&mut self, fd: RawFd) -> io::Result<()> {
        self.add(fd, Events::READ)?;
        self.events.add(1);
        self.reserve_slot(fd);
        Ok(())
    }

    fn add_waker(
        &mut self,
        taken: &dyn Fn(RawFd) -> bool,
    ) -> io::Result<(Option<RawFd>, Box<dyn WakeSignal>)> {
        #[cfg(not(libkqueue))]
        match self.add_user_event() {
            Ok(()) => {
                self.events.add(1);
                let signal = UserSignal {
                    kq: Arc::clone(&self.kq),
                };
                return Ok((None, Box::new(signal)));
            }
            // No EVFILT_USER in this kernel (it came late to NetBSD and
            // OpenBSD): fall back to a pipe.
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {}
            Err(err) => return Err(err),
        }
        // Always here under `cfg(libkqueue)`, a deviation: its
        // kevent() takes mutexes, so triggering an EVFILT_USER from a signal
        // handler could deadlock. A pipe's write(2) is async-signal-safe.
        add_wake_channel(self, taken)
    }
}

#[cfg(not(libkqueue))]
impl Kqueue {
    /// Adds the waker's `EVFILT_USER` event, cleared each time it is reported
    /// (so wake-ups coalesce).
    fn add_user_event(&self) -> io::Result<()> {
        let add = ffi::change(
            WAKE_IDENT,
            ffi::EVFILT_USER,
            EV_ADD | ffi::EV_CLEAR | ffi::EV_RECEIPT,
        );
        let mut receipt = [ffi::empty()];
        let zero = to_timespec(Some(Duration::ZERO));
        let n = ffi::kevent(self.kq.as_fd(), &[add], &mut receipt, zero.as_ref())?;
        match receipt[..n].first().map(ffi::receipt_errno) {
            Some(0) => Ok(()),
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Err(io::Error::other("kevent answered no receipt")),
        }
    }

    /// Deletes the waker's `EVFILT_USER` event; `false` if there was none
    /// (no waker, or a pipe instead).
    fn delete_user_event(&self) -> bool {
        let delete = ffi::change(WAKE_IDENT, ffi::EVFILT_USER, EV_DELETE | ffi::EV_RECEIPT);
        let mut receipt = [ffi::empty()];
        let zero = to_timespec(Some(Duration::ZERO));
        matches!(
            ffi::kevent(self.kq.as_fd(), &[delete], &mut receipt, zero.as_ref()),
            Ok(1) if ffi::receipt_errno(&receipt[0]) == 0
        )
    }
}

/// Triggers the waker's `EVFILT_USER` event: one `kevent(2)`, no lock, no
/// allocation, so it is async-signal-safe.
#[cfg(not(libkqueue))]
#[derive(Debug)]
struct UserSignal {
    kq: Arc<OwnedFd>,
}

#[cfg(not(libkqueue))]
impl WakeSignal for UserSignal {
    fn signal(&self) -> io::Result<()> {
        let mut trigger = ffi::change(WAKE_IDENT, ffi::EVFILT_USER, 0);
        trigger.fflags = ffi::NOTE_TRIGGER;
        // No room for events: the call only applies the change and returns.
        // From a signal handler too: `errno` is left as it was.
        preserving_errno(|| ffi::kevent(self.kq.as_fd(), &[trigger], &mut [], None).map(drop))
    }
}

impl AsFd for Kqueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.kq.as_fd()
    }
}

impl fmt::Debug for Kqueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kqueue")
            .field("kq", &self.kq.as_raw_fd())
            .field("filters", &self.events.registered())
            .field("buffer", &self.events.len())
            .field("wake", &self.wake)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::sync::{Mutex, MutexGuard};

    /// Serialises the tests that close descriptors, so that no other test of
    /// this binary takes a number between its close and its check.
    fn fd_lock() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait_now(kq: &mut Kqueue) -> Vec<(RawFd, Events)> {
        let mut ready = Vec::new();
        kq.wait(&mut ready, Some(Duration::ZERO)).unwrap();
        ready.sort_unstable_by_key(|&(fd, _)| fd);
        ready
    }

    #[test]
    fn filters_and_differences() {
        assert_eq!(filter_count(Events::EMPTY), 0);
        assert_eq!(filter_count(Events::READ), 1);
        assert_eq!(filter_count(Events::WRITE), 1);
        assert_eq!(filter_count(Events::ALL), 2);
        assert_eq!(difference(Events::ALL, Events::READ), Events::WRITE);
        assert_eq!(difference(Events::READ, Events::WRITE), Events::READ);
        assert_eq!(difference(Events::READ, Events::ALL), Events::EMPTY);
    }

    #[test]
    fn eof_and_error_are_both_directions() {
        assert_eq!(filter_events(EVFILT_READ, 0), Some(Events::READ));
        assert_eq!(filter_events(EVFILT_WRITE, 0), Some(Events::WRITE));
        for flag in [EV_EOF, EV_ERROR, EV_EOF | EV_ERROR] {
            assert_eq!(filter_events(EVFILT_READ, flag), Some(Events::ALL));
            assert_eq!(filter_events(EVFILT_WRITE, flag), Some(Events::ALL));
        }
        // Any other filter (a timer, a signal…) is not a descriptor's.
        let other: Filter = 100;
        assert_eq!(filter_events(other, 0), None);
    }

    #[test]
    fn the_two_filters_of_a_descriptor_merge_into_one_entry() {
        let mut slots = vec![NO_SLOT; 16];
        // Stale positions from an earlier wait must not matter.
        slots[3] = 0;
        slots[9] = 7;
        let mut ready = Vec::new();
        for (fd, events) in [
            (5, Events::WRITE),
            (3, Events::READ),
            (5, Events::READ),
            (9, Events::WRITE),
            (3, Events::WRITE),
            (40, Events::READ), // beyond the table: not registered
        ] {
            merge(&mut ready, &mut slots, fd, events);
        }
        assert_eq!(
            ready,
            [
                (5, Events::ALL),
                (3, Events::ALL),
                (9, Events::WRITE),
                (40, Events::READ)
            ]
        );
    }

    #[test]
    fn the_buffer_has_room_for_every_filter_and_is_never_empty() {
        let _lock = fd_lock();
        let mut kq = Kqueue::new().unwrap();
        assert_eq!(kq.events.len(), 1);
        let pairs: Vec<_> = (0..3).map(|_| UnixStream::pair().unwrap()).collect();
        for (a, _) in &pairs {
            kq.register(a.as_raw_fd(), Events::ALL).unwrap();
        }
        assert_eq!(kq.filters(), 6);
        assert!(kq.events.len() >= 6);
        let fd = pairs[0].0.as_raw_fd();
        kq.modify(fd, Events::ALL, Events::READ).unwrap();
        assert_eq!(kq.filters(), 5);
        kq.modify(fd, Events::READ, Events::WRITE).unwrap();
        assert_eq!(kq.filters(), 5);
        for (a, _) in &pairs {
            let events = if a.as_raw_fd() == fd {
                Events::WRITE
            } else {
                Events::ALL
            };
            kq.unregister(a.as_raw_fd(), events);
        }
        assert_eq!(kq.filters(), 0);
        kq.close();
        assert_eq!(kq.events.len(), 1);
    }

    #[test]
    fn a_descriptor_closed_while_registered_loses_its_filters() {
        let _lock = fd_lock();
        let mut kq = Kqueue::new().unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        kq.register(fd, Events::READ).unwrap();
        drop(a);
        let deleted = kq.submit(fd, Events::READ, EV_DELETE);
        if cfg!(libkqueue) {
            // libkqueue deviation: it cannot see the close, so the filter
            // outlived it, and EV_DELETE removes it (once).
            assert!(deleted.is_ok());
            let again = kq.submit(fd, Events::READ, EV_DELETE).err();
            assert!(again.is_some(), "deleted twice");
        } else {
            // kqueue(2): close() removes the descriptor's kevents, and the
            // number is no longer a descriptor.
            let err = deleted.expect_err("EV_DELETE of a closed fd").error;
            assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        }
    }

    #[test]
    fn a_reused_number_is_watched_once_added() {
        let _lock = fd_lock();
        let mut kq = Kqueue::new().unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        kq.register(fd, Events::READ).unwrap();
        // Reuse the number for another socket, with data waiting to be read.
        let (c, mut d) = UnixStream::pair().unwrap();
        d.write_all(b"x").unwrap();
        // SAFETY: both descriptors are open and owned by this test; `a` owns
        // the number `fd`, which now names a duplicate of `c`.
        selectors_core::backend::cvt(unsafe { libc::dup2(c.as_raw_fd(), fd) }).unwrap();
        kq.add(fd, Events::READ).unwrap();
        if cfg!(libkqueue) {
            // libkqueue deviation: the filter of the closed file is still
            // there, and a plain EV_ADD updates it instead of watching the
            // new file, until the old entry is deleted.
            assert_eq!(wait_now(&mut kq), []);
            kq.delete(fd, Events::READ);
            kq.add(fd, Events::READ).unwrap();
        }
        // A kernel dropped the old filter on close: the add watches the new
        // socket at once.
        assert_eq!(wait_now(&mut kq), [(fd, Events::READ)]);
        kq.unregister(fd, Events::READ);
        drop((a, c));
    }

    #[cfg(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "dragonfly"
    ))]
    #[test]
    fn the_waker_is_a_user_event_without_a_descriptor() {
        let _lock = fd_lock();
        let mut kq = Kqueue::new().unwrap();
        let (fd, signal) = kq.add_waker(&|_| false).unwrap();
        assert_eq!(fd, None);
        assert_eq!(kq.filters(), 1);
        signal.signal().unwrap();
        signal.signal().unwrap();
        assert_eq!(wait_now(&mut kq), []);
        assert!(kq.take_woken(), "woken once");
        assert_eq!(wait_now(&mut kq), []);
        assert!(!kq.take_woken(), "EV_CLEAR reset it");
    }

    #[cfg(libkqueue)]
    #[test]
    fn under_libkqueue_the_waker_is_a_pipe() {
        let _lock = fd_lock();
        // libkqueue deviation: its kevent() is not async-signal-safe, so the
        // waker is a descriptor (see `add_waker`).
        let mut kq = Kqueue::new().unwrap();
        let (fd, signal) = kq.add_waker(&|_| false).unwrap();
        assert!(fd.is_some());
        signal.signal().unwrap();
        assert_eq!(wait_now(&mut kq), []);
        assert!(kq.take_woken());
        assert_eq!(wait_now(&mut kq), []);
        assert!(!kq.take_woken(), "drained");
    }

    /// A kqueue descriptor takes `EVFILT_READ` but refuses `EVFILT_WRITE`
    /// (`EINVAL`): a real way to make half of a registration fail. Not under
    /// libkqueue, whose kqueue descriptor is a pipe and takes both.
    #[cfg(not(libkqueue))]
    #[test]
    fn a_half_refused_change_leaves_the_old_state() {
        let _lock = fd_lock();
        // A kqueue that is readable: it has a ready event.
        let mut inner = Kqueue::new().unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        inner.register(a.as_raw_fd(), Events::WRITE).unwrap();
        let inner_fd = inner.as_fd().as_raw_fd();

        let mut outer = Kqueue::new().unwrap();
        let err = outer.register(inner_fd, Events::ALL).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        assert_eq!(outer.filters(), 0);
        // The READ half was rolled back (CPython leaves it registered).
        assert_eq!(wait_now(&mut outer), []);

        outer.register(inner_fd, Events::READ).unwrap();
        assert_eq!(wait_now(&mut outer), [(inner_fd, Events::READ)]);
        for new in [Events::ALL, Events::WRITE] {
            let err = outer.modify(inner_fd, Events::READ, new).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
            assert_eq!(outer.filters(), 1);
            // The old registration is intact.
            assert_eq!(wait_now(&mut outer), [(inner_fd, Events::READ)]);
        }
        outer.unregister(inner_fd, Events::READ);
        assert_eq!(wait_now(&mut outer), []);
    }
}
