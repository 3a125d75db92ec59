//! `KqueueSelector`: Python's `selectors.KqueueSelector`, on kqueue(2), for
//! macOS and the BSDs.
//!
//! The implementation lands with the kqueue issue; on every other platform
//! this crate is empty.
#![cfg(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
#![deny(unsafe_op_in_unsafe_fn)]

pub use selectors_core::*;
