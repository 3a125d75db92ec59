//! `selectors_rs`: Python's `selectors` module, implemented by the
//! selectors-rs crates, as a Python extension module (PyO3).
//!
//! The module mirrors the standard library's `selectors`: `EVENT_READ`,
//! `EVENT_WRITE`, CPython's own `SelectorKey` namedtuple and `BaseSelector`
//! ABC, and the classes `SelectSelector`, `PollSelector`, `EpollSelector`
//! (Linux), `KqueueSelector` (kqueue platforms), `DevpollSelector`
//! (illumos, Solaris) and `DefaultSelector`, each over the facade's selector
//! of that kind with bare descriptors as file objects. The key data holds
//! the `SelectorKey` handed to Python, built once per registration, and the
//! `(key, events)` pairs `select()` returns, built the first time they are
//! ready: in steady state `select()` allocates its list and nothing else.
//!
//! `select()` waits with the GIL released; a signal that interrupts the
//! wait runs Python's signal handlers through the selector's interrupt check
//! (`Selector::set_interrupt_check`), so an exception they raise comes out
//! of `select()` and otherwise the wait resumes with the time left
//! (PEP 475), as in CPython.
//!
//! `cargo xtask python` builds the wheel with maturin and runs CPython's
//! own `test_selectors`, `test_asyncio`, `test_subprocess` and
//! `test_socketserver` against it; README.md lists where the module
//! differs from CPython, on purpose. Unix only: elsewhere this library is
//! empty.
#![cfg(unix)]

mod convert;
mod mapping;
mod selector;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use selectors::{RawFd, EVENT_READ, EVENT_WRITE};

use mapping::SelectorMapping;
use selector::BaseSelectorImpl;

/// Python's selectors module, implemented in Rust by selectors-rs.
///
/// The same API as the standard library's `selectors`: register file
/// objects (an int or an object with a `fileno()` method) for EVENT_READ
/// and EVENT_WRITE with any data, and select() returns the ready keys as
/// a list of (SelectorKey, events). Every class is a
/// `selectors.BaseSelector`, and SelectorKey is `selectors.SelectorKey`.
#[pymodule(name = "_selectors_rs")]
fn selectors_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let stdlib = py.import("selectors")?;
    m.add("EVENT_READ", EVENT_READ.bits())?;
    m.add("EVENT_WRITE", EVENT_WRITE.bits())?;
    m.add("SelectorKey", stdlib.getattr("SelectorKey")?)?;
    m.add("BaseSelector", stdlib.getattr("BaseSelector")?)?;
    m.add_class::<BaseSelectorImpl>()?;
    m.add_class::<SelectorMapping>()?;
    selector::add_classes(m)?;
    let default = selector::class_name(selectors::DefaultSelector::<RawFd, ()>::BACKEND);
    m.add("DefaultSelector", m.getattr(default)?)?;
    m.add_function(wrap_pyfunction!(_opened, m)?)?;
    // The public names, which the package `selectors_rs` re-exports:
    // everything but the underscored ones.
    let public: Vec<String> = m
        .dir()?
        .iter()
        .map(|name| name.extract::<String>())
        .filter(|name| name.as_ref().map_or(true, |name| !name.starts_with('_')))
        .collect::<PyResult<_>>()?;
    m.add("__all__", public)?;
    // `isinstance(sel, selectors.BaseSelector)` and
    // `isinstance(sel.get_map(), collections.abc.Mapping)`, as CPython's.
    // (`ABCMeta.register`: `BaseSelector.register` is the selector method.)
    let abc_register = py.import("abc")?.getattr("ABCMeta")?.getattr("register")?;
    abc_register.call1((
        stdlib.getattr("BaseSelector")?,
        py.get_type::<BaseSelectorImpl>(),
    ))?;
    let mapping = py.import("collections.abc")?.getattr("Mapping")?;
    abc_register.call1((mapping, py.get_type::<SelectorMapping>()))?;
    Ok(())
}

/// How many selectors of each class this process has opened, by class
/// name: how the stage that runs CPython's test suites with these classes
/// in place of the standard library's checks that they were in use.
#[pyfunction]
fn _opened(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let opened = PyDict::new(py);
    for (backend, count) in selector::opened() {
        opened.set_item(selector::class_name(backend), count)?;
    }
    Ok(opened)
}
