//! Routing Unix signals to a selector: Python's `signal.set_wakeup_fd`,
//! made safe.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use nix::sys::signal::{self as nix_signal, SaFlags, SigAction, SigHandler, SigSet};

use crate::backend::preserving_errno;
use crate::{Error, Result, Waker};

/// A Unix signal, by its number: what [`Signals`] routes.
///
/// # Examples
///
/// ```
/// use selectors::Signal;
///
/// assert_eq!(Signal::INT.as_raw(), 2);
/// assert_eq!(Signal::from_raw(15), Signal::TERM);
/// assert_eq!(format!("{:?}", Signal::TERM), "Signal(15)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signal(libc::c_int);

impl Signal {
    /// `SIGHUP`: the terminal hung up, or "reload your configuration".
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// `SIGINT`: Ctrl-C.
    pub const INT: Signal = Signal(libc::SIGINT);
    /// `SIGQUIT`: Ctrl-\.
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// `SIGTERM`: what a service manager sends to stop a program.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// `SIGUSR1`, for the program's own use.
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// `SIGUSR2`, for the program's own use.
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    /// `SIGCHLD`: a child process stopped or ended.
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    /// `SIGWINCH`: the terminal's window changed size.
    pub const WINCH: Signal = Signal(libc::SIGWINCH);
    /// `SIGALRM`: a timer set with `alarm` or `setitimer` expired.
    pub const ALRM: Signal = Signal(libc::SIGALRM);
    /// `SIGPIPE`: a write to a pipe or socket with no reader.
    pub const PIPE: Signal = Signal(libc::SIGPIPE);

    /// The signal numbered `signal` (whether the platform has it is checked
    /// by [`Signals::new`]).
    #[must_use]
    pub const fn from_raw(signal: libc::c_int) -> Signal {
        Signal(signal)
    }

    /// Its number.
    #[must_use]
    pub const fn as_raw(self) -> libc::c_int {
        self.0
    }
}

/// One more than the largest signal number routed (the standard signals
/// are below 32 everywhere; the bit of each in [`Route::pending`] must fit
/// in 64).
const SLOTS: usize = 64;

/// What the handler of each signal finds: the routing of that signal, or
/// null. A pointer obtained from `Arc::into_raw`, released by the
/// [`Signals`] that set it once no handler can be reading it.
static ROUTES: [AtomicPtr<Route>; SLOTS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];

/// Handlers of each signal running now (any thread), so that a [`Signals`]
/// that is dropped frees its routing only once none of them can read it.
static RUNNING: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];

/// What a [`Signals`] shares with its handlers.
struct Route {
    /// Bit `n`: signal `n` arrived since the last [`Signals::pending`].
    pending: AtomicU64,
    waker: Waker,
}

/// The handler of every routed signal: records the signal and wakes the
/// selector. Async-signal-safe: atomics, and [`Waker::wake`] (an atomic
/// load and one `write` or `kevent`); `errno` is left as it was.
extern "C" fn on_signal(signal: libc::c_int) {
    let Some(slot) = usize::try_from(signal).ok().filter(|&s| s < SLOTS) else {
        return;
    };
    preserving_errno(|| {
        // Counted before the load: a `Signals` being dropped, which clears
        // the slot first and then waits for the count to fall to zero,
        // either sees this handler running or is seen by it as gone.
        RUNNING[slot].fetch_add(1, Ordering::SeqCst);
        let route = ROUTES[slot].load(Ordering::SeqCst);
        if !route.is_null() {
            // SAFETY: a non-null pointer in the table is a live `Arc<Route>`
            // (see `ROUTES`): its `Signals` frees it only after clearing the
            // slot and seeing `RUNNING[slot]` at zero, which it cannot while
            // this handler runs.
            let route = unsafe { &*route };
            route.pending.fetch_or(1 << slot, Ordering::SeqCst);
            let _ = route.waker.wake();
        }
        RUNNING[slot].fetch_sub(1, Ordering::SeqCst);
    });
}

/// Chosen signals, routed to a selector: when one arrives, its handler
/// wakes the selector (through a [`Waker`]: no second wake-up channel) and
/// records it, and the loop asks which arrived with
/// [`pending`](Signals::pending). Python's `signal.set_wakeup_fd`, without
/// `unsafe` in user code.
///
/// # What it does to other handlers
///
/// Creating it replaces the disposition of each of its signals (whatever it
/// was: the default action, ignoring, another handler) with its own, and
/// dropping it restores those dispositions. It does not call the handlers
/// it replaced. A signal can be routed by one `Signals` at a time in the
/// process: [`Signals::new`] fails for a signal that is routed already. The
/// handlers are installed with `SA_RESTART`, so other blocking system calls
/// of the program are not interrupted by these signals (a `select` is woken
/// by the waker either way).
///
/// Its handler is async-signal-safe and keeps `errno`, so the code a signal
/// interrupts sees nothing of it.
///
/// # Examples
///
/// A loop that stops on `SIGTERM` and reloads on `SIGHUP`:
///
/// ```
/// use std::time::Duration;
/// use selectors::{DefaultSelector, Selector, Signal, Signals};
///
/// let mut sel: DefaultSelector = DefaultSelector::new()?;
/// let signals = Signals::new(sel.waker()?, &[Signal::TERM, Signal::HUP])?;
/// # nix::sys::signal::raise(nix::sys::signal::Signal::SIGHUP).unwrap();
/// # nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).unwrap();
/// 'serve: loop {
///     for (key, events) in sel.select(Some(Duration::from_secs(1)))? {
///         // … serve the ready keys
/// #       let _ = (key, events);
///     }
///     for signal in signals.pending() {
///         match signal {
///             Signal::HUP => { /* reload the configuration */ }
///             _ => break 'serve, // SIGTERM: stop
///         }
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Signals {
    route: Arc<Route>,
    /// The signals routed, with the dispositions they had before.
    replaced: Vec<(Signal, SigAction)>,
}

