//! The ABI of illumos's `<sys/poll.h>` and `<sys/devpoll.h>`, and the
//! translation of poll bits between illumos and Linux.
//!
//! A program built for the emulation speaks illumos: its `pollfd`s carry
//! illumos bits, its ioctl requests are illumos's. The files behind the
//! descriptors are Linux's, polled with Linux bits. Most bits agree; the
//! ones that differ are `POLLWRNORM` (illumos: `POLLOUT`), `POLLWRBAND`
//! and `POLLRDHUP`, and illumos's `/dev/poll` flags, which Linux lacks.

use std::ffi::c_short;

// <sys/poll.h>: the events.
pub const POLLIN: c_short = 0x0001;
pub const POLLPRI: c_short = 0x0002;
pub const POLLOUT: c_short = 0x0004;
pub const POLLERR: c_short = 0x0008;
pub const POLLHUP: c_short = 0x0010;
pub const POLLNVAL: c_short = 0x0020;
pub const POLLRDNORM: c_short = 0x0040;
pub const POLLRDBAND: c_short = 0x0080;
pub const POLLWRBAND: c_short = 0x0100;
pub const POLLRDHUP: c_short = 0x4000;
// <sys/poll.h>: what only `/dev/poll` reads in `events`.
pub const POLLREMOVE: c_short = 0x0800;
pub const POLLONESHOT: c_short = 0x1000;
pub const POLLET: c_short = 0x2000;

// <sys/devpoll.h>: the ioctl requests.
pub const DPIOC: u32 = 0xD0 << 8;
pub const DP_POLL: u32 = DPIOC | 1;
pub const DP_ISPOLLED: u32 = DPIOC | 2;
pub const DP_PPOLL: u32 = DPIOC | 3;
pub const DP_EPOLLCOMPAT: u32 = DPIOC | 4;

/// illumos's `pollfd_t`: `{ int fd; short events; short revents; }`, the
/// same layout as Linux's.
pub type PollFd = libc::pollfd;

/// The size of a `pollfd_t`, the unit of a `write` to `/dev/poll`.
pub const POLLFD_SIZE: usize = std::mem::size_of::<PollFd>();

/// illumos's `dvpoll_t` up to `dp_setp`: what `DP_POLL` reads (devpoll.c
/// 1233-1235: the copy-in stops before `dp_setp`, which only `DP_PPOLL`
/// reads).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DvPoll {
    pub dp_fds: *mut PollFd,
    pub dp_nfds: libc::c_ulong,
    pub dp_timeout: libc::c_int,
}

/// The bits both systems have, as `(illumos, Linux)`.
const SHARED: [(c_short, c_short); 10] = [
    (POLLIN, libc::POLLIN),
    (POLLPRI, libc::POLLPRI),
    (POLLOUT, libc::POLLOUT),
    (POLLERR, libc::POLLERR),
    (POLLHUP, libc::POLLHUP),
    (POLLNVAL, libc::POLLNVAL),
    (POLLRDNORM, libc::POLLRDNORM),
    (POLLRDBAND, libc::POLLRDBAND),
    (POLLWRBAND, libc::POLLWRBAND),
    (POLLRDHUP, libc::POLLRDHUP),
];

/// The Linux `poll` events that watch the illumos `events` (the `/dev/poll`
/// flags have no Linux meaning and are dropped).
pub fn to_linux(events: c_short) -> c_short {
    SHARED
        .iter()
        .filter(|&&(illumos, _)| events & illumos != 0)
        .fold(0, |acc, &(_, linux)| acc | linux)
}

/// The illumos bits of a Linux `revents` (Linux's `POLLWRNORM` is illumos's
/// `POLLOUT`; `POLLMSG` has no illumos meaning, nor its other bits).
pub fn from_linux(revents: c_short) -> c_short {
    let mut bits = SHARED
        .iter()
        .filter(|&&(_, linux)| revents & linux != 0)
        .fold(0, |acc, &(illumos, _)| acc | illumos);
    if revents & libc::POLLWRNORM != 0 {
        bits |= POLLOUT;
    }
    bits
}

/// The `epoll_event` mask of a pollhead watching illumos `events`:
/// edge-triggered, so that only a change of the file wakes it, as a
/// driver's `pollwakeup` does (hang-up and error always wake, in both).
pub fn to_epoll(events: c_short) -> u32 {
    // The poll and epoll bits of Linux are the same numbers.
    let linux = u32::from(to_linux(events) as u16);
    linux | libc::EPOLLET as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_bits_translate_both_ways() {
        for (illumos, _) in SHARED {
            assert_eq!(from_linux(to_linux(illumos)), illumos, "{illumos:#x}");
        }
        assert_eq!(to_linux(POLLWRBAND), libc::POLLWRBAND);
        assert_eq!(to_linux(POLLRDHUP), libc::POLLRDHUP);
        assert_eq!(from_linux(libc::POLLWRNORM), POLLOUT);
        assert_eq!(from_linux(libc::EPOLLMSG as c_short), 0);
    }

    #[test]
    fn devpoll_flags_are_no_linux_events() {
        assert_eq!(to_linux(POLLREMOVE | POLLONESHOT | POLLET), 0);
        assert_eq!(to_linux(POLLREMOVE | POLLIN), libc::POLLIN);
        assert_eq!(
            to_epoll(POLLIN | POLLOUT),
            (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET) as u32
        );
    }

    #[test]
    fn requests_are_illumos_numbers() {
        assert_eq!(
            [DP_POLL, DP_ISPOLLED, DP_PPOLL, DP_EPOLLCOMPAT],
            [0xD001, 0xD002, 0xD003, 0xD004]
        );
        assert_eq!(POLLFD_SIZE, 8);
        assert_eq!(std::mem::size_of::<DvPoll>(), 24);
    }
}
