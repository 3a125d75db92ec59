//! What the tests share: socket pairs, a selector opened and checked
//! against its quirks, ready lists, error checks.
//!
//! What differs between Unix and Windows lives in one module per platform,
//! re-exported here under the same names: the socket pair type, the
//! raw-descriptor traits, the values no descriptor has, the errors for a
//! closed one, a connect under way, the descriptor budget of the scale
//! test, and (Unix only) the signal helpers.
//!
//! Public: the backend crates' own tests use them too.

use std::io::{self, Read, Write};
use std::time::Duration;

use selectors_core::{Error, Events, FileObject, RawFd, Result, Selector, EVENT_READ, EVENT_WRITE};

use crate::quirks::Quirks;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// A connected, non-blocking pair of stream sockets ([`Stream`]): a Unix
/// socket pair, or a TCP connection on the loopback on Windows.
pub fn socketpair() -> (Stream, Stream) {
    let (a, b) = try_socketpair().expect("socketpair");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    (a, b)
}

/// The [`Error`] inside an [`io::Error`] that one converted into (what
/// [`Selector::dispatch`] returns), if it is one.
pub fn error_of(err: &io::Error) -> Option<&Error> {
    err.get_ref()?.downcast_ref::<Error>()
}

/// `true` if `fd` is an open descriptor.
pub fn is_open(fd: RawFd) -> bool {
    selectors_core::backend::check_open(fd).is_ok()
}

/// `true` once the other end of `peer` (non-blocking, nothing sent to it)
/// is closed: end of file, or a reset if it closed with data unread. Unlike
/// [`is_open`] of its number, race-free: a closed descriptor's number may
/// already be another test's.
pub fn peer_closed(peer: &Stream) -> bool {
    match (&*peer).read(&mut [0; 1]) {
        Ok(0) => true,
        Err(err) => err.kind() == io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

/// Opens a selector with `new` and checks it is the backend `quirks`
/// describes.
pub fn open<F: FileObject, T, S: Selector<F, T>>(
    new: &impl Fn() -> Result<S>,
    quirks: Quirks,
) -> S {
    let sel = new().expect("open a selector");
    quirks.check(&sel);
    sel
}

/// The `(fd, events)` entries of a `select`, sorted by fd.
pub type ReadyList = Vec<(RawFd, Events)>;

/// The ready list of a `select`.
pub fn ready_fds<F: FileObject, T, S: Selector<F, T> + ?Sized>(
    sel: &mut S,
    timeout: Option<Duration>,
) -> ReadyList {
    let mut ready: Vec<_> = sel
        .select(timeout)
        .expect("select")
        .map(|(key, events)| (key.fd(), events))
        .collect();
    ready.sort_unstable_by_key(|&(fd, _)| fd);
    ready
}

/// `n` socket pairs, the first end of each registered for READ | WRITE
/// with a byte waiting: returns the pairs (the selector holds only their
/// numbers) and what one select must report, sorted by fd: every first
/// end, both events.
pub fn register_ready_pairs<S: Selector<RawFd, ()> + ?Sized>(
    sel: &mut S,
    n: usize,
) -> (Vec<(Stream, Stream)>, ReadyList) {
    let pairs: Vec<_> = (0..n).map(|_| socketpair()).collect();
    let mut expected = Vec::new();
    for (a, b) in &pairs {
        (&*b).write_all(b"x").unwrap();
        sel.register(a.as_raw_fd(), EVENT_READ | EVENT_WRITE, ())
            .unwrap();
        expected.push((a.as_raw_fd(), EVENT_READ | EVENT_WRITE));
    }
    expected.sort_unstable_by_key(|&(fd, _)| fd);
    (pairs, expected)
}

/// Panics unless `result` is an error that `expected` accepts; `what`
/// names the call in the message.
pub(crate) fn assert_err<T>(result: Result<T>, expected: impl Fn(&Error) -> bool, what: &str) {
    match result {
        Err(err) if expected(&err) => {}
        Err(err) => panic!("{what}: unexpected error {err:?}"),
        Ok(_) => panic!("{what}: unexpectedly succeeded"),
    }
}

/// How often a test retries when a test running in parallel took the number
/// of a descriptor it closed on purpose (rare: a retry or two at most).
pub(crate) const RACE_ATTEMPTS: usize = 20;
