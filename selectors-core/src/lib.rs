//! The backend-independent half of [`selectors`]: Python's `selectors`
//! module, made Rust.
//!
//! This crate holds what every backend shares: the [`Selector`] trait, the
//! [`SelectorKey`] and its [`SelectorMap`], the [`Events`] mask
//! ([`EVENT_READ`], [`EVENT_WRITE`]), the [`Error`] type, the [`timeout`]
//! conversions and the PEP 475 retry policy, the FFI result checks in
//! [`sys`], the cross-thread [`Waker`], and [`BaseSelector`], the one
//! implementation of the trait, generic over a backend's [`Poller`].
//!
//! Users normally depend on the facade (the `selectors-rs` package, whose
//! library is `selectors`), or on one backend crate (`selectors-epoll`,
//! `selectors-poll`, …), which re-export all of this.
//!
//! [`selectors`]: https://docs.rs/selectors-rs
#![deny(unsafe_op_in_unsafe_fn)]

mod base;
mod error;
mod events;
mod key;
mod map;
mod selector;
pub mod sys;
pub mod timeout;
pub mod waker;

#[cfg(feature = "conformance")]
#[doc(hidden)]
pub mod conformance;

pub use base::{BaseSelector, Poller};
pub use error::{Error, RegisterError, Result};
pub use events::{Events, EVENT_READ, EVENT_WRITE};
pub use key::{Fd, FileObject, KeyMut, LentKey, SelectorKey};
pub use map::{Iter, SelectorMap};
#[doc(hidden)]
pub use selector::Private;
pub use selector::{Ready, Selector};
pub use waker::Waker;
