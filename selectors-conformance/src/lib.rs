//! The conformance suite: every backend runs these tests, so the backends
//! agree by construction.
//!
//! It ports CPython's `Lib/test/test_selectors.py` case by case (names are
//! CPython's), adapted to Rust types, plus the guarantees this crate makes
//! beyond CPython (strong guarantee on failed `modify`, uniform errors and
//! use-after-close behaviour). Every test runs against the real kernel with
//! real descriptors (socket pairs: Unix-domain on Unix, TCP on the loopback
//! on Windows). The cases that cannot apply on Windows (files, pipes, Unix
//! signals, `dup2`, descriptor limits) are compiled out there, each with its
//! reason in the list of [`conformance_suite!`](crate::conformance_suite).
//!
//! A backend instantiates it in an integration test with
//! [`conformance_suite!`](crate::conformance_suite), giving a module name
//! and a generic constructor:
//!
//! ```text
//! fn new_selector<F: selectors_core::FileObject, T>() -> selectors_core::Result<EpollSelector<F, T>> {
//!     EpollSelector::new()
//! }
//! selectors_conformance::conformance_suite!(epoll, new_selector, test_fileno);
//! ```
//!
//! which generates `epoll::test_register`, `epoll::test_modify`, … (the
//! optional trailing names add tests that need more than [`Selector`], such as
//! [`test_fileno`], which needs `AsRawFd`). This module is compiled only with
//! the `conformance` feature, which only dev-dependencies enable.
#![allow(missing_docs, clippy::missing_panics_doc)]

use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use selectors_core::{Error, Events, FileObject, RawFd, Result, Selector, EVENT_READ, EVENT_WRITE};

pub use platform::*;

/// Instantiates the conformance suite as `mod $name`, with `$new` a generic
/// constructor `fn<F: FileObject, T>() -> Result<impl Selector<F, T>>` and
/// `$quirks` the backend's documented differences (a [`Quirks`]); trailing
/// names add optional tests of [`conformance`](crate).
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $new:ident, $quirks:expr $(, $extra:ident)* $(,)?) => {
        $crate::instantiate_tests!($name, [$crate], super::$new, $quirks;
            test_register,
            test_register_bad_fd,
            // Winsock's select takes sockets only: a file is no file object.
            #[cfg(unix)] test_register_file,
            test_unregister,
            test_unregister_after_fd_close,
            // Reuses numbers on purpose with dup2, which Windows lacks.
            #[cfg(unix)] test_unregister_after_fd_close_and_reuse,
            test_unregister_after_socket_close,
            test_modify,
            test_modify_unregister,
            test_modify_invalid_events,
            test_close,
            test_context_manager,
            test_get_key,
            test_get_map,
            test_select,
            test_select_read_write,
            test_select_hangup,
            test_select_into_dispatch,
            test_selector,
            test_empty_select,
            test_empty_select_timeout,
            test_timeout,
            // Unix signals (PEP 475); Winsock has no EINTR.
            #[cfg(unix)] test_select_interrupt_noraise,
            test_above_fd_setsize,
            test_waker_wakes_blocked_select,
            test_waker_coalesces,
            test_waker_races_lose_nothing,
            // Unix signals.
            #[cfg(unix)] test_waker_from_signal_handler,
            test_waker_after_close_and_drop,
            test_key_mut_changes_only_data,
            test_with_fileobj_mut,
            test_fd_wrapper_and_try_register,
            test_dispatch_callbacks,
            test_dispatch_lends_the_key,
            test_selector_through_mut_ref,
            test_failed_connect_is_write_ready,
            // A file handle is refused only where select takes sockets only.
            #[cfg(windows)] test_register_non_socket
            $(, $extra)*
        );
    };
}

