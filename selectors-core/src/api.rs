//! The user-facing API, item by item: what this crate's root, the
//! `selectors` facade and every backend crate re-export
//! (`pub use selectors_core::api::*`). What backends need besides is in
//! [`backend`](crate::backend).

pub use crate::error::{Error, RegisterError, Result};
pub use crate::events::{Events, EVENT_READ, EVENT_WRITE};
pub use crate::key::{Fd, FileObject, KeyMut, LentKey, SelectorKey};
pub use crate::map::{Iter, SelectorMap};
pub use crate::selector::{InterruptCheck, Ready, Selector};
pub use crate::selector_impl::SelectorImpl;
pub use crate::sys::RawFd;
pub use crate::waker::Waker;
