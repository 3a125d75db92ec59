//! /dev/poll-specific behaviour, beyond the shared conformance suite: what
//! the driver has cached, seen through `DP_ISPOLLED`.
// illumos and Solaris: set by the crate's build script.
#![cfg(selectors_devpoll)]

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::Duration;

use selectors_conformance::{ready_fds, register_ready_pairs, socketpair};
use selectors_devpoll::{DevpollSelector, Error, Selector, EVENT_READ, EVENT_WRITE};

/// The driver ORs a written mask into the cached one; modify removes first,
/// so the cached mask is exactly the new one.
#[test]
fn modify_replaces_the_cached_mask() {
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

/// A closed descriptor is refused before anything is written, so the driver
/// caches nothing for it (it would report POLLNVAL forever).
#[test]
fn a_closed_descriptor_is_refused_and_not_cached() {
    let mut sel = DevpollSelector::new().unwrap();
    let (a, _b) = socketpair();
    let fd = a.into_raw_fd();
    // SAFETY: `fd` came from `into_raw_fd`; it is closed exactly once.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    let err = sel.register(fd, EVENT_READ, ()).unwrap_err();
    assert!(matches!(err, Error::Os(_)), "{err:?}");
    assert_eq!(sel.poller().polled_events(fd).unwrap(), None);
}

/// The result buffer has room for every registration: one select reports
/// all of them.
#[test]
fn one_select_reports_every_descriptor() {
    let mut sel = DevpollSelector::new().unwrap();
    let (_pairs, expected) = register_ready_pairs(&mut sel, 300);
    assert_eq!(ready_fds(&mut sel, Some(Duration::ZERO)), expected);
}