/// Instantiates generic tests for one backend as `mod $name`: one `#[test]`
/// per listed name, calling the function of that name in the module
/// `$($tests)+` (a path, in brackets) with `|| $new()` and the backend's
/// [`Quirks`] `$quirks`. `$new` and `$quirks` are seen from inside the new
/// module. A name may carry attributes (`#[cfg(unix)] name`), which its test
/// gets.
///
/// The one place that turns a generic test into `#[test]` functions: used
/// by [`conformance_suite!`](crate::conformance_suite), and by the facade's
/// reliability tests for their own generic tests (`per_backend!`).
///
/// ```text
/// selectors_conformance::instantiate_tests!(
///     epoll, [super], crate::util::new_epoll, selectors_conformance::Quirks::EPOLL;
///     bad_arguments
/// );
/// ```
#[macro_export]
macro_rules! instantiate_tests {
    (
        $name:ident, [$($tests:tt)+], $new:path, $quirks:expr;
        $($(#[$attr:meta])* $test:ident),* $(,)?
    ) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            const QUIRKS: $crate::Quirks = $quirks;
            $crate::instantiate_tests!(@each [$($tests)+], $new; $($(#[$attr])* $test),*);
        }
    };
    // One test at a time: the path `$tests` repeats inside each test, which
    // a single repetition over the names cannot express. Attributes before
    // a name (`#[cfg(unix)]`) go on its test.
    (
        @each [$($tests:tt)+], $new:path;
        $(#[$attr:meta])* $test:ident $(, $(#[$rest_attr:meta])* $rest:ident)*
    ) => {
        $(#[$attr])*
        #[test]
        fn $test() {
            $($tests)+::$test(|| $new(), QUIRKS);
        }
        $crate::instantiate_tests!(@each [$($tests)+], $new; $($(#[$rest_attr])* $rest),*);
    };
    (@each [$($tests:tt)+], $new:path;) => {};
}

/// The kernel interface of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Epoll,
    Kqueue,
    Devpoll,
    Poll,
    Select,
}

impl Kind {
    /// The name [`Selector::backend`] returns.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Epoll => "epoll",
            Kind::Kqueue => "kqueue",
            Kind::Devpoll => "devpoll",
            Kind::Poll => "poll",
            Kind::Select => "select",
        }
    }
}

/// A backend's documented differences from the others, as data: a suite is
/// instantiated with one, so no test switches on backend names. Every
/// conformance test checks first that the selector is of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quirks {
    /// The kernel interface (its rules for descriptors closed while
    /// registered, which the reliability tests model).
    pub kind: Kind,
    /// A regular file is refused with this error (epoll: `EPERM`); without
    /// one, it is accepted and always ready in both directions.
    pub regular_file_errno: Option<i32>,
    /// The first descriptor it cannot watch, if capped (`select(2)` at
    /// `FD_SETSIZE`, except on Linux, Android and FreeBSD).
    pub fd_limit: Option<RawFd>,
    /// libkqueue's emulation of kqueue on Linux (`--cfg selectors_libkqueue`),
    /// with its deviations: at most [`LIBKQUEUE_MAX_KEVENT`] ready entries
    /// per select, filters kept after `close`, descriptors of its own, a
    /// socket's pending error read (so cleared) when it reports the socket.
    pub libkqueue: bool,
}

/// libkqueue's `MAX_KEVENT`: the most entries one `kevent()` call reports.
pub const LIBKQUEUE_MAX_KEVENT: usize = 512;

impl Quirks {
    const PORTABLE: Quirks = Quirks {
        kind: Kind::Poll,
        regular_file_errno: None,
        fd_limit: None,
        libkqueue: false,
    };

    /// epoll(7): refuses regular files.
    pub const EPOLL: Quirks = Quirks {
        kind: Kind::Epoll,
        regular_file_errno: Some(EPERM),
        ..Quirks::PORTABLE
    };

    /// kqueue(2), or libkqueue's emulation of it where that is what builds.
    pub const KQUEUE: Quirks = Quirks {
        kind: Kind::Kqueue,
        libkqueue: cfg!(all(target_os = "linux", selectors_libkqueue)),
        ..Quirks::PORTABLE
    };

    /// /dev/poll.
    pub const DEVPOLL: Quirks = Quirks {
        kind: Kind::Devpoll,
        ..Quirks::PORTABLE
    };

    /// poll(2).
    pub const POLL: Quirks = Quirks::PORTABLE;

    /// select(2): capped at `FD_SETSIZE` where the platform's `fd_set` is
    /// (not on Linux, Android, FreeBSD, nor Windows, whose sets are arrays).
    pub const SELECT: Quirks = Quirks {
        kind: Kind::Select,
        fd_limit: SELECT_FD_LIMIT,
        ..Quirks::PORTABLE
    };

    /// The quirks of the backend named `backend` (what [`Selector::backend`]
    /// and `SelectorImpl::BACKEND` say): for a selector whose backend the
    /// platform chooses, such as the facade's `DefaultSelector`.
    ///
    /// # Panics
    ///
    /// For a name that is no backend's.
    pub const fn of(backend: &str) -> Quirks {
        match backend.as_bytes() {
            b"epoll" => Quirks::EPOLL,
            b"kqueue" => Quirks::KQUEUE,
            b"devpoll" => Quirks::DEVPOLL,
            b"poll" => Quirks::POLL,
            b"select" => Quirks::SELECT,
            _ => panic!("no such backend"),
        }
    }

    /// The most ready entries one select reports, if capped.
    pub const fn max_ready_per_select(&self) -> Option<usize> {
        if self.libkqueue {
            Some(LIBKQUEUE_MAX_KEVENT)
        } else {
            None
        }
    }

    /// Panics unless `sel` is of this backend: the quirks describe it.
    pub fn check<F: FileObject, T, S: Selector<F, T> + ?Sized>(&self, sel: &S) {
        assert_eq!(sel.backend(), self.kind.name(), "quirks of another backend");
    }
}

// ---------------------------------------------------------------- helpers

/// What differs between Unix and Windows for the tests: the socket pair
/// type, the raw-descriptor traits, the values no descriptor has, and the
/// errors for a closed one.
#[cfg(unix)]
mod platform {
    pub use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};

    use selectors_core::RawFd;

    /// The connected stream sockets the tests use: a Unix socket pair.
    pub type Stream = std::os::unix::net::UnixStream;

    /// The owned descriptor type ([`std::os::fd::OwnedFd`]).
    pub type OwnedDescriptor = std::os::fd::OwnedFd;

    /// A value no descriptor has.
    pub const BAD_FD: RawFd = -1;

    /// A valid number that no test opens.
    pub const UNUSED_FD: RawFd = RawFd::MAX;

    /// What registering a closed descriptor fails with.
    pub const CLOSED_ERRNO: i32 = libc::EBADF;

    pub(super) const EPERM: i32 = libc::EPERM;

    /// The C `fd_set`'s capacity.
    #[allow(clippy::unnecessary_cast)]
    pub const FD_SETSIZE: usize = libc::FD_SETSIZE as usize;

    pub(super) const SELECT_FD_LIMIT: Option<RawFd> = if cfg!(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd"
    )) {
        None
    } else {
        Some(libc::FD_SETSIZE as RawFd)
    };

    /// A non-blocking TCP socket with a connect to `addr` under way.
    pub fn connect_nonblocking(addr: std::net::SocketAddrV4) -> std::io::Result<OwnedDescriptor> {
        use std::os::fd::FromRawFd;

        use selectors_core::backend::cvt;

        // SAFETY: no pointer arguments; the result is checked.
        let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) })?;
        // SAFETY: `fd` was just created and is owned by nothing else.
        let socket = unsafe { OwnedDescriptor::from_raw_fd(fd) };
        // SAFETY: plain flag updates on an open descriptor; results checked.
        unsafe {
            let flags = cvt(libc::fcntl(fd, libc::F_GETFL))?;
            cvt(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
        }
        // SAFETY: `sockaddr_in` is plain old data; all-zero is valid.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_port = addr.port().to_be();
        sin.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
        // SAFETY: `sin` is a valid `sockaddr_in` of the length given.
        let rc = unsafe {
            libc::connect(
                fd,
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        match cvt(rc) {
            Ok(_) => Ok(socket),
            Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => Ok(socket),
            Err(err) => Err(err),
        }
    }

    /// A connected pair of stream sockets (blocking).
    pub fn try_socketpair() -> std::io::Result<(Stream, Stream)> {
        Stream::pair()
    }
}

/// What differs between Unix and Windows for the tests: the socket pair
/// type, the raw-descriptor traits, the values no descriptor has, and the
/// errors for a closed one.
#[cfg(windows)]
mod platform {
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::os::windows::io::{AsRawSocket, FromRawSocket, IntoRawSocket};

    use selectors_core::RawFd;

    /// The connected stream sockets the tests use: a TCP connection on the
    /// loopback (Windows has no socket pair).
    pub type Stream = TcpStream;

    /// The owned descriptor type ([`std::os::windows::io::OwnedSocket`]).
    pub type OwnedDescriptor = std::os::windows::io::OwnedSocket;

    /// A value no descriptor has: `INVALID_SOCKET`.
    pub const BAD_FD: RawFd = RawFd::MAX;

    /// A valid number that no test opens (handles are multiples of 4).
    pub const UNUSED_FD: RawFd = (i32::MAX - 2) as RawFd;

    /// What registering a closed descriptor fails with: `WSAENOTSOCK`.
    pub const CLOSED_ERRNO: i32 = 10038;

    /// Never compared on Windows (no backend refuses files there).
    pub(super) const EPERM: i32 = 1;

    /// Winsock's default `fd_set` capacity.
    pub const FD_SETSIZE: usize = 64;

    /// Winsock's sets are arrays sized to the registrations: no cap.
    pub(super) const SELECT_FD_LIMIT: Option<RawFd> = None;

    /// `std::os::fd::AsRawFd`'s counterpart: a socket's handle.
    pub trait AsRawFd {
        fn as_raw_fd(&self) -> RawFd;
    }

    impl<T: AsRawSocket + ?Sized> AsRawFd for T {
        fn as_raw_fd(&self) -> RawFd {
            self.as_raw_socket()
        }
    }

    /// `std::os::fd::FromRawFd`'s counterpart.
    pub trait FromRawFd {
        /// # Safety
        ///
        /// As [`FromRawSocket::from_raw_socket`].
        unsafe fn from_raw_fd(fd: RawFd) -> Self;
    }

    impl<T: FromRawSocket> FromRawFd for T {
        unsafe fn from_raw_fd(fd: RawFd) -> Self {
            // SAFETY: the caller upholds `from_raw_socket`'s contract.
            unsafe { T::from_raw_socket(fd) }
        }
    }

    /// `std::os::fd::IntoRawFd`'s counterpart.
    pub trait IntoRawFd {
        fn into_raw_fd(self) -> RawFd;
    }

    impl<T: IntoRawSocket> IntoRawFd for T {
        fn into_raw_fd(self) -> RawFd {
            self.into_raw_socket()
        }
    }

    /// The Winsock calls of [`connect_nonblocking`], declared by hand.
    mod winsock {
        pub type Socket = usize;
        pub const INVALID_SOCKET: Socket = !0;
        pub const AF_INET: i32 = 2;
        pub const SOCK_STREAM: i32 = 1;
        pub const FIONBIO: i32 = 0x8004_667e_u32 as i32;
        pub const WSAEWOULDBLOCK: i32 = 10035;

        #[repr(C)]
        pub struct SockaddrIn {
            pub sin_family: u16,
            pub sin_port: u16,
            pub sin_addr: u32,
            pub sin_zero: [u8; 8],
        }

        #[link(name = "ws2_32")]
        extern "system" {
            pub fn socket(af: i32, kind: i32, protocol: i32) -> Socket;
            pub fn ioctlsocket(s: Socket, cmd: i32, argp: *mut u32) -> i32;
            pub fn connect(s: Socket, name: *const SockaddrIn, namelen: i32) -> i32;
        }
    }

    /// A non-blocking TCP socket with a connect to `addr` under way.
    pub fn connect_nonblocking(addr: std::net::SocketAddrV4) -> std::io::Result<OwnedDescriptor> {
        use selectors_core::backend::last_socket_error;
        use std::os::windows::io::FromRawSocket;

        // Winsock is started by the standard library's first socket.
        drop(std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?);
        // SAFETY: no pointer arguments; the result is checked.
        let raw = unsafe { winsock::socket(winsock::AF_INET, winsock::SOCK_STREAM, 0) };
        if raw == winsock::INVALID_SOCKET {
            return Err(last_socket_error());
        }
        // SAFETY: `raw` was just created and is owned by nothing else.
        let socket = unsafe { OwnedDescriptor::from_raw_socket(raw as RawFd) };
        let mut on: u32 = 1;
        // SAFETY: `on` is a valid `u_long` for FIONBIO to read.
        if unsafe { winsock::ioctlsocket(raw, winsock::FIONBIO, &mut on) } != 0 {
            return Err(last_socket_error());
        }
        let sin = winsock::SockaddrIn {
            sin_family: winsock::AF_INET as u16,
            sin_port: addr.port().to_be(),
            sin_addr: u32::from(*addr.ip()).to_be(),
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<winsock::SockaddrIn>() as i32;
        // SAFETY: `sin` is a valid `sockaddr_in` of the length given.
        if unsafe { winsock::connect(raw, &sin, len) } == 0 {
            return Ok(socket);
        }
        let err = last_socket_error();
        if err.raw_os_error() == Some(winsock::WSAEWOULDBLOCK) {
            Ok(socket)
        } else {
            Err(err)
        }
    }

    /// A connected pair of TCP sockets on the IPv4 loopback (blocking).
    pub fn try_socketpair() -> std::io::Result<(Stream, Stream)> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let a = TcpStream::connect(listener.local_addr()?)?;
        let ours = a.local_addr()?;
        loop {
            let (b, peer) = listener.accept()?;
            if peer == ours {
                return Ok((a, b));
            }
        }
    }
}

/// A connected, non-blocking pair of stream sockets ([`Stream`]): a Unix
/// socket pair, or a TCP connection on the loopback on Windows.
pub fn socketpair() -> (Stream, Stream) {
    let (a, b) = try_socketpair().expect("socketpair");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    (a, b)
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

fn assert_err<T>(result: Result<T>, expected: impl Fn(&Error) -> bool, what: &str) {
    match result {
        Err(err) if expected(&err) => {}
        Err(err) => panic!("{what}: unexpected error {err:?}"),
        Ok(_) => panic!("{what}: unexpectedly succeeded"),
    }
}

/// How often a test retries when a test running in parallel took the number
/// of a descriptor it closed on purpose (rare: a retry or two at most).
const RACE_ATTEMPTS: usize = 20;

/// Serialises the tests that use most of the process's descriptors.
static FD_HEAVY: Mutex<()> = Mutex::new(());

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

// ------------------------------------------------------------ registration

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

// ----------------------------------------------------------- unregistering

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
    for (from, to) in [(c.as_raw_fd(), rfd), (d.as_raw_fd(), wfd)] {
        // SAFETY: both are open descriptors this test owns; dup2 replaces
        // `to`, which the socket `a`/`b` owns and which we forget below.
        selectors_core::backend::cvt(unsafe { libc::dup2(from, to) }).unwrap();
    }
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

// ---------------------------------------------------------------- modify

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

// ------------------------------------------------------------ close, drop

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

// ------------------------------------------------------------- look-ups

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
pub fn test_fileno<S: Selector<RawFd, ()> + AsRawFd>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let fd = sel.as_raw_fd();
    assert!(fd >= 0 && is_open(fd));
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "close-on-exec");
    sel.close().unwrap();
    assert_eq!(sel.as_raw_fd(), fd, "valid until dropped");
}

// --------------------------------------------------------------- select

/// Reader and writer of an idle pair: exactly `[(writer, WRITE)]`.
pub fn test_select<S: Selector<RawFd, &'static str>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let (rd, wr) = socketpair();
    sel.register(rd.as_raw_fd(), EVENT_READ, "reader").unwrap();
    sel.register(wr.as_raw_fd(), EVENT_WRITE, "writer").unwrap();
    let ready: Vec<_> = sel
        .select(None)
        .unwrap()
        .map(|(key, events)| (key.fd(), *key.data(), events))
        .collect();
    assert_eq!(ready, [(wr.as_raw_fd(), "writer", EVENT_WRITE)]);
}

