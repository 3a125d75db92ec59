//! Registering and unregistering: the key, refused masks and descriptors,
//! double registration, files, and unregistering descriptors closed (and
//! their numbers reused) behind the selector's back.

use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use selectors_core::{Error, Events, FileObject, RawFd, Result, Selector, EVENT_READ, EVENT_WRITE};

#[cfg(unix)]
use crate::helpers::OwnedDescriptor;
use crate::helpers::{
    assert_err, is_open, open, ready_fds, socketpair, AsRawFd, Stream, BAD_FD, CLOSED_ERRNO,
    RACE_ATTEMPTS,
};
use crate::quirks::Quirks;

/// Key fields; bad mask; negative fd; double registration through the same
/// and through another object.
pub fn test_register<S: Selector<Box<dyn FileObject>, &'static str>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (a, b) = socketpair();
    let fd = a.as_raw_fd();
    let key = sel.register(Box::new(fd), EVENT_READ, "data").unwrap();
    assert_eq!(key.fileobj().fileno(), fd);
    assert_eq!(key.fd(), fd);
    assert_eq!(key.events(), EVENT_READ);
    assert_eq!(*key.data(), "data");

    // Empty mask: checked first, even for a bad fd.
    assert_err(
        sel.register(Box::new(b.as_raw_fd()), Events::EMPTY, "x"),
        |e| matches!(e, Error::InvalidEvents),
        "empty mask",
    );
    assert_err(
        sel.register(Box::new(BAD_FD), Events::EMPTY, "x"),
        |e| matches!(e, Error::InvalidEvents),
        "empty mask, bad fd",
    );
    assert_eq!(
        Events::from_bits(4),
        None,
        "unknown bits are unrepresentable"
    );
    // Negative fd (`INVALID_SOCKET` on Windows).
    assert_err(
        sel.register(Box::new(BAD_FD), EVENT_READ, "x"),
        |e| matches!(e, Error::InvalidFd(f) if *f == BAD_FD),
        "negative fd",
    );
    // Same object, and the same fd through another object.
    assert_err(
        sel.register(Box::new(fd), EVENT_READ, "x"),
        |e| matches!(e, Error::AlreadyRegistered(f) if *f == fd),
        "same fd",
    );
    let other: Box<dyn FileObject> = Box::new(a.try_clone().unwrap());
    let dup_fd = other.fileno();
    assert_ne!(dup_fd, fd);
    sel.register(other, EVENT_WRITE, "dup").unwrap();
    assert_err(
        sel.register(Box::new(dup_fd), EVENT_READ, "x"),
        |e| matches!(e, Error::AlreadyRegistered(_)),
        "same fd, other object",
    );
    // Nothing was changed by the failures.
    assert_eq!(sel.get_map().len(), 2);
    assert_eq!(*sel.get_key(fd).unwrap().data(), "data");
    assert_eq!(sel.get_key(fd).unwrap().events(), EVENT_READ);
    assert_err(
        sel.get_key(BAD_FD),
        |e| matches!(e, Error::NotRegistered(f) if *f == BAD_FD),
        "negative fd not registered",
    );
    sel.unregister(fd).unwrap();
    sel.unregister(dup_fd).unwrap();
    drop(b);
}

/// A closed descriptor is refused (`EBADF`) by every backend, and not left in
/// the map (CPython's kqueue test_register_bad_fd, made uniform).
pub fn test_register_bad_fd<S: Selector<RawFd, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    // A test running in parallel may reuse the closed number before we
    // register it; then that registration is legitimate: undo it, try again.
    for _attempt in 0..RACE_ATTEMPTS {
        let (a, _b) = socketpair();
        let fd = a.as_raw_fd();
        drop(a);
        match sel.register(fd, EVENT_READ, ()) {
            Err(err) => {
                assert_eq!(err.raw_os_error(), Some(CLOSED_ERRNO), "{err:?}");
                assert!(sel.get_map().is_empty());
                assert!(matches!(sel.get_key(fd), Err(Error::NotRegistered(_))));
                return;
            }
            Ok(_) if is_open(fd) => {
                sel.unregister(fd).unwrap();
            }
            Ok(_) => panic!("a closed descriptor ({fd}) was registered"),
        }
    }
    panic!("the closed number was reused every time");
}

/// A regular file: epoll refuses it (`EPERM`, its quirk) and keeps nothing;
/// the others accept it and report it ready both ways (files are always
/// ready).
#[cfg(unix)]
pub fn test_register_file<S: Selector<std::fs::File, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    let fd = file.as_raw_fd();
    match quirks.regular_file_errno {
        Some(errno) => {
            let err = sel.register(file, EVENT_READ, ()).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(errno), "{err:?}");
            assert!(sel.get_map().is_empty());
            // Nothing was left in the kernel either: select sees nothing.
            assert!(ready_fds(&mut sel, Some(Duration::ZERO)).is_empty());
        }
        None => {
            sel.register(file, EVENT_READ | EVENT_WRITE, ()).unwrap();
            let ready = ready_fds(&mut sel, Some(Duration::ZERO));
            // kqueue too: EVFILT_READ on a regular file is ready while the
            // offset is before end of file (here at 0, in a non-empty file),
            // and EVFILT_WRITE always is (the vnode filters of FreeBSD, macOS,
            // NetBSD, OpenBSD; libkqueue emulates both with an eventfd).
            assert_eq!(ready, [(fd, EVENT_READ | EVENT_WRITE)]);
        }
    }
}

