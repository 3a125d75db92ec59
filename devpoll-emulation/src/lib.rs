//! The illumos `/dev/poll` driver, emulated on Linux, so that the devpoll
//! backend (`selectors-devpoll`) runs its tests on a host that has no
//! `/dev/poll`. Test tooling only: it is no dependency of any crate.
//!
//! # How it is reached
//!
//! This package builds a shared object, `libdevpoll_emulation.so`, that a
//! test process loads with `LD_PRELOAD`. `cargo xtask devpoll` builds it
//! and sets it for the test executables only (cargo's target `runner`),
//! builds the workspace with `--cfg selectors_devpoll_emulation` (the
//! devpoll crate then builds on Linux, with illumos's ABI), and runs the
//! tests. The shared object defines the C library's `open` and `open64`
//! (for the path `/dev/poll` only), `write`, `pwrite`, `pwrite64` and
//! `ioctl` (for the descriptors of an emulated instance only), and
//! `close`, `dup2` and `dup3` (which it watches, and passes on); every
//! other call goes to the C library unchanged.
//!
//! By hand, from the workspace root (x86_64; `DEVPOLL_EMULATION=solaris`
//! in the environment emulates Oracle Solaris instead):
//!
//! ```sh
//! export RUSTFLAGS='--cfg selectors_devpoll_emulation' CARGO_TARGET_DIR=target/devpoll
//! cargo build -p devpoll-emulation
//! cargo test -p selectors-devpoll --config \
//!   "target.x86_64-unknown-linux-gnu.runner = ['env', 'LD_PRELOAD=$PWD/target/devpoll/debug/libdevpoll_emulation.so']"
//! ```
//!
//! `open` and `ioctl` are variadic in C, and Rust defines no variadic
//! function on stable: they are defined here with their optional argument
//! as a fixed third one (`mode`, `arg`). On x86_64 and aarch64 Linux, the
//! only targets this package builds for, a variadic call passes its
//! arguments exactly as a call with those fixed parameters does; `open`
//! hands `mode` on to the C library's (variadic) `open`, which reads it
//! only with `O_CREAT` or `O_TMPFILE`, as it would have.
//!
//! # What is emulated
//!
//! The driver of `usr/src/uts/common/io/devpoll.c`, rewritten from that
//! source (the module `driver` cites its lines). An instance's descriptor
//! is the write end of a pipe whose read end is closed and whose buffer is
//! full, so that `poll`, `select` or epoll see it as the driver's `dppoll`
//! answers: `POLLERR` (and another emulated instance caches it as such).
//! The rules, each tested by this package's tests (`tests/driver.rs`):
//!
//! - `write` applies its `pollfd`s in order; an entry that fails ends the
//!   write with its error, and the entries before it stay applied. The
//!   one failure an entry can meet here is a file the set cannot watch
//!   (Linux's limit on nested epoll instances, `ELOOP`), standing for the
//!   driver's failing `VOP_POLL`.
//! - Adding a cached number ORs the new events into the cached ones,
//!   across writes; only `events == POLLREMOVE` exactly removes a number
//!   (`POLLREMOVE` with other bits is an add).
//! - A number closed when it is written is cached with no file: never
//!   reported, never removed by `POLLREMOVE`, and its events are ORed into
//!   a later add at that number.
//! - `DP_POLL` is level-triggered: a ready descriptor is reported at every
//!   call. A registered descriptor closed without `POLLREMOVE` is reported
//!   `POLLNVAL` while the set has it marked as possibly ready, which the
//!   teardown of its file (its last descriptor closed) does; a new file at
//!   the number is adopted silently. A scan stopped by a full buffer
//!   resumes after the last number it reported.
//! - `dp_nfds` above twice the soft descriptor limit is clamped to it
//!   (illumos); with `DEVPOLL_EMULATION=solaris` in the environment, a
//!   `dp_nfds` at or above the limit fails with `EINVAL` and the opener
//!   owns the instance (Oracle Solaris, as poll(4D) documents it).
//! - `dp_timeout` is in milliseconds, at least one clock tick (10 ms) when
//!   positive; 0 polls; -1 waits for ever; other negatives are a deadline
//!   already past. A signal ends the wait with `EINTR` and no results.
//! - `DP_ISPOLLED` returns 1 and writes the cached events into `revents`
//!   for a number cached with a file; 0 otherwise.
//! - The first process to write to an instance or poll it owns it (the
//!   owner is kept in a page shared with forked children); any other
//!   process gets `EACCES`.
//!
//! # Deviations
//!
//! - Each process holds its own copy of the driver's state: a forked child
//!   that is not the owner cannot use the instance anyway, and one that
//!   becomes the owner (the parent never used it) starts from the empty
//!   set, as it would. A descriptor inherited through `exec` is not an
//!   instance in the new program.
//! - The teardown of a file is noticed when this process closes (or
//!   `dup2`s over) its last descriptor through the C library; not when
//!   another process drops the last one.
//! - A `POLLNVAL` result has `events` 0 (the driver leaves what its buffer
//!   held). Addresses are trusted: a bad one faults where the driver would
//!   say `EFAULT`. A descriptor beyond the process's table is one at or
//!   above Linux's `FDSize` (`/proc/self/status`).
//! - A write that adds numbers wakes one `DP_POLL` waiting on the set (the
//!   driver wakes them all). `DP_PPOLL` and `DP_EPOLLCOMPAT` fail with
//!   `ENOTSUP`: not emulated (the backend uses neither).
//! - A file's identity is its device and inode numbers, so the two ends of
//!   one pipe count as one file.
// Linux only, and only where the variadic functions can be defined as
// above; elsewhere the package is empty.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod bits;
mod driver;
mod file;
mod registry;
mod sys;

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr};
use std::os::fd::RawFd;