/// One socket registered READ|WRITE with data pending: one entry, both events.
pub fn test_select_read_write<S: Selector<RawFd, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let (a, b) = socketpair();
    (&b).write_all(b"hello").unwrap();
    sel.register(a.as_raw_fd(), EVENT_READ | EVENT_WRITE, ())
        .unwrap();
    for _ in 0..2 {
        // Level-triggered: reported again while still ready.
        let ready = ready_fds(&mut sel, Some(Duration::ZERO));
        assert_eq!(ready, [(a.as_raw_fd(), EVENT_READ | EVENT_WRITE)]);
    }
    let mut buf = [0; 5];
    (&a).read_exact(&mut buf).unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(a.as_raw_fd(), EVENT_WRITE)]
    );
}

/// A peer that hung up makes the socket ready, reported only for what was
/// registered (hang-up counts as both directions, then is masked).
pub fn test_select_hangup<S: Selector<RawFd, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let (r, r_peer) = socketpair();
    let (w, w_peer) = socketpair();
    let (rw, rw_peer) = socketpair();
    drop((r_peer, w_peer, rw_peer));
    let mut sel = open(&new, quirks);
    sel.register(r.as_raw_fd(), EVENT_READ, ()).unwrap();
    sel.register(w.as_raw_fd(), EVENT_WRITE, ()).unwrap();
    sel.register(rw.as_raw_fd(), EVENT_READ | EVENT_WRITE, ())
        .unwrap();
    let mut expected = vec![
        (r.as_raw_fd(), EVENT_READ),
        (w.as_raw_fd(), EVENT_WRITE),
        (rw.as_raw_fd(), EVENT_READ | EVENT_WRITE),
    ];
    expected.sort_unstable_by_key(|&(fd, _)| fd);
    assert_eq!(ready_fds(&mut sel, Some(Duration::from_secs(5))), expected);
}