impl Signals {
    /// Routes `signals` to the selector of `waker` (see [`Signals`]).
    ///
    /// # Errors
    ///
    /// [`Os`](Error::Os) with `AlreadyExists` for a signal routed by another
    /// `Signals`; with `InvalidInput` for a number that is no signal, for
    /// `SIGKILL` and `SIGSTOP` (which cannot be caught), and for the signals
    /// of faults (`SIGSEGV`, `SIGBUS`, `SIGFPE`, `SIGILL`, `SIGTRAP`, `SIGSYS`),
    /// after which a program cannot go on; or the kernel's refusal. Nothing
    /// is routed on error.
    pub fn new(waker: Waker, signals: &[Signal]) -> Result<Signals> {
        let route = Arc::new(Route {
            pending: AtomicU64::new(0),
            waker,
        });
        let mut routed = Signals {
            route,
            replaced: Vec::with_capacity(signals.len()),
        };
        for &signal in signals {
            // On error, dropping `routed` undoes what was done.
            routed.route(signal)?;
        }
        Ok(routed)
    }

    /// Routes one more signal: takes its slot, then installs the handler.
    fn route(&mut self, signal: Signal) -> Result<()> {
        let kind = checked(signal)?;
        let slot = signal.0 as usize;
        let ours = Arc::into_raw(Arc::clone(&self.route)).cast_mut();
        if ROUTES[slot]
            .compare_exchange(
                std::ptr::null_mut(),
                ours,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_err()
        {
            // SAFETY: `ours` came from `Arc::into_raw` just above and was
            // never stored.
            drop(unsafe { Arc::from_raw(ours) });
            return Err(Error::Os(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("signal {} is routed already", signal.0),
            )));
        }
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: `on_signal` is async-signal-safe (see there), and it is a
        // plain handler, so it is valid for any signal.
        match unsafe { nix_signal::sigaction(kind, &action) } {
            Ok(previous) => {
                self.replaced.push((signal, previous));
                Ok(())
            }
            Err(errno) => {
                release(slot);
                Err(Error::Os(errno.into()))
            }
        }
    }

    /// The signals that arrived since the last call, each once however many
    /// times it came, in increasing number; the record is cleared.
    #[must_use = "the signals are cleared once asked for"]
    pub fn pending(&self) -> PendingSignals {
        PendingSignals {
            bits: self.route.pending.swap(0, Ordering::SeqCst),
        }
    }

    /// The signals routed.
    pub fn signals(&self) -> impl Iterator<Item = Signal> + '_ {
        self.replaced.iter().map(|&(signal, _)| signal)
    }
}

/// `signal` as nix names it, if it may be routed.
fn checked(signal: Signal) -> Result<nix_signal::Signal> {
    let invalid = |why: &str| {
        Err(Error::Os(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {}: {why}", signal.0),
        )))
    };
    let Ok(kind) = nix_signal::Signal::try_from(signal.0) else {
        return invalid("no such signal");
    };
    use nix_signal::Signal as S;
    match kind {
        S::SIGKILL | S::SIGSTOP => invalid("cannot be caught"),
        S::SIGSEGV | S::SIGBUS | S::SIGFPE | S::SIGILL | S::SIGTRAP | S::SIGSYS => {
            invalid("a fault, after which the program cannot go on")
        }
        _ if signal.0 as usize >= SLOTS => invalid("out of range"),
        _ => Ok(kind),
    }
}

/// Frees slot `slot`: clears it, waits until no handler can be reading the
/// routing it held, and releases that.
fn release(slot: usize) {
    let route = ROUTES[slot].swap(std::ptr::null_mut(), Ordering::SeqCst);
    while RUNNING[slot].load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
    if !route.is_null() {
        // SAFETY: the pointer came from `Arc::into_raw` in `Signals::route`;
        // the slot no longer holds it, and no handler is reading it.
        drop(unsafe { Arc::from_raw(route) });
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for (signal, previous) in self.replaced.drain(..).rev() {
            if let Ok(kind) = nix_signal::Signal::try_from(signal.0) {
                // SAFETY: `previous` is the disposition the kernel gave back
                // when this handler was installed: putting it back is what
                // the program had before. A failure (none is expected) leaves
                // our handler, which finds the slot empty and does nothing.
                let _ = unsafe { nix_signal::sigaction(kind, &previous) };
            }
            release(signal.0 as usize);
        }
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("signals", &self.signals().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The signals that arrived, as [`Signals::pending`] returns them.
#[derive(Debug, Clone)]
pub struct PendingSignals {
    bits: u64,
}

impl Iterator for PendingSignals {
    type Item = Signal;

    fn next(&mut self) -> Option<Signal> {
        if self.bits == 0 {
            return None;
        }
        let signal = self.bits.trailing_zeros();
        self.bits &= self.bits - 1;
        Some(Signal(signal as libc::c_int))
    }
}
