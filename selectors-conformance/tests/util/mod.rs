//! Helpers shared by the cross-backend tests: one constructor per
//! backend, the [`per_backend!`] macro that instantiates a generic test for
//! each of them, the error kinds the tests compare, and descriptor
//! helpers.
//!
//! Helpers that the backend crates' tests need too live in this package's
//! library, `selectors_conformance` (`socketpair`, `is_open` and `open`,
//! re-exported here; `ready_fds`; the macro behind `per_backend!`); this
//! module holds what only these tests use.
//!
//! Every test binary but `no_alloc` includes this module (with
//! `#[macro_use]` where it uses `per_backend!`; `differential`, a directory
//! of its own, by `#[path]`), each a different subset of
//! it: `default_selector` only the default backend's constructors and
//! quirks.
//!
//! `differential`, `bad_input`, `scale` and `signals_and_time` are
//! Linux-only (they read `/proc`, and model Linux's own readiness rules),
//! so kqueue joins them only as libkqueue's emulation: built with `--cfg
//! selectors_libkqueue` (`cargo xtask ci` does, in its libkqueue stage),
//! each test also runs as `kqueue::name`. /dev/poll joins them the same
//! way, on the emulation of its driver: built with `--cfg
//! selectors_devpoll_emulation` and run with the emulation preloaded
//! (`cargo xtask devpoll`), each test also runs as `devpoll::name`, and
//! `DefaultSelector` is devpoll there. `bad_input` and
//! `signals_and_time` also run on Windows, for the select backend (the one
//! there). What only Linux has is in `linux.rs`, what only Windows has in
//! `windows.rs`; the rest compiles everywhere, for `default_selector`,
//! which runs on every platform.
#![allow(dead_code, unused_imports, unused_macros)]

use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

#[cfg(has_epoll)]
use selectors::EpollSelector;
#[cfg(unix)]
use selectors::PollSelector;
use selectors::{DefaultSelector, Error, FileObject, RawFd, Result, SelectSelector, Selector};
pub use selectors_conformance::{is_open, socketpair};
pub use selectors_conformance::{open, Kind, Quirks};

#[cfg(has_epoll)]
mod linux;
#[cfg(has_epoll)]
pub use linux::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

#[cfg(has_epoll)]
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
#[cfg(has_kqueue)]
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
    #[cfg(libkqueue)]
    {
        static ANCHOR: std::sync::OnceLock<selectors::KqueueSelector> = std::sync::OnceLock::new();
        ANCHOR.get_or_init(|| selectors::KqueueSelector::new().expect("the anchor kqueue"));
    }
}

/// A /dev/poll selector (on Linux, the emulation's: see the module docs).
#[cfg(has_devpoll)]
pub fn new_devpoll<F: FileObject, T>() -> Result<selectors::DevpollSelector<F, T>> {
    selectors::DevpollSelector::new()
}

/// The facade's `DefaultSelector`: the backend this platform chooses.
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
/// kqueue is there under `--cfg selectors_libkqueue`, devpoll under `--cfg
/// selectors_devpoll_emulation` (see the module docs); epoll and poll where
/// they exist (on Windows: select, the default, and it boxed).
macro_rules! per_backend {
    ($($test:ident),+ $(,)?) => {
        #[cfg(has_epoll)]
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
        #[cfg(has_kqueue)]
        selectors_conformance::instantiate_tests!(
            kqueue, [super], $crate::util::new_kqueue, $crate::util::Quirks::KQUEUE; $($test),+
        );
        #[cfg(has_devpoll)]
        selectors_conformance::instantiate_tests!(
            devpoll, [super], $crate::util::new_devpoll, $crate::util::Quirks::DEVPOLL; $($test),+
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