/// The dispatch pattern: `select_into` fills a caller-owned list, so
/// handlers may register, modify and unregister while it is walked.
pub fn test_select_into_dispatch<S: Selector<Stream, u32>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (a, a_peer) = socketpair();
    let (b, b_peer) = socketpair();
    let (c, c_peer) = socketpair();
    let (afd, bfd, cfd) = (a.as_raw_fd(), b.as_raw_fd(), c.as_raw_fd());
    (&a_peer).write_all(b"1").unwrap();
    (&b_peer).write_all(b"2").unwrap();
    sel.register(a, EVENT_READ, 0).unwrap();
    sel.register(b, EVENT_READ, 0).unwrap();
    let mut ready = Vec::new();
    assert_eq!(
        sel.select_into(&mut ready, Some(Duration::from_secs(5)))
            .unwrap(),
        2
    );
    let mut handled = Vec::new();
    for &(fd, _) in &ready {
        // Whichever is handled first registers `c` and unregisters the
        // other (in this order: the other's number, freed by unregister, must
        // not be reused by a new registration while the list is walked).
        let Ok(mut key) = sel.get_key_mut(fd) else {
            continue;
        };
        *key.data_mut() += 1;
        handled.push(fd);
        let other = if fd == afd { bfd } else { afd };
        sel.register(c.try_clone().unwrap(), EVENT_WRITE, 5)
            .unwrap();
        sel.unregister(other).unwrap();
    }
    assert_eq!(handled.len(), 1, "the unregistered entry is skipped");
    assert_eq!(*sel.get_key(handled[0]).unwrap().data(), 1);
    let clone_fd = sel.get_map().fds().last().unwrap();
    assert_ne!(clone_fd, cfd);
    let mut expected = vec![(handled[0], EVENT_READ), (clone_fd, EVENT_WRITE)];
    expected.sort_unstable_by_key(|&(fd, _)| fd);
    assert_eq!(ready_fds(&mut sel, Some(Duration::ZERO)), expected);
    drop((c, c_peer));
}

/// 12 socket pairs, a random writer each round: exactly the matching reader
/// becomes ready, and every message arrives.
pub fn test_selector<S: Selector<Stream, usize>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let mut writers = Vec::new();
    for i in 0..12 {
        let (rd, wr) = socketpair();
        sel.register(rd, EVENT_READ, i).unwrap();
        writers.push(wr);
    }
    let mut seed = 0x9e37_79b9_u32;
    for round in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let i = seed as usize % writers.len();
        let message = format!("round {round} to {i}");
        (&writers[i]).write_all(message.as_bytes()).unwrap();
        let ready: Vec<_> = sel
            .select(Some(Duration::from_secs(5)))
            .unwrap()
            .map(|(key, events)| (*key.data(), key.fd(), events))
            .collect();
        assert_eq!(ready.len(), 1, "round {round}: {ready:?}");
        let (data, fd, events) = ready[0];
        assert_eq!((data, events), (i, EVENT_READ));
        let mut buf = vec![0; message.len()];
        let stream: &Stream = sel.get_key(fd).unwrap().fileobj();
        (&*stream).read_exact(&mut buf).unwrap();
        assert_eq!(buf, message.as_bytes());
    }
}

/// Nothing registered, timeout 0: empty, at once.
pub fn test_empty_select<S: Selector<RawFd, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let start = Instant::now();
    assert_eq!(sel.select(Some(Duration::ZERO)).unwrap().len(), 0);
    assert!(start.elapsed() < Duration::from_millis(500));
}

/// Nothing registered, timeout 1 s: the timeout is honoured (CPython's
/// kqueue test, for every backend).
pub fn test_empty_select_timeout<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let start = Instant::now();
    assert_eq!(sel.select(Some(Duration::from_secs(1))).unwrap().len(), 0);
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

/// A writable fd with timeout 0 and 1 ns: one entry, fast; an unreadable fd
/// with timeout 1 s: empty after 0.8–2.0 s.
pub fn test_timeout<S: Selector<RawFd, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let (rd, wr) = socketpair();
    sel.register(wr.as_raw_fd(), EVENT_WRITE, ()).unwrap();
    for timeout in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_secs(1),
    ] {
        let start = Instant::now();
        assert_eq!(
            ready_fds(&mut sel, Some(timeout)),
            [(wr.as_raw_fd(), EVENT_WRITE)]
        );
        assert!(start.elapsed() < Duration::from_millis(500), "{timeout:?}");
    }
    sel.unregister(wr.as_raw_fd()).unwrap();
    sel.register(rd.as_raw_fd(), EVENT_READ, ()).unwrap();
    let start = Instant::now();
    assert!(ready_fds(&mut sel, Some(Duration::from_secs(1))).is_empty());
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(800), "{elapsed:?}");
    assert!(elapsed <= Duration::from_secs(2), "{elapsed:?}");
}

