//! Closing and dropping a selector: every call fails afterwards, and the
//! objects it owned are dropped.

use std::io::Read;
use std::time::Duration;

use selectors_core::{Error, Result, Selector, EVENT_READ, EVENT_WRITE};

use crate::helpers::{assert_err, open, socketpair, AsRawFd, Stream};
use crate::quirks::Quirks;

/// After close every call fails with `Closed`, the map is empty, owned
/// objects were dropped, and closing again is harmless.
pub fn test_close<S: Selector<Stream, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let (a, b) = socketpair();
    let (c, d) = socketpair();
    let (afd, cfd) = (a.as_raw_fd(), c.as_raw_fd());
    sel.register(a, EVENT_READ, ()).unwrap();
    sel.register(c, EVENT_WRITE, ()).unwrap();
    assert_eq!(sel.get_map().len(), 2);
    assert!(!sel.is_closed());
    sel.close().unwrap();
    assert!(sel.is_closed());
    assert!(sel.get_map().is_empty());
    assert!(sel.get_map().iter().next().is_none());
    let closed = |e: &Error| matches!(e, Error::Closed);
    assert_err(sel.get_key(afd), closed, "get_key");
    assert_err(sel.get_key_mut(afd).map(|_| ()), closed, "get_key_mut");
    assert_err(sel.modify(afd, EVENT_WRITE, ()), closed, "modify");
    assert_err(sel.modify_events(afd, EVENT_WRITE), closed, "modify_events");
    assert_err(sel.unregister(cfd), closed, "unregister");
    assert_err(sel.register(d, EVENT_READ, ()), closed, "register");
    assert_err(
        sel.select(Some(Duration::ZERO)).map(|r| r.len()),
        closed,
        "select",
    );
    assert_err(
        sel.select(None).map(|r| r.len()),
        closed,
        "select, blocking",
    );
    let mut ready = vec![(0, EVENT_READ)];
    assert_err(sel.select_into(&mut ready, None), closed, "select_into");
    assert!(ready.is_empty());
    sel.close().unwrap();
    assert!(sel.is_closed());
    // The owned sockets were closed with the registrations: the peer sees EOF.
    b.set_nonblocking(false).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!((&b).read(&mut [0; 1]).unwrap(), 0);
}

/// Python's `with` block: here, dropping the selector closes it and the
/// objects it owns.
pub fn test_context_manager<S: Selector<Stream, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let (a, b) = socketpair();
    {
        let mut sel = open(&new, quirks);
        sel.register(a, EVENT_READ, ()).unwrap();
    }
    b.set_nonblocking(false).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        (&b).read(&mut [0; 1]).unwrap(),
        0,
        "dropping the selector closed `a`"
    );
}
