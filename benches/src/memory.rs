//! Heap bytes per registration (`T = ()`), by the counting allocator.

use std::io;
use std::os::fd::{BorrowedFd, RawFd};

use selectors::{Selector, SelectorImpl, EVENT_READ};
use selectors_core::backend::Poller;
use selectors_epoll::Epoll;
use selectors_poll::Poll;
use selectors_select::Select;

use crate::alloc::live_bytes;
use crate::fixture::Fixture;

/// Heap growth from registering every watched descriptor of `fx` in a
/// selector that already exists, divided by their number.
fn ours<P: Poller>(fx: &Fixture) -> io::Result<f64> {
    let mut sel = SelectorImpl::<P, RawFd, ()>::new()?;
    let before = live_bytes();
    for &fd in &fx.watched {
        sel.register(fd, EVENT_READ, ())?;
    }
    let grown = live_bytes() - before;
    Ok(grown as f64 / fx.len() as f64)
}

fn mio(fx: &Fixture) -> io::Result<f64> {
    let poll = mio::Poll::new()?;
    let before = live_bytes();
    for &fd in &fx.watched {
        poll.registry().register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(fd as usize),
            mio::Interest::READABLE,
        )?;
    }
    let grown = live_bytes() - before;
    Ok(grown as f64 / fx.len() as f64)
}

fn polling(fx: &Fixture) -> io::Result<f64> {
    let poller = polling::Poller::new()?;
    let before = live_bytes();
    for &fd in &fx.watched {
        // SAFETY: the fixture keeps `fd` open past the `delete` below.
        unsafe {
            poller.add_with_mode(
                fd,
                polling::Event::readable(fd as usize),
                polling::PollMode::Level,
            )?;
        }
    }
    let grown = live_bytes() - before;
    for &fd in &fx.watched {
        // SAFETY: `fd` is open (the fixture owns it) for the whole call.
        poller.delete(unsafe { BorrowedFd::borrow_raw(fd) })?;
    }
    Ok(grown as f64 / fx.len() as f64)
}

/// Bytes per registration for our backends, mio and polling (the latter two
/// keep nothing per registration in user space: the kernel holds it, and the
/// caller keeps its own token → object table).
pub fn bytes_per_registration(fx: &Fixture) -> io::Result<Vec<(&'static str, f64)>> {
    Ok(vec![
        ("epoll", ours::<Epoll>(fx)?),
        ("poll", ours::<Poll>(fx)?),
        ("select", ours::<Select>(fx)?),
        ("mio", mio(fx)?),
        ("polling", polling(fx)?),
    ])
}
