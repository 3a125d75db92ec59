//! The one implementation of [`Selector`], generic over a kernel [`Poller`].
//!
//! Python's `selectors` writes the bookkeeping (argument checks, the key map,
//! masking of ready events) once in `_BaseSelectorImpl` and each backend adds
//! its system calls. So do we: a backend crate implements [`Poller`] — the
//! system calls and nothing else — and its selector is
//! `SelectorImpl<ItsPoller, F, T>`. Every backend therefore checks arguments
//! in the same order, returns the same errors, keeps the same strong
//! guarantee on failure and behaves the same after close, by construction.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use std::panic::{self, AssertUnwindSafe};

use crate::backend::{check_open, Poller};
use crate::selector::Private;
use crate::sys;
use crate::timeout::Deadline;
use crate::{
    Error, Events, FileObject, InterruptCheck, KeyMut, LentKey, RawFd, Ready, RegisterError,
    Result, Selector, SelectorKey, SelectorMap, Waker,
};

/// A [`Selector`] over the kernel interface `P`; every backend's selector is
/// one (`EpollSelector<F, T>` is `SelectorImpl<Epoll, F, T>`).
///
/// The name is CPython's `_BaseSelectorImpl`, the class that holds the same
/// bookkeeping there. Python's `selectors.BaseSelector`, the abstract class
/// every selector derives from, is the [`Selector`] trait here; this type is
/// its one concrete implementation, and code that should work with any
/// selector takes `impl Selector<F, T>` rather than naming it.
///
/// `F` is the file object type ([`RawFd`] by default) and `T` the user data
/// (`()` by default).
pub struct SelectorImpl<P, F = RawFd, T = ()> {
    /// The kernel interface (crate-visible for `sys`, which gives the
    /// selector the poller's descriptor on Unix).
    pub(crate) poller: P,
    map: SelectorMap<F, T>,
    /// The ready list of the last [`Selector::select`], kept for its capacity.
    ready: Vec<(RawFd, Events)>,
    /// Whether the last select consumed a wake-up.
    woken: bool,
    closed: bool,
    /// Created on the first [`Selector::waker`] call.
    waker: Option<Waker>,
    /// The poller's own wake-up descriptor, which users cannot register.
    waker_fd: Option<RawFd>,
    /// Run on every interrupted wait ([`Selector::set_interrupt_check`]).
    interrupt_check: Option<InterruptCheck>,
    _marker: PhantomData<fn(F) -> F>,
}

impl<P: Poller, F, T> SelectorImpl<P, F, T> {
    /// The backend's name (as [`Selector::backend`] returns it), without an
    /// instance: `DefaultSelector::<RawFd, ()>::BACKEND`.
    pub const BACKEND: &'static str = P::NAME;

    /// Opens a selector.
    ///
    /// # Errors
    ///
    /// The kernel's, when it cannot create the backend's object (`EMFILE`…).
    pub fn new() -> Result<Self> {
        Ok(SelectorImpl {
            poller: P::new()?,
            map: SelectorMap::default(),
            ready: Vec::new(),
            woken: false,
            closed: false,
            waker: None,
            waker_fd: None,
            interrupt_check: None,
            _marker: PhantomData,
        })
    }

    /// The kernel interface, for backend-specific queries.
    pub fn poller(&self) -> &P {
        &self.poller
    }

