//! The waker: it ends a blocked select, coalesces, loses no wake in a
//! race, works from a signal handler, and fails safely once its selector
//! is closed or gone.

use std::io::Write;
#[cfg(unix)]
use std::sync::Mutex;
use std::time::{Duration, Instant};

use selectors_core::{Error, RawFd, Result, Selector, EVENT_READ};

use crate::helpers::{open, ready_fds, socketpair, AsRawFd};
use crate::quirks::Quirks;

/// A thread wakes a selector blocked with no timeout; the wake-up is not a
/// key, and ready keys are still reported beside it.
pub fn test_waker_wakes_blocked_select<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (rd, wr) = socketpair();
    sel.register(rd.as_raw_fd(), EVENT_READ, ()).unwrap();
    let waker = sel.waker().unwrap();
    assert!(sel.get_map().len() == 1, "the waker is not in the map");
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            waker.wake().unwrap();
        });
        let ready = sel.select(None).unwrap();
        assert!(ready.was_woken());
        assert_eq!(ready.len(), 0);
    });
    assert!(sel.was_woken());
    assert!(start.elapsed() >= Duration::from_millis(100));
    // Consumed: the next poll is quiet.
    assert!(ready_fds(&mut sel, Some(Duration::ZERO)).is_empty());
    assert!(!sel.was_woken());
    // A wake and a ready key in the same select: both reported.
    (&wr).write_all(b"x").unwrap();
    sel.waker().unwrap().wake().unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::from_secs(5))),
        [(rd.as_raw_fd(), EVENT_READ)]
    );
    assert!(sel.was_woken());
    // Through `select_into` too.
    waker.wake().unwrap();
    let mut ready = Vec::new();
    assert_eq!(sel.select_into(&mut ready, None).unwrap(), 1);
    assert!(sel.was_woken());
}

/// A thousand wakes before a select make it return once.
pub fn test_waker_coalesces<S: Selector<RawFd, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let waker = sel.waker().unwrap();
    let clones: Vec<_> = (0..10).map(|_| waker.clone()).collect();
    for _ in 0..100 {
        for waker in &clones {
            waker.wake().unwrap();
        }
    }
    assert_eq!(sel.select(Some(Duration::from_secs(5))).unwrap().len(), 0);
    assert!(sel.was_woken());
    let start = Instant::now();
    assert_eq!(
        sel.select(Some(Duration::from_millis(50))).unwrap().len(),
        0
    );
    assert!(!sel.was_woken(), "one return for all the wakes");
    assert!(start.elapsed() >= Duration::from_millis(50));
}

/// 8 threads × 10,000 wakes racing a selecting loop: each wake, made after
/// the loop observed the thread's previous one, is observed in turn (a lost
/// wake leaves its thread waiting until its deadline, and fails).
pub fn test_waker_races_lose_nothing<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    const THREADS: usize = 8;
    const WAKES: usize = 10_000;
    let mut sel = open(&new, quirks);
    let waker = sel.waker().unwrap();
    let observed = AtomicU64::new(0);
    let finished = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for i in 0..WAKES {
                    let before = observed.load(Ordering::SeqCst);
                    waker.wake().unwrap();
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while observed.load(Ordering::SeqCst) == before {
                        if Instant::now() > deadline {
                            finished.fetch_add(THREADS, Ordering::SeqCst);
                            panic!("wake {i} of a thread was lost");
                        }
                        std::thread::yield_now();
                    }
                }
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
        let mut woken = 0u64;
        while finished.load(Ordering::SeqCst) < THREADS {
            // A timeout only so that the loop notices the end.
            let ready = sel.select(Some(Duration::from_millis(100))).unwrap();
            assert_eq!(ready.len(), 0);
            if sel.was_woken() {
                woken += 1;
                observed.fetch_add(1, Ordering::SeqCst);
            }
        }
        // Coalescing: never more returns than wakes, and at least one per
        // round of the busiest thread.
        assert!(
            woken >= WAKES as u64 && woken <= (THREADS * WAKES) as u64,
            "{woken}"
        );
    });
}

/// A SIGUSR1 handler that calls `wake()` stops a loop that waits with no
/// timeout (PEP 475 alone would resume the wait forever).
#[cfg(unix)]
pub fn test_waker_from_signal_handler<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    use std::sync::atomic::{AtomicPtr, Ordering};
    use std::sync::Once;

    use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    use nix::unistd::getpid;

    /// The waker the handler calls; tests using it are serialised.
    static TARGET: AtomicPtr<selectors_core::Waker> = AtomicPtr::new(std::ptr::null_mut());
    static SERIAL: Mutex<()> = Mutex::new(());
    static INSTALL: Once = Once::new();

    extern "C" fn on_sigusr1(_signal: libc::c_int) {
        let waker = TARGET.load(Ordering::Acquire);
        if !waker.is_null() {
            // SAFETY: TARGET only ever holds a leaked, never-freed `Waker`;
            // `wake` is async-signal-safe (an atomic load and one write).
            let _ = unsafe { &*waker }.wake();
        }
    }

    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    INSTALL.call_once(|| {
        let action = SigAction::new(
            SigHandler::Handler(on_sigusr1),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only does async-signal-safe work.
        unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction");
    });
    let mut sel = open(&new, quirks);
    let (rd, _wr) = socketpair();
    sel.register(rd.as_raw_fd(), EVENT_READ, ()).unwrap();
    // Leaked on purpose: a signal handler may still hold it after the test.
    let waker: &'static selectors_core::Waker = Box::leak(Box::new(sel.waker().unwrap()));
    TARGET.store(
        waker as *const selectors_core::Waker as *mut selectors_core::Waker,
        Ordering::Release,
    );
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            // To this process, as Ctrl-C would.
            kill(getpid(), Signal::SIGUSR1).expect("kill");
        });
        let mut rounds = 0;
        // The loop a program runs until a signal asks it to stop.
        loop {
            let ready = sel.select(None).expect("no EINTR surfaces");
            rounds += 1;
            if ready.was_woken() {
                break;
            }
            assert!(rounds < 10, "spurious returns without a wake");
        }
    });
    TARGET.store(std::ptr::null_mut(), Ordering::Release);
    assert!(start.elapsed() >= Duration::from_millis(100));
}

/// After close, and after the selector is dropped, wakers fail with `Closed`
/// instead of touching a descriptor (whose number may have been reused).
pub fn test_waker_after_close_and_drop<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let waker = sel.waker().unwrap();
    let again = sel.waker().unwrap();
    waker.wake().unwrap();
    again.wake().unwrap();
    drop(sel);
    assert!(matches!(waker.wake(), Err(Error::Closed)));
    assert!(matches!(again.wake(), Err(Error::Closed)));

    let mut sel = open(&new, quirks);
    let waker = sel.waker().unwrap();
    sel.close().unwrap();
    assert!(matches!(waker.wake(), Err(Error::Closed)));
    assert!(matches!(sel.waker(), Err(Error::Closed)));
    // Wakers are Send + Sync and outlive their selector safely.
    std::thread::spawn(move || assert!(waker.wake().is_err()))
        .join()
        .unwrap();
}
