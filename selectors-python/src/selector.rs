//! The selector classes: `_BaseSelectorImpl` holds a selector of the facade
//! and implements every method (CPython's `_BaseSelectorImpl` holds the key
//! map); each backend's class derives from it and only opens its kind.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, TryLockError};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use pyo3::PyTraverseError;
use selectors::{Error, Events, RawFd, Selector};

use crate::convert::{self, core_error, not_registered};
use crate::mapping::SelectorMapping;

/// A selector of any backend, with an [`Entry`] as each key's data.
type Inner = Box<dyn Selector<RawFd, Entry> + Send + Sync>;

/// What a selector keeps for each registration: the `SelectorKey` handed to
/// Python, and the `(key, events)` pairs `select()` hands out, one per ready
/// mask (READ, WRITE, both), each made the first time it is needed. So a
/// `select()` in steady state allocates its list, and nothing per ready
/// file object: a tuple is immutable, and a pair is only ever read.
pub(crate) struct Entry {
    key: Py<PyTuple>,
    pairs: [OnceLock<Py<PyTuple>>; 3],
}

impl Entry {
    fn new(key: Py<PyTuple>) -> Self {
        Entry {
            key,
            pairs: Default::default(),
        }
    }

    /// The `(key, events)` pair for `events` (not empty), made if need be.
    fn pair<'a>(&'a self, py: Python<'_>, events: Events) -> PyResult<&'a Py<PyTuple>> {
        let cell = &self.pairs[usize::from(events.bits()) - 1];
        if let Some(pair) = cell.get() {
            return Ok(pair);
        }
        let pair = PyTuple::new(
            py,
            [
                self.key.bind(py).clone().into_any(),
                events.bits().into_pyobject(py)?.into_any(),
            ],
        )?;
        // Set under the selector's lock: no other thread can have set it.
        Ok(cell.get_or_init(|| pair.unbind()))
    }
}

/// An open selector, and the ready list of its `select`, kept for its
/// capacity.
struct State {
    sel: Inner,
    ready: Vec<(RawFd, Events)>,
}

/// Why a call found the selector's state taken.
const BUSY: &str = "the selector is in use by a select() that is waiting: in another thread, \
                    or below the signal handler that made this call";

/// The backends, in the order of [`OPENED`].
const BACKENDS: [&str; 5] = ["select", "poll", "epoll", "kqueue", "devpoll"];

/// Selectors opened in this process, per backend.
static OPENED: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

/// `(backend, selectors opened)` for every backend.
pub(crate) fn opened() -> impl Iterator<Item = (&'static str, u64)> {
    BACKENDS
        .iter()
        .zip(&OPENED)
        .map(|(&backend, count)| (backend, count.load(Ordering::Relaxed)))
}

/// The Python class of a backend: `"epoll"` is `EpollSelector`.
pub(crate) fn class_name(backend: &str) -> &'static str {
    match backend {
        "select" => "SelectSelector",
        "poll" => "PollSelector",
        "epoll" => "EpollSelector",
        "kqueue" => "KqueueSelector",
        "devpoll" => "DevpollSelector",
        other => unreachable!("no Python class for the {other} backend"),
    }
}

/// Base class of the selectors of this module (CPython's
/// `selectors._BaseSelectorImpl`); instantiate its subclasses.
///
/// Every method is implemented here, over the Rust selector of the
/// subclass's kind. The selector is used by one thread at a time: while
/// select() waits (with the GIL released), calls from other threads raise
/// RuntimeError instead of waiting for it.
#[pyclass(
    name = "_BaseSelectorImpl",
    module = "selectors_rs",
    frozen,
    subclass,
    dict,
    weakref
)]
pub struct BaseSelectorImpl {
    /// The selector; `None` once closed (which releases its kernel object,
    /// as CPython's `close()` does). Locked by every call, and held by
    /// `select` while it waits.
    state: Mutex<Option<State>>,
    /// The backend's name (`"epoll"`…).
    backend: &'static str,
    /// The kernel object's descriptor, for the backends that have one.
    kernel_fd: Option<RawFd>,
    closed: AtomicBool,
}

