//! The reference model: Python's semantics of a selector over the pool,
//! with the readiness each end shows by the Linux kernel's rules, and each
//! backend's reaction where kernel interfaces legitimately differ (its
//! [`Flavour`]; see the crate docs).

use std::os::fd::RawFd;

use selectors::Events;

use crate::program::{How, Kind};
use crate::util::{Fail, Kind as Backend, Quirks};

/// Writes queued towards one end before further writes are skipped: keeps
/// every socket far below its send-buffer limit and every pipe far from full,
/// so writability never depends on buffer accounting the model does not do.
const MAX_QUEUED_WRITES: usize = 16;

/// The events in `a` but not in `b`.
fn minus(a: Events, b: Events) -> Events {
    Events::from_bits(a.bits() & !b.bits()).expect("a subset of valid events")
}

/// How a backend reacts where kernel interfaces legitimately differ (see
/// the crate docs). A new backend needs an arm in [`Flavour::of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// Forgets a file when it is closed; knows files, not numbers.
    Epoll,
    /// Polls numbers: a closed one is `POLLNVAL`.
    Poll,
    /// Polls numbers: a closed one fails the whole call with `EBADF`.
    Select,
    /// One filter per direction, on a descriptor: `close` drops them (a
    /// kernel kqueue) or strands them on the dead file (libkqueue).
    Kqueue,
}

impl Flavour {
    pub fn of(quirks: Quirks) -> Flavour {
        match quirks.kind {
            Backend::Epoll => Flavour::Epoll,
            Backend::Poll => Flavour::Poll,
            Backend::Select => Flavour::Select,
            Backend::Kqueue => Flavour::Kqueue,
            // /dev/poll caches numbers, and reacts as poll does: a closed
            // one is `POLLNVAL` from its file's teardown on (which marks it
            // for the driver's scan) until it is removed, and a new file at
            // the number is adopted (see the crate docs).
            Backend::Devpoll => Flavour::Poll,
        }
    }

    /// The kernel's poll mask as the backend turns it into events (before
    /// masking by the registered ones): Python's rule for the poll family;
    /// `select(2)`'s own sets (`POLLIN_SET`, `POLLOUT_SET` in fs/select.c),
    /// where a hang-up is readable but not writable.
    pub fn events(self, mask: u8) -> Events {
        let mut ev = Events::EMPTY;
        match self {
            // kqueue's per-filter rule (`Model::kqueue_ready`) comes to the
            // same on one file.
            Flavour::Epoll | Flavour::Poll | Flavour::Kqueue => {
                if mask & !OUT != 0 {
                    ev |= Events::READ;
                }
                if mask & !IN != 0 {
                    ev |= Events::WRITE;
                }
            }
            Flavour::Select => {
                if mask & (IN | HUP | ERR) != 0 {
                    ev |= Events::READ;
                }
                if mask & (OUT | ERR) != 0 {
                    ev |= Events::WRITE;
                }
            }
        }
        ev
    }
}

// Kernel poll bits, as far as the model needs them.
const IN: u8 = 1;
const OUT: u8 = 2;
const HUP: u8 = 4;
const ERR: u8 = 8;
const NVAL: u8 = 16;

/// What the model knows of one end of a socket pair or pipe.
#[derive(Clone, Debug)]
pub struct EndModel {
    /// The descriptor number, kept after close.
    pub fd: RawFd,
    pub open: bool,
    /// Identity of the open file (epoll watches files, not numbers).
    pub file: u64,
    /// Bytes queued for this end to read.
    pub rx: usize,
    /// Writes queued towards this end since its queue was last empty.
    pub queued_writes: usize,
    /// Sockets: `RCV_SHUTDOWN` / `SEND_SHUTDOWN` of `sk_shutdown`.
    pub rcv_shut: bool,
    pub snd_shut: bool,
    /// Sockets: `sk_err` (ECONNRESET: the peer closed with data unread).
    pub err: bool,
}

