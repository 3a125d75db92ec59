//! Scale: every backend holds as many registrations as the open-file limit
//! allows (socket pairs for nearly all of it, far above `FD_SETSIZE`, so
//! select(2) too), reports exactly one entry per ready descriptor, changes
//! them all, and leaves no trace when they are all unregistered or the
//! selector is closed: the map is empty, the kernel's interest set is empty,
//! and `/proc/self/fd` is as it was.
//!
//! The conformance suite's `test_above_fd_setsize` registers that many once
//! and selects once; this adds modify at scale, the clean-up and the leak
//! check. The tests of this binary take turns (`FD_HEAVY`): each uses
//! nearly every descriptor the process may open.
//!
//! Linux only: these tests rely on its kernel's rules, epoll and
//! `/proc`. kqueue joins in as libkqueue's emulation, under `--cfg
//! selectors_libkqueue`, and /dev/poll as the emulation of its driver,
//! under `--cfg selectors_devpoll_emulation` (see `util`). Not on Windows:
//! there is no open-file limit to fill, and no `/proc` to find leaks in
//! (the conformance suite's `test_above_fd_setsize` registers past
//! Winsock's 64 sockets there).
#![cfg(has_epoll)]

#[macro_use]
mod util;

use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use selectors::{Events, Result, Selector, EVENT_READ, EVENT_WRITE};
use util::{Kind, Quirks};

static FD_HEAVY: Mutex<()> = Mutex::new(());

/// Descriptors left free for the selector itself and the checks.
const HEADROOM: usize = 64;

/// The `(fd, events)` of one select, sorted.
fn ready<S: Selector<RawFd, u32>>(sel: &mut S, timeout: Duration) -> Vec<(RawFd, Events)> {
    let mut list = Vec::new();
    sel.select_into(&mut list, Some(timeout)).expect("select");
    list.sort_unstable_by_key(|&(fd, _)| fd);
    list
}

/// The ready list, sorted, from as many selects as it takes to see `want`
/// (the first waits up to 10 s): the caller then checks it is `want`.
///
/// One select, except for kqueue on libkqueue. libkqueue deviation: a
/// `kevent` call reports at most 512 entries (its `MAX_KEVENT`), and fewer
/// when the epoll events it takes give two entries each (a descriptor
/// watched both ways): it drops what does not fit, which can be the WRITE
/// half of a descriptor whose READ half fit. The rest come in later
/// selects (level-triggered: epoll hands its ready list out in turn), so
/// the union of successive selects, events merged per descriptor, must be
/// exactly what one select of a kernel kqueue reports.
fn ready_all<S: Selector<RawFd, u32>>(
    sel: &mut S,
    quirks: Quirks,
    want: &[(RawFd, Events)],
) -> Vec<(RawFd, Events)> {
    let first = ready(sel, Duration::from_secs(10));
    let Some(batch_max) = quirks.max_ready_per_select() else {
        return first;
    };
    let mut seen = std::collections::BTreeMap::new();
    let mut batch = first;
    // A select brings up to 512 entries (at least 256 descriptors); the
    // bound allows for several turns of epoll's ready list.
    for _ in 0..4 * (want.len() / (batch_max / 2) + 2) {
        assert!(
            batch.len() <= batch_max,
            "{} entries in one kevent",
            batch.len()
        );
        assert!(
            batch.windows(2).all(|w| w[0].0 != w[1].0),
            "a descriptor reported twice in one select"
        );
        for (fd, events) in batch {
            *seen.entry(fd).or_insert(Events::EMPTY) |= events;
        }
        if seen.len() == want.len() && seen.iter().map(|(&f, &e)| (f, e)).eq(want.iter().copied()) {
            break;
        }
        batch = ready(sel, Duration::ZERO);
    }
    seen.into_iter().collect()
}

