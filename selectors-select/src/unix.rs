//! The Unix `select(2)`: growable bitmaps of `fd_set` words.

use std::io;
use std::time::Duration;

use selectors_core::backend::{cvt, to_timeval, Poller, ReadyList, WakeSlot};
use selectors_core::{Events, RawFd};

/// One word of an `fd_set`, as the platform's C headers declare it (the bit
/// of descriptor `fd` is bit `fd % BITS` of word `fd / BITS`).
#[cfg(any(target_vendor = "apple", target_os = "netbsd", target_os = "openbsd"))]
type Word = u32;
#[cfg(not(any(target_vendor = "apple", target_os = "netbsd", target_os = "openbsd")))]
type Word = libc::c_ulong;

const BITS: usize = Word::BITS as usize;
// `usize` on some targets, `c_int` on others.
#[allow(clippy::unnecessary_cast)]
const FD_SETSIZE: usize = libc::FD_SETSIZE as usize;
/// Words in a C `fd_set`: the sets never have fewer, so a pointer to them is
/// always a valid `*mut fd_set`.
const SET_WORDS: usize = FD_SETSIZE / BITS;

// The bitmap layout assumption: an `fd_set` is exactly `FD_SETSIZE` bits of
// `Word`s, and `Word` has the alignment the C type needs.
static_assertions::const_assert_eq!(
    std::mem::size_of::<libc::fd_set>(),
    SET_WORDS * std::mem::size_of::<Word>()
);
static_assertions::const_assert!(
    std::mem::align_of::<libc::fd_set>() <= std::mem::align_of::<Word>()
);

/// Whether the kernel takes sets larger than `FD_SETSIZE` (`nfds` bounded
/// only by the descriptor table).
const UNLIMITED: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd"
));

/// The bitmaps behind [`SelectSelector`](crate::SelectSelector) on Unix: its
/// [`Poller`].
#[derive(Debug)]
pub struct Select {
    read: Vec<Word>,
    write: Vec<Word>,
    /// Copies handed to the kernel, which overwrites them with the result.
    read_out: Vec<Word>,
    write_out: Vec<Word>,
    /// The largest registered descriptor, or -1.
    max_fd: RawFd,
    /// The waker's eventfd or pipe, watched in the read set.
    wake: WakeSlot,
}

#[inline]
fn split(fd: RawFd) -> (usize, Word) {
    let fd = fd as usize;
    (fd / BITS, 1 << (fd % BITS))
}

fn set_bit(words: &mut [Word], fd: RawFd, on: bool) {
    let (word, bit) = split(fd);
    if on {
        words[word] |= bit;
    } else {
        words[word] &= !bit;
    }
}

impl Select {
    fn set(&mut self, fd: RawFd, events: Events) {
        let words = (fd as usize / BITS + 1).max(SET_WORDS);
        if self.read.len() < words {
            // Growth happens here, so `wait` never allocates.
            let words = words.next_power_of_two();
            for set in [
                &mut self.read,
                &mut self.write,
                &mut self.read_out,
                &mut self.write_out,
            ] {
                set.resize(words, 0);
            }
        }
        set_bit(&mut self.read, fd, events.is_readable());
        set_bit(&mut self.write, fd, events.is_writable());
    }

    fn insert(&mut self, fd: RawFd, events: Events) {
        self.set(fd, events);
        self.max_fd = self.max_fd.max(fd);
    }

    /// The largest descriptor with a bit in either set, or -1.
    fn highest(&self) -> RawFd {
        let words = (self.max_fd as usize / BITS) + 1;
        for word in (0..words.min(self.read.len())).rev() {
            let union = self.read[word] | self.write[word];
            if union != 0 {
                return (word * BITS + (BITS - 1 - union.leading_zeros() as usize)) as RawFd;
            }
        }
        -1
    }
}

impl Poller for Select {
    const NAME: &'static str = "select";
    // select(2) sets only bits that were set on the way in, and the sets
    // hold exactly the registrations (plus the waker, never reported): what
    // `wait` reports is already masked, and never empty.
    const REPORTS_MASKED: bool = true;

    fn new() -> io::Result<Self> {
        Ok(Select {
            read: Vec::new(),
            write: Vec::new(),
            read_out: Vec::new(),
            write_out: Vec::new(),
            max_fd: -1,
            wake: WakeSlot::default(),
        })
    }

    fn fd_limit(&self) -> Option<RawFd> {
        (!UNLIMITED).then_some(FD_SETSIZE as RawFd)
    }

    fn register(&mut self, fd: RawFd, events: Events) -> io::Result<()> {
        self.insert(fd, events);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, _old: Events, new: Events) -> io::Result<()> {
        self.set(fd, new);
        Ok(())
    }