#[derive(Clone, Debug)]
pub struct SlotModel {
    pub kind: Kind,
    pub ends: [EndModel; 2],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyModel {
    pub fd: RawFd,
    pub events: Events,
    pub data: u8,
    /// The file the number named when it was registered.
    pub file: u64,
    /// kqueue: the file the filter of each direction (READ, WRITE) was
    /// added on. A kernel kqueue adds a filter to whatever file the number
    /// names at the time of the `EV_ADD`, so a `modify` after the number
    /// was reused can leave the two filters on different files.
    pub filter_files: [u64; 2],
}

/// `(fd, events, data)` of a key.
pub type KeySnap = (RawFd, Events, u8);

pub struct Model {
    flavour: Flavour,
    /// Built on libkqueue (`--cfg selectors_libkqueue`), whose kqueue
    /// differs from a kernel's where a registered descriptor is closed: see
    /// [`Model::modify`].
    libkqueue: bool,
    slots: Vec<SlotModel>,
    /// In registration order.
    pub keys: Vec<KeyModel>,
    pub closed: bool,
    next_file: u64,
    /// The number of the selector's wake-up channel, once opened.
    pub waker_fd: Option<RawFd>,
    /// A wake not yet consumed by a select.
    pub wake_pending: bool,
}

impl Model {
    /// The model of the backend `quirks` describe.
    pub fn new(quirks: Quirks) -> Model {
        Model {
            flavour: Flavour::of(quirks),
            libkqueue: quirks.libkqueue,
            slots: Vec::new(),
            keys: Vec::new(),
            closed: false,
            next_file: 0,
            waker_fd: None,
            wake_pending: false,
        }
    }

    pub fn end(&self, end: usize) -> &EndModel {
        &self.slots[end / 2].ends[end % 2]
    }

    fn end_mut(&mut self, end: usize) -> &mut EndModel {
        &mut self.slots[end / 2].ends[end % 2]
    }

    pub fn peer(end: usize) -> usize {
        end ^ 1
    }

    /// A new resource in `slot` (appended when `slot` is the next one).
    pub fn open(&mut self, slot: usize, kind: Kind, fds: [RawFd; 2]) {
        let mut ends = fds.map(|fd| EndModel {
            fd,
            open: true,
            file: 0,
            rx: 0,
            queued_writes: 0,
            rcv_shut: false,
            snd_shut: false,
            err: false,
        });
        for end in &mut ends {
            end.file = self.next_file;
            self.next_file += 1;
        }
        let model = SlotModel { kind, ends };
        if slot == self.slots.len() {
            self.slots.push(model);
        } else {
            self.slots[slot] = model;
        }
    }

    /// The open end that descriptor `fd` now names.
    pub fn owner(&self, fd: RawFd) -> Option<usize> {
        (0..self.slots.len() * 2).find(|&e| self.end(e).open && self.end(e).fd == fd)
    }

    pub fn key(&self, fd: RawFd) -> Option<&KeyModel> {
        self.keys.iter().find(|k| k.fd == fd)
    }

    fn key_mut(&mut self, fd: RawFd) -> Option<&mut KeyModel> {
        self.keys.iter_mut().find(|k| k.fd == fd)
    }

    /// The kernel's poll mask of an open end.
    pub fn mask(&self, end: usize) -> u8 {
        let me = self.end(end);
        let peer = self.end(Model::peer(end));
        match (self.slots[end / 2].kind, end % 2) {
            (Kind::Socket, _) => {
                // unix_poll(): writable while the send buffer has room (it
                // always has here), even after a shutdown or the peer's close.
                let mut mask = OUT;
                if me.rx > 0 || me.rcv_shut {
                    mask |= IN;
                }
                if me.rcv_shut && me.snd_shut {
                    mask |= HUP;
                }
                if me.err {
                    mask |= ERR;
                }
                mask
            }
            // pipe_poll(), read end: data, or no writer left.
            (Kind::Pipe, 0) => {
                let mut mask = 0;
                if me.rx > 0 {
                    mask |= IN;
                }
                if !peer.open {
                    mask |= HUP;
                }
                mask
            }
            // pipe_poll(), write end: room (always), and no reader left.
            (Kind::Pipe, _) => {
                let mut mask = OUT;
                if !peer.open {
                    mask |= ERR;
                }
                mask
            }
        }
    }

