//! The shared conformance suite, run against `KqueueSelector` (the kernel's
//! kqueue on macOS and the BSDs; libkqueue on Linux under
//! `--cfg selectors_libkqueue`).
// Where the target has a kqueue: set by the crate's build script.
#![cfg(selectors_kqueue)]

use selectors_kqueue::{FileObject, KqueueSelector, Result};

fn new_selector<F: FileObject, T>() -> Result<KqueueSelector<F, T>> {
    KqueueSelector::new()
}

selectors_conformance::conformance_suite!(
    kqueue,
    new_selector,
    selectors_conformance::Quirks::KQUEUE,
    test_fileno,
    test_close_inside_a_handler_quiets_the_kernel_object
);
