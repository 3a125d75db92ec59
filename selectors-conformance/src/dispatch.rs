//! Dispatching: handlers that change registrations while the ready entries
//! are walked (`select_into`), `dispatch` lending each key to its handler,
//! Python's callback example, and `&mut S` as a selector.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use selectors_core::{Error, Events, FileObject, RawFd, Result, Selector, EVENT_READ, EVENT_WRITE};

use crate::helpers::{
    error_of, open, peer_closed, ready_fds, socketpair, AsRawFd, FromRawFd, IntoRawFd, Stream,
};
use crate::quirks::Quirks;

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
            |sel, key, events| -> io::Result<()> {
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
        let _ = sel.dispatch(
            Some(Duration::from_secs(5)),
            |_, key, _| -> io::Result<()> {
                *key.data_mut() = 8;
                panic!("handler bug")
            },
        );
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
    let err = sel
        .dispatch(Some(Duration::from_secs(5)), |_, key, _| {
            *key.fileobj_mut() = replacement.take().unwrap();
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(error_of(&err), Some(Error::FdChanged { old, new }) if *old == kept && *new == cfd),
        "{err:?}"
    );
    assert!(sel.get_map().is_empty());
    assert!(ready_fds(&mut sel, Some(Duration::ZERO)).is_empty());

    // Closing the selector inside a handler: the lent key is dropped too.
    let (d, d_peer) = socketpair();
    sel.register(d, EVENT_WRITE, 0).unwrap();
    sel.dispatch(Some(Duration::from_secs(5)), |sel, _, _| Ok(sel.close()?))
        .unwrap();
    assert!(sel.is_closed() && peer_closed(&d_peer));
    let err = sel
        .dispatch(Some(Duration::ZERO), |_, _, _| Ok(()))
        .unwrap_err();
    assert!(matches!(error_of(&err), Some(Error::Closed)), "{err:?}");
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
            Ok(())
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