/// Winsock's `select` takes sockets only: a file's handle is refused at
/// registration (`WSAENOTSOCK`), not at the next `select` as in Python.
#[cfg(windows)]
pub fn test_register_non_socket<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    use std::os::windows::io::AsRawHandle;

    let mut sel = open(&new, quirks);
    let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    let handle = file.as_raw_handle() as RawFd;
    let err = sel.register(handle, EVENT_READ, ()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(CLOSED_ERRNO), "{err:?}");
    assert!(sel.get_map().is_empty());
    // The selector still works.
    let (a, _b) = socketpair();
    sel.register(a.as_raw_fd(), EVENT_WRITE, ()).unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(a.as_raw_fd(), EVENT_WRITE)]
    );
}

/// Unregister returns the key; unknown fds and a second unregister fail.
pub fn test_unregister<S: Selector<Stream, u32>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let (a, b) = socketpair();
    let fd = a.as_raw_fd();
    sel.register(a, EVENT_READ, 7).unwrap();
    let key = sel.unregister(fd).unwrap();
    assert_eq!((key.fd(), key.events(), *key.data()), (fd, EVENT_READ, 7));
    // The object comes back, open.
    let (a, data) = key.into_parts();
    assert_eq!((a.as_raw_fd(), data), (fd, 7));
    assert!(is_open(fd));
    assert!(sel.get_map().is_empty());
    assert_err(
        sel.unregister(fd),
        |e| matches!(e, Error::NotRegistered(f) if *f == fd),
        "second unregister",
    );
    assert_err(
        sel.unregister(b.as_raw_fd()),
        |e| matches!(e, Error::NotRegistered(_)),
        "unknown fd",
    );
    assert_err(
        sel.unregister(BAD_FD),
        |e| matches!(e, Error::NotRegistered(f) if *f == BAD_FD),
        "negative fd",
    );
    // And it is no longer watched: data pending on it is not reported.
    (&b).write_all(b"x").unwrap();
    assert!(ready_fds(&mut sel, Some(Duration::ZERO)).is_empty());
}

/// Raw fds registered, both ends closed by their owner: unregister succeeds.
pub fn test_unregister_after_fd_close<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (a, b) = socketpair();
    let (rfd, wfd) = (a.as_raw_fd(), b.as_raw_fd());
    sel.register(rfd, EVENT_READ, ()).unwrap();
    sel.register(wfd, EVENT_WRITE, ()).unwrap();
    drop((a, b));
    sel.unregister(rfd).unwrap();
    sel.unregister(wfd).unwrap();
    assert!(sel.get_map().is_empty());
}

/// fds closed and their numbers reused (dup2 onto other sockets): unregister
/// of the old registrations succeeds, and the new files are not watched.
#[cfg(unix)]
pub fn test_unregister_after_fd_close_and_reuse<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (a, b) = socketpair();
    let (rfd, wfd) = (a.as_raw_fd(), b.as_raw_fd());
    sel.register(rfd, EVENT_READ, ()).unwrap();
    sel.register(wfd, EVENT_WRITE, ()).unwrap();
    let (c, d) = socketpair();
    // Reuse the numbers for other sockets, atomically (dup2 closes the old
    // file), so no concurrent test can take them in between.
    let (mut a, mut b) = (OwnedDescriptor::from(a), OwnedDescriptor::from(b));
    nix::unistd::dup2(&c, &mut a).unwrap();
    nix::unistd::dup2(&d, &mut b).unwrap();
    sel.unregister(rfd).unwrap();
    sel.unregister(wfd).unwrap();
    assert!(sel.get_map().is_empty());
    assert!(ready_fds(&mut sel, Some(Duration::ZERO)).is_empty());
    // `a` and `b` now own the dup2'ed sockets; dropping them closes those.
    drop((a, b, c, d));
}

/// Registered by object: the selector shares ownership, so the caller
/// dropping its handle does not close the socket; unregister still works,
/// hands the object back, and dropping it closes the descriptor.
pub fn test_unregister_after_socket_close<S: Selector<Rc<Stream>, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (a, b) = socketpair();
    let a = Rc::new(a);
    let fd = a.as_raw_fd();
    sel.register(Rc::clone(&a), EVENT_READ, ()).unwrap();
    drop(a); // the caller "closes" its socket
    assert!(is_open(fd), "the selector keeps a registered object open");
    (&b).write_all(b"x").unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(fd, EVENT_READ)]
    );
    let key = sel.unregister(fd).unwrap();
    assert_eq!(Rc::strong_count(key.fileobj()), 1);
    // Consume the byte, so the close below is a clean EOF (not a reset).
    (&**key.fileobj()).read_exact(&mut [0; 1]).unwrap();
    drop(key);
    // The peer sees the close.
    b.set_nonblocking(false).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!((&b).read(&mut [0; 1]).unwrap(), 0);
}
