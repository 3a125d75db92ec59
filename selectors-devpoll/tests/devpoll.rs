//! /dev/poll-specific behaviour, beyond the shared conformance suite: what
//! the driver has cached, seen through `DP_ISPOLLED`, the room a select
//! declares, closed registrations, and who may use a set.
//!
//! The tests take turns (`SERIAL`): one changes the process's descriptor
//! limit, and several depend on which descriptor numbers are free.
// illumos and Solaris, and Linux on the emulation of the driver: set by
// the crate's build script.
#![cfg(selectors_devpoll)]

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use selectors_conformance::{ready_fds, register_ready_pairs, socketpair};
use selectors_devpoll::{DevpollSelector, Error, Selector, EVENT_READ, EVENT_WRITE};

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The driver ORs a written mask into the cached one; modify removes first,
/// so the cached mask is exactly the new one.
#[test]
fn modify_replaces_the_cached_mask() {
    let _serial = serial();
    let mut sel = DevpollSelector::new().unwrap();
    let (a, _b) = socketpair();
    let fd = a.as_raw_fd();
    sel.register(fd, EVENT_READ, ()).unwrap();
    assert_eq!(sel.poller().polled_events(fd).unwrap(), Some(EVENT_READ));
    sel.modify(fd, EVENT_WRITE, ()).unwrap();
    assert_eq!(sel.poller().polled_events(fd).unwrap(), Some(EVENT_WRITE));
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(fd, EVENT_WRITE)]
    );
    sel.modify(fd, EVENT_READ | EVENT_WRITE, ()).unwrap();
    assert_eq!(
        sel.poller().polled_events(fd).unwrap(),
        Some(EVENT_READ | EVENT_WRITE)
    );
    sel.unregister(fd).unwrap();
    assert_eq!(sel.poller().polled_events(fd).unwrap(), None);
}

/// A modify that narrows the events stops the driver watching the ones
/// dropped: a select on a socket that is writable, but registered for READ
/// only since the modify, waits its full timeout. (Were WRITE still cached,
/// DP_POLL would return at once, with nothing left once masked.)
#[test]
fn a_narrowing_modify_stops_watching_the_dropped_events() {
    let _serial = serial();
    let mut sel = DevpollSelector::new().unwrap();
    let (a, _b) = socketpair();
    let fd = a.as_raw_fd();
    sel.register(fd, EVENT_READ | EVENT_WRITE, ()).unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(fd, EVENT_WRITE)]
    );
    sel.modify(fd, EVENT_READ, ()).unwrap();
    let timeout = Duration::from_millis(100);
    let start = Instant::now();
    assert_eq!(ready_fds(&mut sel, Some(timeout)), []);
    let waited = start.elapsed();
    assert!(waited >= timeout, "returned after {waited:?}");
}

/// A closed descriptor is refused before anything is written, so the driver
/// caches nothing for it (it would cache the number with no file behind
/// it: never reported, never removed by `POLLREMOVE`, its events ORed into
/// a later registration at that number).
#[test]
fn a_closed_descriptor_is_refused_and_not_cached() {
    let _serial = serial();
    let mut sel = DevpollSelector::new().unwrap();
    let (a, _b) = socketpair();
    let fd = a.into_raw_fd();
    // SAFETY: `fd` came from `into_raw_fd`; it is closed exactly once.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    let err = sel.register(fd, EVENT_READ, ()).unwrap_err();
    assert!(matches!(err, Error::Os(_)), "{err:?}");
    assert_eq!(sel.poller().polled_events(fd).unwrap(), None);
    // A socket at that number, registered for WRITE: only WRITE is cached.
    let (c, _d) = socketpair();
    assert_eq!(c.as_raw_fd(), fd, "the lowest free number");
    sel.register(fd, EVENT_WRITE, ()).unwrap();
    assert_eq!(sel.poller().polled_events(fd).unwrap(), Some(EVENT_WRITE));
}

/// A registered descriptor closed without unregistering: once its file is
/// gone, the driver reports the number `POLLNVAL` (readable and writable,
/// masked by the registration) at every select, until `unregister`
/// removes it.
#[test]
fn a_closed_registration_is_reported_until_unregistered() {
    let _serial = serial();
    let mut sel = DevpollSelector::new().unwrap();
    let (a, _b) = socketpair();
    let fd = a.as_raw_fd();
    sel.register(fd, EVENT_READ, ()).unwrap();
    assert_eq!(ready_fds(&mut sel, Some(Duration::ZERO)), []);
    drop(a);
    for _ in 0..3 {
        assert_eq!(
            ready_fds(&mut sel, Some(Duration::ZERO)),
            [(fd, EVENT_READ)]
        );
    }
    sel.unregister(fd).unwrap();
    assert_eq!(ready_fds(&mut sel, Some(Duration::ZERO)), []);
}

/// The result buffer has room for every registration: one select reports
/// all of them.
#[test]
fn one_select_reports_every_descriptor() {
    let _serial = serial();
    let mut sel = DevpollSelector::new().unwrap();
    let (_pairs, expected) = register_ready_pairs(&mut sel, 300);
    assert_eq!(ready_fds(&mut sel, Some(Duration::ZERO)), expected);
}

