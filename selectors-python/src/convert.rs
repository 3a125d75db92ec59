//! Python's argument conventions and exceptions, as CPython's
//! `Lib/selectors.py` has them: file objects, event masks, timeouts, keys,
//! and the error each mistake raises.

use std::io;
use std::time::Duration;

use pyo3::exceptions::{
    PyAttributeError, PyKeyError, PyOSError, PyOverflowError, PyRuntimeError, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyInt, PyTuple, PyType};
use selectors::{Error, Events, RawFd};

/// CPython's `_fileobj_to_fd`: an `int` is the descriptor itself, any other
/// object's is `int(fileobj.fileno())`.
///
/// # Errors
///
/// `ValueError` for an object without a usable `fileno()` (it raises
/// `AttributeError`, `TypeError` or `ValueError`, or returns what `int()`
/// refuses) and for a negative descriptor; `OverflowError` for one too
/// large for the platform's descriptors; whatever else `fileno()` raises.
pub(crate) fn fileobj_to_fd(fileobj: &Bound<'_, PyAny>) -> PyResult<RawFd> {
    let py = fileobj.py();
    let fd = if fileobj.is_instance_of::<PyInt>() {
        fileobj.clone()
    } else {
        let invalid = |err: PyErr| {
            if err.is_instance_of::<PyAttributeError>(py)
                || err.is_instance_of::<PyTypeError>(py)
                || err.is_instance_of::<PyValueError>(py)
            {
                PyValueError::new_err(format!("Invalid file object: {fileobj:?}"))
            } else {
                err
            }
        };
        let fd = fileobj
            .call_method0(pyo3::intern!(py, "fileno"))
            .map_err(invalid)?;
        if fd.is_exact_instance_of::<PyInt>() {
            fd
        } else {
            py.get_type::<PyInt>().call1((fd,)).map_err(invalid)?
        }
    };
    match fd.extract::<i64>() {
        Ok(n) if n < 0 => Err(invalid_fd(&fd)),
        Ok(n) => RawFd::try_from(n).map_err(|_| fd_too_large(&fd)),
        // Beyond 64 bits: negative is invalid, positive too large.
        Err(_) if fd.lt(0)? => Err(invalid_fd(&fd)),
        Err(_) => Err(fd_too_large(&fd)),
    }
}

fn invalid_fd(fd: &Bound<'_, PyAny>) -> PyErr {
    PyValueError::new_err(format!("Invalid file descriptor: {fd}"))
}

fn fd_too_large(fd: &Bound<'_, PyAny>) -> PyErr {
    PyOverflowError::new_err(format!("file descriptor {fd} is out of range"))
}

/// CPython's check of an event mask, `(not events) or (events &
/// ~(EVENT_READ | EVENT_WRITE))`, and the mask it stands for. An `int`
/// (`bool` included) is read directly; any other object through Python's
/// own operators, as CPython does.
///
/// # Errors
///
/// `ValueError("Invalid events: …")` for an empty mask or one with other
/// bits; what the object's operators raise (a `float`'s `TypeError`).
pub(crate) fn parse_events(events: &Bound<'_, PyAny>) -> PyResult<Events> {
    let invalid = || PyValueError::new_err(format!("Invalid events: {events:?}"));
    if events.is_instance_of::<PyInt>() {
        // Too large for 64 bits: other bits are set.
        let bits = events.extract::<i64>().map_err(|_| invalid())?;
        return u8::try_from(bits)
            .ok()
            .and_then(Events::from_bits)
            .filter(|mask| !mask.is_empty())
            .ok_or_else(invalid);
    }
    if !events.is_truthy()? || events.bitand(!3i64)?.is_truthy()? {
        return Err(invalid());
    }
    let mut mask = Events::EMPTY;
    if events.bitand(1i64)?.is_truthy()? {
        mask |= Events::READ;
    }
    if events.bitand(2i64)?.is_truthy()? {
        mask |= Events::WRITE;
    }
    Ok(mask)
}

