//! The process's emulated `/dev/poll` instances (the driver's
//! `devpolltbl`), found by the inode of the pipe that stands for each.
//!
//! The interposed `write` and `ioctl` run for every descriptor of the
//! process, signal handlers' writes included, so telling whether a
//! descriptor is ours takes no lock: one `fstat`, then a scan of
//! [`INODES`]. The sets themselves are behind [`REGISTRY`], a spin lock
//! that `fork` cannot leave locked in the child (`pthread_atfork`).

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use crate::driver::Set;
use crate::file;

/// The most instances a process may have open at once (the driver's table
/// grows to `MAXMIN`; past this, `open` fails with `ENXIO` as it does
/// there).
pub const MAX_SETS: usize = 4096;

/// The pipe inodes of the live instances (0: a free slot).
static INODES: [AtomicU64; MAX_SETS] = [const { AtomicU64::new(0) }; MAX_SETS];
/// How many instances are live: none, and every interposer steps aside.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// A lock that spins (yielding): the registry is held for a few
/// instructions, and `fork` must be able to take it and release it in
/// both processes, which std's mutex cannot be made to do.
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is reached only through a guard, which exists only while
// `locked` is held.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    fn acquire(&self) {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
    }

    fn release(&self) {
        self.locked.store(false, Ordering::Release);
    }

    pub fn lock(&self) -> SpinGuard<'_, T> {
        self.acquire();
        SpinGuard(self)
    }
}

pub struct SpinGuard<'a, T>(&'a SpinLock<T>);

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.0.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and is borrowed mutably.
        unsafe { &mut *self.0.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// The live instances of this process.
static REGISTRY: SpinLock<Vec<Arc<Set>>> = SpinLock::new(Vec::new());

extern "C" fn before_fork() {
    REGISTRY.acquire();
}

extern "C" fn after_fork() {
    REGISTRY.release();
}

/// Whether any instance is live (if not, every interposer steps aside).
pub fn any_live() -> bool {
    LIVE.load(Ordering::Acquire) != 0
}

/// The pipe inode of the instance `fd` is a descriptor of, if it is one:
/// one `fstat`, no lock.
pub fn instance_of(fd: RawFd) -> Option<u64> {
    let ino = file::fifo_inode(fd)?;
    INODES
        .iter()
        .any(|slot| slot.load(Ordering::Acquire) == ino)
        .then_some(ino)
}

/// The live instance of pipe inode `ino`.
pub fn find(ino: u64) -> Option<Arc<Set>> {
    REGISTRY.lock().iter().find(|set| set.ino == ino).cloned()
}

/// Every live instance of this process.
pub fn all() -> Vec<Arc<Set>> {
    REGISTRY.lock().clone()
}

/// Adds `set`, or gives it back if the table is full.
pub fn insert(set: Arc<Set>) -> Result<(), Arc<Set>> {
    static ATFORK: Once = Once::new();
    ATFORK.call_once(|| {
        // SAFETY: the handlers are `extern "C"` functions that live as long
        // as the process. Failure (ENOMEM) leaves fork unguarded: then a
        // child forked while another thread held the lock would hang.
        unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork)) };
    });
    let mut sets = REGISTRY.lock();
    let claimed = INODES.iter().any(|slot| {
        slot.compare_exchange(0, set.ino, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    });
    if !claimed {
        return Err(set);
    }
    sets.push(set);
    LIVE.fetch_add(1, Ordering::AcqRel);
    Ok(())
}

/// Removes the instance of pipe inode `ino`, if it is live; the last
/// reference to it (an emulated call may still hold one) releases it.
pub fn remove(ino: u64) -> Option<Arc<Set>> {
    let mut sets = REGISTRY.lock();
    let at = sets.iter().position(|set| set.ino == ino)?;
    let set = sets.swap_remove(at);
    if let Some(slot) = INODES
        .iter()
        .find(|slot| slot.load(Ordering::Acquire) == ino)
    {
        slot.store(0, Ordering::Release);
    }
    LIVE.fetch_sub(1, Ordering::AcqRel);
    Some(set)
}
