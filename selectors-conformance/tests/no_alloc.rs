//! `select` allocates nothing in steady state, on every backend: proved with
//! a counting global allocator (per thread, so parallel tests don't mix).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::time::Duration;

#[cfg(has_epoll)]
use selectors::EpollSelector;
#[cfg(unix)]
use selectors::PollSelector;
use selectors::{
    DefaultSelector, Events, RawFd, SelectSelector, Selector, EVENT_READ, EVENT_WRITE,
};
// Unix socket pairs, or TCP pairs on the loopback on Windows.
use selectors_conformance::{try_socketpair, AsRawFd};

struct Counting;

thread_local! {
    // Already `const`: the lint misfires on targets without native
    // `#[thread_local]` (illumos, Solaris, OpenBSD), rust-clippy#17566.
    #[allow(clippy::missing_const_for_thread_local)]
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator may run while this thread's locals are torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` unchanged; counting touches only
// a const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Runs the hot path — ping-pong through `select`, `select_into` over many
/// ready descriptors, polls and timed waits, wake-ups — and returns how many
/// allocations the measured rounds made after a warm-up.
fn hot_path_allocations<S: Selector<RawFd, u32>>(mut sel: S) -> u64 {
    let pairs: Vec<_> = (0..64).map(|_| try_socketpair().unwrap()).collect();
    for (i, (a, b)) in pairs.iter().enumerate() {
        sel.register(a.as_raw_fd(), EVENT_READ, i as u32).unwrap();
        sel.register(b.as_raw_fd(), EVENT_WRITE, i as u32).unwrap();
    }
    let waker = sel.waker().unwrap();
    let mut ready: Vec<(RawFd, Events)> = Vec::new();
    let round = |sel: &mut S, ready: &mut Vec<(RawFd, Events)>| {
        // Ping-pong on one pair.
        (&pairs[0].1).write_all(b"x").unwrap();
        let mut readable = 0;
        for (key, events) in sel.select(None).unwrap() {
            if events.is_readable() {
                assert_eq!(*key.data(), 0);
                readable += 1;
            }
        }
        assert_eq!(readable, 1);
        (&pairs[0].0).read_exact(&mut [0; 1]).unwrap();
        // Every writer ready, through a caller-owned list.
        assert_eq!(sel.select_into(ready, Some(Duration::ZERO)).unwrap(), 64);
        // And through `dispatch`, lending each key to a handler.
        let handled = sel
            .dispatch(Some(Duration::ZERO), |_, key, events| {
                *key.data_mut() += u32::from(events.is_writable());
                Ok(())
            })
            .unwrap();
        assert_eq!(handled, 64);
        // A timed wait that a wake-up ends.
        waker.wake().unwrap();
        sel.select(Some(Duration::from_millis(1)))
            .unwrap()
            .for_each(drop);
        assert!(sel.was_woken());
        // Changing only the data: no system call, no allocation.
        sel.modify(pairs[1].0.as_raw_fd(), EVENT_READ, 7).unwrap();
        let _ = sel.get_key(pairs[1].0.as_raw_fd()).unwrap();
    };
    for _ in 0..10 {
        round(&mut sel, &mut ready);
    }
    let before = allocations();
    for _ in 0..1000 {
        round(&mut sel, &mut ready);
    }
    allocations() - before
}

#[cfg(has_epoll)]
#[test]
fn epoll_select_allocates_nothing() {
    assert_eq!(hot_path_allocations(EpollSelector::new().unwrap()), 0);
}

#[cfg(unix)] // No poll backend on Windows.
#[test]
fn poll_select_allocates_nothing() {
    assert_eq!(hot_path_allocations(PollSelector::new().unwrap()), 0);
}

#[test]
fn select_select_allocates_nothing() {
    assert_eq!(hot_path_allocations(SelectSelector::new().unwrap()), 0);
}

#[test]
fn default_selector_allocates_nothing() {
    assert_eq!(hot_path_allocations(DefaultSelector::new().unwrap()), 0);
}

#[test]
fn boxed_dyn_selector_allocates_nothing() {
    let boxed: Box<dyn Selector<RawFd, u32>> = Box::new(DefaultSelector::new().unwrap());
    assert_eq!(hot_path_allocations(boxed), 0);
}

/// The counter itself works: a test that cannot fail proves nothing.
#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    let v: Vec<u8> = Vec::with_capacity(16);
    drop(std::hint::black_box(v));
    assert_eq!(allocations() - before, 1);
}
