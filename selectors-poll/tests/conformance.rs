//! The shared conformance suite, run against `PollSelector`.
#![cfg(unix)]

use selectors_poll::{FileObject, PollSelector, Result};

fn new_selector<F: FileObject, T>() -> Result<PollSelector<F, T>> {
    PollSelector::new()
}

selectors_conformance::conformance_suite!(poll, new_selector, selectors_conformance::Quirks::POLL);
