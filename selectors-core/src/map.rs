//! The key map: fd → key, in registration order, with O(1) everything.

use std::fmt;
use std::iter::FusedIterator;

use crate::sys::SlotIndex;
use crate::{Events, FileObject, RawFd, SelectorKey};

/// No slot: ends a list of slots, and marks a descriptor without one in the
/// slot index.
pub(crate) const NIL: u32 = u32::MAX;

struct Slot<F, T> {
    entry: Entry<F, T>,
    /// When the registration was made, in registrations (wrapping): see
    /// [`SelectorMap::mark`].
    serial: u32,
    /// Previous occupied slot in registration order, or `NIL`.
    prev: u32,
    /// Next occupied slot in registration order; for a vacant slot, the next
    /// vacant one. `NIL` ends either list.
    next: u32,
}

/// What a slot holds.
enum Entry<F, T> {
    /// Nothing: the slot is on the free list.
    Vacant,
    /// A registered key.
    Key(SelectorKey<F, T>),
    /// A registration whose key is lent to a running handler, with what the
    /// kernel watches for it meanwhile (so that a `close` inside the
    /// handler can tell the kernel to stop).
    Lent { fd: RawFd, events: Events },
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
/// use std::net::{TcpListener, TcpStream};
/// use selectors::{DefaultSelector, FileObject, Selector, EVENT_READ};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let a = TcpStream::connect(listener.local_addr()?)?;
/// let (b, _) = listener.accept()?;
/// let mut sel = DefaultSelector::new()?;
/// sel.register(a.fileno(), EVENT_READ, "a")?;
/// sel.register(b.fileno(), EVENT_READ, "b")?;
///
/// let map = sel.get_map();
/// assert_eq!(map.len(), 2);
/// assert_eq!(map.get(a.fileno()).map(|key| *key.data()), Some("a"));
/// assert_eq!(map.get_by(&b).map(|key| *key.data()), Some("b")); // Python's map[fileobj]
/// assert_eq!(map.fds().collect::<Vec<_>>(), [a.fileno(), b.fileno()]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SelectorMap<F, T> {
    slots: Vec<Slot<F, T>>,
    index: SlotIndex,
    head: u32,
    tail: u32,
    free: u32,
    len: usize,
    /// The serial of the next registration.
    serial: u32,
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
            serial: 0,
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

