//! The backend-independent half of [`selectors`]: Python's `selectors`
//! module, made Rust.
//!
//! This crate holds what every backend shares: the [`Selector`] trait, the
//! [`SelectorKey`] and its [`SelectorMap`], the [`Events`] mask
//! ([`EVENT_READ`], [`EVENT_WRITE`]), the [`Error`] type, the cross-thread
//! [`Waker`], and [`SelectorImpl`], the one implementation of the trait
//! (with the PEP 475 retry policy), generic over a backend's system calls.
//!
//! Users normally depend on the facade (the `selectors-rs` package, whose
//! library is `selectors`), or on one backend crate (`selectors-epoll`,
//! `selectors-poll`, …), which re-export this API. The [`backend`] module
//! is for the crates that implement a backend.
//!
//! [`selectors`]: https://docs.rs/selectors-rs

mod error;
mod events;
mod key;
mod map;
mod registration;
mod selector;
mod selector_impl;
#[cfg(unix)]
mod signals;
mod sys;
mod timeout;
mod waker;

pub mod backend;

#[doc(hidden)]
pub mod api;

#[doc(inline)]
pub use api::*;
#[doc(hidden)]
pub use selector::Private;
