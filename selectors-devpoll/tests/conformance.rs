//! The shared conformance suite, run against `DevpollSelector`.
// illumos and Solaris, and Linux on the emulation of the driver: set by
// the crate's build script.
#![cfg(selectors_devpoll)]

use selectors_devpoll::{DevpollSelector, FileObject, Result};

fn new_selector<F: FileObject, T>() -> Result<DevpollSelector<F, T>> {
    DevpollSelector::new()
}

selectors_conformance::conformance_suite!(
    devpoll,
    new_selector,
    selectors_conformance::Quirks::DEVPOLL,
    test_fileno,
    test_close_inside_a_handler_quiets_the_kernel_object
);
