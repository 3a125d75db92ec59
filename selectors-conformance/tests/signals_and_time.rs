//! Signals and time: a signal storm during thousands of short selects, the
//! interrupt check (`Selector::set_interrupt_check`) stopping or resuming a
//! select that a signal interrupts, and the precision of short timeouts.
//!
//! The signal is SIGURG, with the counting handler of the conformance suite
//! (`selectors_conformance::signals`: installed once per process,
//! without `SA_RESTART`, counting per thread), so every signal that lands
//! while a thread waits in the kernel interrupts the wait with `EINTR`.
//! Each test targets its own thread with `pthread_kill`, so the tests of
//! this binary can run in parallel.
//!
//! Linux: these tests rely on its kernel's rules, epoll and `/proc`.
//! kqueue joins in as libkqueue's emulation, under `--cfg
//! selectors_libkqueue` (see `util`).
//!
//! Windows: the timeout precision, for Winsock's select. The signal storm
//! and the interrupt check are Unix's alone (Windows has no signals that
//! interrupt a wait).
#![cfg(any(has_epoll, windows))]

#[macro_use]
mod util;

#[cfg(unix)]
use std::io::Read;
use std::io::Write;
#[cfg(unix)]
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(unix)]
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(unix)]
use selectors::Error;
use selectors::{RawFd, Result, Selector, EVENT_READ};
use selectors_conformance::AsRawFd;
#[cfg(unix)]
use selectors_conformance::{ready_fds, signals};
use util::Quirks;

/// Selects per storm (`SELECTORS_SOAK` multiplies it).
#[cfg(unix)]
const STORM_SELECTS: usize = 2000;

#[cfg(unix)]
fn soak_factor() -> usize {
    util::env_number("SELECTORS_SOAK").unwrap_or(1)
}

/// Stops the signal thread however the test ends, so that `thread::scope`
/// can join it (it would otherwise signal a thread that is unwinding).
#[cfg(unix)]
struct StopOnDrop<'a>(&'a AtomicBool);

#[cfg(unix)]
impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A thread sends SIGURG to the selecting thread about every millisecond,
/// and on request writes a byte while the selecting thread waits. The
/// selecting thread cycles through: an idle wait of 1–2 ms (must return
/// empty, never before its timeout), data already there (must be reported),
/// data arriving during the wait (must be reported, not lost to a retried
/// wait), and a zero-timeout poll. No select may fail.
#[cfg(unix)]
fn signal_storm<S: Selector<RawFd, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    signals::install(libc::SIGURG);
    let mut sel = util::open(&new, quirks);
    let (rd, wr) = util::socketpair();
    let rfd = rd.as_raw_fd();
    sel.register(rfd, EVENT_READ, ()).unwrap();
    let me = signals::current_thread();
    let stop = AtomicBool::new(false);
    let write_requested = AtomicBool::new(false);
    let sent = AtomicUsize::new(0);
    let received_before = signals::received();
    let selects = STORM_SELECTS * soak_factor();
    let idle_waits = [
        Duration::from_millis(1),
        Duration::from_micros(1500),
        Duration::from_nanos(999_999),
        Duration::from_millis(2),
    ];
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                signals::send(me, libc::SIGURG);
                sent.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
                if write_requested.swap(false, Ordering::SeqCst) {
                    (&wr).write_all(b"x").unwrap();
                }
            }
        });
        let mut byte = [0u8];
        for i in 0..selects {
            match i % 4 {
                0 | 2 => {
                    let timeout = idle_waits[(i / 4) % idle_waits.len()];
                    let start = Instant::now();
                    let n = sel.select(Some(timeout)).expect("no error").len();
                    let elapsed = start.elapsed();
                    assert_eq!(n, 0, "select {i}: nothing was ready");
                    assert!(
                        elapsed >= timeout,
                        "select {i}: {timeout:?} ended after {elapsed:?}"
                    );
                }
                1 => {
                    write_requested.store(true, Ordering::SeqCst);
                    assert_eq!(
                        ready_fds(&mut sel, Some(Duration::from_secs(5))),
                        [(rfd, EVENT_READ)],
                        "select {i}: a readiness was lost"
                    );
                    (&rd).read_exact(&mut byte).unwrap();
                    assert!(!write_requested.load(Ordering::SeqCst));
                }
                _ => {
                    // Data already there: reported at once, by a blocking
                    // and by a polling select alike.
                    (&wr).write_all(b"y").unwrap();
                    let timeout = if i % 8 == 3 {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(5)
                    };
                    assert_eq!(
                        ready_fds(&mut sel, Some(timeout)),
                        [(rfd, EVENT_READ)],
                        "select {i}"
                    );
                    (&rd).read_exact(&mut byte).unwrap();
                }
            }
        }
    });
    let received = signals::received() - received_before;
    let sent = sent.into_inner();
    // The storm really happened (under heavy load a few signals coalesce).
    assert!(
        received >= sent / 2 && received >= selects / 8,
        "{received} of {sent} signals arrived during {selects} selects"
    );
}

/// The error the stopping check of [`interrupt_check`] returns.
#[cfg(unix)]
#[derive(Debug)]
struct Stop;

#[cfg(unix)]
impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped by the interrupt check")
    }
}

#[cfg(unix)]
impl std::error::Error for Stop {}

