//! What the emulation stands on: the C library's own definitions of the
//! functions it interposes, `errno`, and the guard every emulated call runs
//! under.
//!
//! Inside the emulation, calls that the interposed symbols would catch
//! (std's I/O, a stray `close`) reach the C library directly: the guard
//! marks the thread, and every interposer checks the mark first. The guard
//! also blocks signals, as a kernel runs a system call without delivering
//! them: no handler can run while the emulation holds one of its locks
//! (a handler that writes or closes would otherwise wait for it forever).
//! Only the wait of `DP_POLL` unblocks them, as the driver's
//! interruptible sleep does.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    /// Whether this thread is inside the emulation.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is inside the emulation: an interposed call made
/// from there goes straight to the C library.
pub fn inside() -> bool {
    INSIDE.with(Cell::get)
}

/// The mark of a thread inside the emulation, with its signals blocked;
/// dropping it restores both.
pub struct Inside {
    /// The thread's signal mask before, restored on drop (and used by the
    /// waits that signals interrupt).
    pub mask: libc::sigset_t,
}

impl Inside {
    /// Marks the thread and blocks its signals.
    pub fn enter() -> Inside {
        INSIDE.with(|inside| inside.set(true));
        // SAFETY: `sigset_t` is plain data, filled by sigfillset/pthread_sigmask
        // before it is read.
        let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: both point to live `sigset_t`s. Neither call can fail with
        // these arguments (SIG_BLOCK is valid; the C library leaves its own
        // signals out of a full set).
        unsafe {
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut mask);
        }
        Inside { mask }
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `enter`, a valid `sigset_t`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.mask, std::ptr::null_mut()) };
        INSIDE.with(|inside| inside.set(false));
    }
}

/// Sets `errno`.
pub fn set_errno(errno: c_int) {
    // SAFETY: `__errno_location` returns this thread's `errno`, always valid.
    unsafe { *libc::__errno_location() = errno };
}

/// The `errno` of the last failed call.
pub fn errno() -> c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Closes a descriptor of the emulation's own, past the interposed `close`.
pub fn close_own(fd: c_int) {
    // SAFETY: a plain system call on a descriptor the emulation owns; its
    // failure leaves nothing to do.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

/// The C library's definition of `name` (`dlsym(RTLD_NEXT)`), cached in
/// `cache`.
fn next_symbol(cache: &AtomicUsize, name: &CStr) -> usize {
    let found = cache.load(Ordering::Acquire);
    if found != 0 {
        return found;
    }
    // SAFETY: `name` is a C string; RTLD_NEXT asks the libraries loaded after
    // this one, the C library among them.
    let symbol = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    if symbol == 0 {
        let message = b"devpoll-emulation: the C library has no such function\n";
        // SAFETY: a plain system call writing a static buffer to stderr.
        unsafe { libc::syscall(libc::SYS_write, 2, message.as_ptr(), message.len()) };
        std::process::abort();
    }
    cache.store(symbol, Ordering::Release);
    symbol
}

/// Defines `fn $name() -> $type`: the C library's `$symbol`.
macro_rules! next {
    ($name:ident, $symbol:literal, $type:ty) => {
        pub fn $name() -> $type {
            static CACHE: AtomicUsize = AtomicUsize::new(0);
            let symbol = next_symbol(&CACHE, $symbol);
            // SAFETY: `symbol` is the C library's function of that name,
            // whose C prototype `$type` spells.
            unsafe { std::mem::transmute::<usize, $type>(symbol) }
        }
    };
}

pub type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
pub type WriteFn = unsafe extern "C" fn(c_int, *const c_void, libc::size_t) -> libc::ssize_t;
pub type PwriteFn =
    unsafe extern "C" fn(c_int, *const c_void, libc::size_t, libc::off_t) -> libc::ssize_t;
pub type IoctlFn = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;
pub type CloseFn = unsafe extern "C" fn(c_int) -> c_int;
pub type Dup2Fn = unsafe extern "C" fn(c_int, c_int) -> c_int;
pub type Dup3Fn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;

next!(real_open, c"open", OpenFn);
next!(real_open64, c"open64", OpenFn);
next!(real_write, c"write", WriteFn);
next!(real_pwrite, c"pwrite", PwriteFn);
next!(real_pwrite64, c"pwrite64", PwriteFn);
next!(real_ioctl, c"ioctl", IoctlFn);
next!(real_close, c"close", CloseFn);
next!(real_dup2, c"dup2", Dup2Fn);
next!(real_dup3, c"dup3", Dup3Fn);
