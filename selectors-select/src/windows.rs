//! Winsock's `select`: socket arrays sized to the registrations.
//!
//! A Winsock `fd_set` is not a bitmap but a count followed by an array of
//! socket handles, and `select` reads exactly `fd_count` of them: the C
//! type's 64 entries (`FD_SETSIZE`) are only its default size. So each set
//! handed to the kernel is a buffer of one header word (the count, in its
//! first four bytes, then padding) and one word per socket, with the layout
//! of [`FD_SET`] (`winsock2.h`'s, as windows-sys declares it) but any length.

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use selectors_core::backend::{last_socket_error, to_micros, Poller, ReadyList, WakeSlot};
use selectors_core::{Events, RawFd};
use windows_sys::Win32::Networking::WinSock::{select, FD_SET, SOCKET, SOCKET_ERROR, TIMEVAL};

/// Winsock's `SOCKET` (`UINT_PTR`).
type Socket = SOCKET;

// The layout our buffers follow, pinned against `winsock2.h`'s `fd_set`
// (with its default `FD_SETSIZE` of 64): the count at offset 0, the sockets
// from the second word on, no alignment above a word's.
static_assertions::const_assert_eq!(std::mem::offset_of!(FD_SET, fd_count), 0);
static_assertions::const_assert_eq!(
    std::mem::offset_of!(FD_SET, fd_array),
    std::mem::size_of::<Socket>()
);
static_assertions::const_assert_eq!(
    std::mem::size_of::<FD_SET>(),
    65 * std::mem::size_of::<Socket>()
);
static_assertions::const_assert!(std::mem::align_of::<FD_SET>() <= std::mem::align_of::<Socket>());
static_assertions::const_assert_eq!(std::mem::size_of::<Socket>(), std::mem::size_of::<RawFd>());
// The longest wait `to_micros` returns fits Winsock's 32-bit seconds.
static_assertions::const_assert!(selectors_core::backend::MAX_WAIT_SECS <= i32::MAX as u64);

/// The sockets watched for one direction, in no particular order, with
/// each one's position so that removal is O(1) (`swap_remove`).
#[derive(Debug, Default)]
struct SocketList {
    sockets: Vec<Socket>,
    position: HashMap<Socket, usize>,
}

impl SocketList {
    fn insert(&mut self, socket: Socket) {
        if let std::collections::hash_map::Entry::Vacant(entry) = self.position.entry(socket) {
            entry.insert(self.sockets.len());
            self.sockets.push(socket);
        }
    }

    fn remove(&mut self, socket: Socket) {
        if let Some(at) = self.position.remove(&socket) {
            self.sockets.swap_remove(at);
            if let Some(&moved) = self.sockets.get(at) {
                self.position.insert(moved, at);
            }
        }
    }

    fn set(&mut self, socket: Socket, on: bool) {
        if on {
            self.insert(socket);
        } else {
            self.remove(socket);
        }
    }

    fn len(&self) -> usize {
        self.sockets.len()
    }
}

/// A set as `select` takes it: a header word whose first four bytes hold
/// the count, then the sockets: the layout of [`FD_SET`], with as many
/// sockets as there are. `select` rewrites it in place with the ready ones.
#[derive(Debug, Default)]
struct SetBuffer {
    words: Vec<Socket>,
}

impl SetBuffer {
    /// Room for `sockets` entries, reserved at registration so that
    /// [`fill`](Self::fill) never allocates.
    fn reserve(&mut self, sockets: usize) {
        self.words
            .reserve((sockets + 1).saturating_sub(self.words.len()));
    }

    /// Loads `sockets` and returns the set to hand to `select` (null for
    /// none, which Winsock takes as an empty set).
    fn fill(&mut self, sockets: &[Socket]) -> *mut FD_SET {
        self.words.clear();
        if sockets.is_empty() {
            return std::ptr::null_mut();
        }
        self.words.push(0);
        self.words.extend_from_slice(sockets);
        // At most the registrations, each a distinct socket: a `u32` holds
        // as many as Winsock can hand out.
        let count = u32::try_from(sockets.len()).unwrap_or(u32::MAX);
        let header = self.words.as_mut_ptr();
        // SAFETY: `header` points to the first word, which is live, aligned
        // for a `u32` and at least 4 bytes long; `fd_count` is its first four
        // bytes (asserted above).
        unsafe { header.cast::<u32>().write(count) };
        header.cast::<FD_SET>()
    }

    /// The ready sockets `select` left in the set.
    fn ready(&self) -> &[Socket] {
        let Some(header) = self.words.first() else {
            return &[];
        };
        // SAFETY: the first word is live and aligned for a `u32`; its first
        // four bytes are `fd_count`, which `fill` and then `select` wrote.
        let count = unsafe { (header as *const Socket).cast::<u32>().read() } as usize;
        // `select` never reports more sockets than it was given.
        &self.words[1..][..count.min(self.words.len() - 1)]
    }
}

/// The socket arrays behind [`SelectSelector`](crate::SelectSelector) on
/// Windows: its [`Poller`].
#[derive(Debug, Default)]
pub struct Select {
    read: SocketList,
    write: SocketList,
    read_out: SetBuffer,
    write_out: SetBuffer,
    /// Winsock reports a failed connect as an exceptional condition, which
    /// Python counts as write readiness: the write sockets again.
    except_out: SetBuffer,
    /// The ready list's index of each socket reported in this wait, to merge
    /// a socket's read and write readiness into one entry.
    merged: HashMap<Socket, usize>,
    /// The waker's receiving socket, watched in the read set.
    wake: WakeSlot,
}