    fn unregister(&mut self, fd: RawFd, _events: Events) {
        // Only a registered `fd` has bits to clear (and clearing must not
        // grow the sets).
        if usize::try_from(fd).map_or(true, |fd| fd / BITS >= self.read.len()) {
            return;
        }
        self.set(fd, Events::EMPTY);
        if fd == self.max_fd {
            self.max_fd = self.highest();
        }
    }

    #[inline]
    fn wait(&mut self, ready: &mut ReadyList, timeout: Option<Duration>) -> io::Result<()> {
        let nfds = self.max_fd + 1;
        let words = (nfds as usize).div_ceil(BITS);
        let (read, write) = if words == 0 {
            (std::ptr::null_mut(), std::ptr::null_mut())
        } else {
            self.read_out[..words].copy_from_slice(&self.read[..words]);
            self.write_out[..words].copy_from_slice(&self.write[..words]);
            (
                self.read_out.as_mut_ptr().cast::<libc::fd_set>(),
                self.write_out.as_mut_ptr().cast::<libc::fd_set>(),
            )
        };
        let mut tv = to_timeval(timeout);
        let tv_ptr = tv
            .as_mut()
            .map_or(std::ptr::null_mut(), |tv| tv as *mut libc::timeval);
        // SAFETY: `read`/`write` are null or point to at least `SET_WORDS`
        // (a whole `fd_set`) and at least `ceil(nfds / BITS)` words, which is
        // all the kernel reads and writes; `tv_ptr` is null or points to a
        // live `timeval`.
        let n = cvt(unsafe { libc::select(nfds, read, write, std::ptr::null_mut(), tv_ptr) })?;
        if n > 0 {
            // `n` counts bits, so a descriptor in both sets counts twice.
            let mut bits_left = n as usize;
            let waker = self.wake.fd();
            let mut woken = false;
            for word in 0..words {
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
                    let fd = (word * BITS + bit) as RawFd;
                    if Some(fd) == waker {
                        woken = true;
                    } else {
                        ready.push((fd, events));
                    }
                }
                if bits_left == 0 {
                    break;
                }
            }
            if woken {
                self.wake.fire();
            }
        }
        Ok(())
    }

    fn close(&mut self) {
        if let Ok(fresh) = Select::new() {
            *self = fresh;
        }
    }

    #[inline]
    fn wake_slot(&mut self) -> Option<&mut WakeSlot> {
        Some(&mut self.wake)
    }

    fn watch_waker(&mut self, fd: RawFd) -> io::Result<()> {
        if !UNLIMITED && fd as usize >= FD_SETSIZE {
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        self.insert(fd, Events::READ);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_land_where_the_c_macros_put_them() {
        let mut words = vec![0 as Word; SET_WORDS];
        // SAFETY: `fd_set` is plain old data; all-zero is the empty set.
        let mut c_set: libc::fd_set = unsafe { std::mem::zeroed() };
        for fd in [0, 1, 31, 32, 63, 64, 100, FD_SETSIZE as RawFd - 1] {
            set_bit(&mut words, fd, true);
            // SAFETY: `fd` < FD_SETSIZE and `c_set` is a valid `fd_set`.
            unsafe { libc::FD_SET(fd, &mut c_set) };
        }
        // SAFETY: `words` has exactly the size of an `fd_set` (asserted above).
        let ours: &libc::fd_set = unsafe { &*words.as_ptr().cast::<libc::fd_set>() };
        for fd in 0..FD_SETSIZE as RawFd {
            // SAFETY: `fd` < FD_SETSIZE; both sets are valid.
            let (a, b) = unsafe { (libc::FD_ISSET(fd, ours), libc::FD_ISSET(fd, &c_set)) };
            assert_eq!(a, b, "fd {fd}");
        }
    }

    #[test]
    fn the_highest_descriptor_is_tracked_through_unregister() {
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;

        let pairs: Vec<_> = (0..3).map(|_| UnixStream::pair().unwrap()).collect();
        let mut fds: Vec<RawFd> = pairs
            .iter()
            .flat_map(|(a, b)| [a.as_raw_fd(), b.as_raw_fd()])
            .collect();
        fds.sort_unstable();
        let mut select = Select::new().unwrap();
        for &fd in &fds {
            select.register(fd, Events::READ).unwrap();
        }
        assert_eq!(select.max_fd, fds[5]);
        select.unregister(fds[5], Events::READ);
        assert_eq!(select.max_fd, fds[4]);
        select.unregister(fds[2], Events::READ);
        select.unregister(fds[4], Events::READ);
        assert_eq!(select.max_fd, fds[3]);
        for &fd in &[fds[0], fds[1], fds[3]] {
            select.unregister(fd, Events::READ);
        }
        assert_eq!(select.max_fd, -1);
    }
}
