//! Scale: as many registrations as the open-file limit allows, far above
//! `FD_SETSIZE`, and one select over them all.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use selectors_core::{Error, Events, RawFd, Result, Selector, EVENT_READ, EVENT_WRITE};

use crate::helpers::{fd_budget, open, ready_fds, try_socketpair, AsRawFd, Stream, FD_SETSIZE};
use crate::quirks::Quirks;

/// Serialises the tests that use most of the process's descriptors.
static FD_HEAVY: Mutex<()> = Mutex::new(());

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
