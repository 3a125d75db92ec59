//! What only Linux has, for the Linux-only binaries: `/proc`, `pipe2`,
//! per-thread resource usage, and raising the open-file limit.

use std::fs::File;
use std::io;

use nix::fcntl::OFlag;
use nix::sys::resource::{getrlimit, getrusage, setrlimit, Resource, UsageWho};
use selectors::RawFd;

use super::is_open;

/// A non-blocking, close-on-exec pipe: `(read end, write end)`.
pub fn pipe() -> io::Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
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
    let (mut soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < hard {
        // Raising the soft limit up to the hard one is always permitted.
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
        soft = hard;
    }
    usize::try_from(soft).unwrap_or(usize::MAX).min(1 << 20)
}

/// Voluntary context switches of the calling thread so far: it grows by
/// (at least) one each time the thread sleeps in the kernel, and not at all
/// while it spins, so it tells a real wait from a busy loop.
pub fn voluntary_switches() -> i64 {
    getrusage(UsageWho::RUSAGE_THREAD)
        .expect("getrusage")
        .voluntary_context_switches()
}