/// The interrupt check, with real signals: SIGURG sent with `pthread_kill`
/// to the selecting thread while it waits in a `select(Some(2 s))` on an
/// idle socket.
///
/// - A check that returns `Err` ends the select promptly (well before the
///   2 s) with that very error and an empty ready list, after one call per
///   signal (one signal); the selector selects normally afterwards.
/// - A check that returns `Ok` resumes the wait: three signals, three calls,
///   and the select returns empty after the full 2 s.
/// - `set_interrupt_check` returns the check it replaces; `None` removes it
///   (the default: PEP 475's resumed wait, which the storm above tests).
///
/// The signals are sent 300 ms apart, the first 300 ms after the select
/// starts, so each lands while the thread waits in the kernel.
#[cfg(unix)]
fn interrupt_check<S: Selector<RawFd, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    const TIMEOUT: Duration = Duration::from_secs(2);
    signals::install(libc::SIGURG);
    let mut sel = util::open(&new, quirks);
    let (rd, wr) = util::socketpair();
    let rfd = rd.as_raw_fd();
    sel.register(rfd, EVENT_READ, ()).unwrap();
    let me = signals::current_thread();
    let calls = Arc::new(AtomicUsize::new(0));
    // A select with `signals` signals sent during it: its result, its
    // duration, the signals this thread received meanwhile.
    let select_signalled = |sel: &mut S, signals: usize| {
        let mut ready = vec![(-1, EVENT_READ)];
        let received = signals::received();
        let start = Instant::now();
        let result = std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..signals {
                    std::thread::sleep(Duration::from_millis(300));
                    signals::send(me, libc::SIGURG);
                }
            });
            sel.select_into(&mut ready, Some(TIMEOUT))
        });
        let elapsed = start.elapsed();
        (result, ready, elapsed, signals::received() - received)
    };

    // Err: the select stops at the first signal, with the check's error.
    let counter = Arc::clone(&calls);
    let previous = sel.set_interrupt_check(Some(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Err(Error::Os(std::io::Error::other(Stop)))
    })));
    assert!(previous.is_none(), "no check is set by default");
    let (result, ready, elapsed, received) = select_signalled(&mut sel, 1);
    let err = result.expect_err("the check's error ends the select");
    let Error::Os(err) = err else {
        panic!("not the check's error: {err:?}")
    };
    assert!(
        err.get_ref().is_some_and(|e| e.is::<Stop>()),
        "not the check's error: {err:?}"
    );
    assert!(ready.is_empty(), "an error leaves no ready list: {ready:?}");
    assert!(
        elapsed < TIMEOUT / 2,
        "the check stopped the select only after {elapsed:?}"
    );
    assert_eq!((received, calls.load(Ordering::SeqCst)), (1, 1));
    // The selector is intact: it reports readiness as before.
    (&wr).write_all(b"x").unwrap();
    assert_eq!(ready_fds(&mut sel, Some(TIMEOUT)), [(rfd, EVENT_READ)]);
    let mut byte = [0u8];
    (&rd).read_exact(&mut byte).unwrap();

    // Ok: the wait resumes after each signal, with the time left.
    calls.store(0, Ordering::SeqCst);
    let counter = Arc::clone(&calls);
    let previous = sel.set_interrupt_check(Some(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })));
    assert!(previous.is_some(), "the stopping check is handed back");
    let (result, ready, elapsed, received) = select_signalled(&mut sel, 3);
    assert_eq!(result.expect("the check resumed the wait"), 0);
    assert!(ready.is_empty());
    assert!(
        elapsed >= TIMEOUT,
        "a resumed select returned after {elapsed:?}, before its timeout"
    );
    assert!(elapsed < TIMEOUT * 3, "a resumed select took {elapsed:?}");
    assert_eq!(
        (received, calls.load(Ordering::SeqCst)),
        (3, 3),
        "(signals received, checks run)"
    );

    // Removed: the check is handed back (without it, a select resumes:
    // the storm above).
    assert!(sel.set_interrupt_check(None).is_some());
    assert!(sel.set_interrupt_check(None).is_none());
}

/// A 1 ms wait never returns before 1 ms has passed, and a zero wait never
/// blocks: it returns without sleeping (no voluntary context switch), ready
/// or not. (Windows counts no context switches: there the time bound holds
/// the polls alone, 1,000 of them in under 5 s, where a wait of Windows'
/// default 15.6 ms tick each would take 15 s.)
fn timeout_precision<S: Selector<RawFd, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = util::open(&new, quirks);
    let (rd, wr) = util::socketpair();
    sel.register(rd.as_raw_fd(), EVENT_READ, ()).unwrap();
    let one_ms = Duration::from_millis(1);
    let mut slowest = Duration::ZERO;
    for i in 0..500 {
        let start = Instant::now();
        assert_eq!(sel.select(Some(one_ms)).unwrap().len(), 0);
        let elapsed = start.elapsed();
        assert!(
            elapsed >= one_ms,
            "1 ms wait {i} returned after {elapsed:?}"
        );
        slowest = slowest.max(elapsed);
    }
    assert!(
        slowest < Duration::from_secs(2),
        "a 1 ms wait took {slowest:?}"
    );

    let calls: i64 = 1000;
    #[cfg(unix)]
    let switches = util::voluntary_switches();
    let start = Instant::now();
    for _ in 0..calls {
        assert_eq!(sel.select(Some(Duration::ZERO)).unwrap().len(), 0);
    }
    #[cfg(unix)]
    {
        let slept = util::voluntary_switches() - switches;
        assert!(
            slept < calls / 10,
            "{slept} sleeps in {calls} zero-timeout selects"
        );
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "{calls} polls took {elapsed:?}"
    );
    (&wr).write_all(b"x").unwrap();
    assert_eq!(sel.select(Some(Duration::ZERO)).unwrap().len(), 1);
}

#[cfg(unix)]
per_backend!(signal_storm, interrupt_check, timeout_precision);
// Unix signals: no storm on Windows.
#[cfg(windows)]
per_backend!(timeout_precision);
