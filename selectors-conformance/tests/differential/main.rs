//! Differential, model-based property tests.
//!
//! `proptest` generates random programs over a pool of socket pairs and
//! pipes: register, modify (events, data, both, nothing), unregister,
//! `get_key`, `get_key_mut`, reads and writes, shutdowns, closing an end
//! (after unregistering it, or not), replacing a closed resource by a new
//! one (which reuses the descriptor numbers), `select` and `select_into`
//! with a zero timeout, `waker()` and `wake()`, and closing the selector.
//! Descriptor numbers are small, or placed across a word of select(2)'s
//! bitmaps, across `FD_SETSIZE`, or far above (see [`Program::floors`](program::Program::floors)).
//!
//! Every backend runs every program (one seed per process, shared by the
//! backends), and after each step its answer (key, ready list, `was_woken`,
//! error kind) and its key map must equal what a reference model of
//! Python's semantics predicts: a map of fd → key, and the readiness each
//! end shows given the bytes written and read, the shutdowns and the closed
//! ends (the rules of `unix_poll` and `pipe_poll` in the Linux kernel). A
//! divergence fails with the shrunk program, one operation per line and
//! then on one line, ready to paste into [`FIXED_PROGRAMS`].
//!
//! The tests are in this file; [`program`] holds the programs and their
//! strategies, [`model`] the model, and [`harness`] what runs a program on
//! a real selector and compares it with the model.
//!
//! # Closing a registered descriptor
//!
//! Closing a descriptor that is still registered is a caller's mistake that
//! each kernel interface answers differently, and the backends pass that
//! through, as CPython does. The model predicts it per backend (its
//! [`Flavour`](model::Flavour)) instead of the generator avoiding it, so
//! the programs keep exercising the bookkeeping around stale registrations:
//!
//! | after `close(fd)` without unregistering | epoll | poll, /dev/poll³ | select | kqueue |
//! |---|---|---|---|---|
//! | `select`, number still free | not reported | `POLLNVAL`: ready, both events | fails with `EBADF` | not reported |
//! | `select`, number reused by another file | not reported | the new file's readiness | the new file's readiness | not reported¹ |
//! | `modify` of the events, number free | `EBADF` | `EBADF` | `EBADF` | `EBADF` if it adds a direction, else succeeds |
//! | `modify` of the events, number reused | `ENOENT` | succeeds | succeeds | libkqueue: `ENOENT` if it adds a direction, else succeeds² |
//! | `modify` of the data only, `get_key`, `unregister` | succeed | succeed | succeed | succeed |
//! | `register` of the reused number | `AlreadyRegistered` | `AlreadyRegistered` | `AlreadyRegistered` | `AlreadyRegistered` |
//!
//! kqueue has one filter per direction, and `modify` only adds and deletes
//! filters; a delete that fails is ignored (the filter is gone either way),
//! so only a `modify` that adds a direction can fail. ¹ Until a `modify`
//! adds a direction, which a kernel kqueue adds to the new file: that
//! direction then reports the new file's readiness. ² libkqueue (the only
//! kqueue these Linux-only tests run) strands the filters of a closed
//! descriptor instead of dropping them, and the add fails; a kernel kqueue
//! succeeds. One more libkqueue deviation shows here: a `select` that
//! reports a socket's error clears it (see [`Model::select`](model::Model::select)).
//!
//! ³ /dev/poll, on the emulation of its driver (the only /dev/poll these
//! tests run): the driver reports a cached number whose descriptor is
//! closed as `POLLNVAL` while it has the number marked as possibly ready,
//! which the file's teardown (its last descriptor closed) does, until a
//! `POLLREMOVE`; it adopts a new file at the number silently.
//!
//! One more difference is the kernels' own, not about closing: select(2)
//! counts a hang-up as readable only (`POLLIN_SET`), where Python's rule for
//! the poll family makes it both readable and writable; it shows on a
//! pipe's read end registered for WRITE after the writer closed.
//!
//! In every case the key map stays exact, a failed call changes nothing, and
//! `unregister` cleans up. The named tests at the end of this file pin each
//! row with concrete expectations, independent of the model.
//!
//! Because a stale number can be taken by any descriptor the process opens,
//! the tests of this binary run one at a time (`SERIAL`), so that every
//! descriptor opened while a program runs is the program's own.
//!
//! # Case count
//!
//! `PROPTEST_CASES` programs per backend (default 2,000); `cargo xtask soak`
//! runs 100 times more.
//!
//! Linux only: these tests rely on its kernel's rules, epoll and
//! `/proc`. kqueue joins in as libkqueue's emulation, under `--cfg
//! selectors_libkqueue`, and /dev/poll as the emulation of its
//! driver, under `--cfg selectors_devpoll_emulation` (see `util`).
#![cfg(has_epoll)]

