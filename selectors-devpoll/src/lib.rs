//! `DevpollSelector`: Python's `selectors.DevpollSelector`, on Solaris and
//! illumos's `/dev/poll`.
//!
//! The implementation lands with the /dev/poll issue; on every other platform
//! this crate is empty.
#![cfg(any(target_os = "illumos", target_os = "solaris"))]
#![deny(unsafe_op_in_unsafe_fn)]

pub use selectors_core::*;
