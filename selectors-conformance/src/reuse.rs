//! Descriptor numbers freed and handed out again within one call, and the
//! selector closed from inside one: a round of `dispatch` hands readiness
//! only to the registrations it was reported for, a `close` inside a handler
//! leaves nothing watched, and the wake-up channel never shares a number
//! with a registration (stale or lent), on Unix as on Windows.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use selectors_core::{Error, RawFd, Result, Selector, EVENT_READ};

use crate::helpers::{error_of, open, peer_closed, socketpair, AsRawFd, Stream};
use crate::quirks::Quirks;

/// Two ready keys; the first handler ends the other's registration and
/// registers a file at the same number in the same round: its handler is
/// not called with the readiness the kernel reported for the old file (as
/// in Python, whose `select()` returns the key objects themselves), and is
/// called in the next round, when its own file is ready.
pub fn test_dispatch_skips_registrations_of_the_round<S: Selector<Stream, &'static str>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    // The same socket, unregistered and registered again with new data:
    // the same number, a new registration.
    let mut sel = open(&new, quirks);
    let (a, a_peer) = socketpair();
    let (b, b_peer) = socketpair();
    let (afd, bfd) = (a.as_raw_fd(), b.as_raw_fd());
    sel.register(a, EVENT_READ, "a").unwrap();
    sel.register(b, EVENT_READ, "b").unwrap();
    (&a_peer).write_all(b"a").unwrap();
    (&b_peer).write_all(b"b").unwrap();
    let mut calls = Vec::new();
    sel.dispatch(Some(Duration::from_secs(5)), |sel, key, _| {
        calls.push(*key.data());
        if calls.len() == 1 {
            let other = if key.fd() == afd { bfd } else { afd };
            let (stream, _) = sel.unregister(other)?.into_parts();
            sel.register(stream, EVENT_READ, "again")?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    // Level-triggered: the next round hands it its own readiness.
    calls.clear();
    sel.dispatch(Some(Duration::from_secs(5)), |_, key, _| {
        calls.push(*key.data());
        let mut byte = [0; 1];
        key.fileobj_mut().read_exact(&mut byte)?;
        Ok(())
    })
    .unwrap();
    calls.sort_unstable();
    let first = if calls.contains(&"a") { "a" } else { "b" };
    assert_eq!(calls, {
        let mut expected = vec![first, "again"];
        expected.sort_unstable();
        expected
    });

    drop((a_peer, b_peer));

    // A number closed and handed to another file (what `accept` after a
    // `close` gets; the kernel hands out the lowest free number): `dup2`
    // does both at once, so that no test running in parallel can take the
    // number in between.
    #[cfg(unix)]
    {
        let mut sel = open(&new, quirks);
        let (a, a_peer) = socketpair();
        let (b, b_peer) = socketpair();
        let (c, c_peer) = socketpair();
        sel.register(a, EVENT_READ, "a").unwrap();
        sel.register(b, EVENT_READ, "b").unwrap();
        for peer in [&a_peer, &b_peer, &c_peer] {
            (&*peer).write_all(b"x").unwrap();
        }
        let mut calls = Vec::new();
        sel.dispatch(Some(Duration::from_secs(5)), |sel, key, _| {
            calls.push(*key.data());
            if calls.len() == 1 {
                let other = sel
                    .get_map()
                    .fds()
                    .find(|&fd| fd != key.fd())
                    .expect("another key");
                let (stream, _) = sel.unregister(other)?.into_parts();
                // dup2 replaces the file at `other`, which `stream` owns
                // (closing the old file), by `c`'s: `stream` then owns a
                // descriptor of that file, under the same number.
                let mut owned = crate::helpers::OwnedDescriptor::from(stream);
                nix::unistd::dup2(&c, &mut owned)?;
                assert_eq!(owned.as_raw_fd(), other);
                sel.register(Stream::from(owned), EVENT_READ, "c")?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(calls.len(), 1, "{calls:?}");
        drop((a_peer, b_peer, c_peer));
    }
}

/// A handler that closes the selector ends the round: `dispatch` returns
/// how many keys were handled (that one included) whatever else was ready,
/// every key is dropped (the lent one too, once back), and later calls fail
/// with `Closed`.
pub fn test_close_inside_a_handler<S: Selector<Stream, u32>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (a, a_peer) = socketpair();
    let (b, b_peer) = socketpair();
    sel.register(a, EVENT_READ, 1).unwrap();
    sel.register(b, EVENT_READ, 2).unwrap();
    (&a_peer).write_all(b"a").unwrap();
    (&b_peer).write_all(b"b").unwrap();
    let mut calls = 0;
    let handled = sel
        .dispatch(Some(Duration::from_secs(5)), |sel, _, _| {
            calls += 1;
            sel.close()?;
            Ok(())
        })
        .unwrap();
    assert_eq!((handled, calls), (1, 1));
    assert!(sel.is_closed() && sel.get_map().is_empty());
    assert!(peer_closed(&a_peer) && peer_closed(&b_peer));
    let err = sel
        .dispatch(Some(Duration::ZERO), |_, _, _| Ok(()))
        .unwrap_err();
    assert!(matches!(error_of(&err), Some(Error::Closed)), "{err:?}");
}

/// After `close` inside a handler, the kernel object (epoll, kqueue,
/// /dev/poll) watches nothing: the lent key and the waker's channel were
/// taken out of it too, so an outer loop watching the selector's own
/// descriptor (`Fd<EpollSelector>` registered with another selector) does
/// not see it ready for ever. For the backends with a descriptor.
#[cfg(unix)]
pub fn test_close_inside_a_handler_quiets_the_kernel_object<S>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) where
    S: Selector<RawFd, ()> + std::os::fd::AsFd,
{
    let mut sel = open(&new, quirks);
    let (a, a_peer) = socketpair();
    (&a_peer).write_all(b"x").unwrap();
    sel.register(a.as_raw_fd(), EVENT_READ, ()).unwrap();
    let waker = sel.waker().unwrap();
    // A /dev/poll descriptor polls as an error whatever its set holds, so it
    // cannot show the set quiet (the devpoll crate's own tests look at the
    // set through DP_ISPOLLED). libkqueue deviation: its kqueue descriptor
    // is the write end of a pipe, which never polls readable. Every other
    // kernel object shows its set's readiness.
    let always = quirks.descriptor_polls_as_error;
    if !(always || quirks.libkqueue) {
        assert!(readable(&sel), "a ready key makes it readable");
    }
    sel.dispatch(Some(Duration::from_secs(5)), |sel, _, _| Ok(sel.close()?))
        .unwrap();
    assert_eq!(readable(&sel), always, "still readable after close");
    assert!(matches!(waker.wake(), Err(Error::Closed)));
    assert_eq!(readable(&sel), always, "readable after a late wake");
    drop(a_peer);
}

/// `true` if `fd` polls readable at once.
#[cfg(unix)]
fn readable(fd: &impl std::os::fd::AsFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    let mut pollfd = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    poll(&mut pollfd, PollTimeout::ZERO).expect("poll") == 1
}

/// Registrations whose descriptors were closed without unregistering them,
/// then the waker, then the stale registrations ended: the waker still
/// wakes. Its channel took a number none of them held (Unix hands out the
/// lowest free number; Windows reuses socket handle values too, and Wine
/// hands out the lowest free one), so ending them did not end it.
pub fn test_waker_avoids_stale_registrations<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let pairs: Vec<(Stream, Stream)> = (0..4).map(|_| socketpair()).collect();
    let fds: Vec<RawFd> = pairs
        .iter()
        .flat_map(|(a, b)| [a.as_raw_fd(), b.as_raw_fd()])
        .collect();
    for &fd in &fds {
        sel.register(fd, EVENT_READ, ()).unwrap();
    }
    drop(pairs); // closed while registered
    let waker = sel.waker().unwrap();
    for &fd in &fds {
        sel.unregister(fd).unwrap();
    }
    waker.wake().unwrap();
    let start = Instant::now();
    let ready = sel.select(Some(Duration::from_secs(10))).unwrap();
    assert!(ready.was_woken(), "the wake was lost");
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// A waker made inside a `dispatch` handler whose key's file object was
/// replaced (closing the old descriptor): the channel does not take the
/// lent key's number, so withdrawing the lent registration when the handler
/// returns does not withdraw the channel. The same with a bare descriptor
/// the handler closed itself and then unregistered.
pub fn test_waker_avoids_the_lent_key<S: Selector<Stream, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (a, a_peer) = socketpair();
    let afd = a.as_raw_fd();
    sel.register(a, EVENT_READ, ()).unwrap();
    (&a_peer).write_all(b"x").unwrap();
    let (c, _c_peer) = socketpair();
    let mut replacement = Some(c);
    let mut waker = None;
    let err = sel
        .dispatch(Some(Duration::from_secs(5)), |sel, key, _| {
            // Closes `afd`: the lowest free number.
            *key.fileobj_mut() = replacement.take().unwrap();
            waker = Some(sel.waker()?);
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(error_of(&err), Some(Error::FdChanged { old, .. }) if *old == afd),
        "{err:?}"
    );
    woken_by(&mut sel, waker.unwrap());
    drop(a_peer);
}

/// As [`test_waker_avoids_the_lent_key`], for a registration by bare
/// descriptor whose handler closes it and unregisters it.
pub fn test_waker_avoids_a_lent_raw_descriptor<S: Selector<RawFd, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    let mut sel = open(&new, quirks);
    let (a, a_peer) = socketpair();
    sel.register(a.as_raw_fd(), EVENT_READ, ()).unwrap();
    (&a_peer).write_all(b"x").unwrap();
    let mut owned = Some(a);
    let mut waker = None;
    sel.dispatch(Some(Duration::from_secs(5)), |sel, key, _| {
        drop(owned.take()); // closes the lent descriptor
        waker = Some(sel.waker()?);
        key.unregister();
        Ok(())
    })
    .unwrap();
    assert!(sel.get_map().is_empty());
    woken_by(&mut sel, waker.unwrap());
    drop(a_peer);
}

/// `waker` wakes `sel` at once.
fn woken_by<F: selectors_core::FileObject, T, S: Selector<F, T>>(
    sel: &mut S,
    waker: selectors_core::Waker,
) {
    waker.wake().unwrap();
    let start = Instant::now();
    let ready = sel.select(Some(Duration::from_secs(10))).unwrap();
    assert!(ready.was_woken(), "the wake was lost");
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// A file object whose `fileno` panics once told to.
#[derive(Debug)]
pub struct Flaky {
    stream: Stream,
    panics: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl selectors_core::FileObject for Flaky {
    fn fileno(&self) -> RawFd {
        if self.panics.load(std::sync::atomic::Ordering::Relaxed) {
            panic!("fileno bug");
        }
        self.stream.as_raw_fd()
    }
}

/// A panic in the file object's own code when its key goes back to the
/// selector (its `fileno` is asked again, to check it did not change) ends
/// the registration, in the map and in the kernel, before it goes on: the
/// descriptor is never left lent (`Busy` for ever) while the kernel still
/// watches it. After `dispatch` and after `with_fileobj_mut`.
pub fn test_a_panicking_file_object_leaves_the_selector_consistent<S: Selector<Flaky, ()>>(
    new: impl Fn() -> Result<S>,
    quirks: Quirks,
) {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let mut sel = open(&new, quirks);
    for lend in ["dispatch", "with_fileobj_mut"] {
        let (a, a_peer) = socketpair();
        let afd = a.as_raw_fd();
        let panics = Arc::new(AtomicBool::new(false));
        let flaky = Flaky {
            stream: a,
            panics: Arc::clone(&panics),
        };
        sel.register(flaky, EVENT_READ, ()).unwrap();
        (&a_peer).write_all(b"x").unwrap();
        let caught = catch_unwind(AssertUnwindSafe(|| match lend {
            "dispatch" => {
                let _ = sel.dispatch(Some(Duration::from_secs(5)), |_, _, _| {
                    panics.store(true, Ordering::Relaxed);
                    Ok(())
                });
            }
            _ => {
                let _ = sel.with_fileobj_mut(afd, |_, _| panics.store(true, Ordering::Relaxed));
            }
        }));
        assert!(caught.is_err(), "{lend}: the panic went on");
        assert!(
            matches!(sel.get_key(afd), Err(Error::NotRegistered(_))),
            "{lend}: the registration was ended"
        );
        assert!(peer_closed(&a_peer), "{lend}: the key was dropped");
        let mut ready = Vec::new();
        sel.select_into(&mut ready, Some(Duration::ZERO)).unwrap();
        assert!(ready.is_empty(), "{lend}: {ready:?}");
    }
}
