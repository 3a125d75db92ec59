//! What only Linux has, for the Linux-only binaries: `/proc`, `pipe2`,
//! per-thread resource usage, and raising the open-file limit.

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use selectors::RawFd;

use super::{cvt, is_open};

/// A non-blocking, close-on-exec pipe: `(read end, write end)`.
pub fn pipe() -> io::Result<(File, File)> {
    let mut fds: [RawFd; 2] = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded: both descriptors are open and owned by nobody
    // else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(r), File::from(w)))
}

/// The descriptors open in this process, sorted (from `/proc/self/fd`).
pub fn open_fds() -> Vec<RawFd> {
    let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The listing includes the directory handle of `read_dir`, closed by now.
    let mut fds: Vec<RawFd> = listed.into_iter().filter(|&fd| is_open(fd)).collect();
    fds.sort_unstable();
    fds
}

/// The descriptors open now that were not in `before` (a listing of
/// [`open_fds`]): the ones a call made in between opened.
pub fn opened_since(before: &[RawFd]) -> Vec<RawFd> {
    open_fds()
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .collect()
}

/// The descriptors open in this process once they are `expected`, waiting
/// up to 5 s for that when `asynchronous`.
///
/// libkqueue deviation: its monitoring thread notices that a kqueue
/// descriptor was closed and only then closes the kqueue's other
/// descriptors, a moment after the selector was dropped; a kernel kqueue,
/// like every other backend, is gone when `close` returns.
pub fn await_fds(expected: &[RawFd], asynchronous: bool) -> Vec<RawFd> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let fds = open_fds();
        if !asynchronous || fds == expected || std::time::Instant::now() >= deadline {
            return fds;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The soft open-file limit, raised to the hard one first.
pub fn raise_fd_limit() -> usize {
    // SAFETY: `rlimit` is plain old data; all-zero is valid.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid resource and a pointer to a live `rlimit`.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }).expect("getrlimit");
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: as above; raising the soft limit up to the hard one is
        // always permitted.
        cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }).expect("setrlimit");
    }
    usize::try_from(limit.rlim_cur)
        .unwrap_or(usize::MAX)
        .min(1 << 20)
}

/// Voluntary context switches of the calling thread so far: it grows by
/// (at least) one each time the thread sleeps in the kernel, and not at all
/// while it spins, so it tells a real wait from a busy loop.
pub fn voluntary_switches() -> i64 {
    // SAFETY: `rusage` is plain old data; all-zero is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid `who` and a pointer to a live `rusage`.
    cvt(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) }).expect("getrusage");
    usage.ru_nvcsw
}
