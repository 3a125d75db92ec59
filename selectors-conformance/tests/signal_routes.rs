//! `Signals`: chosen signals routed to a selector, with real signals sent
//! to the process and to its threads, on every backend. The dispositions
//! are process-wide: the tests of this binary take turns.
#![cfg(unix)]

#[macro_use]
mod util;

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self as nix_signal, kill, raise};
use nix::unistd::getpid;
use selectors::{Error, RawFd, Result, Selector, Signal, Signals};
use util::Quirks;

/// Dispositions are per process: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn routed<S: Selector<RawFd, ()>>(sel: &mut S, signals: &[Signal]) -> Signals {
    Signals::new(sel.waker().unwrap(), signals).unwrap()
}

/// A signal the process sends itself wakes a select that waits for ever,
/// and is reported once.
fn routes_a_signal_raised_by_the_process<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let _serial = util::lock(&SERIAL);
    let mut sel = util::open(&new, quirks);
    let signals = routed(&mut sel, &[Signal::USR1]);
    raise(nix_signal::Signal::SIGUSR1).unwrap();
    let _watchdog = util::Watchdog::new(Duration::from_secs(30), "a raised signal");
    assert!(sel.select(None).unwrap().was_woken());
    assert_eq!(signals.pending().collect::<Vec<_>>(), [Signal::USR1]);
    assert_eq!(signals.pending().count(), 0, "cleared once asked for");
}

/// A signal sent by another thread while the selecting thread waits.
fn routes_a_signal_from_another_thread<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let _serial = util::lock(&SERIAL);
    let mut sel = util::open(&new, quirks);
    let signals = routed(&mut sel, &[Signal::USR2]);
    let _watchdog = util::Watchdog::new(Duration::from_secs(30), "a signal from a thread");
    let start = Instant::now();
    let sender = thread::spawn(|| {
        thread::sleep(Duration::from_millis(100));
        kill(getpid(), nix_signal::Signal::SIGUSR2).unwrap();
    });
    assert!(sel.select(None).unwrap().was_woken());
    sender.join().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(signals.pending().collect::<Vec<_>>(), [Signal::USR2]);
}

/// Two signals (one of them twice) before one select: one wake-up, and both
/// reported, each once.
fn routes_two_signals_before_one_select<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let _serial = util::lock(&SERIAL);
    let mut sel = util::open(&new, quirks);
    let signals = routed(&mut sel, &[Signal::USR1, Signal::USR2]);
    raise(nix_signal::Signal::SIGUSR2).unwrap();
    raise(nix_signal::Signal::SIGUSR1).unwrap();
    raise(nix_signal::Signal::SIGUSR2).unwrap();
    assert!(sel
        .select(Some(Duration::from_secs(5)))
        .unwrap()
        .was_woken());
    assert!(
        !sel.select(Some(Duration::ZERO)).unwrap().was_woken(),
        "one wake-up"
    );
    assert_eq!(
        signals.pending().collect::<Vec<_>>(),
        [Signal::USR1, Signal::USR2]
    );
}

per_backend!(
    routes_a_signal_raised_by_the_process,
    routes_a_signal_from_another_thread,
    routes_two_signals_before_one_select,
);

/// The handler a test installs before routing, to see it back afterwards.
extern "C" fn count(_: libc::c_int) {
    COUNTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}
static COUNTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Dropping the routes puts back the handler the program had; a signal is
/// routed by one `Signals` at a time, and again once that one is gone.
#[test]
fn dropping_restores_the_previous_handler_and_frees_the_signal() {
    use std::sync::atomic::Ordering;

    let _serial = util::lock(&SERIAL);
    let mine = nix_signal::SigAction::new(
        nix_signal::SigHandler::Handler(count),
        nix_signal::SaFlags::empty(),
        nix_signal::SigSet::empty(),
    );
    // SAFETY: `count` only touches an atomic: async-signal-safe.
    let before = unsafe { nix_signal::sigaction(nix_signal::Signal::SIGUSR1, &mine) }.unwrap();
    let mut sel = selectors::DefaultSelector::<RawFd, ()>::new().unwrap();
    let first = routed(&mut sel, &[Signal::USR1]);
    let err = Signals::new(sel.waker().unwrap(), &[Signal::USR1]).unwrap_err();
    assert!(
        matches!(&err, Error::Os(e) if e.kind() == std::io::ErrorKind::AlreadyExists),
        "{err:?}"
    );
    let counted = COUNTED.load(Ordering::SeqCst);
    raise(nix_signal::Signal::SIGUSR1).unwrap();
    assert_eq!(
        COUNTED.load(Ordering::SeqCst),
        counted,
        "routed, not counted"
    );
    assert_eq!(first.pending().count(), 1);
    drop(first);
    raise(nix_signal::Signal::SIGUSR1).unwrap();
    assert_eq!(COUNTED.load(Ordering::SeqCst), counted + 1, "counted again");
    let second = routed(&mut sel, &[Signal::USR1]);
    drop(second);
    // SAFETY: puts back what the process had before this test.
    unsafe { nix_signal::sigaction(nix_signal::Signal::SIGUSR1, &before) }.unwrap();
}

/// Signals that cannot be caught, faults, and numbers that are no signal
/// are refused, and a refusal leaves nothing routed.
#[test]
fn refuses_what_cannot_be_routed() {
    let _serial = util::lock(&SERIAL);
    let mut sel = selectors::DefaultSelector::<RawFd, ()>::new().unwrap();
    for signal in [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        0,
        -1,
        1000,
    ] {
        let err = Signals::new(
            sel.waker().unwrap(),
            &[Signal::USR1, Signal::from_raw(signal)],
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Os(e) if e.kind() == std::io::ErrorKind::InvalidInput),
            "signal {signal}: {err:?}"
        );
    }
    // USR1 was routed, then unrouted with the refusal: free again.
    drop(routed(&mut sel, &[Signal::USR1]));
}
