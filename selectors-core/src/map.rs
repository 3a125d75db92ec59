//! The key map: fd → key, in registration order, with O(1) everything.

use std::fmt;
use std::iter::FusedIterator;

use crate::sys::SlotIndex;
use crate::{Events, FileObject, RawFd, SelectorKey};

/// No slot: ends a list of slots, and marks a descriptor without one in the
/// slot index.
pub(crate) const NIL: u32 = u32::MAX;

struct Slot<F, T> {
    key: Option<SelectorKey<F, T>>,
    /// Previous occupied slot in registration order, or `NIL`.
    prev: u32,
    /// Next occupied slot in registration order; for a vacant slot, the next
    /// vacant one. `NIL` ends either list.
    next: u32,
}

/// The registered keys of a selector: Python's `get_map()`.
///
/// A read-only view, borrowed from the selector with
/// [`Selector::get_map`](crate::Selector::get_map), so it is always live: it
/// cannot outlive a change to the registrations. Look-ups are by descriptor,
/// iteration is in registration order (as Python's `dict`), and every
/// operation is O(1): keys live in a slab threaded by a doubly linked list, and
/// an index by descriptor points into it. On Unix the index is a table indexed
/// by descriptor number (numbers are small and dense, so it costs 4 bytes per
/// number up to the largest one registered); on Windows, whose socket handles
/// are opaque, a hash map.
///
/// # Examples
///
/// ```
/// # #[cfg(unix)] { // Unix types; the conformance suite covers Windows
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use selectors_core::{Selector, EVENT_READ};
/// use selectors_poll::PollSelector;
///
/// let (a, b) = UnixStream::pair()?;
/// let mut sel = PollSelector::new()?;
/// sel.register(a.as_raw_fd(), EVENT_READ, "a")?;
/// sel.register(b.as_raw_fd(), EVENT_READ, "b")?;
///
/// let map = sel.get_map();
/// assert_eq!(map.len(), 2);
/// assert_eq!(map.get(a.as_raw_fd()).map(|key| *key.data()), Some("a"));
/// assert_eq!(map.fds().collect::<Vec<_>>(), [a.as_raw_fd(), b.as_raw_fd()]);
/// assert!(map.get(-1).is_none());
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SelectorMap<F, T> {
    slots: Vec<Slot<F, T>>,
    index: SlotIndex,
    head: u32,
    tail: u32,
    free: u32,
    len: usize,
}

impl<F, T> Default for SelectorMap<F, T> {
    fn default() -> Self {
        SelectorMap {
            slots: Vec::new(),
            index: SlotIndex::default(),
            head: NIL,
            tail: NIL,
            free: NIL,
            len: 0,
        }
    }
}

