//! The kqueue system interface, in the few shapes it comes in.
//!
//! On macOS and the BSDs it is the kernel's, through `libc`, whose `struct
//! kevent` differs per platform: FreeBSD's has `ext[4]` (64 bytes), macOS's
//! is `packed(4)`, NetBSD's `filter` and `flags` are `u32` (and
//! `EVFILT_READ` is 0 there) and its `kevent()` takes `size_t` counts. On
//! Linux built with `--cfg selectors_libkqueue` it is libkqueue's, declared
//! here: libc has no such items for Linux. The rest of the crate sees one
//! interface: [`Kevent`], [`Filter`], [`Flags`], the constants, [`change`],
//! [`kqueue`] and [`kevent`].

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use selectors_core::backend::cvt;

cfg_if::cfg_if! {
    if #[cfg(libkqueue)] {
        use std::ffi::{c_int, c_void};

        /// libkqueue's `struct kevent` on Linux (`<kqueue/sys/event.h>`):
        /// the classic BSD layout, 32 bytes on 64-bit targets.
        #[repr(C)]
        #[derive(Clone, Copy)]
        pub(crate) struct Kevent {
            pub(crate) ident: usize,
            pub(crate) filter: i16,
            pub(crate) flags: u16,
            pub(crate) fflags: u32,
            pub(crate) data: isize,
            pub(crate) udata: *mut c_void,
        }

        // The layout libkqueue's header declares, pinned: `uintptr_t ident;
        // short filter; unsigned short flags; unsigned int fflags; intptr_t
        // data; void *udata;`.
        const WORD: usize = std::mem::size_of::<usize>();
        static_assertions::const_assert_eq!(std::mem::size_of::<Kevent>(), 3 * WORD + 8);
        static_assertions::const_assert_eq!(std::mem::offset_of!(Kevent, filter), WORD);
        static_assertions::const_assert_eq!(std::mem::offset_of!(Kevent, flags), WORD + 2);
        static_assertions::const_assert_eq!(std::mem::offset_of!(Kevent, fflags), WORD + 4);
        static_assertions::const_assert_eq!(std::mem::offset_of!(Kevent, data), WORD + 8);
        static_assertions::const_assert_eq!(std::mem::offset_of!(Kevent, udata), 2 * WORD + 8);
        #[cfg(target_pointer_width = "64")]
        static_assertions::const_assert_eq!(std::mem::size_of::<Kevent>(), 32);

        /// The type of `kevent.filter`.
        pub(crate) type Filter = i16;
        /// The type of `kevent.flags`.
        pub(crate) type Flags = u16;
        /// The type of `kevent()`'s counts.
        type Count = c_int;

        pub(crate) const EVFILT_READ: Filter = -1;
        pub(crate) const EVFILT_WRITE: Filter = -2;
        pub(crate) const EV_ADD: Flags = 0x0001;
        pub(crate) const EV_DELETE: Flags = 0x0002;
        pub(crate) const EV_RECEIPT: Flags = 0x0040;
        pub(crate) const EV_ERROR: Flags = 0x4000;
        pub(crate) const EV_EOF: Flags = 0x8000;

        mod extern_fns {
            use super::Kevent;
            use std::ffi::c_int;

            // Linked by build.rs (`-lkqueue`) only under this cfg.
            extern "C" {
                pub(super) fn kqueue() -> c_int;
                pub(super) fn kevent(
                    kq: c_int,
                    changelist: *const Kevent,
                    nchanges: c_int,
                    eventlist: *mut Kevent,
                    nevents: c_int,
                    timeout: *const libc::timespec,
                ) -> c_int;
            }
        }
        use extern_fns::{kevent as raw_kevent, kqueue as raw_kqueue};
    } else {
        /// The platform's `struct kevent`.
        pub(crate) use libc::kevent as Kevent;
        use libc::kevent as raw_kevent;
        #[cfg(not(target_os = "netbsd"))]
        use libc::kqueue as raw_kqueue;
        pub(crate) use libc::{
            EVFILT_READ, EVFILT_WRITE, EV_ADD, EV_DELETE, EV_EOF, EV_ERROR, EV_RECEIPT,
        };

        cfg_if::cfg_if! {
            if #[cfg(target_os = "netbsd")] {
                /// The type of `kevent.filter` (NetBSD: `uint32_t`).
                pub(crate) type Filter = u32;
                /// The type of `kevent.flags` (NetBSD: `uint32_t`).
                pub(crate) type Flags = u32;
                /// The type of `kevent()`'s counts (NetBSD: `size_t`).
                type Count = libc::size_t;
            } else {
                /// The type of `kevent.filter`.
                pub(crate) type Filter = i16;
                /// The type of `kevent.flags`.
                pub(crate) type Flags = u16;
                /// The type of `kevent()`'s counts.
                type Count = libc::c_int;
            }
        }
    }
}