/// How many watches the kernel objects among `fds` hold: the `tfd:` lines
/// of an epoll instance's `/proc/self/fdinfo`. Other backends keep their
/// interest set in user space, and have no such descriptor, but for
/// kqueue on libkqueue, whose epoll instance watches each descriptor
/// registered with it once, for one filter or two, and /dev/poll on its
/// emulation, whose epoll instance watches each registered descriptor
/// once.
fn kernel_watches(fds: &[RawFd]) -> usize {
    fds.iter()
        .map(|fd| {
            std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
                .map(|info| info.lines().filter(|l| l.starts_with("tfd:")).count())
                .unwrap_or(0)
        })
        .sum()
}

/// Nothing stale is left in the interest set: with only an idle descriptor
/// registered (the highest number, so a select(2) bitmap covers every
/// other), a 100 ms select waits its full time. A leftover registration of
/// any of the (writable) descriptors would end it early, with nothing to
/// report.
fn assert_quiet<S: Selector<RawFd, u32>>(sel: &mut S, what: &str) {
    let (idle, _peer) = util::socketpair();
    sel.register(idle.as_raw_fd(), EVENT_READ, u32::MAX)
        .unwrap();
    let timeout = Duration::from_millis(100);
    let start = Instant::now();
    assert!(ready(sel, timeout).is_empty(), "{what}");
    let elapsed = start.elapsed();
    assert!(
        elapsed >= timeout,
        "{what}: a stale registration ended the wait after {elapsed:?}"
    );
    sel.unregister(idle.as_raw_fd()).unwrap();
}

fn register_all_and_clean_up<S: Selector<RawFd, u32>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let _heavy = util::lock(&FD_HEAVY);
    let limit = util::raise_fd_limit();
    util::libkqueue_anchor();
    let before = util::open_fds();
    let mut sel = util::open(&new, quirks);
    let own = util::opened_since(&before);
    let backend = quirks.kind;
    let libkqueue = quirks.libkqueue;
    // libkqueue's epoll instance also watches descriptors of its own (the
    // pipe that tells it the kqueue was closed, and others), and so does the
    // /dev/poll emulation's (the eventfd that wakes a waiting DP_POLL).
    let emulated = libkqueue || quirks.devpoll_emulation;
    let internal = kernel_watches(&own);
    if !emulated {
        assert_eq!(
            internal, 0,
            "{backend:?}: an empty selector watches nothing"
        );
    }
    // How many watches `n` registered descriptors make.
    let watched = |n: usize| match backend {
        Kind::Epoll => n,
        Kind::Kqueue | Kind::Devpoll if emulated => internal + n,
        _ => 0,
    };

    let wanted = limit.saturating_sub(before.len() + own.len() + HEADROOM) / 2;
    let pairs: Vec<(UnixStream, UnixStream)> = (0..wanted).map(|_| util::socketpair()).collect();
    let max_fd = pairs
        .iter()
        .map(|(a, b)| a.as_raw_fd().max(b.as_raw_fd()))
        .max()
        .unwrap();
    assert!(
        max_fd > 4 * libc::FD_SETSIZE as RawFd,
        "only {wanted} pairs (fd {max_fd}) under a limit of {limit}"
    );

    // Round 1: every reader READ; a scattered seventh of them written to.
    // Exactly those are reported, once each, READ.
    for (i, (rd, _)) in pairs.iter().enumerate() {
        sel.register(rd.as_raw_fd(), EVENT_READ, i as u32).unwrap();
    }
    let mut expected = Vec::new();
    for (i, (rd, wr)) in pairs.iter().enumerate() {
        if i % 7 == 3 || i == wanted - 1 {
            (&*wr).write_all(b"x").unwrap();
            expected.push((rd.as_raw_fd(), EVENT_READ));
        }
    }
    expected.sort_unstable_by_key(|&(fd, _)| fd);
    assert_eq!(sel.get_map().len(), wanted);
    let got = ready_all(&mut sel, quirks, &expected);
    assert_eq!(
        got.len(),
        expected.len(),
        "{backend:?}: one entry per ready pair"
    );
    assert_eq!(got, expected, "{backend:?}");
    assert_eq!(kernel_watches(&own), watched(wanted));

    // Round 2: every reader READ | WRITE, in one pass of modify: all of them
    // are reported in one select (WRITE; READ | WRITE for the written ones).
    for (rd, _) in &pairs {
        sel.modify_events(rd.as_raw_fd(), Events::ALL).unwrap();
    }
    let mut want: Vec<(RawFd, Events)> = pairs
        .iter()
        .map(|(rd, _)| {
            let fd = rd.as_raw_fd();
            match expected.binary_search_by_key(&fd, |&(f, _)| f) {
                Ok(_) => (fd, Events::ALL),
                Err(_) => (fd, EVENT_WRITE),
            }
        })
        .collect();
    want.sort_unstable_by_key(|&(fd, _)| fd);
    let got = ready_all(&mut sel, quirks, &want);
    assert_eq!(got.len(), wanted, "{backend:?}: every reader, once");
    for (fd, events) in &got {
        let written = expected.binary_search_by_key(fd, |&(f, _)| f).is_ok();
        let want = if written { Events::ALL } else { EVENT_WRITE };
        assert_eq!(*events, want, "{backend:?}: fd {fd}");
    }

    // Unregister them all: no key, no kernel registration, no early return.
    for (i, (rd, _)) in pairs.iter().enumerate() {
        let key = sel.unregister(rd.as_raw_fd()).unwrap();
        assert_eq!(*key.data(), i as u32);
    }
    assert!(sel.get_map().is_empty());
    assert_eq!(
        kernel_watches(&own),
        watched(0),
        "{backend:?}: the kernel set after unregister"
    );
    assert_quiet(&mut sel, "after unregistering everything");

    // Round 3: both ends of every pair, then close the selector instead.
    for (i, (rd, wr)) in pairs.iter().enumerate() {
        sel.register(rd.as_raw_fd(), EVENT_READ, i as u32).unwrap();
        sel.register(wr.as_raw_fd(), Events::ALL, i as u32).unwrap();
    }
    // The writers (writable, nothing to read) and the written readers.
    let mut want: Vec<(RawFd, Events)> = pairs
        .iter()
        .map(|(_, wr)| (wr.as_raw_fd(), EVENT_WRITE))
        .chain(expected.iter().copied())
        .collect();
    want.sort_unstable_by_key(|&(fd, _)| fd);
    let got = ready_all(&mut sel, quirks, &want);
    assert_eq!(
        got.len(),
        wanted + expected.len(),
        "{backend:?}: writers and written readers"
    );
    assert_eq!(kernel_watches(&own), watched(2 * wanted));
    sel.close().unwrap();
    assert!(sel.get_map().is_empty());
    assert_eq!(
        kernel_watches(&own),
        watched(0),
        "{backend:?}: the kernel set after close"
    );

    drop(sel);
    drop(pairs);
    let after = util::await_fds(&before, libkqueue);
    assert_eq!(after, before, "{backend:?}: descriptors leaked");
}