use sys::{errno, inside, set_errno, Inside};

/// The instance `fd` stands for, if the emulation should handle a call on
/// it (not from inside the emulation itself).
fn instance(fd: RawFd) -> Option<u64> {
    if inside() || !registry::any_live() {
        return None;
    }
    registry::instance_of(fd)
}

/// Runs `emulated` inside the emulation (signals blocked) and returns its
/// result as the C library would: the value, or -1 with `errno`.
fn emulate<T: From<i8>>(emulated: impl FnOnce(&Inside) -> Result<T, c_int>) -> T {
    let result = {
        let inside = Inside::enter();
        emulated(&inside)
    };
    result.unwrap_or_else(|err| {
        set_errno(err);
        T::from(-1)
    })
}

/// `open(2)`: an emulated instance for `/dev/poll`, else the C library's.
///
/// # Safety
///
/// As the C function: `path` is a C string.
#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    if is_devpoll(path) {
        return emulate(|_| driver::open(flags));
    }
    // SAFETY: the C library's open, with the caller's arguments.
    unsafe { sys::real_open()(path, flags, mode) }
}

/// `open64(2)`: as [`open`].
///
/// # Safety
///
/// As the C function: `path` is a C string.
#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    if is_devpoll(path) {
        return emulate(|_| driver::open(flags));
    }
    // SAFETY: the C library's open64, with the caller's arguments.
    unsafe { sys::real_open64()(path, flags, mode) }
}

/// Whether `path` is `/dev/poll`, for a call from outside the emulation.
fn is_devpoll(path: *const c_char) -> bool {
    // SAFETY: `path` is a C string (the caller's contract).
    !inside() && !path.is_null() && unsafe { CStr::from_ptr(path) } == c"/dev/poll"
}

/// `write(2)`: `dpwrite` on an emulated instance, else the C library's.
///
/// # Safety
///
/// As the C function: `buf` holds `count` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn write(
    fd: c_int,
    buf: *const c_void,
    count: libc::size_t,
) -> libc::ssize_t {
    if let Some(ino) = instance(fd) {
        // SAFETY: the caller's contract.
        return unsafe { dpwrite(ino, buf, count) };
    }
    // SAFETY: the C library's write, with the caller's arguments.
    unsafe { sys::real_write()(fd, buf, count) }
}