#[macro_use]
#[path = "../util/mod.rs"]
mod util;

mod harness;
mod model;
mod program;

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use selectors::{Events, Result, Selector};

use harness::{renumber, run_program, snap, with_selector, Obj};
use program::{parse_program, program_strategy, Program};
use util::{outcome, Fail, Kind, Quirks};

/// Every test of this binary holds it: see the module docs.
static SERIAL: Mutex<()> = Mutex::new(());

/// `PROPTEST_CASES`, or 2,000.
fn cases() -> u32 {
    util::env_number("PROPTEST_CASES").unwrap_or(2000)
}

/// One seed for the whole process (`PROPTEST_RNG_SEED`, or the clock), so
/// that every backend runs the same programs.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        util::env_number("PROPTEST_RNG_SEED").unwrap_or_else(|| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            now.as_secs() ^ u64::from(now.subsec_nanos()) << 20
        })
    })
}

/// `PROPTEST_CASES` random programs (2,000 by default), the same ones for
/// every backend, shrunk on failure.
fn random_programs<S: Selector<Obj, u8>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let _serial = util::lock(&SERIAL);
    let config = Config {
        cases: cases(),
        rng_seed: RngSeed::Fixed(seed()),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let backend = quirks.kind.name();
    let result = runner.run(&program_strategy(), |program| {
        with_selector(&new, quirks, |sel| {
            run_program(sel, quirks, &program).map_err(TestCaseError::fail)
        })
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, program)) => panic!(
            "{}: the backend and the model diverge: {reason}\n\
             shrunk program ({} ops):\n{program}\n\
             (the programs of this run: PROPTEST_RNG_SEED={})",
            backend,
            program.ops.len(),
            seed(),
        ),
        Err(err) => panic!("{backend}: {err}"),
    }
}

/// Runs one fixed program on a fresh selector.
fn replay<S: Selector<Obj, u8>>(new: &impl Fn() -> Result<S>, quirks: Quirks, program: &Program) {
    if let Err(e) = with_selector(new, quirks, |sel| run_program(sel, quirks, program)) {
        panic!("{e}\nprogram:\n{program}");
    }
}

/// Programs that once diverged, kept as regression tests, plus hand-written
/// ones for corners the random programs reach rarely. The notation is the
/// one failures print (see [`Op`](program::Op)'s `Display`), so a shrunk
/// program can be pasted here as it is.
const FIXED_PROGRAMS: &[&str] = &[
    // The peer closes with data unread: hang-up, a reset, then EOF.
    "register 0 rw 1; write 0 5; close 1; select; read 0 1; read 0 1; select_into",
    // A pipe's read end registered for WRITE sees the writer's close only on
    // the poll family (select(2) reports a hang-up as readable only).
    "register 6 w 0; register 7 r 0; select; unregister_close 7; select; \
     register 6 r 0; modify e6 rw _; select_into",
    // Close without unregistering, number reuse, every call on the stale
    // number; then close the selector with it still registered.
    "register 2 rw 9; close 2; modify e2 r 1; modify e2 rw 2; select; reopen 1 pipe; \
     write 3 3; select; modify e2 r _; register 2 r 0; select_into; get_key e2; \
     close_selector; select; unregister e2",
    // Shutdowns in both directions, in both orders.
    "register 0 rw 0; register 1 rw 0; shutdown 0 rd; select; write 1 1; shutdown 1 rd; \
     select; read 1 1; write 0 4; read 1 8; shutdown 0 both; select_into",
    // Once a bug, fixed in SelectorImpl::waker: the wake-up channel took the
    // number of a registration closed without unregistering (shrunk from
    // "register 5 r 0; close 5; waker").
    "register 5 rw 0; close 5; waker; select; unregister e5; select; wake; select; select",
    // kqueue: narrowing a registration whose descriptor was closed succeeds
    // and widening it fails, before and after the number is reused
    // (libkqueue: ENOENT, next to the filter it stranded).
    "register 0 rw 3; close 0; select; modify e0 r _; modify e0 rw _; reopen 1 socket; \
     write 3 2; select; modify e0 w _; modify e0 rw 4; select_into; unregister e0; \
     register 0 r 1; select",
    // A reset reported by a select: libkqueue's getsockopt(SO_ERROR) clears
    // it there, so the read sees EOF; elsewhere the read sees the reset.
    "write 3 1; register 3 r 0; close 2; select; read 3 1; select; read 3 1",
];

