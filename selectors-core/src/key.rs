//! File objects and the key a registration is kept under.

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
/// use std::net::TcpStream;
/// use selectors::{FileObject, RawFd};
///
/// struct Connection { socket: TcpStream, served: u64 }
///
/// impl FileObject for Connection {
///     fn fileno(&self) -> RawFd {
///         self.socket.fileno() // std's sockets are file objects themselves
///     }
/// }
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
/// use std::io::{Read, Write};
/// use std::net::{TcpListener, TcpStream};
/// use selectors::{DefaultSelector, Fd, Selector, EVENT_READ};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let mut client = TcpStream::connect(listener.local_addr()?)?;
/// // `TcpStream` stands for any `AsFd` type of another crate.
/// let (conn, _) = listener.accept()?;
/// let mut sel = DefaultSelector::<Fd<TcpStream>, ()>::new()?;
/// let fd = sel.register(Fd(conn), EVENT_READ, ())?.fd();
/// client.write_all(b"hi")?;
/// assert_eq!(sel.select(None)?.count(), 1);
/// let mut buf = [0; 2];
/// sel.with_fileobj_mut(fd, |conn, _| conn.read_exact(&mut buf))??;
/// assert_eq!(&buf, b"hi");
/// let conn: TcpStream = sel.unregister(fd)?.into_parts().0.into_inner();
/// # drop(conn);
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
/// access goes through [`KeyMut`](crate::KeyMut) (the data) and
/// [`Selector::with_fileobj_mut`](crate::Selector::with_fileobj_mut),
/// [`Selector::with_key`](crate::Selector::with_key) or
/// [`Selector::dispatch`](crate::Selector::dispatch) (the file object, with
/// its descriptor checked afterwards). A key the caller owns (returned by
/// [`unregister`](crate::Selector::unregister)) is registered nowhere.
///
/// Through [`KeyMut`](crate::KeyMut), the data of a registered key can change, and
/// nothing else:
///
/// ```
/// use std::net::{TcpListener, TcpStream};
/// use selectors::{DefaultSelector, FileObject, Selector, EVENT_READ, EVENT_WRITE};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let a = TcpStream::connect(listener.local_addr()?)?;
/// let (b, _) = listener.accept()?;
/// let (fa, fb) = (a.fileno(), b.fileno());
/// let mut sel = DefaultSelector::<_, u8>::new()?;
/// sel.register(fa, EVENT_READ, 1)?;
/// sel.register(fb, EVENT_WRITE, 2)?;
/// let kb = sel.get_key(fb)?.clone();
/// *sel.get_key_mut(fa)?.data_mut() = *kb.data();
/// assert_eq!((sel.get_key(fa)?.fd(), *sel.get_key(fa)?.data()), (fa, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// and a whole key cannot be replaced (or swapped) there:
///
/// ```compile_fail,E0594
/// use std::net::{TcpListener, TcpStream};
/// use selectors::{DefaultSelector, FileObject, Selector, EVENT_READ, EVENT_WRITE};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let a = TcpStream::connect(listener.local_addr()?)?;
/// let (b, _) = listener.accept()?;
/// let (fa, fb) = (a.fileno(), b.fileno());
/// let mut sel = DefaultSelector::<_, u8>::new()?;
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

    /// Every part a registration handle needs, borrowed apart.
    pub(crate) fn split_mut(&mut self) -> (&mut F, &mut T, RawFd, &mut Events) {
        (&mut self.fileobj, &mut self.data, self.fd, &mut self.events)
    }
}