/// A selector that is dropped while holding every registration (no
/// `close`, no `unregister`) releases everything too.
fn drop_while_full<S: Selector<UnixStream, ()>>(new: impl Fn() -> Result<S>, quirks: Quirks) {
    let _heavy = util::lock(&FD_HEAVY);
    let limit = util::raise_fd_limit();
    util::libkqueue_anchor();
    let before = util::open_fds();
    let wanted = limit.saturating_sub(before.len() + HEADROOM) / 2;
    let mut sel = util::open(&new, quirks);
    let libkqueue = quirks.libkqueue;
    let mut peers = Vec::with_capacity(wanted);
    for _ in 0..wanted {
        let (a, b) = util::socketpair();
        // The selector owns `a`; `b` stays here.
        sel.register(a, EVENT_READ, ()).unwrap();
        peers.push(b);
    }
    sel.waker().unwrap().wake().unwrap();
    assert_eq!(sel.select(Some(Duration::from_secs(10))).unwrap().len(), 0);
    assert!(sel.was_woken());
    drop(sel);
    // Every owned end was closed with the selector: the peers see EOF.
    for peer in &peers {
        assert_eq!(std::io::Read::read(&mut &*peer, &mut [0u8; 1]).unwrap(), 0);
    }
    drop(peers);
    let after = util::await_fds(&before, libkqueue);
    assert_eq!(after, before, "descriptors leaked");
}

per_backend!(register_all_and_clean_up, drop_while_full);
