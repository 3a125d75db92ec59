//! The shared conformance suite, run against `SelectSelector`.
#![cfg(any(unix, windows))]

use selectors_select::{FileObject, Result, SelectSelector};

fn new_selector<F: FileObject, T>() -> Result<SelectSelector<F, T>> {
    SelectSelector::new()
}

selectors_conformance::conformance_suite!(
    select,
    new_selector,
    selectors_conformance::Quirks::SELECT
);