// -------------------------------------------------------------- signals

/// Signal handling for the tests: a handler that counts, per thread, the
/// signals it received (the counter is thread-local, so tests running in
/// parallel in one process do not see each other's signals).
#[cfg(unix)]
pub mod signals {
    use std::cell::Cell;
    use std::sync::Once;

    thread_local! {
        // Already `const`: the lint misfires on targets without native
        // `#[thread_local]` (illumos, Solaris, OpenBSD), rust-clippy#17566.
        #[allow(clippy::missing_const_for_thread_local)]
        static RECEIVED: Cell<usize> = const { Cell::new(0) };
    }

    extern "C" fn count(_signal: libc::c_int) {
        // A thread-local `Cell` with a const initialiser is a plain TLS
        // access: async-signal-safe.
        RECEIVED.with(|r| r.set(r.get() + 1));
    }

    /// Installs the counting handler for `signal`, once per process, without
    /// `SA_RESTART` (so blocking calls are interrupted with `EINTR`).
    pub fn install(signal: libc::c_int) {
        static ONCE: Once = Once::new();
        assert_eq!(signal, libc::SIGURG, "one handled signal per process");
        ONCE.call_once(|| {
            // SAFETY: `sigaction` is plain old data (zeroed is valid); the
            // handler is an `extern "C" fn(c_int)` that only touches a
            // thread-local `Cell`; every return value is checked.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = count as extern "C" fn(libc::c_int) as libc::sighandler_t;
                action.sa_flags = 0;
                assert_eq!(libc::sigemptyset(&mut action.sa_mask), 0);
                assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
            }
        });
    }

    /// Signals this thread has received so far.
    pub fn received() -> usize {
        RECEIVED.with(Cell::get)
    }

    /// The calling thread, as a target for [`send`].
    pub fn current_thread() -> libc::pthread_t {
        // SAFETY: always safe to call.
        unsafe { libc::pthread_self() }
    }

    /// Sends `signal` to `thread` (which must still be running).
    pub fn send(thread: libc::pthread_t, signal: libc::c_int) {
        // SAFETY: the caller guarantees `thread` is alive (it joins the
        // sender before returning).
        let rc = unsafe { libc::pthread_kill(thread, signal) };
        assert_eq!(rc, 0, "pthread_kill");
    }
}

/// A signal arrives during a 1.5 s wait: the wait is resumed (PEP 475), no
/// error surfaces, and it returns empty after at least 1.0 s.
#[cfg(unix)]
pub fn test_select_interrupt_noraise<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    signals::install(libc::SIGURG);
    let mut sel = open(&new, quirks);
    let (rd, _wr) = socketpair();
    sel.register(rd.as_raw_fd(), EVENT_READ, ()).unwrap();
    let me = signals::current_thread();
    let before = signals::received();
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            signals::send(me, libc::SIGURG);
        });
        let ready = sel
            .select(Some(Duration::from_millis(1500)))
            .expect("no EINTR error");
        assert_eq!(ready.len(), 0);
    });
    let elapsed = start.elapsed();
    assert_eq!(
        signals::received(),
        before + 1,
        "the signal interrupted the wait"
    );
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

// ----------------------------------------------------------------- scale

/// The soft open-file limit and the number of descriptors open now.
#[cfg(unix)]
pub fn fd_budget() -> (usize, usize) {
    // SAFETY: `rlimit` is plain old data; getrlimit writes it.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid resource and pointer.
    selectors_core::backend::cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })
        .unwrap();
    let open = std::fs::read_dir("/proc/self/fd")
        .or_else(|_| std::fs::read_dir("/dev/fd"))
        .map(|dir| dir.count())
        .unwrap_or(64);
    (
        usize::try_from(limit.rlim_cur)
            .unwrap_or(usize::MAX)
            .min(1 << 20),
        open,
    )
}

/// Windows has no open-file limit to read: a budget of 600 pairs, far above
/// Winsock's default `FD_SETSIZE` of 64 (the size of the C `fd_set`, which
/// the select backend does not use).
#[cfg(windows)]
pub fn fd_budget() -> (usize, usize) {
    (1600, 0)
}

/// As many socket pairs as the open-file limit allows (here ~9,800 pairs,
/// ~19,600 descriptors, far above `FD_SETSIZE`): readers registered READ,
/// writers WRITE; one select reports exactly one entry per pair, plus the
/// readers that were written to.
pub fn test_above_fd_setsize<S: Selector<Stream, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let _guard = FD_HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let mut sel = open(&new, quirks);
    let (limit, open) = fd_budget();
    // Leave room for the other tests running in parallel in this process.
    let pairs_wanted = limit.saturating_sub(open + 400) / 2;
    let limit_fd = FD_SETSIZE;
    let unlimited = quirks.fd_limit.is_none();
    let mut readers_written = Vec::new();
    let mut pairs = 0;
    for i in 0..pairs_wanted {
        let Ok((rd, wr)) = try_socketpair() else {
            break;
        };
        let (rfd, wfd) = (rd.as_raw_fd(), wr.as_raw_fd());
        if i % 97 == 0 {
            (&wr).write_all(b"x").unwrap();
            readers_written.push(rfd);
        }
        match sel.register(rd, EVENT_READ, ()) {
            Ok(_) => {}
            Err(Error::FdOutOfRange { fd, limit }) if !unlimited => {
                assert!(fd >= limit && Some(limit) == quirks.fd_limit);
                break;
            }
            Err(err) => panic!("register fd {rfd}: {err:?}"),
        }
        match sel.register(wr, EVENT_WRITE, ()) {
            Ok(_) => {}
            Err(Error::FdOutOfRange { fd, limit }) if !unlimited => {
                assert!(fd >= limit);
                sel.unregister(rfd).unwrap();
                readers_written.retain(|&fd| fd != rfd);
                break;
            }
            Err(err) => panic!("register fd {wfd}: {err:?}"),
        }
        pairs += 1;
    }
    if unlimited {
        assert_eq!(
            pairs, pairs_wanted,
            "socketpair failed early (limit {limit}, {open} open)"
        );
        assert!(
            pairs * 2 > 4 * limit_fd,
            "only {pairs} pairs fit (limit {limit})"
        );
    }
    let mut ready = ready_fds(&mut sel, Some(Duration::from_secs(10)));
    let expected = pairs + readers_written.len();
    if let Some(batch_max) = quirks.max_ready_per_select() {
        // libkqueue deviation: one kevent() call reports at most
        // `batch_max` entries, where a kernel kqueue fills the whole buffer.
        // Expect a full batch, then the rest over the next selects
        // (level-triggered: nothing may be starved), each entry checked below.
        assert_eq!(ready.len(), expected.min(batch_max));
        let mut all: std::collections::BTreeMap<RawFd, Events> = ready.into_iter().collect();
        let rounds = 4 * expected.div_ceil(batch_max) + 4;
        for _ in 0..rounds {
            if all.len() == expected {
                break;
            }
            let batch = ready_fds(&mut sel, Some(Duration::ZERO));
            assert_eq!(batch.len(), expected.min(batch_max));
            all.extend(batch);
        }
        ready = all.into_iter().collect();
    }
    assert_eq!(ready.len(), expected);
    for (fd, events) in ready {
        let key = sel.get_key(fd).unwrap();
        if key.events() == EVENT_WRITE {
            assert_eq!(events, EVENT_WRITE);
        } else {
            assert_eq!(events, EVENT_READ);
            assert!(readers_written.contains(&fd));
        }
    }
    sel.close().unwrap();
}