impl fmt::Debug for BaseSelectorImpl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaseSelectorImpl")
            .field("backend", &self.backend)
            .field("kernel_fd", &self.kernel_fd)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl BaseSelectorImpl {
    /// Wraps a newly opened selector, whose kernel object is `kernel_fd`.
    fn open<S>(opened: selectors::Result<S>, kernel_fd: fn(&S) -> Option<RawFd>) -> PyResult<Self>
    where
        S: Selector<RawFd, Entry> + Send + Sync + 'static,
    {
        let mut sel = opened.map_err(convert::error)?;
        sel.set_interrupt_check(Some(Box::new(run_signal_handlers)));
        if let Some(count) = BACKENDS.iter().position(|&b| b == sel.backend()) {
            OPENED[count].fetch_add(1, Ordering::Relaxed);
        }
        Ok(BaseSelectorImpl {
            backend: sel.backend(),
            kernel_fd: kernel_fd(&sel),
            state: Mutex::new(Some(State {
                sel: Box::new(sel),
                ready: Vec::new(),
            })),
            closed: AtomicBool::new(false),
        })
    }

    /// The selector's state, unless a waiting `select` holds it.
    fn lock(&self) -> PyResult<MutexGuard<'_, Option<State>>> {
        match self.state.try_lock() {
            Ok(state) => Ok(state),
            // A panic unwound through a call: the selector itself is intact
            // (every call leaves it consistent), so carry on.
            Err(TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(BUSY)),
        }
    }

    /// CPython's `_fileobj_lookup`: the descriptor of `fileobj`, or for an
    /// object that has none (a closed socket) the descriptor it was
    /// registered with, found by identity.
    pub(crate) fn lookup(&self, fileobj: &Bound<'_, PyAny>) -> PyResult<RawFd> {
        let py = fileobj.py();
        let err = match convert::fileobj_to_fd(fileobj) {
            Ok(fd) => return Ok(fd),
            Err(err) if err.is_instance_of::<PyValueError>(py) => err,
            Err(err) => return Err(err),
        };
        if let Some(state) = self.lock()?.as_ref() {
            for key in state.sel.get_map() {
                if key.data().key.bind(py).get_borrowed_item(0)?.is(fileobj) {
                    return Ok(key.fd());
                }
            }
        }
        Err(err)
    }

    /// The `SelectorKey` of `fd`, if it is registered (never after close).
    pub(crate) fn key(&self, py: Python<'_>, fd: RawFd) -> PyResult<Option<Py<PyTuple>>> {
        Ok(self
            .lock()?
            .as_ref()
            .and_then(|state| state.sel.get_map().get(fd))
            .map(|key| key.data().key.clone_ref(py)))
    }

    /// The registered descriptors, in registration order.
    pub(crate) fn fds(&self) -> PyResult<Vec<RawFd>> {
        Ok(self
            .lock()?
            .as_ref()
            .map(|state| state.sel.get_map().fds().collect())
            .unwrap_or_default())
    }

    /// How many file objects are registered.
    pub(crate) fn len(&self) -> PyResult<usize> {
        Ok(self
            .lock()?
            .as_ref()
            .map_or(0, |state| state.sel.get_map().len()))
    }

    /// The descriptor of the kernel object (`fileno()`).
    fn fileno(&self) -> PyResult<RawFd> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        self.kernel_fd
            .ok_or_else(|| PyRuntimeError::new_err("this selector has no kernel object"))
    }
}

/// What `register()` and `select()` raise after `close()`: what CPython's
/// `EpollSelector`, `KqueueSelector` and `DevpollSelector` raise.
fn closed() -> PyErr {
    PyValueError::new_err("I/O operation on closed selector")
}

/// The interrupt check of every selector: Python's signal handlers run
/// (`PyErr_CheckSignals`), as CPython's `select` module runs them when a
/// wait fails with `EINTR`; an exception one raises ends the `select` (it
/// travels inside the error, and `convert::os_error` takes it out).
fn run_signal_handlers() -> selectors::Result<()> {
    Python::attach(|py| py.check_signals()).map_err(|err| Error::Os(io::Error::other(err)))
}

#[pymethods]
impl BaseSelectorImpl {
    /// Initializes the selector (the constructor opened it; it takes no
    /// arguments).
    fn __init__(&self) {}

