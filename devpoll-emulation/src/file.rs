//! The kernel's side of the driver: the file behind a descriptor
//! (`getf`), its poll routine (`VOP_POLL`), and its pollhead, the list a
//! file wakes when its state changes (`pollwakeup`).
//!
//! A file is known by its device and inode numbers (the two ends of one
//! pipe share them). Its poll routine is Linux's `poll(2)` of the
//! descriptor. Its pollhead is an item of the set's own epoll instance,
//! edge-triggered on the set's cached events: Linux queues it whenever the
//! file wakes its waiters with a matching event, hang-up and error
//! included, which is the condition of `pollwakeup` (poll.c 780-781). A
//! file epoll cannot watch (a regular file: `EPERM`) has no pollhead, like
//! illumos's regular files, whose poll routine returns none.

use std::ffi::{c_int, c_short};
use std::os::fd::RawFd;

use crate::bits;
use crate::sys::errno;

/// The identity of an open file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

/// `fstat(fd)`, or `None` if `fd` is not open.
fn stat(fd: RawFd) -> Option<libc::stat> {
    // SAFETY: `stat` is plain data, written by fstat before it is read.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live `stat`; fstat fails cleanly on a closed fd.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st)
}

/// `getf`: the file behind `fd`, or `None` if `fd` is not open.
pub fn getf(fd: RawFd) -> Option<FileId> {
    stat(fd).map(|st| FileId {
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// The inode number of the pipe behind `fd`, if `fd` is a pipe: how a
/// descriptor of the emulated `/dev/poll` is recognized.
pub fn fifo_inode(fd: RawFd) -> Option<u64> {
    stat(fd)
        .filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO)
        .map(|st| st.st_ino)
}

/// `VOP_POLL`: the illumos `revents` of the file behind `fd` for illumos
/// `events` (`POLLNVAL` if `fd` was closed meanwhile).
pub fn vop_poll(fd: RawFd, events: c_short) -> c_short {
    let mut pollfd = libc::pollfd {
        fd,
        events: bits::to_linux(events),
        revents: 0,
    };
    // SAFETY: one live `pollfd`; a zero timeout never blocks. A signal
    // cannot interrupt it (the caller blocks them), so it cannot fail.
    let n = unsafe { libc::poll(&mut pollfd, 1, 0) };
    if n == 1 {
        bits::from_linux(pollfd.revents)
    } else {
        0
    }
}

/// The soft `RLIMIT_NOFILE` (`p_fno_ctl`, and what `rctl` enforces).
pub fn soft_limit() -> u64 {
    // SAFETY: `rlimit` is plain data, written by getrlimit before it is read.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid resource and a live `rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        libc::RLIM_INFINITY
    }
}

/// Whether `fd` lies beyond the process's descriptor table (`fi_nfiles`,
/// devpoll.c 885): Linux's table size, `FDSize` in `/proc/self/status`,
/// for a number that is not open (an open one is in the table).
pub fn beyond_table(fd: RawFd) -> bool {
    if fd < 0 {
        return true;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let size = status
        .lines()
        .find_map(|line| line.strip_prefix("FDSize:"))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or_else(soft_limit);
    fd as u64 >= size
}

/// What linking a file into a pollhead gives.
pub enum Linked {
    /// The file is on the pollhead: its changes wake the set.
    Yes,
    /// The file has no pollhead (epoll refuses it: `EPERM`).
    NoPollhead,
}

/// Puts the file behind `fd` on the set's pollhead (`epfd`), watching
/// illumos `events`, tagged `key`; or changes the events of the item it
/// has there already.
///
/// # Errors
///
/// epoll's refusal, other than `EPERM`: what stands for a failing
/// `VOP_POLL` (Linux's nesting limit on epoll instances gives `ELOOP`).
pub fn link(epfd: RawFd, fd: RawFd, events: c_short, key: u64) -> Result<Linked, c_int> {
    let mut event = libc::epoll_event {
        events: bits::to_epoll(events),
        u64: key,
    };
    for op in [libc::EPOLL_CTL_ADD, libc::EPOLL_CTL_MOD] {
        // SAFETY: `event` is a live `epoll_event`; epoll_ctl only reads it.
        if unsafe { libc::epoll_ctl(epfd, op, fd, &mut event) } == 0 {
            return Ok(Linked::Yes);
        }
        match errno() {
            // Already there (the same file at the same number): change it.
            libc::EEXIST => continue,
            libc::EPERM => return Ok(Linked::NoPollhead),
            err => return Err(err),
        }
    }
    Err(libc::EEXIST)
}

/// Takes the file behind `fd` off the pollhead (`pollhead_delete`). A file
/// that went away took its item with it.
pub fn unlink(epfd: RawFd, fd: RawFd) {
    // SAFETY: DEL reads no event. Failure means the item is gone already.
    unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
}

/// Whether the set's epoll instance still holds an item for the number
/// `fd` (after `fd` was closed: whether its file is still open elsewhere;
/// Linux drops an item when its file goes away). `kcmp(KCMP_EPOLL_TFD)`
/// looks it up; where that system call is missing, the `tfd:` lines of
/// `/proc/self/fdinfo/<epfd>`, with their `data:` key.
pub fn still_linked(epfd: RawFd, fd: RawFd, key: u64) -> bool {
    /// `struct kcmp_epoll_slot` of `<linux/kcmp.h>`.
    #[repr(C)]
    struct KcmpEpollSlot {
        efd: u32,
        tfd: u32,
        toff: u32,
    }
    const KCMP_EPOLL_TFD: c_int = 7;
    let slot = KcmpEpollSlot {
        efd: epfd as u32,
        tfd: fd as u32,
        toff: 0,
    };
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    // SAFETY: kcmp reads `slot`, a live `kcmp_epoll_slot`; `epfd` is open.
    let found = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid,
            pid,
            KCMP_EPOLL_TFD,
            epfd,
            &slot as *const KcmpEpollSlot,
        )
    };
    if found >= 0 {
        return true;
    }
    if errno() == libc::ENOENT {
        return false;
    }
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{epfd}")).unwrap_or_default();
    fdinfo_lists(&info, fd, key)
}

/// Whether an epoll instance's `fdinfo` lists an item for number `fd` with
/// the key `key`: a line `tfd: <fd> events: <hex> data: <hex key> …`.
fn fdinfo_lists(info: &str, fd: RawFd, key: u64) -> bool {
    info.lines().any(|line| {
        let mut words = line.split_whitespace();
        let tfd = (words.next() == Some("tfd:"))
            .then(|| words.next())
            .flatten();
        let data = words.skip_while(|&w| w != "data:").nth(1);
        tfd.and_then(|t| t.parse::<RawFd>().ok()) == Some(fd)
            && data.and_then(|d| u64::from_str_radix(d, 16).ok()) == Some(key)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_items_are_found_by_number_and_key() {
        // The format of Linux 6.
        let info = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\n\
            tfd:        4 events: 80000019 data:                4  pos:0 ino:c6b5fc sdev:9\n\
            tfd:       12 events: 80002005 data:        c0000002a  pos:0 ino:c6b5fd sdev:9\n";
        assert!(fdinfo_lists(info, 4, 4));
        assert!(fdinfo_lists(info, 12, 0xc_0000_002a));
        assert!(!fdinfo_lists(info, 12, 0x2a), "another key");
        assert!(!fdinfo_lists(info, 5, 4), "another number");
        assert!(!fdinfo_lists("", 4, 4));
    }
}
