//! What `select` reports and how long it waits: readiness of idle, written
//! and hung-up sockets, a failed connect, timeouts, and a signal during the
//! wait (PEP 475: resumed, never an error).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use selectors_core::{RawFd, Result, Selector, EVENT_READ, EVENT_WRITE};

#[cfg(unix)]
use crate::helpers::signals;
use crate::helpers::{
    connect_nonblocking, open, ready_fds, socketpair, AsRawFd, OwnedDescriptor, Stream,
};
use crate::quirks::Quirks;

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
