//! Look-ups: `get_key`, the map view, and the selector's own descriptor
//! (Python's `fileno()`).

use std::io;

use selectors_core::{Error, RawFd, Result, Selector, EVENT_READ, EVENT_WRITE};

#[cfg(unix)]
use crate::helpers::is_open;
use crate::helpers::{assert_err, open, socketpair, AsRawFd, UNUSED_FD};
use crate::quirks::Quirks;

pub fn test_get_key<S: Selector<RawFd, &'static str>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let (a, b) = socketpair();
    let fd = a.as_raw_fd();
    let key = sel.register(fd, EVENT_READ, "data").unwrap().clone();
    assert_eq!(sel.get_key(fd).unwrap(), &key);
    assert_err(
        sel.get_key(b.as_raw_fd()),
        |e| matches!(e, Error::NotRegistered(_)),
        "unknown",
    );
    assert_err(
        sel.get_key(UNUSED_FD),
        |e| matches!(e, Error::NotRegistered(_)),
        "huge fd",
    );
    let io_err: io::Error = sel.get_key(b.as_raw_fd()).unwrap_err().into();
    assert_eq!(io_err.kind(), io::ErrorKind::NotFound);
}

/// The map: a live read-only view with len, look-up by fd and by object,
/// `get` with a default, iteration in registration order.
pub fn test_get_map<S: Selector<RawFd, u32>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let pairs: Vec<_> = (0..4).map(|_| socketpair()).collect();
    assert!(sel.get_map().is_empty());
    assert_eq!(sel.get_map().len(), 0);
    // Register in an order unrelated to the fd numbers.
    let order = [
        pairs[2].0.as_raw_fd(),
        pairs[0].1.as_raw_fd(),
        pairs[3].0.as_raw_fd(),
        pairs[1].1.as_raw_fd(),
    ];
    for (i, &fd) in order.iter().enumerate() {
        sel.register(fd, EVENT_READ, i as u32).unwrap();
    }
    let map = sel.get_map();
    assert_eq!(map.len(), 4);
    assert_eq!(map.fds().collect::<Vec<_>>(), order);
    assert_eq!(
        map.iter().map(|k| *k.data()).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert_eq!(map.get(order[1]).map(|k| *k.data()), Some(1));
    assert_eq!(map.get_by(&pairs[0].1).map(|k| k.fd()), Some(order[1]));
    assert!(map.contains(order[3]));
    let unknown = pairs[0].0.as_raw_fd();
    assert!(map.get(unknown).is_none() && !map.contains(unknown));
    assert_eq!(map.get(unknown).map_or(99, |k| *k.data()), 99);
    // Live: the next borrow sees the change.
    sel.unregister(order[1]).unwrap();
    sel.register(order[1], EVENT_WRITE, 9).unwrap();
    let map = sel.get_map();
    assert_eq!(
        map.fds().collect::<Vec<_>>(),
        [order[0], order[2], order[3], order[1]]
    );
    assert_eq!(map.events(order[1]), Some(EVENT_WRITE));
    assert_eq!(format!("{map:?}").matches("SelectorKey").count(), 4);
}

/// Backends with a kernel object expose it (Python's `fileno()`), open and
/// close-on-exec, for as long as the selector lives.
#[cfg(unix)]
pub fn test_fileno<S: Selector<RawFd, ()> + AsRawFd + std::os::fd::AsFd>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};

    let mut sel = open(&new, quirks);
    let fd = sel.as_raw_fd();
    assert!(fd >= 0 && is_open(fd));
    let flags = FdFlag::from_bits_truncate(fcntl(sel.as_fd(), FcntlArg::F_GETFD).unwrap());
    assert!(flags.contains(FdFlag::FD_CLOEXEC), "close-on-exec");
    sel.close().unwrap();
    assert_eq!(sel.as_raw_fd(), fd, "valid until dropped");
}
