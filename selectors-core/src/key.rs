//! File objects and the key a registration is kept under.

use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};

use crate::sys::{raw_of, AsDescriptor};
use crate::{Events, RawFd};

/// Anything with a file descriptor: Python's "file object" (an `int` or an
/// object with a `fileno()` method).
///
/// On Windows, as in Python there, only sockets can be selected: the
/// implementations are for a bare [`RawFd`] (a `RawSocket` there), for
/// `BorrowedSocket`, `OwnedSocket` and the standard library's sockets, for
/// the buffered wrappers and pointers below, and for [`Fd`] of any `AsSocket`
/// type. What follows describes Unix.
///
/// Implemented for a bare [`RawFd`], for [`BorrowedFd`], for the standard
/// library's descriptor-owning types ([`OwnedFd`], sockets, files,
/// child-process pipes, standard streams and their locks), for
/// [`BufReader`](io::BufReader) and [`BufWriter`](io::BufWriter) of a file
/// object, and through `&`, `&mut`, `Box`, `Rc` and `Arc`. Any other type
/// with [`AsFd`] (`std::io::PipeReader`, socket2, nix, mio sources) is one
/// when wrapped in [`Fd`], with no newtype of your own.
/// `Box<dyn FileObject>` lets one selector hold objects of different types.
///
/// A selector that holds an *owned* object (an `OwnedFd`, a `TcpStream`…)
/// keeps the descriptor open for as long as it is registered, so it cannot be
/// closed behind the selector's back; [`Selector::unregister`](crate::Selector::unregister)
/// hands it back.
///
/// # Examples
///
/// Implementing it for a type of one's own:
///
/// ```
/// # #[cfg(unix)] { // Unix types; the conformance suite covers Windows
/// use std::os::fd::{AsRawFd, RawFd};
/// use selectors_core::FileObject;
///
/// struct Connection { socket: std::net::TcpStream, served: u64 }
///
/// impl FileObject for Connection {
///     fn fileno(&self) -> RawFd {
///         self.socket.as_raw_fd()
///     }
/// }
/// # }
/// ```
///
/// [`BorrowedFd`]: https://doc.rust-lang.org/std/os/fd/struct.BorrowedFd.html
/// [`OwnedFd`]: https://doc.rust-lang.org/std/os/fd/struct.OwnedFd.html
/// [`AsFd`]: https://doc.rust-lang.org/std/os/fd/trait.AsFd.html
pub trait FileObject {
    /// The descriptor to watch. A negative value is refused at registration
    /// with [`Error::InvalidFd`](crate::Error::InvalidFd).
    fn fileno(&self) -> RawFd;

    /// `true` if the type itself guarantees that [`fileno`](FileObject::fileno)
    /// is an open descriptor for as long as the object lives: I/O safety, as
    /// [`OwnedFd`], [`BorrowedFd`] and the standard library's sockets, files
    /// and pipes promise it.
    ///
    /// poll(2), select(2) and /dev/poll accept any number, so for other file
    /// objects (a bare [`RawFd`]) the selector asks the kernel whether the
    /// descriptor is open (one `fcntl(F_GETFD)`) before it registers or
    /// modifies it, and refuses a closed one with `EBADF` as epoll and kqueue
    /// do. Objects that return `true` skip that system call. A wrong `true`
    /// is not unsafe: it only lets a closed descriptor be registered, which
    /// those backends then report as ready for both directions.
    ///
    /// The default is `false`. On Windows, where the check is
    /// `getsockopt(SO_TYPE)`, it also refuses a handle that is not a socket
    /// (`WSAENOTSOCK`).
    ///
    /// [`BorrowedFd`]: https://doc.rust-lang.org/std/os/fd/struct.BorrowedFd.html
    /// [`OwnedFd`]: https://doc.rust-lang.org/std/os/fd/struct.OwnedFd.html
    #[inline]
    fn io_safe(&self) -> bool {
        false
    }
}

impl FileObject for RawFd {
    #[inline]
    fn fileno(&self) -> RawFd {
        *self
    }
}

// The standard library's I/O-safe types are file objects: each platform
// lists its own (`sys`).

macro_rules! file_object_via_deref {
    ($($ptr:ty),* $(,)?) => {
        $(
            impl<F: FileObject + ?Sized> FileObject for $ptr {
                #[inline]
                fn fileno(&self) -> RawFd {
                    (**self).fileno()
                }

                #[inline]
                fn io_safe(&self) -> bool {
                    (**self).io_safe()
                }
            }
        )*
    };
}

