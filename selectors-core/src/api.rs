//! The user-facing API, item by item: what this crate's root, the
//! `selectors` facade and every backend crate re-export (a glob import of
//! this module). What backends need besides is in
//! [`backend`](crate::backend).

pub use crate::error::{Error, LendError, RegisterError, Result};
pub use crate::events::{Events, EVENT_READ, EVENT_WRITE};
pub use crate::key::{Fd, FileObject, SelectorKey};
pub use crate::map::{Iter, SelectorMap};
pub use crate::registration::{KeyMut, LentKey, Registration};
pub use crate::selector::{InterruptCheck, Ready, Selector};
pub use crate::selector_impl::SelectorImpl;
#[cfg(unix)]
pub use crate::signals::{PendingSignals, Signal, Signals};
pub use crate::sys::RawFd;
pub use crate::waker::Waker;
