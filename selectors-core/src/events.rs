//! The event mask: which readiness a registration asks for, or a `select` reports.

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign};

/// A set of I/O readiness events: [`EVENT_READ`], [`EVENT_WRITE`], or both.
///
/// Only those two bits exist, so a mask with unknown bits cannot be built. The
/// empty mask can be (it is what `a & b` of disjoint masks gives), but
/// registering it is refused with [`Error::InvalidEvents`](crate::Error::InvalidEvents).
///
/// # Examples
///
/// ```
/// use selectors::{Events, EVENT_READ, EVENT_WRITE};
///
/// let both = EVENT_READ | EVENT_WRITE;
/// assert!(both.is_readable() && both.is_writable());
/// assert_eq!(both & EVENT_WRITE, EVENT_WRITE);
/// assert_eq!(format!("{both:?}"), "READ | WRITE");
/// assert_eq!(Events::from_bits(4), None);
/// ```
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Events(
    /// The bits, 1 (read) and 2 (write); also set by the backend helpers.
    pub(crate) u8,
);

/// Readable: Python's `selectors.EVENT_READ` (bit value 1).
pub const EVENT_READ: Events = Events::READ;
/// Writable: Python's `selectors.EVENT_WRITE` (bit value 2).
pub const EVENT_WRITE: Events = Events::WRITE;

impl Events {
    /// Readable (bit value 1, as in Python).
    pub const READ: Events = Events(1);
    /// Writable (bit value 2, as in Python).
    pub const WRITE: Events = Events(2);
    /// No event at all.
    pub const EMPTY: Events = Events(0);
    /// Every event: `READ | WRITE`.
    pub const ALL: Events = Events(3);

    /// The mask from Python's integer form; `None` if `bits` has a bit other
    /// than 1 (read) and 2 (write).
    #[must_use]
    pub const fn from_bits(bits: u8) -> Option<Events> {
        if bits & !Self::ALL.0 == 0 {
            Some(Events(bits))
        } else {
            None
        }
    }

    /// Python's integer form of the mask (1 = read, 2 = write).
    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// `true` if no event is set.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `true` if [`EVENT_READ`] is set.
    #[must_use]
    pub const fn is_readable(self) -> bool {
        self.0 & Self::READ.0 != 0
    }

    /// `true` if [`EVENT_WRITE`] is set.
    #[must_use]
    pub const fn is_writable(self) -> bool {
        self.0 & Self::WRITE.0 != 0
    }

    /// `true` if every event of `other` is also in `self`.
    #[must_use]
    pub const fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }

    /// The events in either mask (`|` in `const` contexts).
    #[must_use]
    pub const fn union(self, other: Events) -> Events {
        Events(self.0 | other.0)
    }

    /// The events in both masks (`&` in `const` contexts).
    #[must_use]
    pub const fn intersection(self, other: Events) -> Events {
        Events(self.0 & other.0)
    }
}

impl BitOr for Events {
    type Output = Events;
    #[inline]
    fn bitor(self, rhs: Events) -> Events {
        self.union(rhs)
    }
}

impl BitOrAssign for Events {
    #[inline]
    fn bitor_assign(&mut self, rhs: Events) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Events {
    type Output = Events;
    #[inline]
    fn bitand(self, rhs: Events) -> Events {
        self.intersection(rhs)
    }
}

impl BitAndAssign for Events {
    #[inline]
    fn bitand_assign(&mut self, rhs: Events) {
        self.0 &= rhs.0;
    }
}

/// `READ`, `WRITE`, `READ | WRITE`, or `(empty)`: the same as `Debug`.
impl fmt::Display for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READ | WRITE"),
            (true, false) => f.write_str("READ"),
            (false, true) => f.write_str("WRITE"),
            (false, false) => f.write_str("(empty)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_and_unknown_bits_are_refused() {
        for bits in 0..=3 {
            assert_eq!(Events::from_bits(bits).map(Events::bits), Some(bits));
        }
        for bits in 4..=255 {
            assert_eq!(Events::from_bits(bits), None, "bits {bits}");
        }
    }

    #[test]
    fn display_order_and_hash() {
        use std::collections::{BTreeSet, HashSet};
        assert_eq!(Events::ALL.to_string(), "READ | WRITE");
        assert_eq!(format!("{EVENT_WRITE}"), "WRITE");
        // Ordered by bits: EMPTY < READ < WRITE < READ | WRITE.
        let ordered: Vec<Events> = [Events::ALL, EVENT_WRITE, Events::EMPTY, EVENT_READ]
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            ordered,
            [Events::EMPTY, EVENT_READ, EVENT_WRITE, Events::ALL]
        );
        let set: HashSet<Events> = [EVENT_READ, EVENT_READ, EVENT_WRITE].into_iter().collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn debug_names_the_bits() {
        assert_eq!(format!("{:?}", Events::EMPTY), "(empty)");
        assert_eq!(format!("{:?}", EVENT_READ), "READ");
        assert_eq!(format!("{:?}", EVENT_WRITE), "WRITE");
    }
}
