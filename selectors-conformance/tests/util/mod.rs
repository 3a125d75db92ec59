//! Helpers shared by the reliability tests (`differential`, `bad_input`,
//! `signals_and_time`, `scale`): one constructor per backend, the
//! [`per_backend!`] macro that instantiates a generic test for each of them,
//! the error kinds the tests compare, and descriptor helpers.
//!
//! Helpers that the backend crates' tests need too live in
//! `selectors_conformance` (`socketpair` and `is_open`, re-exported
//! here; `ready_fds`; the macro behind `per_backend!`); this module holds
//! what only these tests use.
//!
//! Each test binary includes this module with `#[macro_use] mod util;` and
//! uses a different subset of it.
//!
//! The binaries are Linux-only (they read `/proc`, and model Linux's own
//! readiness rules), so kqueue joins them only as libkqueue's emulation:
//! built with `--cfg selectors_libkqueue` (`cargo xtask ci` does, in its
//! libkqueue stage), each test also runs as `kqueue::name`. `bad_input` and
//! `signals_and_time` also run on Windows, for the select backend (the one
//! there): the helpers that read `/proc` or call Unix-only functions are
//! compiled for Unix only.
#![allow(dead_code, unused_imports, unused_macros)]

#[cfg(unix)]
use std::fs::File;
use std::io;
#[cfg(unix)]
use std::os::fd::{FromRawFd, OwnedFd};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

#[cfg(any(target_os = "linux", target_os = "android"))]
use selectors::EpollSelector;
#[cfg(unix)]
use selectors::PollSelector;
use selectors::{DefaultSelector, Error, FileObject, RawFd, Result, SelectSelector, Selector};
pub use selectors_conformance::{is_open, socketpair};
pub use selectors_conformance::{open, Kind, Quirks};
/// The one import of the FFI result check, for the helpers here and the
/// tests' own system calls.
pub use selectors_core::backend::cvt;

#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn new_epoll<F: FileObject, T>() -> Result<EpollSelector<F, T>> {
    EpollSelector::new()
}

#[cfg(unix)]
pub fn new_poll<F: FileObject, T>() -> Result<PollSelector<F, T>> {
    PollSelector::new()
}

pub fn new_select<F: FileObject, T>() -> Result<SelectSelector<F, T>> {
    SelectSelector::new()
}

/// A kqueue selector, opened after [`libkqueue_anchor`].
#[cfg(all(target_os = "linux", selectors_libkqueue))]
pub fn new_kqueue<F: FileObject, T>() -> Result<selectors::KqueueSelector<F, T>> {
    libkqueue_anchor();
    selectors::KqueueSelector::new()
}

/// Keeps one kqueue open for the rest of the process.
///
/// libkqueue deviation: besides the descriptors of each kqueue (an epoll
/// instance, a pipe whose write end is the kqueue descriptor, an eventfd),
/// it opens process-wide ones with the first kqueue: some for good, and
/// those of its monitoring thread (a socket pair, a signalfd) for as long
/// as any kqueue is open, closed by that thread a moment after the last
/// one. The tests compare the descriptors open before and after a
/// selector's life; with this kqueue open, only the selector's own
/// descriptors come and go (see [`await_fds`] for when they go). A test
/// that counts descriptors calls it first; without libkqueue it does
/// nothing.
pub fn libkqueue_anchor() {
    #[cfg(all(target_os = "linux", selectors_libkqueue))]
    {
        static ANCHOR: std::sync::OnceLock<selectors::KqueueSelector> = std::sync::OnceLock::new();
        ANCHOR.get_or_init(|| selectors::KqueueSelector::new().expect("the anchor kqueue"));
    }
}

/// The descriptors open in this process once they are `expected`, waiting
/// up to 5 s for that when `asynchronous`.
///
/// libkqueue deviation: its monitoring thread notices that a kqueue
/// descriptor was closed and only then closes the kqueue's other
/// descriptors, a moment after the selector was dropped; a kernel kqueue,
/// like every other backend, is gone when `close` returns.
#[cfg(unix)]
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

pub fn new_default<F: FileObject, T>() -> Result<DefaultSelector<F, T>> {
    DefaultSelector::new()
}

/// The default backend behind `Box<dyn Selector>`: dynamic dispatch must not
/// change a thing.
pub fn new_boxed<F: FileObject + 'static, T: 'static>() -> Result<Box<dyn Selector<F, T>>> {
    Ok(Box::new(DefaultSelector::<F, T>::new()?))
}

/// The documented differences of the backend `DefaultSelector` is here.
pub const DEFAULT: Quirks = Quirks::of(DefaultSelector::<RawFd, ()>::BACKEND);