    fn ensure_open(&self) -> Result<()> {
        if self.closed {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Every check of a new registration, in Python's order, then the
    /// kernel's: on success the poller watches `fd` for `events`.
    fn check_new(&mut self, fd: RawFd, fileobj: &F, events: Events) -> Result<()>
    where
        F: FileObject,
    {
        self.ensure_open()?;
        if events.is_empty() {
            return Err(Error::InvalidEvents);
        }
        if !sys::is_valid(fd) {
            return Err(Error::InvalidFd(fd));
        }
        if let Some(limit) = self.poller.fd_limit() {
            if fd >= limit {
                return Err(Error::FdOutOfRange { fd, limit });
            }
        }
        if self.map.contains(fd) || self.waker_fd == Some(fd) {
            return Err(Error::AlreadyRegistered(fd));
        }
        Self::check_open(fd, fileobj.io_safe())?;
        self.poller.register(fd, events)?;
        Ok(())
    }

    /// The error for a descriptor that has no key in the map: its key is
    /// lent to a running handler, or it is not registered.
    #[cold]
    fn missing(&self, fd: RawFd) -> Error {
        if self.map.is_lent(fd) {
            Error::Busy(fd)
        } else {
            Error::NotRegistered(fd)
        }
    }

    /// Refuses a closed descriptor on pollers whose kernel would take it
    /// (see [`Poller::REFUSES_CLOSED`]), unless the file object's type
    /// proves it open (`io_safe`): the one rule of `register` and every
    /// kind of `modify`.
    #[inline]
    fn check_open(fd: RawFd, io_safe: bool) -> io::Result<()> {
        if P::REFUSES_CLOSED || io_safe {
            Ok(())
        } else {
            check_open(fd)
        }
    }

    /// Every check of a change of `fd`'s events, then the kernel's: on
    /// success the key and the poller both say `events`; on failure
    /// neither changed.
    fn modify_registration(&mut self, fd: RawFd, events: Events) -> Result<&mut SelectorKey<F, T>>
    where
        F: FileObject,
    {
        self.ensure_open()?;
        if events.is_empty() {
            return Err(Error::InvalidEvents);
        }
        let Some(slot) = self.map.key_slot(fd) else {
            return Err(self.missing(fd));
        };
        let key = self.map.key_at_mut(slot);
        let old = key.events();
        if old != events {
            // On failure the key is untouched and the poller still watches
            // `old`: the strong guarantee.
            Self::check_open(fd, key.fileobj().io_safe())?;
            self.poller.modify(fd, old, events)?;
            key.set_events(events);
        }
        Ok(key)
    }
}

/// Waits with the PEP 475 policy: a wait interrupted by a signal, or ended
/// early with nothing ready, is resumed with the time left (after `check`,
/// if there is one, allowed it); then, if `mask`, the ready list is masked
/// by the registered events (unless the poller did it). Returns whether a
/// wake-up was consumed.
fn wait_into<P: Poller, F, T>(
    poller: &mut P,
    map: &SelectorMap<F, T>,
    ready: &mut Vec<(RawFd, Events)>,
    timeout: Option<Duration>,
    mask: bool,
    check: &mut Option<InterruptCheck>,
) -> Result<bool> {
    let deadline = Deadline::new(timeout);
    let mut next = timeout;
    let mut woken = false;
    loop {
        ready.clear();
        let result = poller.wait(ready, next);
        woken |= poller.take_woken();
        match result {
            Ok(()) if woken || !ready.is_empty() || !deadline.may_wait_again() => break,
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                if let Some(check) = check {
                    if let Err(err) = check() {
                        ready.clear();
                        return Err(err);
                    }
                }
            }
            Err(err) => {
                ready.clear();
                return Err(err.into());
            }
        }
        match deadline.remaining() {
            Some(left) => next = left,
            None => {
                ready.clear();
                break;
            }
        }
    }
    // `select` masks as its `Ready` walks the list.
    if P::REPORTS_MASKED || !mask {
        return Ok(woken);
    }
    // Mask by the registered events, dropping what is left empty or is not
    // registered, in place. Why not `retain_mut`: the entries are `Copy`, so
    // its drop guard buys nothing, and this loop inlines where `retain_mut`
    // is an out-of-line call (docs/hot-path.md). Why a slice: through
    // `&mut Vec` the compiler reloads the buffer pointer and length after
    // every map look-up.
    let entries = ready.as_mut_slice();
    let mut kept = 0;
    for i in 0..entries.len() {
        let (fd, events) = entries[i];
        let events = match map.events(fd) {
            Some(registered) => events & registered,
            None => Events::EMPTY,
        };
        if !events.is_empty() {
            entries[kept] = (fd, events);
            kept += 1;
        }
    }
    ready.truncate(kept);
    Ok(woken)
}

impl<P: Poller, F: FileObject, T> Selector<F, T> for SelectorImpl<P, F, T> {
    fn try_register(
        &mut self,
        fileobj: F,
        events: Events,
        data: T,
    ) -> Result<&SelectorKey<F, T>, RegisterError<F, T>> {
        let fd = fileobj.fileno();
        if let Err(error) = self.check_new(fd, &fileobj, events) {
            return Err(RegisterError::new(error, fileobj, data));
        }
        Ok(self.map.insert(SelectorKey::new(fileobj, fd, events, data)))
    }

