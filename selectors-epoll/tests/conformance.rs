//! The shared conformance suite, run against `EpollSelector`.
// Linux and Android: set by the crate's build script.
#![cfg(selectors_epoll)]

use selectors_epoll::{EpollSelector, FileObject, Result};

fn new_selector<F: FileObject, T>() -> Result<EpollSelector<F, T>> {
    EpollSelector::new()
}

selectors_conformance::conformance_suite!(
    epoll,
    new_selector,
    selectors_conformance::Quirks::EPOLL,
    test_fileno,
    test_close_inside_a_handler_quiets_the_kernel_object
);
