//! Timeouts: Python's conversions, written once.
//!
//! `None` blocks, zero polls, anything else waits *at least* that long: the
//! millisecond backends (poll, epoll, /dev/poll) round up, never down (a
//! 999,999 ns wait is 1 ms, not a busy loop), and every conversion clamps
//! rather than overflows, so `Duration::MAX` is a very long wait, not a short or
//! negative one. [`Deadline`] carries the PEP 475 policy: an interrupted or
//! early-ended wait is resumed with the time that is left.

use std::time::{Duration, Instant};

/// The longest single wait handed to a kernel, in seconds (about 3 years).
///
/// Some kernels refuse larger `timeval`/`timespec` values (FreeBSD rejects
/// more than 10^8 seconds with `EINVAL`); a longer timeout is served by
/// several waits, which [`SelectorImpl`](crate::SelectorImpl) strings
/// together (PEP 475: a wait that ends early is resumed with the time left).
pub const MAX_WAIT_SECS: u64 = 100_000_000;

/// `timeout` as a millisecond count for `poll(2)`, `epoll_wait(2)` and
/// `DP_POLL`: `-1` for `None`, rounded *up* to whole milliseconds, clamped to
/// `c_int::MAX` (about 24.8 days).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use selectors_core::backend::to_millis;
///
/// assert_eq!(to_millis(None), -1);
/// assert_eq!(to_millis(Some(Duration::ZERO)), 0);
/// assert_eq!(to_millis(Some(Duration::from_nanos(1))), 1);
/// assert_eq!(to_millis(Some(Duration::from_nanos(999_999))), 1);
/// assert_eq!(to_millis(Some(Duration::from_micros(1500))), 2);
/// assert_eq!(to_millis(Some(Duration::MAX)), i32::MAX);
/// ```
#[inline]
pub fn to_millis(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(t) => {
            // Whole milliseconds, plus one if any nanosecond is left over.
            let ms = t.as_millis() + u128::from(t.subsec_nanos() % 1_000_000 != 0);
            libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
        }
    }
}

/// `timeout` clamped to [`MAX_WAIT_SECS`], as `(seconds, nanoseconds)`.
#[inline]
pub(crate) fn clamped(timeout: Duration) -> (u64, u32) {
    if timeout.as_secs() >= MAX_WAIT_SECS {
        (MAX_WAIT_SECS, 0)
    } else {
        (timeout.as_secs(), timeout.subsec_nanos())
    }
}

/// `timeout` as whole seconds and microseconds, rounded *up* to a
/// microsecond and clamped to [`MAX_WAIT_SECS`]; `None` stays `None`. What a
/// `timeval` holds: `to_timeval` on Unix, Winsock's own `timeval` on
/// Windows.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use selectors_core::backend::to_micros;
///
/// assert_eq!(to_micros(Some(Duration::from_nanos(1))), Some((0, 1)));
/// assert_eq!(to_micros(Some(Duration::from_nanos(1_999_999_001))), Some((2, 0)));
/// assert_eq!(to_micros(None), None);
/// ```
#[inline]
#[must_use]
pub fn to_micros(timeout: Option<Duration>) -> Option<(u64, u32)> {
    timeout.map(|t| {
        let (secs, nanos) = clamped(t);
        match nanos.div_ceil(1000) {
            1_000_000 => (secs + 1, 0),
            micros => (secs, micros),
        }
    })
}

/// When a `select` call must return, and how long is left until then.
///
/// A zero timeout polls once; `None` (and a timeout so large that the deadline
/// cannot be represented) never expires. The clock is read only for a
/// positive timeout, so blocking and polling selects cost no clock read.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Never,
    Poll,
    At(Instant),
}

impl Deadline {
    /// The deadline for a `select(timeout)` call starting now.
    #[inline]
    pub fn new(timeout: Option<Duration>) -> Deadline {
        let kind = match timeout {
            None => Kind::Never,
            Some(t) if t.is_zero() => Kind::Poll,
            Some(t) => Instant::now().checked_add(t).map_or(Kind::Never, Kind::At),
        };
        Deadline { kind }
    }

    /// The timeout for the next wait: `Some(None)` to block, `Some(Some(t))`
    /// to wait `t`, `None` if the deadline has passed.
    #[inline]
    pub fn remaining(&self) -> Option<Option<Duration>> {
        match self.kind {
            Kind::Never => Some(None),
            Kind::Poll => Some(Some(Duration::ZERO)),
            Kind::At(at) => {
                let left = at.saturating_duration_since(Instant::now());
                (!left.is_zero()).then_some(Some(left))
            }
        }
    }

    /// `false` for a polling deadline (zero timeout), which waits exactly once.
    #[inline]
    pub fn may_wait_again(&self) -> bool {
        !matches!(self.kind, Kind::Poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_up_and_clamp() {
        let cases = [
            (Duration::ZERO, 0),
            (Duration::from_nanos(1), 1),
            (Duration::from_millis(1), 1),
            (Duration::from_nanos(1_000_001), 2),
            (Duration::from_secs(1), 1000),
            (Duration::from_millis(i32::MAX as u64), i32::MAX),
            (Duration::from_millis(i32::MAX as u64 + 1), i32::MAX),
            (Duration::MAX, i32::MAX),
        ];
        for (t, ms) in cases {
            assert_eq!(to_millis(Some(t)), ms, "{t:?}");
        }
    }

    #[test]
    fn micros_round_up_and_clamp() {
        assert_eq!(to_micros(Some(Duration::ZERO)), Some((0, 0)));
        assert_eq!(to_micros(Some(Duration::new(1, 1_000))), Some((1, 1)));
        assert_eq!(to_micros(Some(Duration::new(1, 1_001))), Some((1, 2)));
        assert_eq!(to_micros(Some(Duration::MAX)), Some((MAX_WAIT_SECS, 0)));
    }

    #[test]
    fn zero_polls_once_none_blocks_and_a_timeout_counts_down() {
        let poll = Deadline::new(Some(Duration::ZERO));
        assert_eq!(poll.remaining(), Some(Some(Duration::ZERO)));
        assert!(!poll.may_wait_again());

        let forever = Deadline::new(None);
        assert_eq!(forever.remaining(), Some(None));

        let soon = Deadline::new(Some(Duration::from_secs(60)));
        let left = soon.remaining().unwrap().unwrap();
        assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(59));
    }

    #[test]
    fn huge_timeouts_never_expire_early() {
        let d = Deadline::new(Some(Duration::MAX));
        assert_eq!(d.remaining(), Some(None));
        let d = Deadline::new(Some(Duration::from_secs(u64::MAX / 4)));
        assert!(d.remaining().is_some());
    }

    #[test]
    fn a_short_deadline_expires() {
        let d = Deadline::new(Some(Duration::from_millis(5)));
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(d.remaining(), None);
        assert!(d.may_wait_again());
    }
}
