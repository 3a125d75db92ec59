//! Every implementation behind one small trait, so each workload is written
//! once and runs the same code around each library's calls.
//!
//! The trait is generic (monomorphised), never `dyn`: a driver's calls
//! inline into the workload loop exactly as a user's code would.
//!
//! * [`Ours`]: our selectors, used as their docs show (`select` and its
//!   iterator of `(&key, events)`, the handler in the key's data).
//! * [`RawEpoll`], [`RawPoll`], [`RawSelect`]: the same level-triggered
//!   semantics written on libc, with the bookkeeping a real program needs
//!   and nothing more: a table indexed by descriptor holding each one's
//!   handler (its data) and what `unregister` needs to be O(1), the
//!   registered mask to filter hang-ups against, and the checks that keep
//!   the tables sound (a descriptor registered twice, or one never
//!   registered, is refused as epoll refuses it: `AlreadyExists`,
//!   `NotFound`).
//! * [`Mio`]: mio 1.x as its docs teach it: edge-triggered, `Token` per
//!   source, handlers read until `WouldBlock` ([`Driver::EDGE`]).
//! * [`Polling`]: polling 3.x in its level mode.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use selectors::{EpollSelector, Events, Selector, SelectorImpl};
use selectors_core::backend::Poller;

/// One implementation, as the workloads use it. Every handler is a `usize`
/// (the index of the watched descriptor in the fixture).
pub trait Driver: Sized {
    /// Readiness is edge-triggered: a handler must read until `WouldBlock`
    /// or it will not hear of the descriptor again.
    const EDGE: bool = false;

    /// Opens the implementation's kernel object and buffers.
    fn open() -> io::Result<Self>;

