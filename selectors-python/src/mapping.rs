//! `get_map()`'s mapping: CPython's `_SelectorMapping`, a live read-only
//! view of the registrations, from file objects to their keys.

use pyo3::exceptions::PyKeyError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyIterator, PyList, PyTuple, PyType};
use pyo3::PyTraverseError;

use crate::convert::not_registered;
use crate::selector::BaseSelectorImpl;

/// Read-only mapping of file objects to SelectorKeys (what get_map()
/// returns); it follows the selector, and is empty once it is closed.
///
/// A collections.abc.Mapping: looked up by file object or descriptor,
/// iterated by descriptor, in registration order.
#[pyclass(name = "_SelectorMapping", module = "selectors_rs", frozen, mapping)]
#[derive(Debug)]
pub struct SelectorMapping {
    selector: Py<BaseSelectorImpl>,
}

impl SelectorMapping {
    pub(crate) fn new(selector: Py<BaseSelectorImpl>) -> Self {
        SelectorMapping { selector }
    }

    /// A `collections.abc` view (`KeysView`…) of this mapping.
    fn view<'py>(slf: &Bound<'py, Self>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        slf.py()
            .import("collections.abc")?
            .getattr(name)?
            .call1((slf,))
    }
}

#[pymethods]
impl SelectorMapping {
    fn __len__(&self) -> PyResult<usize> {
        self.selector.get().len()
    }

    fn __getitem__<'py>(&self, fileobj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
        let selector = self.selector.get();
        let fd = selector.lookup(fileobj)?;
        match selector.key(fileobj.py(), fd)? {
            Some(key) => Ok(key.into_bound(fileobj.py())),
            None => Err(not_registered(fileobj)),
        }
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        PyList::new(py, self.selector.get().fds()?)?.try_iter()
    }

    fn __contains__(&self, fileobj: &Bound<'_, PyAny>) -> PyResult<bool> {
        match self.__getitem__(fileobj) {
            Ok(_) => Ok(true),
            Err(err) if err.is_instance_of::<PyKeyError>(fileobj.py()) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Return the key of a file object, or default if it is not registered.
    #[pyo3(signature = (fileobj, default = None))]
    fn get<'py>(
        &self,
        fileobj: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.__getitem__(fileobj) {
            Ok(key) => Ok(key.into_any()),
            Err(err) if err.is_instance_of::<PyKeyError>(fileobj.py()) => {
                Ok(default.unwrap_or_else(|| fileobj.py().None().into_bound(fileobj.py())))
            }
            Err(err) => Err(err),
        }
    }

    /// A view of the registered descriptors.
    fn keys<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::view(slf, "KeysView")
    }

    /// A view of the SelectorKeys.
    fn values<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::view(slf, "ValuesView")
    }

    /// A view of the (descriptor, SelectorKey) pairs.
    fn items<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::view(slf, "ItemsView")
    }

    /// `collections.abc.Mapping`'s equality: the same items as another
    /// mapping.
    fn __eq__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        let py = slf.py();
        if !other.is_instance(MAPPING.import(py, "collections.abc", "Mapping")?)? {
            return Ok(py.NotImplemented());
        }
        let dict = py.get_type::<PyDict>();
        let mine = dict.call1((Self::items(slf)?,))?;
        let theirs = dict.call1((other.call_method0("items")?,))?;
        Ok(mine
            .eq(theirs)?
            .into_pyobject(py)?
            .to_owned()
            .into_any()
            .unbind())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.selector)
    }
}