file_object_via_deref!(&F, &mut F, Box<F>, std::rc::Rc<F>, std::sync::Arc<F>);

/// A buffered reader is the file object it reads: register it to read
/// through its buffer while registered (see
/// [`Selector::with_fileobj_mut`](crate::Selector::with_fileobj_mut)).
/// Bytes already in its buffer are not readiness the kernel reports.
impl<F: FileObject> FileObject for io::BufReader<F> {
    #[inline]
    fn fileno(&self) -> RawFd {
        self.get_ref().fileno()
    }

    #[inline]
    fn io_safe(&self) -> bool {
        self.get_ref().io_safe()
    }
}

/// A buffered writer is the file object it writes to.
impl<F: FileObject + io::Write> FileObject for io::BufWriter<F> {
    #[inline]
    fn fileno(&self) -> RawFd {
        self.get_ref().fileno()
    }

    #[inline]
    fn io_safe(&self) -> bool {
        self.get_ref().io_safe()
    }
}

/// Any [`AsFd`] type as a [`FileObject`], with no newtype of your own.
///
/// The orphan rule stops a crate from implementing [`FileObject`] for a type
/// it does not own: [`std::io::PipeReader`], a `socket2::Socket`, a `nix`
/// descriptor, a mio source. `Fd` wraps any type that implements
/// [`AsFd`] (so its descriptor is open while it lives: the selector skips
/// its closed-descriptor check, see [`FileObject::io_safe`]) and derefs to
/// it, so the wrapped value is used as before; [`Read`](io::Read) and
/// [`Write`](io::Write) pass through. On Windows it wraps any `AsSocket`
/// type the same way.
///
/// A registered `Fd` is reached mutably with
/// [`Selector::with_fileobj_mut`](crate::Selector::with_fileobj_mut).
///
/// # Examples
///
/// ```
/// # #[cfg(unix)] { // Unix types; the conformance suite covers Windows
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use selectors_core::{Fd, Selector, EVENT_READ};
/// use selectors_poll::PollSelector;
///
/// // Stands for any `AsFd` type of another crate.
/// let (mut a, b) = UnixStream::pair()?;
/// let mut sel = PollSelector::<Fd<UnixStream>, ()>::new()?;
/// let fd = sel.register(Fd(b), EVENT_READ, ())?.fd();
/// a.write_all(b"hi")?;
/// assert_eq!(sel.select(None)?.count(), 1);
/// let mut buf = [0; 2];
/// sel.with_fileobj_mut(fd, |b, _| b.read_exact(&mut buf))??;
/// assert_eq!(&buf, b"hi");
/// let b: UnixStream = sel.unregister(fd)?.into_parts().0.into_inner();
/// # drop(b);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`AsFd`]: https://doc.rust-lang.org/std/os/fd/trait.AsFd.html
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fd<T>(pub T);

