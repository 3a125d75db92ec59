//! Signals and time: a signal storm during thousands of short selects, and
//! the precision of short timeouts.
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
//! is Unix's alone (Windows has no signals that interrupt a wait).
#![cfg(any(has_epoll, windows))]

#[macro_use]
mod util;

#[cfg(unix)]
use std::io::Read;
use std::io::Write;
#[cfg(unix)]
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
per_backend!(signal_storm, timeout_precision);
// Unix signals: no storm on Windows.
#[cfg(windows)]
per_backend!(timeout_precision);