/// Instantiates each generic test `fn name<S: Selector<..>>(new: impl Fn()
/// -> Result<S>, quirks: Quirks)` once per backend of this host, as
/// `backend::name`, with that backend's [`Quirks`].
///
/// Adding a backend is one line here (plus its `new_*` constructor above).
/// kqueue is there under `--cfg selectors_libkqueue` (see the module docs);
/// epoll and poll where they exist (on Windows: select, the default, and it
/// boxed).
macro_rules! per_backend {
    ($($test:ident),+ $(,)?) => {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        selectors_conformance::instantiate_tests!(
            epoll, [super], $crate::util::new_epoll, $crate::util::Quirks::EPOLL; $($test),+
        );
        #[cfg(unix)]
        selectors_conformance::instantiate_tests!(
            poll, [super], $crate::util::new_poll, $crate::util::Quirks::POLL; $($test),+
        );
        selectors_conformance::instantiate_tests!(
            select, [super], $crate::util::new_select, $crate::util::Quirks::SELECT; $($test),+
        );
        #[cfg(all(target_os = "linux", selectors_libkqueue))]
        selectors_conformance::instantiate_tests!(
            kqueue, [super], $crate::util::new_kqueue, $crate::util::Quirks::KQUEUE; $($test),+
        );
        selectors_conformance::instantiate_tests!(
            default_selector, [super], $crate::util::new_default, $crate::util::DEFAULT; $($test),+
        );
        selectors_conformance::instantiate_tests!(
            boxed_dyn, [super], $crate::util::new_boxed, $crate::util::DEFAULT; $($test),+
        );
    };
}

/// Takes `lock` even if a test that held it panicked (the next test must
/// still run, and report its own result).
pub fn lock(lock: &'static Mutex<()>) -> MutexGuard<'static, ()> {
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A non-blocking, close-on-exec pipe: `(read end, write end)`.
#[cfg(unix)]
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
#[cfg(unix)]
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
#[cfg(unix)]
pub fn opened_since(before: &[RawFd]) -> Vec<RawFd> {
    open_fds()
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .collect()
}

/// The soft open-file limit, raised to the hard one first.
#[cfg(unix)]
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
#[cfg(unix)]
pub fn voluntary_switches() -> i64 {
    // SAFETY: `rusage` is plain old data; all-zero is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid `who` and a pointer to a live `rusage`.
    cvt(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) }).expect("getrusage");
    usage.ru_nvcsw
}

/// The CPU time the calling thread has used so far, user and kernel
/// (`GetThreadTimes`): it grows while the thread spins, and not while it
/// sleeps in a wait, so over a stretch of waits it tells a real wait from a
/// busy loop where Windows has no count of context switches to read.
#[cfg(windows)]
pub fn thread_cpu_time() -> std::time::Duration {
    /// `FILETIME`: 100 ns units, in two halves.
    #[repr(C)]
    #[derive(Default)]
    struct FileTime {
        low: u32,
        high: u32,
    }

    impl FileTime {
        fn ticks(&self) -> u64 {
            u64::from(self.high) << 32 | u64::from(self.low)
        }
    }

    #[link(name = "kernel32")]
    extern "system" {
        fn GetCurrentThread() -> *mut std::ffi::c_void;
        fn GetThreadTimes(
            thread: *mut std::ffi::c_void,
            creation: *mut FileTime,
            exit: *mut FileTime,
            kernel: *mut FileTime,
            user: *mut FileTime,
        ) -> i32;
    }

    let [mut creation, mut exit, mut kernel, mut user] = Default::default();
    // SAFETY: `GetCurrentThread` returns a pseudo-handle that needs no
    // closing; the four pointers are to live `FILETIME`s; the result is
    // checked.
    let ok = unsafe {
        GetThreadTimes(
            GetCurrentThread(),
            &mut creation,
            &mut exit,
            &mut kernel,
            &mut user,
        )
    };
    assert_ne!(ok, 0, "GetThreadTimes: {}", io::Error::last_os_error());
    std::time::Duration::from_nanos((kernel.ticks() + user.ticks()) * 100)
}

/// Aborts the test process if it is still alive after `limit`: for the few
/// calls that block without a timeout of their own (`select(None)`,
/// `Duration::MAX`), so that a bug fails the run instead of hanging it.
/// Dropping the watchdog disarms it.
pub struct Watchdog {
    disarm: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn new(limit: std::time::Duration, what: &'static str) -> Watchdog {
        let (disarm, armed) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = armed.recv_timeout(limit) {
                eprintln!("watchdog: {what}: still blocked after {limit:?}, aborting");
                std::process::abort();
            }
        });
        Watchdog {
            disarm: Some(disarm),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.disarm.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A failed call, by kind (an OS error by its errno): what the tests
/// compare, across backends and with the model of `differential`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    InvalidEvents,
    InvalidFd,
    AlreadyRegistered,
    NotRegistered,
    FdOutOfRange,
    Closed,
    Os(i32),
}

/// The kind of `err`.
///
/// # Panics
///
/// On an error kind the tests do not know yet: add it to [`Fail`].
pub fn fail(err: &Error) -> Fail {
    match err {
        Error::InvalidEvents => Fail::InvalidEvents,
        Error::InvalidFd(_) => Fail::InvalidFd,
        Error::AlreadyRegistered(_) => Fail::AlreadyRegistered,
        Error::NotRegistered(_) => Fail::NotRegistered,
        Error::FdOutOfRange { .. } => Fail::FdOutOfRange,
        Error::Closed => Fail::Closed,
        Error::Os(err) => Fail::Os(err.raw_os_error().unwrap_or(-1)),
        other => panic!("unexpected error {other:?}: add its kind to util::Fail"),
    }
}

/// `result`, its error reduced to its kind.
pub fn outcome<T>(result: Result<T>) -> std::result::Result<T, Fail> {
    result.map_err(|e| fail(&e))
}

/// The number in the environment variable `name`, if it is set and parses.
pub fn env_number<T: FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok()?.parse().ok()
}