impl<F, T> SelectorMap<F, T> {
    /// The number of keys in the map (a key lent to a running handler by
    /// [`Selector::dispatch`](crate::Selector::dispatch) is out of it until
    /// the handler returns).
    #[inline]
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` if the map holds no key.
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn slot_of(&self, fd: RawFd) -> Option<usize> {
        match self.index.get(fd) {
            Some(slot) if slot != NIL => Some(slot as usize),
            _ => None,
        }
    }

    /// The key registered for `fd`, if any (Python's `map.get(fd)`; use
    /// [`Option::unwrap_or`] for a default).
    #[inline]
    #[must_use]
    pub fn get(&self, fd: RawFd) -> Option<&SelectorKey<F, T>> {
        let slot = self.index.get(fd)?;
        // Why no `NIL` test: `NIL` (`u32::MAX`) is past the end of `slots`,
        // which never holds more slots than there can be registrations at
        // once (one per descriptor number, so at most 2^31), so this bounds
        // check is the `NIL` test. `select` calls this for every ready key.
        self.slots.get(slot as usize)?.key.as_ref()
    }

    /// The key registered for `fileobj`'s descriptor, if any (Python's
    /// `map[fileobj]`).
    #[must_use]
    pub fn get_by<O: FileObject + ?Sized>(&self, fileobj: &O) -> Option<&SelectorKey<F, T>> {
        self.get(fileobj.fileno())
    }

    /// `true` if `fd` is registered (its key may be lent to a running
    /// handler).
    #[inline]
    #[must_use]
    pub fn contains(&self, fd: RawFd) -> bool {
        self.slot_of(fd).is_some()
    }

    /// The events registered for `fd`, if it is registered.
    #[inline]
    #[must_use]
    pub fn events(&self, fd: RawFd) -> Option<Events> {
        self.get(fd).map(SelectorKey::events)
    }

    /// The keys, in registration order.
    pub fn iter(&self) -> Iter<'_, F, T> {
        Iter {
            map: self,
            front: self.head,
            back: self.tail,
            remaining: self.len,
        }
    }

    /// The registered descriptors, in registration order.
    pub fn fds(&self) -> impl DoubleEndedIterator<Item = RawFd> + ExactSizeIterator + '_ {
        self.iter().map(SelectorKey::fd)
    }

    pub(crate) fn get_mut(&mut self, fd: RawFd) -> Option<&mut SelectorKey<F, T>> {
        let slot = self.slot_of(fd)?;
        self.slots[slot].key.as_mut()
    }

    /// Adds `key`; the caller has checked that its fd is valid and not
    /// registered yet.
    pub(crate) fn insert(&mut self, key: SelectorKey<F, T>) -> &mut SelectorKey<F, T> {
        let fd = key.fd();
        debug_assert!(!self.contains(key.fd()));
        let slot = if self.free != NIL {
            let slot = self.free;
            self.free = self.slots[slot as usize].next;
            slot
        } else {
            self.slots.push(Slot {
                key: None,
                prev: NIL,
                next: NIL,
            });
            u32::try_from(self.slots.len() - 1).expect("more than u32::MAX registrations")
        };
        let entry = &mut self.slots[slot as usize];
        entry.prev = self.tail;
        entry.next = NIL;
        if self.tail != NIL {
            self.slots[self.tail as usize].next = slot;
        } else {
            self.head = slot;
        }
        self.tail = slot;
        self.index.set(fd, slot);
        self.len += 1;
        self.slots[slot as usize].key.insert(key)
    }

    pub(crate) fn remove(&mut self, fd: RawFd) -> Option<SelectorKey<F, T>> {
        let slot = self.slot_of(fd)?;
        let key = self.slots[slot].key.take()?;
        self.unlink(fd, slot);
        self.len -= 1;
        Some(key)
    }

    /// Takes `fd`'s key out to lend it to a handler: `None` if `fd` is not
    /// registered, `Some(None)` if its key is lent already. The slot stays,
    /// so `fd` still counts as registered ([`contains`](Self::contains)) and
    /// keeps its place in registration order; [`get`](Self::get) and
    /// iteration skip it until [`restore`](Self::restore).
    pub(crate) fn lend(&mut self, fd: RawFd) -> Option<Option<SelectorKey<F, T>>> {
        let slot = self.slot_of(fd)?;
        let key = self.slots[slot].key.take();
        if key.is_some() {
            self.len -= 1;
        }
        Some(key)
    }

    /// `true` if `fd`'s key is lent.
    pub(crate) fn is_lent(&self, fd: RawFd) -> bool {
        self.slot_of(fd)
            .is_some_and(|slot| self.slots[slot].key.is_none())
    }

    /// Puts a lent key back in its slot.
    pub(crate) fn restore(&mut self, key: SelectorKey<F, T>) {
        let fd = key.fd();
        debug_assert!(self.is_lent(fd));
        if let Some(slot) = self.slot_of(fd) {
            if self.slots[slot].key.is_none() {
                self.slots[slot].key = Some(key);
                self.len += 1;
            }
        }
    }

    /// Removes the slot of a lent key (the registration ended while lent).
    pub(crate) fn forget_lent(&mut self, fd: RawFd) {
        if let Some(slot) = self.slot_of(fd) {
            if self.slots[slot].key.is_none() {
                self.unlink(fd, slot);
            }
        }
    }

    /// Unlinks `slot` (holding `fd`) from the order and frees it.
    fn unlink(&mut self, fd: RawFd, slot: usize) {
        self.index.clear(fd);
        let (prev, next) = (self.slots[slot].prev, self.slots[slot].next);
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
        let entry = &mut self.slots[slot];
        entry.prev = NIL;
        entry.next = self.free;
        self.free = slot as u32;
    }

    /// Removes every key, releasing the memory.
    pub(crate) fn clear(&mut self) {
        *self = SelectorMap::default();
    }
}

impl<F: fmt::Debug, T: fmt::Debug> fmt::Debug for SelectorMap<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|key| (key.fd(), key)))
            .finish()
    }
}

impl<'a, F, T> IntoIterator for &'a SelectorMap<F, T> {
    type Item = &'a SelectorKey<F, T>;
    type IntoIter = Iter<'a, F, T>;

    fn into_iter(self) -> Iter<'a, F, T> {
        self.iter()
    }
}

/// Iterator over a [`SelectorMap`]'s keys, in registration order.
pub struct Iter<'a, F, T> {
    map: &'a SelectorMap<F, T>,
    front: u32,
    back: u32,
    remaining: usize,
}

impl<F, T> fmt::Debug for Iter<'_, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl<'a, F, T> Iterator for Iter<'a, F, T> {
    type Item = &'a SelectorKey<F, T>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        // Lent keys (see `SelectorMap::lend`) are not counted in
        // `remaining`: skip their slots.
        loop {
            let slot = &self.map.slots[self.front as usize];
            self.front = slot.next;
            if let Some(key) = &slot.key {
                self.remaining -= 1;
                return Some(key);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<F, T> DoubleEndedIterator for Iter<'_, F, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        loop {
            let slot = &self.map.slots[self.back as usize];
            self.back = slot.prev;
            if let Some(key) = &slot.key {
                self.remaining -= 1;
                return Some(key);
            }
        }
    }
}

impl<F, T> ExactSizeIterator for Iter<'_, F, T> {}
impl<F, T> FusedIterator for Iter<'_, F, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fd: RawFd) -> SelectorKey<RawFd, u32> {
        SelectorKey::new(fd, fd, Events::READ, fd as u32 * 10)
    }

    #[test]
    fn keeps_registration_order_through_removals_and_reuse() {
        let mut map = SelectorMap::default();
        for fd in [5, 3, 9, 0, 7] {
            map.insert(key(fd));
        }
        assert_eq!(map.fds().collect::<Vec<_>>(), [5, 3, 9, 0, 7]);
        assert_eq!(map.remove(9).map(|k| *k.data()), Some(90));
        assert_eq!(map.remove(5).map(|k| k.fd()), Some(5));
        assert_eq!(map.remove(7).map(|k| k.fd()), Some(7));
        assert!(map.remove(7).is_none());
        assert_eq!(map.fds().collect::<Vec<_>>(), [3, 0]);
        map.insert(key(9));
        map.insert(key(100));
        assert_eq!(map.fds().collect::<Vec<_>>(), [3, 0, 9, 100]);
        assert_eq!(map.fds().rev().collect::<Vec<_>>(), [100, 9, 0, 3]);
        assert_eq!(map.len(), 4);
        assert_eq!(map.iter().len(), 4);
        // Freed slots are reused: 5 keys were ever live at once.
        assert_eq!(map.slots.len(), 5);
        assert_eq!(map.get(100).map(|k| *k.data()), Some(1000));
        assert!(map.get(1 << 30).is_none());
        // Numbers no registration has; on Unix, negative ones index past the
        // end of the table.
        for &fd in crate::sys::UNREGISTERED {
            assert!(map.get(fd).is_none() && !map.contains(fd) && map.events(fd).is_none());
        }
    }

    #[test]
    fn a_lent_key_keeps_its_place_and_number() {
        let mut map = SelectorMap::default();
        for fd in [4, 8, 6] {
            map.insert(key(fd));
        }
        let lent = map.lend(8).unwrap().unwrap();
        assert!(map.lend(8).unwrap().is_none(), "lent once");
        assert!(map.lend(9).is_none());
        assert!(map.contains(8) && map.is_lent(8) && map.get(8).is_none());
        assert_eq!((map.len(), map.iter().len()), (2, 2));
        assert_eq!(map.fds().collect::<Vec<_>>(), [4, 6]);
        assert_eq!(map.fds().rev().collect::<Vec<_>>(), [6, 4]);
        assert!(map.remove(8).is_none(), "a lent key is not removed");
        map.restore(lent);
        assert_eq!(map.fds().collect::<Vec<_>>(), [4, 8, 6], "same place");
        let _ = map.lend(4).unwrap().unwrap();
        map.forget_lent(4);
        assert!(!map.contains(4) && !map.is_lent(4));
        assert_eq!(map.fds().collect::<Vec<_>>(), [8, 6]);
        map.insert(key(4));
        assert_eq!(map.fds().collect::<Vec<_>>(), [8, 6, 4]);
    }

    #[test]
    fn emptying_and_refilling_agrees_with_a_plain_vec() {
        let mut map = SelectorMap::default();
        let mut model: Vec<RawFd> = Vec::new();
        // A deterministic pseudo-random walk over 64 fd numbers.
        let mut x = 0x2545_f491_u32;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let fd = (x % 64) as RawFd;
            if let Some(pos) = model.iter().position(|&m| m == fd) {
                model.remove(pos);
                assert_eq!(map.remove(fd).map(|k| k.fd()), Some(fd));
            } else {
                model.push(fd);
                map.insert(key(fd));
            }
            assert_eq!(map.len(), model.len());
        }
        assert_eq!(map.fds().collect::<Vec<_>>(), model);
        map.clear();
        assert!(map.is_empty() && map.iter().next().is_none());
    }
}