// ----------------------------------------------------------------- waker

/// A thread wakes a selector blocked with no timeout; the wake-up is not a
/// key, and ready keys are still reported beside it.
pub fn test_waker_wakes_blocked_select<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (rd, wr) = socketpair();
    sel.register(rd.as_raw_fd(), EVENT_READ, ()).unwrap();
    let waker = sel.waker().unwrap();
    assert!(sel.get_map().len() == 1, "the waker is not in the map");
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            waker.wake().unwrap();
        });
        let ready = sel.select(None).unwrap();
        assert!(ready.was_woken());
        assert_eq!(ready.len(), 0);
    });
    assert!(sel.was_woken());
    assert!(start.elapsed() >= Duration::from_millis(100));
    // Consumed: the next poll is quiet.
    assert!(ready_fds(&mut sel, Some(Duration::ZERO)).is_empty());
    assert!(!sel.was_woken());
    // A wake and a ready key in the same select: both reported.
    (&wr).write_all(b"x").unwrap();
    sel.waker().unwrap().wake().unwrap();
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::from_secs(5))),
        [(rd.as_raw_fd(), EVENT_READ)]
    );
    assert!(sel.was_woken());
    // Through `select_into` too.
    waker.wake().unwrap();
    let mut ready = Vec::new();
    assert_eq!(sel.select_into(&mut ready, None).unwrap(), 1);
    assert!(sel.was_woken());
}

/// A thousand wakes before a select make it return once.
pub fn test_waker_coalesces<S: Selector<RawFd, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let mut sel = open(&new, quirks);
    let waker = sel.waker().unwrap();
    let clones: Vec<_> = (0..10).map(|_| waker.clone()).collect();
    for _ in 0..100 {
        for waker in &clones {
            waker.wake().unwrap();
        }
    }
    assert_eq!(sel.select(Some(Duration::from_secs(5))).unwrap().len(), 0);
    assert!(sel.was_woken());
    let start = Instant::now();
    assert_eq!(
        sel.select(Some(Duration::from_millis(50))).unwrap().len(),
        0
    );
    assert!(!sel.was_woken(), "one return for all the wakes");
    assert!(start.elapsed() >= Duration::from_millis(50));
}

/// 8 threads × 10,000 wakes racing a selecting loop: each wake, made after
/// the loop observed the thread's previous one, is observed in turn (a lost
/// wake leaves its thread waiting until its deadline, and fails).
pub fn test_waker_races_lose_nothing<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    const THREADS: usize = 8;
    const WAKES: usize = 10_000;
    let mut sel = open(&new, quirks);
    let waker = sel.waker().unwrap();
    let observed = AtomicU64::new(0);
    let finished = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for i in 0..WAKES {
                    let before = observed.load(Ordering::SeqCst);
                    waker.wake().unwrap();
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while observed.load(Ordering::SeqCst) == before {
                        if Instant::now() > deadline {
                            finished.fetch_add(THREADS, Ordering::SeqCst);
                            panic!("wake {i} of a thread was lost");
                        }
                        std::thread::yield_now();
                    }
                }
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
        let mut woken = 0u64;
        while finished.load(Ordering::SeqCst) < THREADS {
            // A timeout only so that the loop notices the end.
            let ready = sel.select(Some(Duration::from_millis(100))).unwrap();
            assert_eq!(ready.len(), 0);
            if sel.was_woken() {
                woken += 1;
                observed.fetch_add(1, Ordering::SeqCst);
            }
        }
        // Coalescing: never more returns than wakes, and at least one per
        // round of the busiest thread.
        assert!(
            woken >= WAKES as u64 && woken <= (THREADS * WAKES) as u64,
            "{woken}"
        );
    });
}

/// A SIGUSR1 handler that calls `wake()` stops a loop that waits with no
/// timeout (PEP 475 alone would resume the wait forever).
#[cfg(unix)]
pub fn test_waker_from_signal_handler<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    use std::sync::atomic::{AtomicPtr, Ordering};
    use std::sync::Once;

    /// The waker the handler calls; tests using it are serialised.
    static TARGET: AtomicPtr<selectors_core::Waker> = AtomicPtr::new(std::ptr::null_mut());
    static SERIAL: Mutex<()> = Mutex::new(());
    static INSTALL: Once = Once::new();

    extern "C" fn on_sigusr1(_signal: libc::c_int) {
        let waker = TARGET.load(Ordering::Acquire);
        if !waker.is_null() {
            // SAFETY: TARGET only ever holds a leaked, never-freed `Waker`;
            // `wake` is async-signal-safe (an atomic load and one write).
            let _ = unsafe { &*waker }.wake();
        }
    }

    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    INSTALL.call_once(|| {
        // SAFETY: `sigaction` is plain old data (zeroed is valid); the
        // handler only does async-signal-safe work; results are checked.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            assert_eq!(libc::sigemptyset(&mut action.sa_mask), 0);
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
                0
            );
        }
    });
    let mut sel = open(&new, quirks);
    let (rd, _wr) = socketpair();
    sel.register(rd.as_raw_fd(), EVENT_READ, ()).unwrap();
    // Leaked on purpose: a signal handler may still hold it after the test.
    let waker: &'static selectors_core::Waker = Box::leak(Box::new(sel.waker().unwrap()));
    TARGET.store(
        waker as *const selectors_core::Waker as *mut selectors_core::Waker,
        Ordering::Release,
    );
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: sends a signal to this process, like Ctrl-C would.
            assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) }, 0);
        });
        let mut rounds = 0;
        // The loop a program runs until a signal asks it to stop.
        loop {
            let ready = sel.select(None).expect("no EINTR surfaces");
            rounds += 1;
            if ready.was_woken() {
                break;
            }
            assert!(rounds < 10, "spurious returns without a wake");
        }
    });
    TARGET.store(std::ptr::null_mut(), Ordering::Release);
    assert!(start.elapsed() >= Duration::from_millis(100));
}