impl<T> Fd<T> {
    /// The wrapped value.
    #[inline]
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: AsDescriptor> FileObject for Fd<T> {
    #[inline]
    fn fileno(&self) -> RawFd {
        raw_of(&self.0)
    }

    #[inline]
    fn io_safe(&self) -> bool {
        true
    }
}

// `Fd<T>` is `AsFd` (Unix) or `AsSocket` (Windows) when `T` is (`sys`).

impl<T> From<T> for Fd<T> {
    #[inline]
    fn from(inner: T) -> Self {
        Fd(inner)
    }
}

impl<T> Deref for Fd<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Fd<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: io::Read> io::Read for Fd<T> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<T: io::Write> io::Write for Fd<T> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A registration: Python's `SelectorKey(fileobj, fd, events, data)`.
///
/// The selector owns its keys and lends them out read-only
/// ([`Selector::get_key`](crate::Selector::get_key), the
/// [map](crate::Selector::get_map), the ready list), so a key always says
/// what the kernel was told: its descriptor and events change only through
/// the selector ([`Selector::modify`](crate::Selector::modify)). Mutable
/// access goes through [`KeyMut`] (the data) and
/// [`Selector::with_fileobj_mut`](crate::Selector::with_fileobj_mut) or
/// [`Selector::dispatch`](crate::Selector::dispatch) (the file object, with
/// its descriptor checked afterwards). A key the caller owns (returned by
/// [`unregister`](crate::Selector::unregister)) is registered nowhere.
///
/// Through [`KeyMut`], the data of a registered key can change, and
/// nothing else:
///
/// ```
/// # #[cfg(unix)] { // Unix types; the conformance suite covers Windows
/// use std::os::fd::AsRawFd;
/// use selectors_core::{Selector, EVENT_READ, EVENT_WRITE};
/// use selectors_poll::PollSelector;
///
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
/// let mut sel = PollSelector::<_, u8>::new()?;
/// sel.register(fa, EVENT_READ, 1)?;
/// sel.register(fb, EVENT_WRITE, 2)?;
/// let kb = sel.get_key(fb)?.clone();
/// *sel.get_key_mut(fa)?.data_mut() = *kb.data();
/// assert_eq!((sel.get_key(fa)?.fd(), *sel.get_key(fa)?.data()), (fa, 2));
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// and a whole key cannot be replaced (or swapped) there:
///
/// ```compile_fail,E0594
/// use std::os::fd::AsRawFd;
/// use selectors_core::{Selector, EVENT_READ, EVENT_WRITE};
/// use selectors_poll::PollSelector;
///
/// let (a, b) = std::os::unix::net::UnixStream::pair()?;
/// let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
/// let mut sel = PollSelector::<_, u8>::new()?;
/// sel.register(fa, EVENT_READ, 1)?;
/// sel.register(fb, EVENT_WRITE, 2)?;
/// let kb = sel.get_key(fb)?.clone();
/// *sel.get_key_mut(fa)? = kb; // error: `KeyMut` gives no `&mut SelectorKey`
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SelectorKey<F, T> {
    fileobj: F,
    fd: RawFd,
    events: Events,
    data: T,
}

impl<F, T> SelectorKey<F, T> {
    pub(crate) fn new(fileobj: F, fd: RawFd, events: Events, data: T) -> Self {
        SelectorKey {
            fileobj,
            fd,
            events,
            data,
        }
    }

    /// The registered file object.
    #[inline]
    #[must_use]
    pub fn fileobj(&self) -> &F {
        &self.fileobj
    }

    /// Its file descriptor, as it was when registered.
    #[inline]
    #[must_use]
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The events the registration waits for.
    #[inline]
    #[must_use]
    pub fn events(&self) -> Events {
        self.events
    }

    /// The user data.
    #[inline]
    #[must_use]
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The user data of a key the caller owns, to change in place.
    #[inline]
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.data
    }

    /// The file object and the user data, consuming the key.
    #[must_use]
    pub fn into_parts(self) -> (F, T) {
        (self.fileobj, self.data)
    }

    pub(crate) fn set_events(&mut self, events: Events) {
        self.events = events;
    }

    pub(crate) fn fileobj_mut(&mut self) -> &mut F {
        &mut self.fileobj
    }

    pub(crate) fn parts_mut(&mut self) -> (&mut F, &mut T) {
        (&mut self.fileobj, &mut self.data)
    }
}

/// Mutable access to a registered key's data: what
/// [`Selector::get_key_mut`](crate::Selector::get_key_mut) returns.
///
/// It reads as the [`SelectorKey`] it borrows (through `Deref`), and changes
/// only what the kernel does not know about: the data. Replacing the key or
/// its file object is not possible through it (see [`SelectorKey`]); for
/// mutable access to the file object, use
/// [`Selector::with_fileobj_mut`](crate::Selector::with_fileobj_mut).
pub struct KeyMut<'a, F, T> {
    key: &'a mut SelectorKey<F, T>,
}

impl<'a, F, T> KeyMut<'a, F, T> {
    pub(crate) fn new(key: &'a mut SelectorKey<F, T>) -> Self {
        KeyMut { key }
    }

    /// The user data, to change in place (no system call is involved).
    #[inline]
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.key.data
    }

    /// The user data, for as long as the selector stays borrowed.
    #[inline]
    pub fn into_data_mut(self) -> &'a mut T {
        &mut self.key.data
    }

    /// The file object (shared) and the user data (mutable) at once, for
    /// handlers that read from the one into the other (`&TcpStream` is
    /// `Read` and `Write`).
    #[inline]
    pub fn parts_mut(&mut self) -> (&F, &mut T) {
        (&self.key.fileobj, &mut self.key.data)
    }
}

impl<F, T> Deref for KeyMut<'_, F, T> {
    type Target = SelectorKey<F, T>;

    #[inline]
    fn deref(&self) -> &SelectorKey<F, T> {
        self.key
    }
}

impl<F: fmt::Debug, T: fmt::Debug> fmt::Debug for KeyMut<'_, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.key.fmt(f)
    }
}