/// `pwrite(2)`: as [`write()`] on an emulated instance (the driver ignores
/// the offset, D 800-806).
///
/// # Safety
///
/// As the C function: `buf` holds `count` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn pwrite(
    fd: c_int,
    buf: *const c_void,
    count: libc::size_t,
    offset: libc::off_t,
) -> libc::ssize_t {
    if let Some(ino) = instance(fd) {
        // SAFETY: the caller's contract.
        return unsafe { dpwrite(ino, buf, count) };
    }
    // SAFETY: the C library's pwrite, with the caller's arguments.
    unsafe { sys::real_pwrite()(fd, buf, count, offset) }
}

/// `pwrite64(2)`: as [`pwrite`].
///
/// # Safety
///
/// As the C function: `buf` holds `count` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn pwrite64(
    fd: c_int,
    buf: *const c_void,
    count: libc::size_t,
    offset: libc::off_t,
) -> libc::ssize_t {
    if let Some(ino) = instance(fd) {
        // SAFETY: the caller's contract.
        return unsafe { dpwrite(ino, buf, count) };
    }
    // SAFETY: the C library's pwrite64, with the caller's arguments.
    unsafe { sys::real_pwrite64()(fd, buf, count, offset) }
}

/// The write of `count` bytes at `buf` to instance `ino`.
///
/// # Safety
///
/// `buf` holds `count` readable bytes.
unsafe fn dpwrite(ino: u64, buf: *const c_void, count: libc::size_t) -> libc::ssize_t {
    emulate(|_| {
        let set = registry::find(ino).ok_or(libc::EBADF)?;
        if count == 0 {
            return set.write(&[]).map(|n| n as libc::ssize_t);
        }
        if buf.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: the caller's contract.
        let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), count) };
        set.write(bytes).map(|n| n as libc::ssize_t)
    })
}

/// `ioctl(2)`: `dpioctl` on an emulated instance, else the C library's.
///
/// # Safety
///
/// As the C function: `arg` is what `request` takes.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    if let Some(ino) = instance(fd) {
        return emulate(|inside| {
            let set = registry::find(ino).ok_or(libc::EBADF)?;
            // illumos requests are `int`s.
            set.ioctl(request as u32, arg, &inside.mask)
        });
    }
    // SAFETY: the C library's ioctl, with the caller's arguments.
    unsafe { sys::real_ioctl()(fd, request, arg) }
}

/// Runs `call`, which closes or replaces descriptor `fd`, with what the
/// emulation does around that: the teardown of a file the number linked,
/// and of an instance the process no longer has a descriptor of. `call`
/// runs outside the emulation, with the caller's signal mask.
fn closing(fd: RawFd, call: impl FnOnce() -> c_int) -> c_int {
    if inside() || !registry::any_live() {
        return call();
    }
    let plan = {
        let _inside = Inside::enter();
        driver::before_close(fd)
    };
    let result = call();
    if let Some(plan) = plan {
        let saved = errno();
        {
            let _inside = Inside::enter();
            if result >= 0 {
                driver::after_close(fd, plan);
            }
        }
        set_errno(saved);
    }
    result
}

/// `close(2)`: the C library's, watched by the emulation.
///
/// # Safety
///
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    // SAFETY: the C library's close, with the caller's argument.
    closing(fd, || unsafe { sys::real_close()(fd) })
}

/// `dup2(2)`: the C library's, watched by the emulation (it closes
/// `newfd`).
///
/// # Safety
///
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn dup2(oldfd: c_int, newfd: c_int) -> c_int {
    // SAFETY: the C library's dup2, with the caller's arguments.
    let call = || unsafe { sys::real_dup2()(oldfd, newfd) };
    if oldfd == newfd {
        return call();
    }
    closing(newfd, call)
}

/// `dup3(2)`: the C library's, watched by the emulation (it closes
/// `newfd`).
///
/// # Safety
///
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn dup3(oldfd: c_int, newfd: c_int, flags: c_int) -> c_int {
    // SAFETY: the C library's dup3, with the caller's arguments.
    let call = || unsafe { sys::real_dup3()(oldfd, newfd, flags) };
    if oldfd == newfd {
        return call();
    }
    closing(newfd, call)
}