    pub fn check_open(&self) -> std::result::Result<(), Fail> {
        if self.closed {
            Err(Fail::Closed)
        } else {
            Ok(())
        }
    }

    pub fn register(
        &mut self,
        fd: RawFd,
        ev: Events,
        data: u8,
    ) -> std::result::Result<KeySnap, Fail> {
        self.check_open()?;
        if ev.is_empty() {
            return Err(Fail::InvalidEvents);
        }
        // The wake-up channel's descriptor counts as registered.
        if self.key(fd).is_some() || self.waker_fd == Some(fd) {
            return Err(Fail::AlreadyRegistered);
        }
        // Every backend refuses a closed number (epoll_ctl, or the
        // fcntl(F_GETFD) check of poll and select).
        let owner = self.owner(fd).ok_or(Fail::Os(libc::EBADF))?;
        let file = self.end(owner).file;
        self.keys.push(KeyModel {
            fd,
            events: ev,
            data,
            file,
            filter_files: [file; 2],
        });
        Ok((fd, ev, data))
    }

    pub fn modify(
        &mut self,
        fd: RawFd,
        ev: Events,
        data: Option<u8>,
    ) -> std::result::Result<KeySnap, Fail> {
        self.check_open()?;
        if ev.is_empty() {
            return Err(Fail::InvalidEvents);
        }
        let key = *self.key(fd).ok_or(Fail::NotRegistered)?;
        // kqueue: the filters `modify` adds (it deletes the others, and a
        // failed delete is ignored: the filter is gone either way).
        let added = minus(ev, key.events);
        if key.events != ev {
            match (self.owner(fd), self.flavour) {
                // Only an EV_ADD can fail: narrowing a registration whose
                // descriptor is gone succeeds.
                (_, Flavour::Kqueue) if added.is_empty() => {}
                (None, _) => return Err(Fail::Os(libc::EBADF)),
                // EPOLL_CTL_MOD looks the (file, fd) pair up: another file
                // behind the same number was never added.
                (Some(owner), Flavour::Epoll) if self.end(owner).file != key.file => {
                    return Err(Fail::Os(libc::ENOENT));
                }
                // libkqueue deviation: it keeps the filters of a closed
                // descriptor (by number), and watches files through one
                // epoll registration per number, shared by the two filters.
                // Adding a filter next to a stranded one is then an
                // EPOLL_CTL_MOD of the number, which now names a file its
                // epoll never added: ENOENT, as for epoll. (A kernel kqueue
                // dropped the stranded filter on close, and adds the new one
                // to the new file.)
                (Some(owner), Flavour::Kqueue)
                    if self.libkqueue && self.end(owner).file != key.file =>
                {
                    return Err(Fail::Os(libc::ENOENT));
                }
                _ => {}
            }
        }
        let file = self.owner(fd).map(|owner| self.end(owner).file);
        let key = self.key_mut(fd).expect("found above");
        key.events = ev;
        for (i, direction) in [Events::READ, Events::WRITE].into_iter().enumerate() {
            if let (true, Some(file)) = (added.contains(direction), file) {
                key.filter_files[i] = file;
            }
        }
        if let Some(data) = data {
            key.data = data;
        }
        Ok((key.fd, key.events, key.data))
    }

    pub fn set_data(&mut self, fd: RawFd, data: u8) -> std::result::Result<(), Fail> {
        self.check_open()?;
        self.key_mut(fd).ok_or(Fail::NotRegistered)?.data = data;
        Ok(())
    }

    pub fn unregister(&mut self, fd: RawFd) -> std::result::Result<KeySnap, Fail> {
        self.check_open()?;
        let at = self
            .keys
            .iter()
            .position(|k| k.fd == fd)
            .ok_or(Fail::NotRegistered)?;
        let key = self.keys.remove(at);
        Ok((key.fd, key.events, key.data))
    }