/// After close, and after the selector is dropped, wakers fail with `Closed`
/// instead of touching a descriptor (whose number may have been reused).
pub fn test_waker_after_close_and_drop<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let waker = sel.waker().unwrap();
    let again = sel.waker().unwrap();
    waker.wake().unwrap();
    again.wake().unwrap();
    drop(sel);
    assert!(matches!(waker.wake(), Err(Error::Closed)));
    assert!(matches!(again.wake(), Err(Error::Closed)));

    let mut sel = open(&new, quirks);
    let waker = sel.waker().unwrap();
    sel.close().unwrap();
    assert!(matches!(waker.wake(), Err(Error::Closed)));
    assert!(matches!(sel.waker(), Err(Error::Closed)));
    // Wakers are Send + Sync and outlive their selector safely.
    std::thread::spawn(move || assert!(waker.wake().is_err()))
        .join()
        .unwrap();
}

// ------------------------------------------- keys, lending and dispatching

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
    *sel.get_key_mut(bfd).unwrap().into_data_mut() = "b2".into();
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

    // Replaced by another descriptor: refused, the registration withdrawn.
    let bfd = b.as_raw_fd();
    let mut replacement = Some(io::BufReader::new(b));
    let result = sel.with_fileobj_mut(afd, |reader, _| {
        *reader = replacement.take().unwrap();
    });
    assert!(
        matches!(result, Err(Error::FdChanged { old, new }) if old == afd && new == bfd),
        "{result:?}"
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
    // The replacement, b, was dropped with the key (and `afd`'s old socket
    // by the closure's assignment): both are closed, and the kernel does not
    // watch them.
    assert!(peer_closed(&b_peer) && peer_closed(&a_peer));
    assert!(ready_fds(&mut sel, Some(Duration::ZERO)).is_empty());
    assert_err(
        sel.with_fileobj_mut(afd, |_, _| ()),
        |e| matches!(e, Error::NotRegistered(_)),
        "with_fileobj_mut of an unknown fd",
    );
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

/// The sockets of [`test_dispatch_callbacks`]: a listener or a connection.
#[derive(Debug)]
pub enum Sock {
    Listener(std::net::TcpListener),
    Conn(std::net::TcpStream),
}

impl FileObject for Sock {
    fn fileno(&self) -> RawFd {
        match self {
            Sock::Listener(listener) => listener.as_raw_fd(),
            Sock::Conn(conn) => conn.as_raw_fd(),
        }
    }
}

/// Python's callback, with the selector as a trait object (the key's data
/// type cannot name the selector's type, which contains it).
#[derive(Debug, Clone, Copy)]
pub struct Callback(CallbackFn);

/// The function in a [`Callback`].
pub type CallbackFn = fn(
    &mut dyn Selector<Sock, Callback>,
    &mut selectors_core::LentKey<Sock, Callback>,
    Events,
) -> io::Result<()>;

fn accept(
    sel: &mut dyn Selector<Sock, Callback>,
    key: &mut selectors_core::LentKey<Sock, Callback>,
    _mask: Events,
) -> io::Result<()> {
    let Sock::Listener(listener) = key.fileobj_mut() else {
        unreachable!("accept is the listener's callback")
    };
    let (conn, _) = listener.accept()?;
    conn.set_nonblocking(true)?;
    sel.register(Sock::Conn(conn), EVENT_READ, Callback(read))?;
    Ok(())
}

fn read(
    _sel: &mut dyn Selector<Sock, Callback>,
    key: &mut selectors_core::LentKey<Sock, Callback>,
    _mask: Events,
) -> io::Result<()> {
    let Sock::Conn(conn) = key.fileobj_mut() else {
        unreachable!("read is a connection's callback")
    };
    let mut data = [0; 1000];
    let n = conn.read(&mut data)?;
    if n > 0 {
        conn.write_all(&data[..n])?;
    } else {
        key.unregister();
    }
    Ok(())
}

/// Python's documentation example: each key's data is the function that
/// handles it, an `accept` callback registers connections, a `read` callback
/// echoes and unregisters its own connection at end of file.
pub fn test_dispatch_callbacks<S: Selector<Sock, Callback>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let lfd = listener.as_raw_fd();
    sel.register(Sock::Listener(listener), EVENT_READ, Callback(accept))
        .unwrap();
    let mut clients: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.write_all(format!("hello {i}").as_bytes()).unwrap();
    }
    let run = |sel: &mut S| {
        sel.dispatch(Some(Duration::from_secs(5)), |sel, key, mask| {
            let callback = *key.data();
            (callback.0)(sel, key, mask)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut echoed = vec![Vec::new(); clients.len()];
    while echoed
        .iter()
        .enumerate()
        .any(|(i, got)| got.len() < format!("hello {i}").len())
    {
        assert!(Instant::now() < deadline, "echo timed out: {echoed:?}");
        run(&mut sel).unwrap();
        for (client, got) in clients.iter_mut().zip(&mut echoed) {
            client.set_nonblocking(true).unwrap();
            let mut buf = [0; 64];
            if let Ok(n) = client.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            client.set_nonblocking(false).unwrap();
        }
    }
    for (i, got) in echoed.iter().enumerate() {
        assert_eq!(got, format!("hello {i}").as_bytes());
    }
    assert_eq!(sel.get_map().len(), 4, "listener and three connections");
    let conn_fds: Vec<RawFd> = sel.get_map().fds().filter(|&fd| fd != lfd).collect();
    // The clients hang up: each read callback unregisters its connection,
    // which is closed when the handler returns.
    clients.clear();
    while sel.get_map().len() > 1 {
        assert!(Instant::now() < deadline, "hang-ups not handled");
        run(&mut sel).unwrap();
    }
    assert_eq!(sel.get_map().fds().collect::<Vec<_>>(), [lfd]);
    for fd in conn_fds {
        assert!(
            sel.get_key(fd).is_err(),
            "fd {fd} unregistered (its number may be reused later)"
        );
    }
}

/// What a dispatch handler sees: its own key lent (`Busy` through the
/// selector, yet still registered), its changes applied on return, a key an
/// earlier handler unregistered skipped, errors and panics after the key is
/// back, and a replaced file object withdrawn.
pub fn test_dispatch_lends_the_key<S: Selector<Stream, u32>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (a, a_peer) = socketpair();
    let (b, b_peer) = socketpair();
    let (afd, bfd) = (a.as_raw_fd(), b.as_raw_fd());
    sel.register(a, EVENT_READ, 0).unwrap();
    sel.register(b, EVENT_READ, 0).unwrap();
    (&a_peer).write_all(b"a").unwrap();
    (&b_peer).write_all(b"b").unwrap();

    // One round: whichever runs first checks the lending rules, switches
    // itself to WRITE and unregisters the other, which is then skipped.
    let mut calls = 0;
    let handled = sel
        .dispatch(
            Some(Duration::from_secs(5)),
            |sel, key, events| -> Result<()> {
                calls += 1;
                let fd = key.fd();
                assert_eq!(events, EVENT_READ);
                assert!(matches!(sel.get_key(fd), Err(Error::Busy(f)) if f == fd));
                assert!(matches!(sel.unregister(fd), Err(Error::Busy(_))));
                assert!(matches!(
                    sel.modify_events(fd, EVENT_WRITE),
                    Err(Error::Busy(_))
                ));
                // The same number, as another object: still registered. (The
                // object is handed back, and forgotten without closing `fd`.)
                // SAFETY: `alias` never closes `fd`: it comes back from
                // `try_register` and is released with `into_raw_fd`.
                let alias = unsafe { Stream::from_raw_fd(fd) };
                let Err(err) = sel.try_register(alias, EVENT_READ, 9) else {
                    panic!("the lent descriptor was registered again");
                };
                assert!(matches!(err.error(), Error::AlreadyRegistered(f) if *f == fd));
                assert_eq!(err.into_parts().1.into_raw_fd(), fd);
                assert!(sel.get_map().contains(fd) && sel.get_map().get(fd).is_none());
                assert_eq!(sel.get_map().len(), 1);
                let mut drained = [0; 1];
                key.fileobj_mut().read_exact(&mut drained).unwrap();
                *key.data_mut() += 1;
                assert!(matches!(
                    key.modify_events(Events::EMPTY),
                    Err(Error::InvalidEvents)
                ));
                key.modify_events(EVENT_WRITE).unwrap();
                assert_eq!((key.events(), key.next_events()), (EVENT_READ, EVENT_WRITE));
                let other = if fd == afd { bfd } else { afd };
                sel.unregister(other)?;
                Ok(())
            },
        )
        .unwrap();
    assert_eq!((handled, calls), (1, 1));
    assert_eq!(sel.get_map().len(), 1);
    let kept = sel.get_map().fds().next().unwrap();
    let key = sel.get_key(kept).unwrap();
    assert_eq!((key.events(), *key.data()), (EVENT_WRITE, 1));
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(kept, EVENT_WRITE)]
    );

    // A handler's error comes out after the key is back.
    let err = sel
        .dispatch(Some(Duration::from_secs(5)), |_, key, _| {
            *key.data_mut() = 7;
            Err(io::Error::other("handler failed"))
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "handler failed");
    assert_eq!(*sel.get_key(kept).unwrap().data(), 7);

    // A panic too.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = sel.dispatch(Some(Duration::from_secs(5)), |_, key, _| -> Result<()> {
            *key.data_mut() = 8;
            panic!("handler bug")
        });
    }));
    assert!(caught.is_err());
    assert_eq!(*sel.get_key(kept).unwrap().data(), 8);
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::ZERO)),
        [(kept, EVENT_WRITE)]
    );

    // A file object replaced while lent: withdrawn, reported.
    let (c, _c_peer) = socketpair();
    let cfd = c.as_raw_fd();
    let mut replacement = Some(c);
    let result = sel.dispatch(Some(Duration::from_secs(5)), |_, key, _| {
        *key.fileobj_mut() = replacement.take().unwrap();
        Ok::<(), Error>(())
    });
    assert!(
        matches!(result, Err(Error::FdChanged { old, new }) if old == kept && new == cfd),
        "{result:?}"
    );
    assert!(sel.get_map().is_empty());
    assert!(ready_fds(&mut sel, Some(Duration::ZERO)).is_empty());

    // Closing the selector inside a handler: the lent key is dropped too.
    let (d, d_peer) = socketpair();
    sel.register(d, EVENT_WRITE, 0).unwrap();
    sel.dispatch(Some(Duration::from_secs(5)), |sel, _, _| sel.close())
        .unwrap();
    assert!(sel.is_closed() && peer_closed(&d_peer));
    assert!(matches!(
        sel.dispatch(Some(Duration::ZERO), |_, _, _| Ok::<(), Error>(())),
        Err(Error::Closed)
    ));
    drop((a_peer, b_peer));
}