/// The filter and the trigger of the waker's user event, where the kernel
/// has `EVFILT_USER` (not under libkqueue: see `Kqueue::add_waker`).
#[cfg(not(libkqueue))]
pub(crate) use libc::{EVFILT_USER, EV_CLEAR, NOTE_TRIGGER};

/// A change list entry: `filter` on descriptor (or identifier) `ident`, with
/// action `flags`, everything else zero (so `udata` is null, and FreeBSD's
/// `ext` is empty).
#[inline]
pub(crate) fn change(ident: usize, filter: Filter, flags: Flags) -> Kevent {
    // SAFETY: `kevent` is plain old data on every platform: integers and a
    // `udata` pointer, for which all-zero (null) is valid.
    let mut kev: Kevent = unsafe { std::mem::zeroed() };
    kev.ident = ident;
    kev.filter = filter;
    kev.flags = flags;
    kev
}

/// A zeroed entry, to fill buffers with.
#[inline]
pub(crate) fn empty() -> Kevent {
    change(0, 0, 0)
}

#[cfg(not(target_os = "netbsd"))]
#[inline]
fn count(n: usize) -> Count {
    Count::try_from(n).unwrap_or(Count::MAX)
}

#[cfg(target_os = "netbsd")]
#[inline]
fn count(n: usize) -> Count {
    n
}

/// A new kqueue, close-on-exec.
///
/// # Errors
///
/// The kernel's (`EMFILE`, `ENOMEM`…).
pub(crate) fn kqueue() -> io::Result<OwnedFd> {
    // NetBSD sets the flag atomically; elsewhere (FreeBSD before `kqueuex`,
    // macOS, OpenBSD, DragonFly, libkqueue) `kqueue()` has no flags argument
    // and `fcntl` follows at once.
    #[cfg(target_os = "netbsd")]
    // SAFETY: no pointer arguments; the result is checked.
    let fd = cvt(unsafe { libc::kqueue1(libc::O_CLOEXEC) })?;
    #[cfg(not(target_os = "netbsd"))]
    // SAFETY: no arguments; the result is checked.
    let fd = cvt(unsafe { raw_kqueue() })?;
    // SAFETY: `fd` was just returned by kqueue(2), is open, and is owned by
    // nothing else.
    let kq = unsafe { OwnedFd::from_raw_fd(fd) };
    #[cfg(not(target_os = "netbsd"))]
    // SAFETY: F_SETFD on an open descriptor only sets its flags; checked.
    cvt(unsafe { libc::fcntl(kq.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    Ok(kq)
}

/// `kevent(2)`: submits `changes`, then writes up to `events.len()` entries
/// into `events` (change receipts first, then ready events) and returns how
/// many it wrote. `timeout` `None` blocks.
///
/// # Errors
///
/// The kernel's, `EINTR` included.
#[inline]
pub(crate) fn kevent(
    kq: BorrowedFd<'_>,
    changes: &[Kevent],
    events: &mut [Kevent],
    timeout: Option<&libc::timespec>,
) -> io::Result<usize> {
    let timeout = timeout.map_or(std::ptr::null(), |ts| ts as *const libc::timespec);
    // SAFETY: `kq` is an open kqueue; `changes` points to `changes.len()`
    // initialised entries the kernel only reads, `events` to `events.len()`
    // entries it may overwrite, and `count` never exceeds either length;
    // `timeout` is null or points to a live `timespec`. All of them outlive
    // the call, which keeps no pointer.
    let n = cvt(unsafe {
        raw_kevent(
            kq.as_raw_fd(),
            changes.as_ptr(),
            count(changes.len()),
            events.as_mut_ptr(),
            count(events.len()),
            timeout,
        )
    })?;
    // Non-negative after `cvt`, and at most `events.len()`.
    Ok(n as usize)
}

/// The descriptor a ready or receipt entry is about.
#[inline]
pub(crate) fn ident_fd(kev: &Kevent) -> RawFd {
    // Descriptors are registered as `fd as usize` of a non-negative `RawFd`,
    // so the cast back is lossless.
    kev.ident as RawFd
}

/// The `errno` of a receipt (`EV_ERROR` entry): 0 for success.
#[inline]
pub(crate) fn receipt_errno(kev: &Kevent) -> i32 {
    // `data` holds an errno value, which fits an `i32`; anything else would
    // be a kernel bug, reported as such rather than truncated.
    i32::try_from(kev.data).unwrap_or(libc::EOVERFLOW)
}