fn fixed_programs<S: Selector<Obj, u8>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let _serial = util::lock(&SERIAL);
    for text in FIXED_PROGRAMS {
        replay(&new, quirks, &parse_program(text));
    }
}

per_backend!(
    random_programs,
    fixed_programs,
    close_without_unregister,
    waker_avoids_stale_numbers
);

/// The wake-up channel is opened lazily, by the first `waker()`; it must
/// not take the number of a registration whose descriptor the caller closed
/// without unregistering (the lowest free number, typically), or the stale
/// key and the channel share one number: unregistering the stale key then
/// removes the channel from the kernel set, and wake-ups are lost.
fn waker_avoids_stale_numbers<S: Selector<RawFd, u8>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let _serial = util::lock(&SERIAL);
    let mut sel = util::open(&new, quirks);
    let (a, _b) = util::socketpair();
    let stale = a.as_raw_fd();
    sel.register(stale, Events::ALL, 1).unwrap();
    drop(a);
    let waker = sel.waker().unwrap();
    // The documented clean-up of a closed descriptor.
    assert_eq!(*sel.unregister(stale).unwrap().data(), 1);
    assert!(sel.get_map().is_empty());
    // Nothing is ready, and no wake is pending: a zero select is quiet.
    let ready = sel.select(Some(Duration::ZERO)).unwrap().len();
    assert_eq!((ready, sel.was_woken()), (0, false), "a spurious wake-up");
    // A wake is seen at once, not after the timeout.
    waker.wake().unwrap();
    let start = std::time::Instant::now();
    let ready = sel.select(Some(Duration::from_secs(2))).unwrap().len();
    assert_eq!(ready, 0);
    assert!(
        sel.was_woken(),
        "the wake-up was lost (waited {:?})",
        start.elapsed()
    );
}