/// More than half of a descriptor limit that is not a power of two
/// registered: the result buffer, grown by doubling, is larger than the
/// limit, and a select still reports them all (Oracle Solaris refuses a
/// `dp_nfds` at or above the limit with `EINVAL`). The limit is lowered
/// after the selector was made, which read it then: the first select finds
/// out (on Oracle Solaris, by its `EINVAL`) and reads it again.
#[test]
fn select_works_with_more_than_half_of_a_non_power_of_two_limit_registered() {
    let _serial = serial();
    const LIMIT: libc::rlim_t = 1000;
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid resource and a live `rlimit`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
    assert!(old.rlim_max >= LIMIT, "a hard limit of {}", old.rlim_max);
    /// Puts the soft limit back however the test ends.
    struct Restore(libc::rlimit);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: a valid resource and a live `rlimit`, within the hard
            // limit (it was the limit).
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.0) };
        }
    }
    let mut sel = DevpollSelector::new().unwrap();
    let _restore = Restore(old);
    let lowered = libc::rlimit {
        rlim_cur: LIMIT,
        rlim_max: old.rlim_max,
    };
    // SAFETY: as above; lowering the soft limit is always permitted.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
    // 520 registrations: a buffer of 1,024 entries.
    let pairs: Vec<_> = (0..260).map(|_| socketpair()).collect();
    let mut expected = Vec::new();
    for (a, b) in &pairs {
        for fd in [a.as_raw_fd(), b.as_raw_fd()] {
            sel.register(fd, EVENT_WRITE, ()).unwrap();
            expected.push((fd, EVENT_WRITE));
        }
    }
    expected.sort_unstable_by_key(|&(fd, _)| fd);
    assert_eq!(ready_fds(&mut sel, Some(Duration::ZERO)), expected);
}

/// The selector's own descriptor, polled, shows `POLLERR` and nothing else,
/// whatever its set holds, before `close` and after: the driver's answer
/// for a `/dev/poll` descriptor (devpoll.c, `dppoll`). So, unlike epoll's
/// and kqueue's, it cannot be watched by another selector.
#[test]
fn the_selectors_descriptor_polls_as_an_error() {
    let _serial = serial();
    let polled = |sel: &DevpollSelector| {
        let mut pollfd = libc::pollfd {
            fd: sel.as_raw_fd(),
            events: libc::POLLIN | libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one live `pollfd`; a zero timeout never blocks.
        let n = unsafe { libc::poll(&mut pollfd, 1, 0) };
        assert_eq!(n, 1, "{}", std::io::Error::last_os_error());
        pollfd.revents
    };
    let mut sel = DevpollSelector::new().unwrap();
    assert_eq!(polled(&sel), libc::POLLERR, "empty");
    let (a, b) = socketpair();
    sel.register(a.as_raw_fd(), EVENT_READ, ()).unwrap();
    assert_eq!(polled(&sel), libc::POLLERR, "nothing ready");
    std::io::Write::write_all(&mut &b, b"x").unwrap();
    assert_eq!(polled(&sel), libc::POLLERR, "a key ready");
    sel.close().unwrap();
    assert_eq!(polled(&sel), libc::POLLERR, "closed");
}

/// `close` inside a dispatch handler empties the driver's set, the key
/// lent to the handler included (what the shared
/// `test_close_inside_a_handler_quiets_the_kernel_object` cannot see
/// through a descriptor that polls as an error).
#[test]
fn close_inside_a_handler_empties_the_set() {
    let _serial = serial();
    let mut sel = DevpollSelector::new().unwrap();
    let (a, b) = socketpair();
    let (c, _d) = socketpair();
    std::io::Write::write_all(&mut &b, b"x").unwrap();
    sel.register(a.as_raw_fd(), EVENT_READ, ()).unwrap();
    sel.register(c.as_raw_fd(), EVENT_WRITE, ()).unwrap();
    let _waker = sel.waker().unwrap();
    sel.dispatch(Some(Duration::from_secs(5)), |sel, _, _| Ok(sel.close()?))
        .unwrap();
    for fd in [a.as_raw_fd(), c.as_raw_fd()] {
        assert_eq!(sel.poller().polled_events(fd).unwrap(), None, "fd {fd}");
    }
}

/// Runs `f` in a forked child; its result is the child's exit status.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs `f` and leaves with `_exit`, running nothing
    // else of the parent's (the tests take turns: no other test is running).
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            let code = f();
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(code) }
        }
        child => {
            let mut status = 0;
            // SAFETY: waits for our own child, into a live int.
            assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
            assert!(libc::WIFEXITED(status), "child status {status:#x}");
            libc::WEXITSTATUS(status)
        }
    }
}

/// The errno of an OS error, 0 for success, -1 for anything else.
fn errno<T>(result: selectors_devpoll::Result<T>) -> i32 {
    match result {
        Ok(_) => 0,
        Err(Error::Os(err)) => err.raw_os_error().unwrap_or(-1),
        Err(_) => -1,
    }
}

/// A set belongs to the first process that uses it (illumos; on Oracle
/// Solaris, to the one that opened it): a child forked after the parent
/// used it gets `EACCES`, and a child that uses it first takes it.
#[test]
fn a_set_belongs_to_the_first_process_that_uses_it() {
    let _serial = serial();
    let (a, _b) = socketpair();
    let mut used = DevpollSelector::new().unwrap();
    used.register(a.as_raw_fd(), EVENT_READ, ()).unwrap();
    assert_eq!(
        in_child(|| errno(used.select(Some(Duration::ZERO)).map(drop))),
        libc::EACCES
    );
    assert_eq!(errno(used.select(Some(Duration::ZERO)).map(drop)), 0);

    let mut fresh = DevpollSelector::new().unwrap();
    let oracle_solaris = cfg!(target_os = "solaris")
        || std::env::var_os("DEVPOLL_EMULATION").is_some_and(|v| v == "solaris");
    let (in_the_child, then_here) = if oracle_solaris {
        (libc::EACCES, 0)
    } else {
        (0, libc::EACCES)
    };
    assert_eq!(
        in_child(|| errno(fresh.register(a.as_raw_fd(), EVENT_READ, ()).map(drop))),
        in_the_child
    );
    assert_eq!(
        errno(fresh.register(a.as_raw_fd(), EVENT_READ, ()).map(drop)),
        then_here
    );
}
