//! Modifying a registration: its events, its data alone, and a modify the
//! kernel refuses (the registration stays as it was).

use std::io::Write;
use std::time::Duration;

use selectors_core::{Error, Events, RawFd, Result, Selector, EVENT_READ, EVENT_WRITE};

use crate::helpers::{
    assert_err, is_open, open, ready_fds, socketpair, AsRawFd, BAD_FD, RACE_ATTEMPTS,
};
use crate::quirks::Quirks;

/// Change the events (key and get_key agree); change only the data (no
/// system call: it works even on a descriptor closed since, which any system
/// call would refuse); unknown fds fail.
pub fn test_modify<S: Selector<RawFd, u32>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let (a, b) = socketpair();
    let fd = a.as_raw_fd();
    sel.register(fd, EVENT_READ, 1).unwrap();

    let key = sel.modify(fd, EVENT_WRITE, 2).unwrap();
    assert_eq!((key.events(), *key.data()), (EVENT_WRITE, 2));
    let key = sel.get_key(fd).unwrap();
    assert_eq!((key.events(), *key.data()), (EVENT_WRITE, 2));
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(fd, EVENT_WRITE)]
    );

    // The kernel follows: back to READ, nothing readable yet, then data.
    sel.modify_events(fd, EVENT_READ).unwrap();
    assert_eq!(*sel.get_key(fd).unwrap().data(), 2);
    assert!(ready_fds(&mut sel, Some(Duration::ZERO)).is_empty());
    (&b).write_all(b"x").unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(fd, EVENT_READ)]
    );

    // Only the data: no system call. Close a second descriptor behind the
    // selector's back; a system call on it would fail with EBADF.
    let (c, _d) = socketpair();
    let cfd = c.as_raw_fd();
    sel.register(cfd, EVENT_READ, 10).unwrap();
    drop(c);
    let key = sel.modify(cfd, EVENT_READ, 11).unwrap();
    assert_eq!((key.events(), *key.data()), (EVENT_READ, 11));
    *sel.get_key_mut(cfd).unwrap().data_mut() = 12;
    assert_eq!(*sel.get_key(cfd).unwrap().data(), 12);
    sel.unregister(cfd).unwrap();

    // Unknown fd.
    assert_err(
        sel.modify(b.as_raw_fd(), EVENT_READ, 0),
        |e| matches!(e, Error::NotRegistered(_)),
        "modify unknown",
    );
    assert_err(
        sel.modify_events(BAD_FD, EVENT_READ),
        |e| matches!(e, Error::NotRegistered(f) if *f == BAD_FD),
        "modify negative",
    );
}

/// The kernel refuses a modify (the descriptor was closed behind the
/// selector's back): CPython drops the key; here the old registration stays
/// fully intact, and unregister still succeeds.
pub fn test_modify_unregister<S: Selector<RawFd, &'static str>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    // As in `test_register_bad_fd`, a parallel test may reuse the closed
    // number before `modify`; then try again with a fresh one.
    for _attempt in 0..RACE_ATTEMPTS {
        let (a, _b) = socketpair();
        let fd = a.as_raw_fd();
        sel.register(fd, EVENT_READ, "old").unwrap();
        drop(a);
        let result = sel.modify(fd, EVENT_WRITE, "new").map(|_| ());
        if result.is_ok() && is_open(fd) {
            sel.unregister(fd).unwrap();
            continue;
        }
        let err = result.expect_err("modify of a closed descriptor succeeded");
        assert!(matches!(err, Error::Os(_)), "{err:?}");
        let key = sel.get_key(fd).unwrap();
        assert_eq!(
            (key.fd(), key.events(), *key.data()),
            (fd, EVENT_READ, "old")
        );
        assert_eq!(sel.get_map().len(), 1);
        let key = sel.unregister(fd).unwrap();
        assert_eq!(*key.data(), "old");
        return;
    }
    panic!("the closed number was reused every time");
}

/// Modify to an empty mask is refused before anything else, and changes
/// nothing.
pub fn test_modify_invalid_events<S: Selector<RawFd, u8>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (a, _b) = socketpair();
    let fd = a.as_raw_fd();
    sel.register(fd, EVENT_WRITE, 1).unwrap();
    assert_err(
        sel.modify(fd, Events::EMPTY, 2),
        |e| matches!(e, Error::InvalidEvents),
        "modify empty",
    );
    assert_err(
        sel.modify_events(fd, Events::EMPTY),
        |e| matches!(e, Error::InvalidEvents),
        "modify_events empty",
    );
    assert_err(
        sel.modify(BAD_FD, Events::EMPTY, 2),
        |e| matches!(e, Error::InvalidEvents),
        "modify empty, unknown fd",
    );
    let key = sel.get_key(fd).unwrap();
    assert_eq!((key.events(), *key.data()), (EVENT_WRITE, 1));
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(fd, EVENT_WRITE)]
    );
}
