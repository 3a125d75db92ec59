//! Keys and file objects: changing a key's data in place, lending a file
//! object mutably, the `Fd` wrapper, and `try_register` handing the object
//! back.

use std::io::{self, Write};
use std::time::Duration;

use selectors_core::{Error, Events, FileObject, RawFd, Result, Selector, EVENT_READ, EVENT_WRITE};

use crate::helpers::{
    assert_err, open, peer_closed, ready_fds, socketpair, AsRawFd, OwnedDescriptor, Stream, BAD_FD,
    CLOSED_ERRNO, RACE_ATTEMPTS,
};
use crate::quirks::Quirks;

/// `get_key_mut` changes the data and nothing else: the key keeps the
/// descriptor and events the kernel was told, and `close`, `unregister` and
/// `select` go by them. (Replacing a whole key does not compile: see the
/// `compile_fail` example on `SelectorKey`.)
pub fn test_key_mut_changes_only_data<S: Selector<Stream, String>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (a, a_peer) = socketpair();
    let (b, b_peer) = socketpair();
    let (afd, bfd) = (a.as_raw_fd(), b.as_raw_fd());
    sel.register(a, EVENT_READ, "a".into()).unwrap();
    sel.register(b, EVENT_WRITE, "b".into()).unwrap();
    {
        let mut key = sel.get_key_mut(afd).unwrap();
        key.data_mut().push_str(" changed");
        let (stream, data) = key.parts_mut();
        assert_eq!(stream.as_raw_fd(), afd);
        data.push('!');
    }
    *sel.get_key_mut(bfd).unwrap().data_mut() = "b2".into();
    let key = sel.get_key(afd).unwrap();
    assert_eq!(
        (key.fd(), key.events(), key.data().as_str()),
        (afd, EVENT_READ, "a changed!")
    );
    (&a_peer).write_all(b"x").unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::from_secs(5))),
        sorted([(afd, EVENT_READ), (bfd, EVENT_WRITE)])
    );
    let key = sel.unregister(afd).unwrap();
    assert_eq!(key.into_parts().1, "a changed!");
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(bfd, EVENT_WRITE)]
    );
    sel.close().unwrap();
    assert!(peer_closed(&b_peer), "close dropped b's key, closing it");
    drop(a_peer);
}

fn sorted<const N: usize>(mut list: [(RawFd, Events); N]) -> [(RawFd, Events); N] {
    list.sort_unstable_by_key(|&(fd, _)| fd);
    list
}

/// `with_fileobj_mut` lends a file object that needs `&mut self` (a
/// `BufReader`); a file object replaced by one of another descriptor is
/// detected and its registration withdrawn from the map and the kernel; a
/// panic puts the key back.
pub fn test_with_fileobj_mut<S: Selector<io::BufReader<Stream>, u32>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    use std::io::BufRead;
    let mut sel = open(&new, quirks);
    let (a, a_peer) = socketpair();
    let (b, b_peer) = socketpair();
    let afd = a.as_raw_fd();
    sel.register(io::BufReader::new(a), EVENT_READ, 0).unwrap();
    (&a_peer).write_all(b"one\ntwo\n").unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::from_secs(5))),
        [(afd, EVENT_READ)]
    );
    let mut line = String::new();
    let n = sel
        .with_fileobj_mut(afd, |reader, lines| {
            *lines += 1;
            reader.read_line(&mut line)
        })
        .unwrap()
        .unwrap();
    assert_eq!(
        (n, line.as_str(), *sel.get_key(afd).unwrap().data()),
        (4, "one\n", 1)
    );
    // The second line sits in the BufReader's buffer: the socket is drained.
    assert!(ready_fds(&mut sel, Some(Duration::ZERO)).is_empty());

    // A panic inside: the key is back, unchanged, and still watched.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = sel.with_fileobj_mut(afd, |_, lines| {
            *lines += 10;
            panic!("handler bug");
        });
    }));
    assert!(caught.is_err());
    assert_eq!(*sel.get_key(afd).unwrap().data(), 11);
    (&a_peer).write_all(b"3").unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::from_secs(5))),
        [(afd, EVENT_READ)]
    );

    // Replaced by another descriptor: refused, the registration withdrawn,
    // and what the closure returned (here the object it replaced) handed
    // back with the error rather than dropped.
    let bfd = b.as_raw_fd();
    let mut replacement = Some(io::BufReader::new(b));
    let err = sel
        .with_fileobj_mut(afd, |reader, _| {
            std::mem::replace(reader, replacement.take().unwrap())
        })
        .unwrap_err();
    assert!(
        matches!(err.error(), Error::FdChanged { old, new } if *old == afd && *new == bfd),
        "{err:?}"
    );
    let replaced = err.into_value().expect("the closure ran");
    assert_eq!(replaced.get_ref().as_raw_fd(), afd);
    assert!(
        !peer_closed(&a_peer),
        "the replaced object is handed back open"
    );
    assert!(sel.get_map().is_empty());
    assert_err(
        sel.get_key(afd),
        |e| matches!(e, Error::NotRegistered(_)),
        "get_key",
    );
    assert_err(
        sel.get_key(bfd),
        |e| matches!(e, Error::NotRegistered(_)),
        "get_key",
    );
    // The replacement, b, was dropped with the key: closed, and the kernel
    // watches neither of them.
    assert!(peer_closed(&b_peer));
    assert!(ready_fds(&mut sel, Some(Duration::ZERO)).is_empty());
    drop(replaced);
    assert!(peer_closed(&a_peer));
    let err = sel.with_fileobj_mut(afd, |_, _| ()).unwrap_err();
    assert!(matches!(err.error(), Error::NotRegistered(_)), "{err:?}");
    assert!(err.into_value().is_none(), "the closure did not run");
    drop((a_peer, b_peer));
}