    pub fn get_key(&self, fd: RawFd) -> std::result::Result<KeySnap, Fail> {
        self.check_open()?;
        let key = self.key(fd).ok_or(Fail::NotRegistered)?;
        Ok((key.fd, key.events, key.data))
    }

    /// The ready list, and whether the select consumes a wake-up.
    pub fn select(&mut self) -> std::result::Result<(Vec<(RawFd, Events)>, bool), Fail> {
        self.check_open()?;
        let mut ready = Vec::new();
        for key in &self.keys {
            let mask = match (self.owner(key.fd), self.flavour) {
                (Some(owner), Flavour::Kqueue) => {
                    let ev = self.kqueue_ready(key, owner);
                    if !ev.is_empty() {
                        ready.push((key.fd, ev));
                    }
                    continue;
                }
                (None, Flavour::Kqueue) => continue,
                (Some(owner), Flavour::Epoll) if self.end(owner).file != key.file => continue,
                (Some(owner), _) => self.mask(owner),
                (None, Flavour::Epoll) => continue,
                (None, Flavour::Poll) => NVAL,
                (None, Flavour::Select) => return Err(Fail::Os(libc::EBADF)),
            };
            let ev = self.flavour.events(mask) & key.events;
            if !ev.is_empty() {
                ready.push((key.fd, ev));
            }
        }
        if self.flavour == Flavour::Kqueue && self.libkqueue {
            // libkqueue deviation: for a socket that epoll reports with
            // EPOLLERR, it reads the error into the entry's `fflags` with
            // getsockopt(SO_ERROR), which clears it: the reset is consumed
            // by the select, and the next read sees EOF instead (a kernel
            // kqueue copies `so_error` and leaves it set).
            let reported: Vec<usize> = self
                .keys
                .iter()
                .filter_map(|key| Some((key, self.owner(key.fd)?)))
                .filter(|&(key, owner)| self.kqueue_live(key, owner))
                .map(|(_, owner)| owner)
                .collect();
            for owner in reported {
                self.end_mut(owner).err = false;
            }
        }
        ready.sort_unstable_by_key(|&(fd, _)| fd);
        Ok((ready, std::mem::take(&mut self.wake_pending)))
    }

    /// What kqueue reports for `key`, whose number open end `owner` has:
    /// each filter still on that file reports its own direction, or both
    /// with `EV_EOF` (hang-up, error, or a socket's reading side shut down),
    /// masked by the registered events. (On one file this is the poll
    /// family's rule; libkqueue derives the filters from one epoll
    /// registration of the number, so it never splits them across files.)
    fn kqueue_ready(&self, key: &KeyModel, owner: usize) -> Events {
        let me = self.end(owner);
        let mask = self.mask(owner);
        let socket = self.slots[owner / 2].kind == Kind::Socket;
        let eof = mask & (HUP | ERR) != 0;
        let mut ev = Events::EMPTY;
        for (i, direction) in [Events::READ, Events::WRITE].into_iter().enumerate() {
            if !key.events.contains(direction) || key.filter_files[i] != me.file {
                continue; // no filter, or one stranded on a closed file
            }
            debug_assert!(self.kqueue_live(key, owner));
            let (fires, eof) = if direction == Events::READ {
                (mask & (IN | HUP | ERR) != 0, eof || (socket && me.rcv_shut))
            } else {
                (mask & (OUT | HUP | ERR) != 0, eof)
            };
            if fires {
                ev |= if eof { Events::ALL } else { direction };
            }
        }
        ev & key.events
    }

    /// Whether some filter of `key` watches the file open end `owner` has.
    fn kqueue_live(&self, key: &KeyModel, owner: usize) -> bool {
        let file = self.end(owner).file;
        [Events::READ, Events::WRITE]
            .into_iter()
            .zip(key.filter_files)
            .any(|(direction, f)| key.events.contains(direction) && f == file)
    }