    fn unregister(&mut self, fd: RawFd) -> Result<SelectorKey<F, T>> {
        self.ensure_open()?;
        let Some(key) = self.map.remove(fd) else {
            return Err(self.missing(fd));
        };
        self.poller.unregister(fd, key.events());
        Ok(key)
    }

    fn modify(&mut self, fd: RawFd, events: Events, data: T) -> Result<&SelectorKey<F, T>> {
        let key = self.modify_registration(fd, events)?;
        *key.data_mut() = data;
        Ok(key)
    }

    fn modify_events(&mut self, fd: RawFd, events: Events) -> Result<&SelectorKey<F, T>> {
        self.modify_registration(fd, events).map(|key| &*key)
    }

    #[inline]
    fn select(&mut self, timeout: Option<Duration>) -> Result<Ready<'_, F, T>> {
        self.ensure_open()?;
        self.woken = false;
        self.woken = wait_into(
            &mut self.poller,
            &self.map,
            &mut self.ready,
            timeout,
            false,
            &mut self.interrupt_check,
        )?;
        Ok(Ready::new(&self.map, &self.ready, self.woken))
    }

    #[inline]
    fn select_into(
        &mut self,
        ready: &mut Vec<(RawFd, Events)>,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        ready.clear();
        self.ensure_open()?;
        self.woken = false;
        self.woken = wait_into(
            &mut self.poller,
            &self.map,
            ready,
            timeout,
            true,
            &mut self.interrupt_check,
        )?;
        Ok(ready.len())
    }

    fn set_interrupt_check(&mut self, check: Option<InterruptCheck>) -> Option<InterruptCheck> {
        std::mem::replace(&mut self.interrupt_check, check)
    }

    fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.woken = false;
        if let Some(waker) = self.waker.take() {
            waker.disconnect();
        }
        // Lent keys too: the kernel must stop watching a key whose handler
        // closed the selector (its key is then dropped when it comes back).
        for (fd, events) in self.map.registrations() {
            self.poller.unregister(fd, events);
        }
        self.map.clear();
        self.ready = Vec::new();
        self.poller.close();
        Ok(())
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    #[inline]
    fn get_key(&self, fd: RawFd) -> Result<&SelectorKey<F, T>> {
        self.ensure_open()?;
        match self.map.get(fd) {
            Some(key) => Ok(key),
            None => Err(self.missing(fd)),
        }
    }