/// `&mut S` is a selector too, so generic code can take `&mut impl
/// Selector` and pass it on; dispatch works through it.
pub fn test_selector_through_mut_ref<S: Selector<Stream, u32>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    fn register_pair(mut sel: impl Selector<Stream, u32>) -> Stream {
        let (a, a_peer) = socketpair();
        sel.register(a, EVENT_READ, 1).unwrap();
        a_peer
    }
    fn serve(sel: &mut impl Selector<Stream, u32>) -> usize {
        sel.dispatch(Some(Duration::from_secs(5)), |_, key, _| {
            let mut buf = [0; 8];
            let n = key.fileobj_mut().read(&mut buf)?;
            *key.data_mut() += n as u32;
            io::Result::Ok(())
        })
        .unwrap()
    }
    let mut sel = open(&new, quirks);
    let peer = register_pair(&mut sel);
    (&peer).write_all(b"abc").unwrap();
    assert_eq!(serve(&mut &mut sel), 1);
    let fd = sel.get_map().fds().next().unwrap();
    assert_eq!(*sel.get_key(fd).unwrap().data(), 4);
}

/// A non-blocking connect that fails (nothing listens on the port) makes
/// the socket ready for writing, the readiness Python reports for it: on
/// Unix as an error condition, on Windows through `select`'s exceptional
/// set, which Python counts as writable. The socket then has no peer, and
/// its pending error is the refusal.
pub fn test_failed_connect_is_write_ready<S: Selector<OwnedDescriptor, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    // A port nothing listens on: bound, then released.
    let port = {
        let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let addr = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port);
    let socket = connect_nonblocking(addr).expect("a connect under way");
    let fd = socket.as_raw_fd();
    sel.register(socket, EVENT_WRITE, ()).unwrap();
    // Windows retries a refused loopback connect for about two seconds.
    assert_eq!(
        ready_fds(&mut sel, Some(Duration::from_secs(10))),
        [(fd, EVENT_WRITE)]
    );
    let socket = sel.unregister(fd).unwrap().into_parts().0;
    let stream = std::net::TcpStream::from(socket);
    assert!(stream.peer_addr().is_err(), "the connect did not fail");
    // The socket's pending error is the refusal. libkqueue reads it
    // (`SO_ERROR`) to report the event, which clears it: there it is gone.
    match stream.take_error().unwrap() {
        Some(err) => assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}"),
        None => assert!(quirks.libkqueue, "a failed connect left no error"),
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
