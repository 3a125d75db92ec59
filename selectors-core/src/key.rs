//! File objects and the key a registration is kept under.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::Events;

/// Anything with a file descriptor: Python's "file object" (an `int` or an
/// object with a `fileno()` method).
///
/// Implemented for a bare [`RawFd`], for [`BorrowedFd`], for the standard
/// library's descriptor-owning types ([`OwnedFd`], sockets, files, pipes,
/// child-process pipes, standard streams), and through `&`, `&mut`, `Box`,
/// `Rc` and `Arc`. `Box<dyn FileObject>` lets one selector hold objects of
/// different types.
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
/// ```
pub trait FileObject {
    /// The descriptor to watch. A negative value is refused at registration
    /// with [`Error::InvalidFd`](crate::Error::InvalidFd).
    fn fileno(&self) -> RawFd;
}

impl FileObject for RawFd {
    #[inline]
    fn fileno(&self) -> RawFd {
        *self
    }
}

macro_rules! file_object_via_as_raw_fd {
    ($($ty:ty),* $(,)?) => {
        $(
            impl FileObject for $ty {
                #[inline]
                fn fileno(&self) -> RawFd {
                    self.as_raw_fd()
                }
            }
        )*
    };
}

file_object_via_as_raw_fd!(
    BorrowedFd<'_>,
    OwnedFd,
    std::fs::File,
    std::net::TcpStream,
    std::net::TcpListener,
    std::net::UdpSocket,
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixListener,
    std::os::unix::net::UnixDatagram,
    std::process::ChildStdin,
    std::process::ChildStdout,
    std::process::ChildStderr,
    std::io::Stdin,
    std::io::Stdout,
    std::io::Stderr,
);

impl<F: FileObject + ?Sized> FileObject for &F {
    #[inline]
    fn fileno(&self) -> RawFd {
        (**self).fileno()
    }
}

impl<F: FileObject + ?Sized> FileObject for &mut F {
    #[inline]
    fn fileno(&self) -> RawFd {
        (**self).fileno()
    }
}

impl<F: FileObject + ?Sized> FileObject for Box<F> {
    #[inline]
    fn fileno(&self) -> RawFd {
        (**self).fileno()
    }
}

impl<F: FileObject + ?Sized> FileObject for std::rc::Rc<F> {
    #[inline]
    fn fileno(&self) -> RawFd {
        (**self).fileno()
    }
}

impl<F: FileObject + ?Sized> FileObject for std::sync::Arc<F> {
    #[inline]
    fn fileno(&self) -> RawFd {
        (**self).fileno()
    }
}

/// A registration: Python's `SelectorKey(fileobj, fd, events, data)`.
///
/// The selector owns its keys. The descriptor and the events can only be
/// changed through the selector ([`Selector::modify`](crate::Selector::modify)),
/// so a key always says what the kernel was told; the data is the caller's to
/// change through [`data_mut`](SelectorKey::data_mut).
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub fn fileobj(&self) -> &F {
        &self.fileobj
    }

    /// Its file descriptor, as it was when registered.
    #[inline]
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The events the registration waits for.
    #[inline]
    pub fn events(&self) -> Events {
        self.events
    }

    /// The user data.
    #[inline]
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The user data, to change in place (no system call is involved).
    #[inline]
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.data
    }

    /// The file object and the user data at once, for handlers that read from
    /// the one into the other.
    #[inline]
    pub fn parts_mut(&mut self) -> (&F, &mut T) {
        (&self.fileobj, &mut self.data)
    }

    /// The file object and the user data, consuming the key.
    pub fn into_parts(self) -> (F, T) {
        (self.fileobj, self.data)
    }

    pub(crate) fn set_events(&mut self, events: Events) {
        self.events = events;
    }
}