    #[inline]
    fn get_key_mut(&mut self, fd: RawFd) -> Result<KeyMut<'_, F, T>> {
        self.ensure_open()?;
        match self.map.key_slot(fd) {
            Some(slot) => Ok(KeyMut::new(self.map.key_at_mut(slot))),
            None => Err(self.missing(fd)),
        }
    }

    fn get_map(&self) -> &SelectorMap<F, T> {
        &self.map
    }

    fn backend(&self) -> &'static str {
        P::NAME
    }

    fn waker(&mut self) -> Result<Waker> {
        self.ensure_open()?;
        if let Some(waker) = &self.waker {
            return Ok(waker.clone());
        }
        // The channel's descriptor may get the number of a registration
        // whose descriptor was closed without unregistering it (Unix hands
        // out the lowest free number; Windows reuses socket handle values
        // too), or of a lent key whose handler replaced its file object: the
        // registration and the channel would then share it, and ending the
        // registration would take the channel out of the kernel's set (lost
        // wake-ups). The poller opens another channel until it gets a
        // number no registration has, lent ones included.
        let map = &self.map;
        let (fd, signal) = self.poller.add_waker(&|fd| map.contains(fd))?;
        self.waker_fd = fd;
        Ok(self.waker.insert(Waker::new(signal)).clone())
    }

    #[inline]
    fn was_woken(&self) -> bool {
        self.woken
    }

    fn lend_key(
        &mut self,
        fd: RawFd,
        registered_before: Option<u32>,
        _: Private,
    ) -> Result<LentKey<F, T>> {
        self.ensure_open()?;
        match self.map.lend(fd, registered_before) {
            Some(Some(key)) => Ok(LentKey::new(key)),
            Some(None) => Err(Error::Busy(fd)),
            None => Err(Error::NotRegistered(fd)),
        }
    }

    #[inline]
    fn registration_mark(&self, _: Private) -> u32 {
        self.map.mark()
    }

    fn return_key(&mut self, key: LentKey<F, T>, _: Private) -> Result<()> {
        let (mut key, next_events, unregister) = key.into_parts();
        let fd = key.fd();
        if self.closed || !self.map.is_lent(fd) {
            // Closed while lent: every registration was released already.
            return Ok(());
        }
        // The file object's own code, which may panic: asked once, before
        // anything changes, and a panic ends the registration (the key
        // cannot be trusted to say its descriptor any more) before it goes
        // on, so that the map and the kernel still agree.
        let asked = panic::catch_unwind(AssertUnwindSafe(|| {
            let fileobj = key.fileobj();
            (fileobj.fileno(), fileobj.io_safe())
        }));
        let (now, io_safe) = match asked {
            Ok(answers) => answers,
            Err(payload) => {
                self.map.forget_lent(fd);
                self.poller.unregister(fd, key.events());
                panic::resume_unwind(payload)
            }
        };
        if now != fd || unregister {
            // The kernel is told before `key` is dropped (and an owned
            // descriptor closed with it).
            self.map.forget_lent(fd);
            self.poller.unregister(fd, key.events());
            drop(key);
            return if now == fd {
                Ok(())
            } else {
                Err(Error::FdChanged { old: fd, new: now })
            };
        }
        let mut result = Ok(());
        if let Some(events) = next_events.filter(|&events| events != key.events()) {
            result = Self::check_open(fd, io_safe)
                .and_then(|()| self.poller.modify(fd, key.events(), events))
                .map_err(Error::from);
            if result.is_ok() {
                key.set_events(events);
            }
        }
        self.map.restore(key);
        result
    }

    fn take_ready_buffer(&mut self, _: Private) -> Vec<(RawFd, Events)> {
        std::mem::take(&mut self.ready)
    }

    fn restore_ready_buffer(&mut self, buffer: Vec<(RawFd, Events)>, _: Private) {
        // A handler's nested `select` may have used `self.ready` meanwhile:
        // keep the larger buffer.
        if buffer.capacity() >= self.ready.capacity() {
            self.ready = buffer;
        }
    }
}

impl<P, F, T> Drop for SelectorImpl<P, F, T> {
    fn drop(&mut self) {
        // Wakers outlive the selector: make them fail instead of signalling a
        // channel nobody reads.
        if let Some(waker) = &self.waker {
            waker.disconnect();
        }
    }
}

// On Unix, `AsFd` and `AsRawFd` where the poller has a descriptor (`sys`).

impl<P: Poller, F, T> fmt::Debug for SelectorImpl<P, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectorImpl")
            .field("backend", &P::NAME)
            .field("registered", &self.map.len())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}
