//! The shared conformance suite, run against `EpollSelector`.
#![cfg(any(target_os = "linux", target_os = "android"))]

use selectors_epoll::{EpollSelector, FileObject, Result};

fn new_selector<F: FileObject, T>() -> Result<EpollSelector<F, T>> {
    EpollSelector::new()
}

selectors_conformance::conformance_suite!(
    epoll,
    new_selector,
    selectors_conformance::Quirks::EPOLL,
    test_fileno
);