/// A `select()` timeout in seconds: `None` blocks, zero or less polls,
/// anything else waits at least that long (the backends round up to their
/// precision). A timeout longer than `Duration` holds is a wait that long.
///
/// # Errors
///
/// `ValueError` for NaN, `OverflowError` for infinity (as CPython's
/// conversions), `TypeError` for what is not a number.
pub(crate) fn parse_timeout(timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(timeout) = timeout.filter(|t| !t.is_none()) else {
        return Ok(None);
    };
    let seconds: f64 = timeout.extract()?;
    if seconds.is_nan() {
        return Err(PyValueError::new_err("Invalid value NaN (not a number)"));
    }
    if seconds.is_infinite() && seconds > 0.0 {
        return Err(PyOverflowError::new_err(
            "cannot convert float infinity to integer",
        ));
    }
    Ok(Some(if seconds <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    }))
}

/// CPython's `selectors.SelectorKey` namedtuple.
pub(crate) fn key_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static KEY: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    KEY.import(py, "selectors", "SelectorKey")
}

/// A `SelectorKey(fileobj, fd, events, data)`, made as its own `__new__`
/// makes it (`tuple.__new__(SelectorKey, fields)`), without the Python
/// frame of that `__new__`.
pub(crate) fn new_key<'py>(
    fileobj: &Bound<'py, PyAny>,
    fd: RawFd,
    events: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    static TUPLE_NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = fileobj.py();
    let tuple_new = TUPLE_NEW.get_or_try_init(py, || {
        PyResult::Ok(py.get_type::<PyTuple>().getattr("__new__")?.unbind())
    })?;
    let fields = PyTuple::new(
        py,
        [
            fileobj.clone(),
            fd.into_pyobject(py)?.into_any(),
            events.clone(),
            data.clone(),
        ],
    )?;
    Ok(tuple_new
        .bind(py)
        .call1((key_type(py)?, fields))?
        .cast_into::<PyTuple>()?)
}

/// The Python exception for a selector's error, as CPython raises it for
/// the same mistake; `fileobj` is what the caller passed (the `repr` in
/// `KeyError` messages).
pub(crate) fn core_error(err: Error, fileobj: &Bound<'_, PyAny>) -> PyErr {
    match err {
        Error::AlreadyRegistered(fd) => {
            PyKeyError::new_err(format!("{fileobj:?} (FD {fd}) is already registered"))
        }
        Error::NotRegistered(_) => not_registered(fileobj),
        other => error(other),
    }
}

/// `KeyError("… is not registered")`.
pub(crate) fn not_registered(fileobj: &Bound<'_, PyAny>) -> PyErr {
    PyKeyError::new_err(format!("{fileobj:?} is not registered"))
}

/// The Python exception for a selector's error that names no file object.
pub(crate) fn error(err: Error) -> PyErr {
    match err {
        Error::Os(err) => os_error(err),
        Error::InvalidEvents => PyValueError::new_err("Invalid events"),
        Error::InvalidFd(fd) => PyValueError::new_err(format!("Invalid file descriptor: {fd}")),
        // `select.select()`'s own words for the same descriptor.
        Error::FdOutOfRange { .. } => {
            PyValueError::new_err("filedescriptor out of range in select()")
        }
        Error::AlreadyRegistered(fd) => {
            PyKeyError::new_err(format!("{fd} (FD {fd}) is already registered"))
        }
        Error::NotRegistered(fd) => PyKeyError::new_err(format!("{fd} is not registered")),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// An OS error as CPython raises it, `OSError(errno, strerror)` (so the
/// subclass for the errno: `PermissionError` for `EPERM`…); or the Python
/// exception the interrupt check carried out of the wait.
pub(crate) fn os_error(err: io::Error) -> PyErr {
    if let Some(code) = err.raw_os_error() {
        let text = io::Error::from_raw_os_error(code).to_string();
        let suffix = format!(" (os error {code})");
        let strerror = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
        return PyOSError::new_err((code, strerror));
    }
    let text = err.to_string();
    match err.into_inner().map(|inner| inner.downcast::<PyErr>()) {
        Some(Ok(pyerr)) => *pyerr,
        _ => PyOSError::new_err(text),
    }
}