    /// `Selector::waker`; `opened` is the descriptor the call opened, if any.
    pub fn waker(&mut self, opened: Option<RawFd>) -> std::result::Result<(), String> {
        match (self.closed, self.waker_fd, opened) {
            (true, _, None) | (false, Some(_), None) => Ok(()),
            (false, None, Some(fd)) if self.key(fd).is_some() => Err(format!(
                "the wake-up channel took fd {fd}, the number of a registration \
                 (whose descriptor was closed without unregistering)"
            )),
            (false, None, Some(fd)) => {
                self.waker_fd = Some(fd);
                Ok(())
            }
            (_, _, opened) => Err(format!("waker() opened {opened:?}")),
        }
    }

    /// `None`: the harness skips this write (the end is closed, or enough
    /// is queued already); otherwise what `write(2)` returns.
    pub fn write(&mut self, end: usize, len: usize) -> Option<std::result::Result<usize, Fail>> {
        let kind = self.slots[end / 2].kind;
        let peer = Model::peer(end);
        if !self.end(end).open {
            return None;
        }
        let blocked = match (kind, end % 2) {
            (Kind::Pipe, 0) => return Some(Err(Fail::Os(libc::EBADF))),
            (Kind::Pipe, _) => !self.end(peer).open,
            // SEND_SHUTDOWN: our shutdown(WR), the peer's shutdown(RD), or
            // the peer's close.
            (Kind::Socket, _) => self.end(end).snd_shut,
        };
        if blocked {
            return Some(Err(Fail::Os(libc::EPIPE)));
        }
        let peer = self.end_mut(peer);
        if peer.queued_writes >= MAX_QUEUED_WRITES {
            return None;
        }
        peer.queued_writes += 1;
        peer.rx += len;
        Some(Ok(len))
    }

    /// As [`Model::write`], for `read(2)` of up to `len` bytes.
    pub fn read(&mut self, end: usize, len: usize) -> Option<std::result::Result<usize, Fail>> {
        let kind = self.slots[end / 2].kind;
        let peer_open = self.end(Model::peer(end)).open;
        let me = self.end_mut(end);
        if !me.open {
            return None;
        }
        if kind == Kind::Pipe && end % 2 == 1 {
            return Some(Err(Fail::Os(libc::EBADF)));
        }
        Some(if me.rx > 0 {
            let n = len.min(me.rx);
            me.rx -= n;
            if me.rx == 0 {
                me.queued_writes = 0;
            }
            Ok(n)
        } else if me.err {
            // unix_stream_read_generic(): sock_error() reports (and clears)
            // sk_err once the queue is empty.
            me.err = false;
            Err(Fail::Os(libc::ECONNRESET))
        } else if (kind == Kind::Socket && me.rcv_shut) || (kind == Kind::Pipe && !peer_open) {
            Ok(0)
        } else {
            Err(Fail::Os(libc::EAGAIN))
        })
    }

    /// `None`: skipped (a pipe, or a closed end).
    pub fn shutdown(&mut self, end: usize, how: How) -> Option<()> {
        if self.slots[end / 2].kind != Kind::Socket || !self.end(end).open {
            return None;
        }
        let (rd, wr) = match how {
            How::Read => (true, false),
            How::Write => (false, true),
            How::Both => (true, true),
        };
        // unix_shutdown() mirrors the mode onto the peer.
        let me = self.end_mut(end);
        me.rcv_shut |= rd;
        me.snd_shut |= wr;
        let peer = self.end_mut(Model::peer(end));
        if peer.open {
            peer.snd_shut |= rd;
            peer.rcv_shut |= wr;
        }
        Some(())
    }

    /// Closes an open end (the registration, if any, stays).
    pub fn close_end(&mut self, end: usize) {
        let kind = self.slots[end / 2].kind;
        let me = self.end_mut(end);
        debug_assert!(me.open);
        me.open = false;
        let unread = std::mem::take(&mut me.rx) > 0;
        me.queued_writes = 0;
        if kind == Kind::Socket {
            // unix_release_sock(): the peer is shut down both ways, and
            // reset if we leave data unread.
            let peer = self.end_mut(Model::peer(end));
            if peer.open {
                peer.rcv_shut = true;
                peer.snd_shut = true;
                peer.err |= unread;
            }
        }
    }
}