/// A registered key lent to a handler by
/// [`Selector::dispatch`](crate::Selector::dispatch): the file object and
/// the data, mutably, and the registration's own changes.
///
/// The key is out of the selector while the handler runs, so the handler
/// can use the selector (register, modify or unregister *other* keys) and
/// its own key at once. Meanwhile the selector reports the lent descriptor
/// as [`Error::Busy`](crate::Error::Busy) (it is still registered: it cannot
/// be registered again), and changes to the lent registration are made here
/// and applied when the handler returns: [`unregister`](LentKey::unregister)
/// and [`modify_events`](LentKey::modify_events).
///
/// It reads as the [`SelectorKey`] it holds (through `Deref`):
/// [`events`](SelectorKey::events) is what the kernel watches now.
pub struct LentKey<F, T> {
    key: SelectorKey<F, T>,
    /// Events to apply on return, if they differ from the key's.
    pending: Option<Events>,
    unregister: bool,
}

impl<F, T> LentKey<F, T> {
    pub(crate) fn new(key: SelectorKey<F, T>) -> Self {
        LentKey {
            key,
            pending: None,
            unregister: false,
        }
    }

    pub(crate) fn into_parts(self) -> (SelectorKey<F, T>, Option<Events>, bool) {
        (self.key, self.pending, self.unregister)
    }

    /// The file object, mutably: to read from a `BufReader`, a TLS stream or
    /// anything that needs `&mut self`.
    ///
    /// Replacing it with one of another descriptor is detected when the
    /// handler returns: the registration is then withdrawn (the kernel stops
    /// watching the old descriptor, and the key, with its file object and
    /// data, is dropped) and `dispatch` fails with
    /// [`Error::FdChanged`](crate::Error::FdChanged). To watch another
    /// descriptor, unregister this one and register the new object.
    #[inline]
    pub fn fileobj_mut(&mut self) -> &mut F {
        self.key.fileobj_mut()
    }

    /// The user data, to change in place.
    #[inline]
    pub fn data_mut(&mut self) -> &mut T {
        self.key.data_mut()
    }

    /// The file object and the user data, both mutably (see
    /// [`fileobj_mut`](LentKey::fileobj_mut)).
    #[inline]
    pub fn parts_mut(&mut self) -> (&mut F, &mut T) {
        self.key.parts_mut()
    }

    /// Changes the events the registration waits for, when the handler
    /// returns (Python's `modify` with the same data). The kernel's refusal
    /// is reported by `dispatch`, and leaves the old events in place.
    ///
    /// # Errors
    ///
    /// [`InvalidEvents`](crate::Error::InvalidEvents) for an empty mask.
    pub fn modify_events(&mut self, events: Events) -> crate::Result<()> {
        if events.is_empty() {
            return Err(crate::Error::InvalidEvents);
        }
        self.pending = Some(events);
        Ok(())
    }

    /// Changes the events and the data (Python's `sel.modify(fileobj,
    /// events, data)` inside a callback): the data at once, the events when
    /// the handler returns (see [`modify_events`](LentKey::modify_events)).
    ///
    /// # Errors
    ///
    /// [`InvalidEvents`](crate::Error::InvalidEvents) for an empty mask;
    /// nothing changes then.
    pub fn modify(&mut self, events: Events, data: T) -> crate::Result<()> {
        self.modify_events(events)?;
        self.key.data = data;
        Ok(())
    }

    /// The events the registration will wait for once the handler returns.
    #[must_use]
    pub fn next_events(&self) -> Events {
        self.pending.unwrap_or(self.key.events)
    }

    /// Ends the registration when the handler returns (Python's
    /// `sel.unregister(fileobj)` inside a callback). The key is then dropped
    /// with its file object (closing an owned one: Python's `close()`) and
    /// its data.
    pub fn unregister(&mut self) {
        self.unregister = true;
    }

    /// `true` once [`unregister`](LentKey::unregister) was called.
    #[must_use]
    pub fn is_unregistered(&self) -> bool {
        self.unregister
    }
}

impl<F, T> Deref for LentKey<F, T> {
    type Target = SelectorKey<F, T>;

    #[inline]
    fn deref(&self) -> &SelectorKey<F, T> {
        &self.key
    }
}

impl<F: fmt::Debug, T: fmt::Debug> fmt::Debug for LentKey<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LentKey")
            .field("key", &self.key)
            .field("next_events", &self.next_events())
            .field("unregister", &self.unregister)
            .finish()
    }
}
