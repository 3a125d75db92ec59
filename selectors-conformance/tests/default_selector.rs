//! The shared conformance suite, run against the facade's `DefaultSelector`
//! and against `Box<dyn Selector>` (each backend crate runs it against its
//! own selector), on Unix and on Windows (the suite compiles out the cases
//! Windows cannot have).

use selectors::{DefaultSelector, FileObject, RawFd, Result, Selector};
use selectors_conformance::Quirks;

fn new_default<F: FileObject, T>() -> Result<DefaultSelector<F, T>> {
    DefaultSelector::new()
}

/// A boxed trait object over the default backend: dynamic dispatch must not
/// change a thing.
fn new_boxed<F: FileObject + 'static, T: 'static>() -> Result<Box<dyn Selector<F, T>>> {
    Ok(Box::new(DefaultSelector::<F, T>::new()?))
}

/// The documented differences of the backend `DefaultSelector` is here.
const DEFAULT: Quirks = Quirks::of(DefaultSelector::<RawFd, ()>::BACKEND);

selectors_conformance::conformance_suite!(default_selector, new_default, DEFAULT);
selectors_conformance::conformance_suite!(boxed_dyn, new_boxed, DEFAULT);
