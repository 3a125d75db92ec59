//! The descriptors a workload runs on: non-blocking Unix socket pairs, and
//! the few syscall helpers every implementation's handlers share.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The descriptors of one workload.
///
/// `watched[k]` is registered (for reading, with handler `k`); writing to
/// `peer[k]` makes it readable. Pairs either lend one end to `watched` (the
/// other is only written to) or both ends (each is the other's peer), so `n`
/// watched descriptors cost `n` descriptors, not `2n`.
#[derive(Debug)]
pub struct Fixture {
    /// The descriptors to register.
    pub watched: Vec<RawFd>,
    /// Where to write to make each readable.
    pub peer: Vec<RawFd>,
    owned: Vec<OwnedFd>,
}

/// A connected, non-blocking, close-on-exec `AF_UNIX` stream pair.
fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors the call writes.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Fixture {
    /// `one_way` pairs that lend one end each (written from the other),
    /// then `two_way` descriptors (even) made of pairs that lend both ends.
    pub fn new(one_way: usize, two_way: usize) -> io::Result<Fixture> {
        let mut fx = Fixture {
            watched: Vec::with_capacity(one_way + two_way),
            peer: Vec::with_capacity(one_way + two_way),
            owned: Vec::with_capacity(2 * one_way + two_way),
        };
        for _ in 0..one_way {
            let (a, b) = socketpair()?;
            fx.watched.push(b.as_raw_fd());
            fx.peer.push(a.as_raw_fd());
            fx.owned.extend([a, b]);
        }
        for _ in 0..two_way.div_ceil(2) {
            let (a, b) = socketpair()?;
            fx.watched.extend([a.as_raw_fd(), b.as_raw_fd()]);
            fx.peer.extend([b.as_raw_fd(), a.as_raw_fd()]);
            fx.owned.extend([a, b]);
        }
        Ok(fx)
    }

    /// The number of watched descriptors.
    pub fn len(&self) -> usize {
        self.watched.len()
    }

    /// Makes every watched descriptor readable (one byte each).
    pub fn fill(&self) {
        for &peer in &self.peer {
            write_bytes(peer, 1);
        }
    }

    /// Reads every watched descriptor empty.
    pub fn drain(&self) {
        let mut buf = [0; 64];
        for &fd in &self.watched {
            while read_some(fd, &mut buf) > 0 {}
        }
    }
}

/// Writes `n` bytes (at most 64) to `fd`; the socket buffers are far larger
/// than anything a workload keeps in flight, so this never blocks or splits.
#[inline]
pub fn write_bytes(fd: RawFd, n: usize) {
    const BYTES: [u8; 64] = [b'e'; 64];
    // SAFETY: `BYTES` is valid for reads of `n <= 64` bytes.
    let ret = unsafe { libc::write(fd, BYTES.as_ptr().cast(), n) };
    assert_eq!(
        ret,
        n as isize,
        "write({fd}): {}",
        io::Error::last_os_error()
    );
}

/// Reads what `fd` has (up to `buf.len()`); 0 if nothing (`EAGAIN`).
#[inline]
pub fn read_some(fd: RawFd, buf: &mut [u8]) -> usize {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let ret = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if ret >= 0 {
        return ret as usize;
    }
    let err = io::Error::last_os_error();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "read({fd}): {err}");
    0
}

/// A readable handler's read: one `read` under level-triggered readiness;
/// under edge-triggered readiness (`edge`, a constant per driver), reads
/// until `WouldBlock`, as mio requires. Returns the bytes read.
#[inline]
pub fn consume(edge: bool, fd: RawFd, buf: &mut [u8]) -> usize {
    if edge {
        let mut total = 0;
        loop {
            match read_some(fd, buf) {
                0 => return total,
                n => total += n,
            }
        }
    } else {
        read_some(fd, buf)
    }
}

/// Raises the soft open-file limit to the hard one; returns the new limit.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: `rlimit` is plain old data; the calls only read and write it.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}
