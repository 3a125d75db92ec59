//! The shared conformance suite, run against `KqueueSelector` (the kernel's
//! kqueue on macOS and the BSDs; libkqueue on Linux under
//! `--cfg selectors_libkqueue`).
#![cfg(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    all(target_os = "linux", selectors_libkqueue)
))]

use selectors_kqueue::{FileObject, KqueueSelector, Result};

fn new_selector<F: FileObject, T>() -> Result<KqueueSelector<F, T>> {
    KqueueSelector::new()
}

selectors_core::conformance_suite!(
    kqueue,
    new_selector,
    selectors_core::conformance::Quirks::KQUEUE,
    test_fileno
);
