//! The `/dev/poll` items of illumos's and Solaris's `<sys/devpoll.h>` and
//! `<sys/poll.h>`, which `libc` does not have. Their layout is pinned below
//! for both systems.
//!
//! Built for Linux under `--cfg selectors_devpoll_emulation` (the build
//! script then sets `devpoll_emulation`), these are illumos's, for the
//! emulation of its driver that the tests run on (`devpoll-emulation`):
//! the one place where that build differs from illumos's.

use std::ffi::{c_int, c_short};

/// `POLLREMOVE` (`<sys/poll.h>`): written as a descriptor's events, removes
/// it from the `/dev/poll` set.
pub(crate) const POLLREMOVE: c_short = 0x0800;

/// `struct dvpoll`: the argument of [`DP_POLL`].
///
/// Solaris declares `{ pollfd_t *dp_fds; nfds_t dp_nfds; int dp_timeout; }`;
/// illumos appends `sigset_t *dp_setp` (read by `DP_PPOLL` only: `DP_POLL`
/// copies in the fields before it, so a null pointer there is fine).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Dvpoll {
    /// Where the driver writes the ready descriptors.
    pub(crate) dp_fds: *mut libc::pollfd,
    /// How many `pollfd`s fit at `dp_fds`.
    pub(crate) dp_nfds: libc::nfds_t,
    /// Milliseconds; -1 blocks, 0 polls.
    pub(crate) dp_timeout: c_int,
    /// The signal mask of `DP_PPOLL`; null.
    #[cfg(any(target_os = "illumos", devpoll_emulation))]
    pub(crate) dp_setp: *mut libc::sigset_t,
}

impl Dvpoll {
    /// The argument of a `DP_POLL` into `nfds` entries at `fds`, waiting
    /// `timeout` milliseconds.
    pub(crate) fn new(fds: *mut libc::pollfd, nfds: libc::nfds_t, timeout: c_int) -> Dvpoll {
        Dvpoll {
            dp_fds: fds,
            dp_nfds: nfds,
            dp_timeout: timeout,
            #[cfg(any(target_os = "illumos", devpoll_emulation))]
            dp_setp: std::ptr::null_mut(),
        }
    }
}

/// The type of an ioctl request: `int` on illumos and Solaris; the C
/// library's (`unsigned long` with glibc) on Linux, for the emulation.
#[cfg(not(devpoll_emulation))]
pub(crate) type Request = c_int;
#[cfg(devpoll_emulation)]
pub(crate) type Request = libc::Ioctl;

/// `DPIOC`: the ioctl group of `/dev/poll` (`'\xd0' << 8`).
const DPIOC: Request = 0xD0 << 8;
/// `DP_POLL`: wait for events on the cached descriptors (`struct dvpoll *`).
pub(crate) const DP_POLL: Request = DPIOC | 1;
/// `DP_ISPOLLED`: is this descriptor cached, and for which events
/// (`pollfd_t *`, answered in `revents`; returns 1 if cached, else 0).
pub(crate) const DP_ISPOLLED: Request = DPIOC | 2;

static_assertions::const_assert_eq!(DP_POLL, 0xD001);
static_assertions::const_assert_eq!(DP_ISPOLLED, 0xD002);

// `pollfd_t` is `{ int fd; short events; short revents; }` on both systems.
static_assertions::const_assert_eq!(std::mem::size_of::<libc::pollfd>(), 8);

// The layout of `struct dvpoll` as the C compiler lays it out, on the 64-bit
// targets Rust supports for these systems.
#[cfg(all(target_pointer_width = "64", selectors_devpoll))]
mod layout {
    use super::Dvpoll;
    use std::mem::{offset_of, size_of};

    static_assertions::const_assert_eq!(offset_of!(Dvpoll, dp_fds), 0);
    static_assertions::const_assert_eq!(offset_of!(Dvpoll, dp_nfds), 8);
    static_assertions::const_assert_eq!(size_of::<libc::nfds_t>(), 8);
    static_assertions::const_assert_eq!(offset_of!(Dvpoll, dp_timeout), 16);
    #[cfg(any(target_os = "illumos", devpoll_emulation))]
    static_assertions::const_assert_eq!(offset_of!(Dvpoll, dp_setp), 24);
    #[cfg(any(target_os = "illumos", devpoll_emulation))]
    static_assertions::const_assert_eq!(size_of::<Dvpoll>(), 32);
    #[cfg(target_os = "solaris")]
    static_assertions::const_assert_eq!(size_of::<Dvpoll>(), 24);
}