/// `Fd` makes any `AsFd` type a file object, usable through `Deref`, in a
/// `Box<dyn FileObject>` too; a failed registration hands the object back.
pub fn test_fd_wrapper_and_try_register<S: Selector<Box<dyn FileObject>, u8>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (a, a_peer) = socketpair();
    let afd = a.as_raw_fd();
    let wrapped = selectors_core::Fd(OwnedDescriptor::from(a));
    assert!(wrapped.io_safe() && !afd.io_safe());
    assert_eq!(wrapped.fileno(), afd);
    sel.register(Box::new(wrapped), EVENT_READ, 1).unwrap();
    (&a_peer).write_all(b"x").unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::from_secs(5))),
        [(afd, EVENT_READ)]
    );

    // Already registered (through another object): the object comes back.
    let Err(err) = sel.try_register(Box::new(afd), EVENT_READ, 2) else {
        panic!("registered twice");
    };
    assert!(matches!(err.error(), Error::AlreadyRegistered(fd) if *fd == afd));
    let (_, fileobj, data) = err.into_parts();
    assert_eq!((fileobj.fileno(), data), (afd, 2));

    // A closed descriptor, as a bare number: EBADF on every backend, and
    // the number comes back. (A test running in parallel may take the number
    // meanwhile: then it registers, and the test tries another.)
    for attempt in 0.. {
        assert!(attempt < RACE_ATTEMPTS, "closed numbers kept being reused");
        let (c, _c_peer) = socketpair();
        let cfd = c.as_raw_fd();
        drop(c);
        let err = match sel.try_register(Box::new(cfd), EVENT_WRITE, 3) {
            Ok(_) => {
                sel.unregister(cfd).unwrap();
                continue;
            }
            Err(err) => err,
        };
        assert_eq!(err.error().raw_os_error(), Some(CLOSED_ERRNO), "{err:?}");
        let (_, fileobj, data) = err.into_parts();
        assert_eq!((fileobj.fileno(), data), (cfd, 3));
        let io: io::Error = match sel.try_register(Box::new(cfd), EVENT_WRITE, 3) {
            Ok(_) => {
                sel.unregister(cfd).unwrap();
                continue;
            }
            Err(err) => err.into(),
        };
        assert_eq!(io.raw_os_error(), Some(CLOSED_ERRNO));
        break;
    }
    assert_eq!(sel.get_map().len(), 1);
    assert_err(
        sel.register(Box::new(BAD_FD), EVENT_READ, 0).map(|_| ()),
        |e| matches!(e, Error::InvalidFd(f) if *f == BAD_FD),
        "register(BAD_FD)",
    );
}