    /// Register a file object for events (a mask of EVENT_READ and
    /// EVENT_WRITE), with data attached, and return its SelectorKey.
    ///
    /// Raises ValueError for invalid events or an invalid file object,
    /// KeyError if its descriptor is already registered, and OSError if
    /// the kernel refuses it (EBADF for a closed descriptor, on every
    /// class; EPERM for a regular file, on EpollSelector).
    #[pyo3(signature = (fileobj, events, data = None))]
    fn register<'py>(
        &self,
        fileobj: &Bound<'py, PyAny>,
        events: &Bound<'py, PyAny>,
        data: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let py = fileobj.py();
        let mask = convert::parse_events(events)?;
        let fd = self.lookup(fileobj)?;
        let none = py.None().into_bound(py);
        let key = convert::new_key(fileobj, fd, events, data.unwrap_or(&none))?;
        let registered = {
            let mut state = self.lock()?;
            let state = state.as_mut().ok_or_else(closed)?;
            state
                .sel
                .register(fd, mask, Entry::new(key.clone().unbind()))
                .map(drop)
        };
        registered.map_err(|err| core_error(err, fileobj))?;
        Ok(key)
    }

    /// Unregister a file object and return its SelectorKey.
    ///
    /// Raises KeyError if it is not registered. A file object closed since
    /// it was registered is unregistered all the same.
    fn unregister<'py>(&self, fileobj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
        let fd = self.lookup(fileobj)?;
        let removed = match self.lock()?.as_mut() {
            Some(state) => state.sel.unregister(fd).map(|key| key.into_parts().1.key),
            None => Err(Error::NotRegistered(fd)),
        };
        Ok(removed
            .map_err(|err| core_error(err, fileobj))?
            .into_bound(fileobj.py()))
    }

    /// Change a registered file object's events or data, and return its
    /// new SelectorKey (the same key if neither changed).
    ///
    /// Raises KeyError if it is not registered, ValueError for invalid
    /// events, and OSError if the kernel refuses the change; on any error
    /// the registration is left as it was.
    #[pyo3(signature = (fileobj, events, data = None))]
    fn modify<'py>(
        &self,
        fileobj: &Bound<'py, PyAny>,
        events: &Bound<'py, PyAny>,
        data: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let py = fileobj.py();
        let fd = self.lookup(fileobj)?;
        let (old, old_mask) = {
            let state = self.lock()?;
            let key = state.as_ref().and_then(|state| state.sel.get_map().get(fd));
            let key = key.ok_or_else(|| not_registered(fileobj))?;
            (key.data().key.bind(py).clone(), key.events())
        };
        let mask = convert::parse_events(events)?;
        let none = py.None().into_bound(py);
        let data = data.unwrap_or(&none);
        // CPython's test: the events' masks, and the data's `!=`.
        if mask == old_mask && !data.ne(old.get_item(3)?)? {
            return Ok(old);
        }
        let key = convert::new_key(&old.get_item(0)?, fd, events, data)?;
        let modified = match self.lock()?.as_mut() {
            Some(state) => state
                .sel
                .modify(fd, mask, Entry::new(key.clone().unbind()))
                .map(drop),
            None => Err(Error::NotRegistered(fd)),
        };
        modified.map_err(|err| core_error(err, fileobj))?;
        Ok(key)
    }

    /// Wait until some registered file objects are ready, or the timeout
    /// (in seconds; None blocks, zero or less polls) passes, and return a
    /// list of (key, events) for them.
    ///
    /// The GIL is released while it waits. A signal that interrupts the
    /// wait runs Python's signal handlers: an exception they raise comes
    /// out of select(); otherwise the wait resumes with the time left.
    #[pyo3(signature = (timeout = None))]
    fn select<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let timeout = convert::parse_timeout(timeout)?;
        let mut state = self.lock()?;
        let State { sel, ready } = state.as_mut().ok_or_else(closed)?;
        py.detach(|| sel.select_into(ready, timeout))
            .map_err(convert::error)?;
        // The list is made at its final size, of each registration's own
        // `(key, events)` pair (made first where it is missing).
        let map = sel.get_map();
        let entry = |fd| {
            map.get(fd)
                .expect("select_into lists registered descriptors")
                .data()
        };
        for &(fd, events) in ready.iter() {
            entry(fd).pair(py, events)?;
        }
        PyList::new(
            py,
            ready.iter().map(|&(fd, events)| {
                entry(fd).pairs[usize::from(events.bits()) - 1]
                    .get()
                    .expect("made above")
                    .bind(py)
            }),
        )
    }

    /// Close the selector: every registration is dropped and the kernel
    /// object released. Closing twice is harmless.
    fn close(&self) -> PyResult<()> {
        let taken = self.lock()?.take();
        self.closed.store(true, Ordering::Release);
        // The keys (Python objects, whose release may run Python code)
        // are dropped with the state unlocked.
        drop(taken);
        Ok(())
    }

    /// Return the SelectorKey of a registered file object.
    ///
    /// Raises KeyError if it is not registered, and RuntimeError once the
    /// selector is closed.
    fn get_key<'py>(&self, fileobj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(PyRuntimeError::new_err("Selector is closed"));
        }
        let fd = self.lookup(fileobj)?;
        match self.key(fileobj.py(), fd)? {
            Some(key) => Ok(key.into_bound(fileobj.py())),
            None => Err(not_registered(fileobj)),
        }
    }

    /// Return a read-only, live mapping of file objects to SelectorKeys,
    /// or None once the selector is closed.
    fn get_map<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, SelectorMapping>>> {
        if slf.get().closed.load(Ordering::Acquire) {
            return Ok(None);
        }
        Bound::new(slf.py(), SelectorMapping::new(slf.clone().unbind())).map(Some)
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> Bound<'py, Self> {
        slf.clone()
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.close()
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // Held by a waiting select: then the keys are reachable anyway
        // (its caller holds the selector).
        if let Ok(state) = self.state.try_lock() {
            for key in state.iter().flat_map(|state| state.sel.get_map()) {
                let entry = key.data();
                visit.call(&entry.key)?;
                for pair in &entry.pairs {
                    visit.call(pair.get())?;
                }
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        let taken = match self.state.try_lock() {
            Ok(mut state) => state.take(),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().take(),
            Err(TryLockError::WouldBlock) => None,
        };
        self.closed.store(true, Ordering::Release);
        drop(taken);
    }
}

/// A selector class: a subclass of `_BaseSelectorImpl` that opens its
/// backend (`$kind`), with `fileno()` where the backend has a kernel
/// object.
macro_rules! selector_class {
    ($(#[$doc:meta])* $name:ident, $kind:ty) => {
        selector_class!(@class $(#[$doc])* $name, $kind, |_| None, {});
    };
    ($(#[$doc:meta])* $name:ident, $kind:ty, fileno) => {
        selector_class!(@class $(#[$doc])* $name, $kind, |sel| {
            use std::os::fd::AsRawFd;
            Some(sel.as_raw_fd())
        }, {
            /// Return the file descriptor of the kernel object.
            fn fileno(slf: &Bound<'_, Self>) -> PyResult<RawFd> {
                slf.as_super().get().fileno()
            }
        });
    };
    (@class $(#[$doc:meta])* $name:ident, $kind:ty, $kernel_fd:expr, { $($methods:tt)* }) => {
        $(#[$doc])*
        #[pyclass(module = "selectors_rs", frozen, extends = BaseSelectorImpl, subclass)]
        #[derive(Debug)]
        pub struct $name;

        #[pymethods]
        impl $name {
            // Any arguments, so that a Python subclass's `__init__` may take
            // its own; `__init__` (inherited) takes none.
            #[new]
            #[pyo3(signature = (*_args, **_kwargs))]
            fn new(
                _args: &Bound<'_, PyTuple>,
                _kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<PyClassInitializer<Self>> {
                let base = BaseSelectorImpl::open(<$kind>::new(), $kernel_fd)?;
                Ok(PyClassInitializer::from(base).add_subclass($name))
            }

            $($methods)*
        }
    };
}

selector_class!(
    /// Selector over select(2) (descriptors below FD_SETSIZE).
    SelectSelector,
    selectors::SelectSelector<RawFd, Entry>
);

selector_class!(
    /// Selector over poll(2).
    PollSelector,
    selectors::PollSelector<RawFd, Entry>
);

// The classes of the backends that exist only on some systems, each with
// the function that adds it to the module: one list of systems per
// backend, spelled once.
cfg_if::cfg_if! {
    if #[cfg(any(target_os = "linux", target_os = "android"))] {
        selector_class!(
            /// Selector over epoll(7).
            EpollSelector,
            selectors::EpollSelector<RawFd, Entry>,
            fileno
        );

        fn add_epoll(m: &Bound<'_, PyModule>) -> PyResult<()> {
            m.add_class::<EpollSelector>()
        }
    } else {
        fn add_epoll(_m: &Bound<'_, PyModule>) -> PyResult<()> {
            Ok(())
        }
    }
}

cfg_if::cfg_if! {
    if #[cfg(any(target_os = "illumos", target_os = "solaris"))] {
        selector_class!(
            /// Selector over /dev/poll (illumos, Solaris).
            DevpollSelector,
            selectors::DevpollSelector<RawFd, Entry>,
            fileno
        );

        fn add_devpoll(m: &Bound<'_, PyModule>) -> PyResult<()> {
            m.add_class::<DevpollSelector>()
        }
    } else {
        fn add_devpoll(_m: &Bound<'_, PyModule>) -> PyResult<()> {
            Ok(())
        }
    }
}

cfg_if::cfg_if! {
    // The kqueue crate's rule: the kernel's kqueue, or libkqueue's on Linux.
    if #[cfg(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly",
        all(target_os = "linux", selectors_libkqueue),
    ))] {
        selector_class!(
            /// Selector over kqueue(2).
            KqueueSelector,
            selectors::KqueueSelector<RawFd, Entry>,
            fileno
        );

        fn add_kqueue(m: &Bound<'_, PyModule>) -> PyResult<()> {
            m.add_class::<KqueueSelector>()
        }
    } else {
        fn add_kqueue(_m: &Bound<'_, PyModule>) -> PyResult<()> {
            Ok(())
        }
    }
}

/// Adds the classes of the backends this platform has to the module.
pub(crate) fn add_classes(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SelectSelector>()?;
    m.add_class::<PollSelector>()?;
    add_epoll(m)?;
    add_devpoll(m)?;
    add_kqueue(m)
}