impl Select {
    fn set(&mut self, fd: RawFd, events: Events) {
        let socket = fd as Socket;
        self.read.set(socket, events.is_readable());
        self.write.set(socket, events.is_writable());
        // Growth happens here, so `wait` never allocates.
        self.read_out.reserve(self.read.len());
        self.write_out.reserve(self.write.len());
        self.except_out.reserve(self.write.len());
        self.merged
            .reserve((self.read.len() + self.write.len()).saturating_sub(self.merged.len()));
    }
}

/// Records `socket` ready for `events` in `ready`. With `merged` (when more
/// than one set reported sockets, so one may be in two of them), merged with
/// its entry of this wait if it has one (`merged` says where); a socket is
/// at most once in a set, so without it there is nothing to merge.
fn report(
    merged: Option<&mut HashMap<Socket, usize>>,
    ready: &mut ReadyList,
    socket: Socket,
    events: Events,
) {
    let Some(merged) = merged else {
        ready.push((socket as RawFd, events));
        return;
    };
    if let Some(&at) = merged.get(&socket) {
        ready[at].1 |= events;
    } else {
        merged.insert(socket, ready.len());
        ready.push((socket as RawFd, events));
    }
}

impl Poller for Select {
    const NAME: &'static str = "select";
    // `select` leaves in each set only sockets that were in it, and the sets
    // hold exactly the registrations (plus the waker, never reported): what
    // `wait` reports is already masked, and never empty.
    const REPORTS_MASKED: bool = true;

    fn new() -> io::Result<Self> {
        Ok(Select::default())
    }

    fn register(&mut self, fd: RawFd, events: Events) -> io::Result<()> {
        self.set(fd, events);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, _old: Events, new: Events) -> io::Result<()> {
        self.set(fd, new);
        Ok(())
    }

    fn unregister(&mut self, fd: RawFd, _events: Events) {
        self.set(fd, Events::EMPTY);
    }

    fn wait(&mut self, ready: &mut ReadyList, timeout: Option<Duration>) -> io::Result<()> {
        let micros = to_micros(timeout);
        if self.read.len() + self.write.len() == 0 {
            // Winsock fails three empty sets with WSAEINVAL; Python sleeps.
            let (secs, micros) = micros.unwrap_or((selectors_core::backend::MAX_WAIT_SECS, 0));
            std::thread::sleep(Duration::new(secs, micros * 1000));
            return Ok(());
        }
        let read = self.read_out.fill(&self.read.sockets);
        let write = self.write_out.fill(&self.write.sockets);
        let except = self.except_out.fill(&self.write.sockets);
        let tv = micros.map(|(secs, micros)| TIMEVAL {
            // Both fit: asserted above for the seconds, and below a million
            // for the microseconds.
            tv_sec: secs as i32,
            tv_usec: micros as i32,
        });
        let tv_ptr = tv
            .as_ref()
            .map_or(std::ptr::null(), |tv| tv as *const TIMEVAL);
        // SAFETY: each set is null or a header word with its count followed
        // by that many sockets, which is all Winsock reads and writes;
        // `tv_ptr` is null or points to a live `TIMEVAL`. `nfds` is ignored.
        let n = unsafe { select(0, read, write, except, tv_ptr) };
        if n == SOCKET_ERROR {
            return Err(last_socket_error());
        }
        if n == 0 {
            return Ok(());
        }
        let (read, write, except) = (
            self.read_out.ready(),
            self.write_out.ready(),
            self.except_out.ready(),
        );
        // One set reporting (the usual case): no socket can be in two.
        let sets_reporting = [read, write, except]
            .iter()
            .filter(|set| !set.is_empty())
            .count();
        let mut merged = (sets_reporting > 1).then(|| {
            self.merged.clear();
            &mut self.merged
        });
        let waker = self.wake.fd().map(|fd| fd as Socket);
        let mut woken = false;
        for &socket in read {
            if Some(socket) == waker {
                woken = true;
            } else {
                report(merged.as_deref_mut(), ready, socket, Events::READ);
            }
        }
        // A failed connect (the exceptional set) is write readiness.
        for &socket in write.iter().chain(except) {
            report(merged.as_deref_mut(), ready, socket, Events::WRITE);
        }
        if woken {
            self.wake.fire();
        }
        Ok(())
    }

    fn close(&mut self) {
        *self = Select::default();
    }

    #[inline]
    fn wake_slot(&mut self) -> Option<&mut WakeSlot> {
        Some(&mut self.wake)
    }

    fn watch_waker(&mut self, fd: RawFd) -> io::Result<()> {
        self.set(fd, Events::READ);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_buffer_has_the_fd_set_layout() {
        let mut buffer = SetBuffer::default();
        assert!(buffer.fill(&[]).is_null());
        assert!(buffer.ready().is_empty());
        let sockets: Vec<Socket> = (1..=100).map(|s| s * 4).collect();
        let set = buffer.fill(&sockets);
        // SAFETY: `fill` returned a buffer of a header and 100 sockets.
        let (count, first) = unsafe { ((*set).fd_count, (*set).fd_array[0]) };
        assert_eq!((count, first), (100, 4));
        assert_eq!(buffer.ready(), &sockets[..]);
    }

    #[test]
    fn socket_lists_remove_in_constant_time_and_keep_the_rest() {
        let mut list = SocketList::default();
        for socket in [8, 12, 16, 20] {
            list.insert(socket);
        }
        list.insert(12);
        assert_eq!(list.len(), 4);
        list.remove(8);
        list.remove(99);
        let mut left = list.sockets.clone();
        left.sort_unstable();
        assert_eq!(left, [12, 16, 20]);
        for (&socket, &at) in &list.position {
            assert_eq!(list.sockets[at], socket);
        }
    }
}