    /// The slot of `fd`'s registration, lent or not.
    #[inline]
    pub(crate) fn slot_of(&self, fd: RawFd) -> Option<usize> {
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
        match &self.slots.get(slot as usize)?.entry {
            Entry::Key(key) => Some(key),
            _ => None,
        }
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

    /// The key of a slot [`key_slot`](Self::key_slot) returned, mutably.
    #[inline]
    pub(crate) fn key_at_mut(&mut self, slot: usize) -> &mut SelectorKey<F, T> {
        match &mut self.slots[slot].entry {
            Entry::Key(key) => key,
            _ => unreachable!("a slot without a key"),
        }
    }

    /// The slot of `fd`'s key, if it is registered and not lent.
    #[inline]
    pub(crate) fn key_slot(&self, fd: RawFd) -> Option<usize> {
        let slot = self.slot_of(fd)?;
        matches!(self.slots[slot].entry, Entry::Key(_)).then_some(slot)
    }

    /// A mark between the registrations made so far and those to come:
    /// [`lend`](Self::lend) given it refuses a key registered after it.
    /// What [`Selector::dispatch`](crate::Selector::dispatch) takes when it
    /// has selected, so that a registration a handler makes at a number
    /// freed in the same round (what `accept` after a `close` gets) is not
    /// handed the readiness the kernel reported for the number's previous
    /// file. Serials wrap: a round may make up to 2^31 registrations.
    #[inline]
    pub(crate) fn mark(&self) -> u32 {
        self.serial
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
                entry: Entry::Vacant,
                serial: 0,
                prev: NIL,
                next: NIL,
            });
            u32::try_from(self.slots.len() - 1).expect("more than u32::MAX registrations")
        };
        let entry = &mut self.slots[slot as usize];
        entry.prev = self.tail;
        entry.next = NIL;
        entry.serial = self.serial;
        self.serial = self.serial.wrapping_add(1);
        if self.tail != NIL {
            self.slots[self.tail as usize].next = slot;
        } else {
            self.head = slot;
        }
        self.tail = slot;
        self.index.set(fd, slot);
        self.len += 1;
        let entry = &mut self.slots[slot as usize].entry;
        *entry = Entry::Key(key);
        match entry {
            Entry::Key(key) => key,
            _ => unreachable!("just inserted"),
        }
    }

    pub(crate) fn remove(&mut self, fd: RawFd) -> Option<SelectorKey<F, T>> {
        let slot = self.slot_of(fd)?;
        if !matches!(self.slots[slot].entry, Entry::Key(_)) {
            return None;
        }
        let Entry::Key(key) = std::mem::replace(&mut self.slots[slot].entry, Entry::Vacant) else {
            unreachable!("matched above")
        };
        self.unlink(fd, slot);
        self.len -= 1;
        Some(key)
    }

    /// Takes `fd`'s key out to lend it to a handler: `None` if `fd` is not
    /// registered (or, given a [`mark`](Self::mark), was registered after
    /// it), `Some(None)` if its key is lent already. The slot stays, so `fd`
    /// still counts as registered ([`contains`](Self::contains)) and keeps
    /// its place in registration order; [`get`](Self::get) and iteration
    /// skip it until [`restore`](Self::restore).
    pub(crate) fn lend(
        &mut self,
        fd: RawFd,
        registered_before: Option<u32>,
    ) -> Option<Option<SelectorKey<F, T>>> {
        let slot = self.slot_of(fd)?;
        let slot = &mut self.slots[slot];
        if let Some(mark) = registered_before {
            // `slot.serial` precedes `mark` (modulo 2^32).
            if mark.wrapping_sub(slot.serial) as i32 <= 0 {
                return None;
            }
        }
        let Entry::Key(key) = &slot.entry else {
            return Some(None);
        };
        let lent = Entry::Lent {
            fd: key.fd(),
            events: key.events(),
        };
        let Entry::Key(key) = std::mem::replace(&mut slot.entry, lent) else {
            unreachable!("matched above")
        };
        self.len -= 1;
        Some(Some(key))
    }

    /// `true` if `fd`'s key is lent.
    pub(crate) fn is_lent(&self, fd: RawFd) -> bool {
        self.slot_of(fd)
            .is_some_and(|slot| matches!(self.slots[slot].entry, Entry::Lent { .. }))
    }

    /// Puts a lent key back in its slot.
    pub(crate) fn restore(&mut self, key: SelectorKey<F, T>) {
        let fd = key.fd();
        debug_assert!(self.is_lent(fd));
        if let Some(slot) = self.slot_of(fd) {
            let entry = &mut self.slots[slot].entry;
            if matches!(entry, Entry::Lent { .. }) {
                *entry = Entry::Key(key);
                self.len += 1;
            }
        }
    }

    /// Removes the slot of a lent key (the registration ended while lent).
    pub(crate) fn forget_lent(&mut self, fd: RawFd) {
        if let Some(slot) = self.slot_of(fd) {
            if matches!(self.slots[slot].entry, Entry::Lent { .. }) {
                self.slots[slot].entry = Entry::Vacant;
                self.unlink(fd, slot);
            }
        }
    }

    /// What the kernel watches for every registration, lent ones included,
    /// in registration order: what [`Selector::close`](crate::Selector::close)
    /// tells it to stop watching.
    pub(crate) fn registrations(&self) -> impl Iterator<Item = (RawFd, Events)> + '_ {
        let mut slot = self.head;
        std::iter::from_fn(move || {
            let entry = &self.slots.get(slot as usize)?;
            slot = entry.next;
            Some(match &entry.entry {
                Entry::Key(key) => (key.fd(), key.events()),
                Entry::Lent { fd, events } => (*fd, *events),
                Entry::Vacant => unreachable!("a vacant slot in the order"),
            })
        })
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
            if let Entry::Key(key) = &slot.entry {
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
            if let Entry::Key(key) = &slot.entry {
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
        let lent = map.lend(8, None).unwrap().unwrap();
        assert!(map.lend(8, None).unwrap().is_none(), "lent once");
        assert!(map.lend(9, None).is_none());
        assert!(map.contains(8) && map.is_lent(8) && map.get(8).is_none());
        assert_eq!((map.len(), map.iter().len()), (2, 2));
        assert_eq!(map.fds().collect::<Vec<_>>(), [4, 6]);
        assert_eq!(map.fds().rev().collect::<Vec<_>>(), [6, 4]);
        assert!(map.remove(8).is_none(), "a lent key is not removed");
        map.restore(lent);
        assert_eq!(map.fds().collect::<Vec<_>>(), [4, 8, 6], "same place");
        let _ = map.lend(4, None).unwrap().unwrap();
        map.forget_lent(4);
        assert!(!map.contains(4) && !map.is_lent(4));
        assert_eq!(map.fds().collect::<Vec<_>>(), [8, 6]);
        map.insert(key(4));
        assert_eq!(map.fds().collect::<Vec<_>>(), [8, 6, 4]);
    }

    #[test]
    fn lent_keys_are_still_registrations_for_the_kernel() {
        let mut map = SelectorMap::default();
        for fd in [4, 8, 6] {
            map.insert(key(fd));
        }
        let _lent = map.lend(8, None).unwrap().unwrap();
        let all: Vec<_> = map.registrations().collect();
        assert_eq!(
            all,
            [(4, Events::READ), (8, Events::READ), (6, Events::READ)]
        );
    }

    #[test]
    fn a_mark_refuses_what_was_registered_after_it() {
        let mut map = SelectorMap::default();
        map.insert(key(3));
        let mark = map.mark();
        map.remove(3);
        map.insert(key(3)); // the same number, registered after the mark
        map.insert(key(5));
        assert!(map.lend(3, Some(mark)).is_none());
        assert!(map.lend(5, Some(mark)).is_none());
        assert!(map.lend(3, Some(map.mark())).unwrap().is_some());
        // Serials wrap: a mark just past the wrap still orders them.
        let mut map = SelectorMap {
            serial: u32::MAX,
            ..SelectorMap::default()
        };
        map.insert(key(1)); // serial u32::MAX
        let mark = map.mark(); // 0
        map.insert(key(2)); // serial 0
        assert!(map.lend(1, Some(mark)).unwrap().is_some());
        assert!(map.lend(2, Some(mark)).is_none());
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