/// The table of the module docs, row by row, with concrete expectations
/// per backend: a registered socket closed without unregistering, its
/// number then reused by another socket.
fn close_without_unregister<S: Selector<RawFd, u8>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let _serial = util::lock(&SERIAL);
    let mut sel = util::open(&new, quirks);
    let backend = quirks.kind;
    let (a, _a_peer) = util::socketpair();
    let fd = a.as_raw_fd();
    sel.register(fd, Events::ALL, 7).unwrap();
    drop(a);
    let ready = |sel: &mut S| -> std::result::Result<Vec<(RawFd, Events)>, Fail> {
        outcome(
            sel.select(Some(Duration::ZERO))
                .map(|r| r.map(|(k, ev)| (k.fd(), ev)).collect()),
        )
    };
    let key = |sel: &S| outcome(sel.get_key(fd).map(snap));

    // The number is free.
    let expected = match backend {
        Kind::Epoll | Kind::Kqueue => Ok(vec![]),
        Kind::Poll | Kind::Devpoll => Ok(vec![(fd, Events::ALL)]),
        Kind::Select => Err(Fail::Os(libc::EBADF)),
    };
    assert_eq!(
        ready(&mut sel),
        expected,
        "{backend:?}: select, number free"
    );
    let modified = outcome(sel.modify_events(fd, Events::READ).map(snap));
    let expected = match backend {
        // Only deletes a filter, which close dropped (libkqueue: which
        // close stranded): the failure, if any, is ignored.
        Kind::Kqueue => Ok((fd, Events::READ, 7)),
        _ => Err(Fail::Os(libc::EBADF)),
    };
    assert_eq!(modified, expected, "{backend:?}: modify, number free");
    // The events the key has from here on.
    let mut events = Events::ALL;
    if backend == Kind::Kqueue {
        events = Events::READ;
        // Adding a filter is an EV_ADD of a closed number.
        let modified = outcome(sel.modify_events(fd, Events::ALL).map(snap));
        assert_eq!(
            modified,
            Err(Fail::Os(libc::EBADF)),
            "{backend:?}: modify adding a direction, number free"
        );
    }
    assert_eq!(
        key(&sel),
        Ok((fd, events, 7)),
        "{backend:?}: the key is intact"
    );
    let modified = outcome(sel.modify(fd, events, 8).map(snap));
    assert_eq!(
        modified,
        Ok((fd, events, 8)),
        "{backend:?}: data only, no system call"
    );

    // Another socket takes the number, with data to read.
    let (b, b_peer) = util::socketpair();
    // The lowest free number, or moved there.
    let b = match OwnedFd::from(b) {
        b if b.as_raw_fd() == fd => b,
        b => renumber(b, fd),
    };
    assert_eq!(b.as_raw_fd(), fd, "the number was free");
    (&b_peer).write_all(b"x").unwrap();
    let expected = match backend {
        Kind::Epoll | Kind::Kqueue => vec![],
        _ => vec![(fd, Events::ALL)],
    };
    assert_eq!(
        ready(&mut sel),
        Ok(expected),
        "{backend:?}: select, number reused"
    );
    let registered = outcome(sel.register(fd, Events::READ, 9).map(snap));
    assert_eq!(
        registered,
        Err(Fail::AlreadyRegistered),
        "{backend:?}: register, number reused"
    );
    // kqueue's key is READ already: it adds WRITE instead.
    let new = if backend == Kind::Kqueue {
        Events::ALL
    } else {
        Events::READ
    };
    let modified = outcome(sel.modify_events(fd, new).map(snap));
    let expected = match backend {
        Kind::Epoll => Err(Fail::Os(libc::ENOENT)),
        // libkqueue deviation: the READ filter stranded on the closed
        // socket shares the number's epoll registration, so adding WRITE
        // is an EPOLL_CTL_MOD of a file never added.
        Kind::Kqueue if quirks.libkqueue => Err(Fail::Os(libc::ENOENT)),
        // A kernel kqueue adds the WRITE filter to the new socket.
        _ => Ok((fd, new, 8)),
    };
    assert_eq!(modified, expected, "{backend:?}: modify, number reused");
    let expected = match backend {
        Kind::Epoll => vec![],
        Kind::Kqueue if quirks.libkqueue => vec![],
        // Only the new WRITE filter watches the new socket.
        Kind::Kqueue => vec![(fd, Events::WRITE)],
        _ => vec![(fd, Events::READ)],
    };
    assert_eq!(
        ready(&mut sel),
        Ok(expected),
        "{backend:?}: select after that modify"
    );

    // Unregister cleans up everywhere; the new socket can then be registered.
    let removed = outcome(sel.unregister(fd).map(|k| snap(&k)));
    assert_eq!(
        removed.map(|(f, _, d)| (f, d)),
        Ok((fd, 8)),
        "{backend:?}: unregister"
    );
    assert!(sel.get_map().is_empty());
    assert_eq!(ready(&mut sel), Ok(vec![]), "{backend:?}: nothing left");
    sel.register(fd, Events::READ, 10).unwrap();
    assert_eq!(
        ready(&mut sel),
        Ok(vec![(fd, Events::READ)]),
        "{backend:?}: the new socket"
    );
}
