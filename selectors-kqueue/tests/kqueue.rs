//! kqueue-specific behaviour, beyond the shared conformance suite.
// Where the target has a kqueue: set by the crate's build script.
#![cfg(selectors_kqueue)]

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use selectors_conformance::{ready_fds, register_ready_pairs, socketpair};
use selectors_kqueue::{KqueueSelector, Selector, EVENT_READ, EVENT_WRITE};

/// gh-110038: descriptors registered for READ | WRITE are two filters each,
/// and one select must have room for all of them: every descriptor comes
/// back once, with both events (kqueue itself reports two entries each).
#[test]
fn every_filter_of_every_descriptor_fits_one_select() {
    let mut sel = KqueueSelector::new().unwrap();
    let (_pairs, expected) = register_ready_pairs(&mut sel, 100);
    assert_eq!(sel.poller().filters(), 200);
    assert_eq!(ready_fds(&mut sel, Some(Duration::from_secs(5))), expected);
    // Level-triggered: the same again.
    assert_eq!(ready_fds(&mut sel, Some(Duration::ZERO)), expected);
}

/// bpo-29255: with nothing registered the event buffer still has room for
/// one entry, so a timeout is waited for, not skipped.
#[test]
fn an_empty_selector_still_waits_for_its_timeout() {
    let mut sel = KqueueSelector::<RawFd, ()>::new().unwrap();
    let start = Instant::now();
    assert!(ready_fds(&mut sel, Some(Duration::from_millis(200))).is_empty());
    assert!(start.elapsed() >= Duration::from_millis(200));
}

/// Modify swaps filters: after READ → WRITE only the write filter fires, and
/// after WRITE → READ | WRITE both do, in one entry.
#[test]
fn modify_swaps_filters() {
    let mut sel = KqueueSelector::new().unwrap();
    let (a, b) = socketpair();
    (&b).write_all(b"x").unwrap();
    let fd = a.as_raw_fd();
    sel.register(fd, EVENT_READ, ()).unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(fd, EVENT_READ)]
    );
    sel.modify(fd, EVENT_WRITE, ()).unwrap();
    assert_eq!(sel.poller().filters(), 1);
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(fd, EVENT_WRITE)]
    );
    sel.modify(fd, EVENT_READ | EVENT_WRITE, ()).unwrap();
    assert_eq!(sel.poller().filters(), 2);
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(fd, EVENT_READ | EVENT_WRITE)]
    );
    (&a).read_exact(&mut [0; 1]).unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(fd, EVENT_WRITE)]
    );
    sel.unregister(fd).unwrap();
    assert_eq!(sel.poller().filters(), 0);
}

/// A peer that shut down its writing half: `EV_EOF` on the read filter is
/// reported as hang-up, both directions, masked by what was registered.
#[test]
fn eof_is_both_directions_masked() {
    let mut sel = KqueueSelector::new().unwrap();
    let (r, r_peer) = socketpair();
    let (rw, rw_peer) = socketpair();
    r_peer.shutdown(std::net::Shutdown::Write).unwrap();
    rw_peer.shutdown(std::net::Shutdown::Write).unwrap();
    sel.register(r.as_raw_fd(), EVENT_READ, ()).unwrap();
    sel.register(rw.as_raw_fd(), EVENT_READ | EVENT_WRITE, ())
        .unwrap();
    let mut expected = vec![
        (r.as_raw_fd(), EVENT_READ),
        (rw.as_raw_fd(), EVENT_READ | EVENT_WRITE),
    ];
    expected.sort_unstable_by_key(|&(fd, _)| fd);
    assert_eq!(ready_fds(&mut sel, Some(Duration::from_secs(5))), expected);
}