    /// Starts watching `fd` for `events`, with `handler`.
    fn register(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()>;

    /// Changes `fd`'s events and handler.
    fn modify(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()>;

    /// Stops watching `fd`.
    fn unregister(&mut self, fd: RawFd) -> io::Result<()>;

    /// Blocks until something is ready, then calls `f(fd, events, handler)`
    /// for each ready registration; returns how many.
    fn select<F: FnMut(RawFd, Events, usize)>(&mut self, f: F) -> io::Result<usize>;
}

/// The readiness rule of Python's poll-like selectors, for raw kernel bits:
/// READ for anything but `out_bits`, WRITE for anything but `in_bits` (so a
/// hang-up or error is both), then masked by what was registered.
#[inline]
fn poll_like(bits: u32, in_bits: u32, out_bits: u32, registered: Events) -> Events {
    let mut ready = Events::EMPTY;
    if bits & !out_bits != 0 {
        ready |= Events::READ;
    }
    if bits & !in_bits != 0 {
        ready |= Events::WRITE;
    }
    ready & registered
}

/// Grows `table` so that `fd` indexes it, then stores `value` there.
#[inline]
fn put<V: Copy>(table: &mut Vec<V>, fd: RawFd, value: V, empty: V) {
    let slot = fd as usize;
    if table.len() <= slot {
        table.resize(slot + 1, empty);
    }
    table[slot] = value;
}

// ---------------------------------------------------------------------------
// Ours

/// What our selectors hold: the fixture's descriptors, borrowed. An
/// I/O-safe file object, as a server's own sockets are: the selector can
/// trust it open and skips its closed-descriptor check (`FileObject::io_safe`).
pub type Borrowed = BorrowedFd<'static>;

/// A selector of ours that the bench can open.
pub trait OpenSelector: Selector<Borrowed, usize> + Sized {
    /// A new, empty selector.
    fn open() -> io::Result<Self>;
}

impl<P: Poller> OpenSelector for SelectorImpl<P, Borrowed, usize> {
    fn open() -> io::Result<Self> {
        Ok(SelectorImpl::new()?)
    }
}

/// `Box<dyn Selector>` over epoll: the run-time choice of backend.
impl OpenSelector for Box<dyn Selector<Borrowed, usize>> {
    fn open() -> io::Result<Self> {
        Ok(Box::new(EpollSelector::<Borrowed, usize>::new()?))
    }
}

/// One of our selectors.
pub struct Ours<S>(S);

impl<S: OpenSelector> Driver for Ours<S> {
    fn open() -> io::Result<Self> {
        S::open().map(Ours)
    }

    #[inline]
    fn register(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()> {
        // SAFETY: every descriptor a driver registers is the fixture's, which
        // keeps it open until after the driver is dropped (each workload
        // opens its driver inside its borrow of the fixture).
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        self.0.register(fd, events, handler)?;
        Ok(())
    }

    #[inline]
    fn modify(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()> {
        self.0.modify(fd, events, handler)?;
        Ok(())
    }

    #[inline]
    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.0.unregister(fd)?;
        Ok(())
    }

    #[inline]
    fn select<F: FnMut(RawFd, Events, usize)>(&mut self, mut f: F) -> io::Result<usize> {
        let mut n = 0;
        for (key, events) in self.0.select(None)? {
            f(key.fd(), events, *key.data());
            n += 1;
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------
// raw-epoll

/// epoll on libc: the descriptor in the event's data, a handler table
/// indexed by descriptor.
pub struct RawEpoll {
    epfd: OwnedFd,
    events: Vec<libc::epoll_event>,
    /// `(handler, registered events)` by descriptor; `EMPTY` if none.
    handlers: Vec<(usize, Events)>,
}

impl RawEpoll {
    fn ctl(&self, op: libc::c_int, fd: RawFd, events: Events) -> io::Result<()> {
        let mut mask = 0;
        if events.is_readable() {
            mask |= libc::EPOLLIN as u32;
        }
        if events.is_writable() {
            mask |= libc::EPOLLOUT as u32;
        }
        let mut event = libc::epoll_event {
            events: mask,
            u64: fd as u64,
        };
        // SAFETY: `epfd` is an open epoll instance; `event` is a valid
        // `epoll_event` for the duration of the call.
        let ret = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut event) };
        if ret == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// One blocking `epoll_wait` into `events`, resumed after a signal: the
/// number of entries the kernel wrote. (The raw-epoll echo server waits the
/// same way.)
#[inline]
pub fn epoll_wait(epfd: &OwnedFd, events: &mut [libc::epoll_event]) -> io::Result<usize> {
    let max = libc::c_int::try_from(events.len()).unwrap_or(libc::c_int::MAX);
    loop {
        // SAFETY: `events` has room for `max` entries, which is all the
        // kernel writes.
        let n = unsafe { libc::epoll_wait(epfd.as_raw_fd(), events.as_mut_ptr(), max, -1) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

impl Driver for RawEpoll {
    fn open() -> io::Result<Self> {
        // SAFETY: no pointer arguments.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(RawEpoll {
            // SAFETY: `fd` was just created and is owned by nothing else.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 1024],
            handlers: Vec::new(),
        })
    }

    #[inline]
    fn register(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events)?;
        put(
            &mut self.handlers,
            fd,
            (handler, events),
            (0, Events::EMPTY),
        );
        Ok(())
    }

    #[inline]
    fn modify(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events)?;
        self.handlers[fd as usize] = (handler, events);
        Ok(())
    }

    #[inline]
    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, Events::EMPTY)?;
        self.handlers[fd as usize] = (0, Events::EMPTY);
        Ok(())
    }

    #[inline]
    fn select<F: FnMut(RawFd, Events, usize)>(&mut self, mut f: F) -> io::Result<usize> {
        let n = epoll_wait(&self.epfd, &mut self.events)?;
        let mut dispatched = 0;
        for event in &self.events[..n] {
            let (bits, fd) = (event.events, event.u64 as RawFd);
            let (handler, registered) = self.handlers[fd as usize];
            let ready = poll_like(
                bits,
                libc::EPOLLIN as u32,
                libc::EPOLLOUT as u32,
                registered,
            );
            if !ready.is_empty() {
                f(fd, ready, handler);
                dispatched += 1;
            }
        }
        Ok(dispatched)
    }
}

// ---------------------------------------------------------------------------
// raw-poll

/// poll(2) on libc, with what a program on poll must keep: a dense `pollfd`
/// array (poll takes nothing else) and, by descriptor, its handler and its
/// position in the array.
///
/// The position is what makes `modify` and `unregister` O(1): `unregister`
/// swap-removes the entry (the last one moves into its place, and its
/// descriptor's position is rewritten), so the array stays dense without a
/// scan. Both live in one table entry, so a descriptor costs one look-up
/// and one bounds check; `NONE` there means not registered, which is how a
/// second `register` (it would add a second entry and orphan the first) or
/// the `unregister` of a stranger is refused.
pub struct RawPoll {
    fds: Vec<libc::pollfd>,
    /// By descriptor: its position in `fds` (`NONE`: not registered) and
    /// its handler.
    table: Vec<(u32, usize)>,
}

const NONE: u32 = u32::MAX;

impl RawPoll {
    /// `fd`'s position in `fds`, or `NotFound`.
    #[inline]
    fn position(&self, fd: RawFd) -> io::Result<usize> {
        match self.table.get(fd as usize) {
            Some(&(position, _)) if position != NONE => Ok(position as usize),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }
}

fn poll_mask(events: Events) -> libc::c_short {
    let mut mask = 0;
    if events.is_readable() {
        mask |= libc::POLLIN;
    }
    if events.is_writable() {
        mask |= libc::POLLOUT;
    }
    mask
}

/// The events a `pollfd.events` mask asks for.
#[inline]
fn registered(mask: libc::c_short) -> Events {
    let mut events = Events::EMPTY;
    if mask & libc::POLLIN != 0 {
        events |= Events::READ;
    }
    if mask & libc::POLLOUT != 0 {
        events |= Events::WRITE;
    }
    events
}

impl Driver for RawPoll {
    fn open() -> io::Result<Self> {
        Ok(RawPoll {
            fds: Vec::new(),
            table: Vec::new(),
        })
    }

    #[inline]
    fn register(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()> {
        if self.position(fd).is_ok() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        put(
            &mut self.table,
            fd,
            (self.fds.len() as u32, handler),
            (NONE, 0),
        );
        self.fds.push(libc::pollfd {
            fd,
            events: poll_mask(events),
            revents: 0,
        });
        Ok(())
    }

    #[inline]
    fn modify(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()> {
        let position = self.position(fd)?;
        self.fds[position].events = poll_mask(events);
        self.table[fd as usize].1 = handler;
        Ok(())
    }

    #[inline]
    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        let position = self.position(fd)?;
        self.table[fd as usize].0 = NONE;
        self.fds.swap_remove(position);
        if let Some(moved) = self.fds.get(position) {
            self.table[moved.fd as usize].0 = position as u32;
        }
        Ok(())
    }

    #[inline]
    fn select<F: FnMut(RawFd, Events, usize)>(&mut self, mut f: F) -> io::Result<usize> {
        let n = loop {
            // SAFETY: `fds` holds `fds.len()` initialised `pollfd`s.
            let n =
                unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, -1) };
            if n >= 0 {
                break n as usize;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        };
        let mut seen = 0;
        if n > 0 {
            for pollfd in &self.fds {
                if pollfd.revents != 0 {
                    let ready = poll_like(
                        pollfd.revents as u16 as u32,
                        libc::POLLIN as u32,
                        libc::POLLOUT as u32,
                        registered(pollfd.events),
                    );
                    f(pollfd.fd, ready, self.table[pollfd.fd as usize].1);
                    seen += 1;
                    if seen == n {
                        break;
                    }
                }
            }
        }
        Ok(seen)
    }
}

// ---------------------------------------------------------------------------
// raw-select

type Word = libc::c_ulong;
const BITS: usize = Word::BITS as usize;
/// Words in a C `fd_set`; the bitmaps never have fewer.
const SET_WORDS: usize = libc::FD_SETSIZE / BITS;

/// select(2) on libc, with what a program on select must keep: growable
/// bitmaps (Linux reads as many words as `nfds` needs, so descriptors past
/// `FD_SETSIZE` work), their copies for the kernel to overwrite, the
/// highest descriptor (select's `nfds`), and a handler table by descriptor.
///
/// Everything is by descriptor, so `unregister` is O(1) (clearing two bits)
/// but when it removes the highest descriptor: then the next highest is
/// found by a scan down the bitmaps, a word (64 descriptors) at a time. A
/// descriptor is registered when one of its bits is set (a registration
/// always has events), which is how a second `register` or the
/// `unregister` of a stranger is refused.
pub struct RawSelect {
    read: Vec<Word>,
    write: Vec<Word>,
    read_out: Vec<Word>,
    write_out: Vec<Word>,
    max_fd: RawFd,
    handlers: Vec<usize>,
}

impl RawSelect {
    /// `fd` has a bit in either set.
    #[inline]
    fn is_registered(&self, fd: RawFd) -> bool {
        let (word, bit) = (fd as usize / BITS, 1 << (fd as usize % BITS));
        self.read
            .get(word)
            .is_some_and(|&r| (r | self.write[word]) & bit != 0)
    }

    fn set(&mut self, fd: RawFd, events: Events) {
        let (word, bit) = (fd as usize / BITS, 1 << (fd as usize % BITS));
        if self.read.len() <= word {
            let words = (word + 1).next_power_of_two().max(SET_WORDS);
            for set in [
                &mut self.read,
                &mut self.write,
                &mut self.read_out,
                &mut self.write_out,
            ] {
                set.resize(words, 0);
            }
        }
        if events.is_readable() {
            self.read[word] |= bit;
        } else {
            self.read[word] &= !bit;
        }
        if events.is_writable() {
            self.write[word] |= bit;
        } else {
            self.write[word] &= !bit;
        }
    }
}

impl Driver for RawSelect {
    fn open() -> io::Result<Self> {
        Ok(RawSelect {
            read: vec![0; SET_WORDS],
            write: vec![0; SET_WORDS],
            read_out: vec![0; SET_WORDS],
            write_out: vec![0; SET_WORDS],
            max_fd: -1,
            handlers: Vec::new(),
        })
    }

    #[inline]
    fn register(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()> {
        if self.is_registered(fd) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        self.set(fd, events);
        self.max_fd = self.max_fd.max(fd);
        put(&mut self.handlers, fd, handler, 0);
        Ok(())
    }

    #[inline]
    fn modify(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()> {
        if !self.is_registered(fd) {
            return Err(io::ErrorKind::NotFound.into());
        }
        self.set(fd, events);
        self.handlers[fd as usize] = handler;
        Ok(())
    }

    #[inline]
    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        if !self.is_registered(fd) {
            return Err(io::ErrorKind::NotFound.into());
        }
        self.set(fd, Events::EMPTY);
        if fd == self.max_fd {
            // Scan down for the next highest descriptor still watched.
            self.max_fd = -1;
            for word in (0..=fd as usize / BITS).rev() {
                let union = self.read[word] | self.write[word];
                if union != 0 {
                    self.max_fd =
                        (word * BITS + BITS - 1 - union.leading_zeros() as usize) as RawFd;
                    break;
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn select<F: FnMut(RawFd, Events, usize)>(&mut self, mut f: F) -> io::Result<usize> {
        let nfds = self.max_fd + 1;
        let words = (nfds as usize).div_ceil(BITS);
        let n = loop {
            self.read_out[..words].copy_from_slice(&self.read[..words]);
            self.write_out[..words].copy_from_slice(&self.write[..words]);
            // SAFETY: both sets are at least a whole `fd_set` and at least
            // `ceil(nfds / BITS)` words long, all the kernel reads and writes.
            let n = unsafe {
                libc::select(
                    nfds,
                    self.read_out.as_mut_ptr().cast(),
                    self.write_out.as_mut_ptr().cast(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 {
                break n as usize;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        };
        let mut bits_left = n;
        let mut dispatched = 0;
        for word in 0..words {
            if bits_left == 0 {
                break;
            }
            let (r, w) = (self.read_out[word], self.write_out[word]);
            let mut union = r | w;
            while union != 0 {
                let bit = union.trailing_zeros() as usize;
                union &= union - 1;
                let mask = 1 << bit;
                let mut events = Events::EMPTY;
                if r & mask != 0 {
                    events |= Events::READ;
                    bits_left -= 1;
                }
                if w & mask != 0 {
                    events |= Events::WRITE;
                    bits_left -= 1;
                }
                let fd = word * BITS + bit;
                f(fd as RawFd, events, self.handlers[fd]);
                dispatched += 1;
            }
        }
        Ok(dispatched)
    }
}

// ---------------------------------------------------------------------------
// mio

/// mio 1.x: `Token(fd)`, a handler table indexed by token, edge-triggered.
pub struct Mio {
    poll: mio::Poll,
    events: mio::Events,
    handlers: Vec<usize>,
}

fn interest(events: Events) -> mio::Interest {
    match (events.is_readable(), events.is_writable()) {
        (true, true) => mio::Interest::READABLE | mio::Interest::WRITABLE,
        (false, true) => mio::Interest::WRITABLE,
        _ => mio::Interest::READABLE,
    }
}

impl Driver for Mio {
    const EDGE: bool = true;

    fn open() -> io::Result<Self> {
        Ok(Mio {
            poll: mio::Poll::new()?,
            events: mio::Events::with_capacity(1024),
            handlers: Vec::new(),
        })
    }

    #[inline]
    fn register(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()> {
        self.poll.registry().register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(fd as usize),
            interest(events),
        )?;
        put(&mut self.handlers, fd, handler, 0);
        Ok(())
    }

    #[inline]
    fn modify(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()> {
        self.poll.registry().reregister(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(fd as usize),
            interest(events),
        )?;
        self.handlers[fd as usize] = handler;
        Ok(())
    }

    #[inline]
    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.poll
            .registry()
            .deregister(&mut mio::unix::SourceFd(&fd))
    }

    #[inline]
    fn select<F: FnMut(RawFd, Events, usize)>(&mut self, mut f: F) -> io::Result<usize> {
        loop {
            match self.poll.poll(&mut self.events, None) {
                Ok(()) => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
        let mut n = 0;
        for event in self.events.iter() {
            let fd = event.token().0;
            let mut ready = Events::EMPTY;
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                ready |= Events::READ;
            }
            if event.is_writable() || event.is_write_closed() || event.is_error() {
                ready |= Events::WRITE;
            }
            f(fd as RawFd, ready, self.handlers[fd]);
            n += 1;
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------
// polling

/// polling 3.x in level mode: the key is the descriptor, a handler table
/// indexed by key.
pub struct Polling {
    poller: polling::Poller,
    events: polling::Events,
    handlers: Vec<usize>,
}

fn polling_event(fd: RawFd, events: Events) -> polling::Event {
    polling::Event::new(fd as usize, events.is_readable(), events.is_writable())
}

impl Driver for Polling {
    fn open() -> io::Result<Self> {
        let poller = polling::Poller::new()?;
        assert!(poller.supports_level(), "polling has no level mode here");
        Ok(Polling {
            poller,
            events: polling::Events::with_capacity(NonZeroUsize::new(1024).unwrap()),
            handlers: Vec::new(),
        })
    }

    #[inline]
    fn register(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()> {
        // SAFETY: the fixture keeps `fd` open until after this poller is
        // dropped, and every path deletes or drops before closing.
        unsafe {
            self.poller
                .add_with_mode(fd, polling_event(fd, events), polling::PollMode::Level)?;
        }
        put(&mut self.handlers, fd, handler, 0);
        Ok(())
    }

    #[inline]
    fn modify(&mut self, fd: RawFd, events: Events, handler: usize) -> io::Result<()> {
        // SAFETY: `fd` is open (the fixture owns it) for the whole call.
        let source = unsafe { BorrowedFd::borrow_raw(fd) };
        self.poller.modify_with_mode(
            source,
            polling_event(fd, events),
            polling::PollMode::Level,
        )?;
        self.handlers[fd as usize] = handler;
        Ok(())
    }

    #[inline]
    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        // SAFETY: `fd` is open (the fixture owns it) for the whole call.
        let source = unsafe { BorrowedFd::borrow_raw(fd) };
        self.poller.delete(source)
    }

    #[inline]
    fn select<F: FnMut(RawFd, Events, usize)>(&mut self, mut f: F) -> io::Result<usize> {
        self.events.clear();
        self.poller.wait(&mut self.events, None)?;
        let mut n = 0;
        for event in self.events.iter() {
            let mut ready = Events::EMPTY;
            if event.readable {
                ready |= Events::READ;
            }
            if event.writable {
                ready |= Events::WRITE;
            }
            f(event.key as RawFd, ready, self.handlers[event.key]);
            n += 1;
        }
        Ok(n)
    }
}
