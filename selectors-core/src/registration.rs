//! Mutable access to registered keys: [`KeyMut`] (the data, from
//! [`Selector::get_key_mut`]), [`LentKey`] (the whole key, lent by
//! [`Selector::dispatch`] and [`Selector::with_key`]), and the
//! [`Registration`] handle a lent key splits off, which changes the
//! registration while the file object and the data are borrowed.
//!
//! [`Selector::get_key_mut`]: crate::Selector::get_key_mut
//! [`Selector::dispatch`]: crate::Selector::dispatch
//! [`Selector::with_key`]: crate::Selector::with_key

use std::fmt;
use std::ops::Deref;

use crate::{Error, Events, RawFd, Result, SelectorKey};

/// A handle on the registration of a [`LentKey`], split off it together
/// with the file object and the data ([`LentKey::split`]), so that code
/// holding those can still change what the registration waits for, or end
/// it: Python's `selector.modify(self.sock, events, data=self)` and
/// `selector.unregister(self.sock)` inside an object that is the key's data.
/// The changes are applied when the key goes back to the selector (when the
/// [`dispatch`](crate::Selector::dispatch) handler or the
/// [`with_key`](crate::Selector::with_key) closure returns), as those of
/// [`LentKey::modify_events`] and [`LentKey::unregister`].
///
/// # Examples
///
/// An object per connection that owns its state and says what it waits for
/// next, as the `Message` classes of Python programs do:
///
/// ```
/// use std::io::{self, Read, Write};
/// use std::net::{TcpListener, TcpStream};
/// use selectors::{DefaultSelector, Events, Registration, Selector, EVENT_READ, EVENT_WRITE};
///
/// /// Reads a line, then answers it in capitals.
/// struct Message { request: Vec<u8>, response: Vec<u8> }
///
/// impl Message {
///     fn process_events(
///         &mut self,
///         mut sock: &TcpStream,
///         reg: &mut Registration<'_>,
///         mask: Events,
///     ) -> io::Result<()> {
///         if mask.is_readable() {
///             let mut buf = [0; 64];
///             let n = sock.read(&mut buf)?;
///             self.request.extend_from_slice(&buf[..n]);
///             if self.request.ends_with(b"\n") {
///                 self.response = self.request.to_ascii_uppercase();
///                 reg.modify_events(EVENT_WRITE)?; // selector.modify(sock, WRITE, data=self)
///             }
///         }
///         if mask.is_writable() {
///             let n = sock.write(&self.response)?;
///             self.response.drain(..n);
///             if self.response.is_empty() {
///                 reg.unregister(); // selector.unregister(sock); sock.close()
///             }
///         }
///         Ok(())
///     }
/// }
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let mut client = TcpStream::connect(listener.local_addr()?)?;
/// let (conn, _) = listener.accept()?;
/// let mut sel = DefaultSelector::new()?;
/// let message = Message { request: Vec::new(), response: Vec::new() };
/// sel.register(conn, EVENT_READ, message)?;
///
/// client.write_all(b"hello\n")?;
/// while !sel.get_map().is_empty() {
///     sel.dispatch(None, |_sel, key, mask| {
///         let (sock, message, mut reg) = key.split();
///         message.process_events(sock, &mut reg, mask)
///     })?;
/// }
/// let mut answer = String::new();
/// client.read_to_string(&mut answer)?; // the server closed its end
/// assert_eq!(answer, "HELLO\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Registration<'a> {
    fd: RawFd,
    /// What the kernel watches now.
    events: Events,
    pending: &'a mut Option<Events>,
    unregister: &'a mut bool,
}

impl Registration<'_> {
    /// The registered descriptor.
    #[inline]
    #[must_use]
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The events the kernel watches now.
    #[inline]
    #[must_use]
    pub fn events(&self) -> Events {
        self.events
    }

    /// The events the registration waits for once the key is back in the
    /// selector.
    #[must_use]
    pub fn next_events(&self) -> Events {
        self.pending.unwrap_or(self.events)
    }

    /// Changes the events the registration waits for, keeping the data,
    /// once the key is back in the selector (Python's
    /// `selector.modify(fileobj, events, data=self)` from inside the object
    /// that is the data). The kernel's refusal is reported then, and leaves
    /// the old events in place.
    ///
    /// # Errors
    ///
    /// [`InvalidEvents`](Error::InvalidEvents) for an empty mask; nothing
    /// changes then.
    pub fn modify_events(&mut self, events: Events) -> Result<()> {
        if events.is_empty() {
            return Err(Error::InvalidEvents);
        }
        *self.pending = Some(events);
        Ok(())
    }

    /// Ends the registration once the key is back in the selector (Python's
    /// `selector.unregister(fileobj)`). The key is then dropped with its file
    /// object (closing an owned one: Python's `close()`) and its data.
    pub fn unregister(&mut self) {
        *self.unregister = true;
    }

    /// `true` once [`unregister`](Registration::unregister) was called.
    #[must_use]
    pub fn is_unregistered(&self) -> bool {
        *self.unregister
    }
}

impl fmt::Debug for Registration<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("fd", &self.fd)
            .field("events", &self.events)
            .field("next_events", &self.next_events())
            .field("unregister", &self.is_unregistered())
            .finish()
    }
}

/// Mutable access to a registered key's data: what
/// [`Selector::get_key_mut`](crate::Selector::get_key_mut) returns.
///
/// It reads as the [`SelectorKey`] it borrows (through `Deref`), and changes
/// only what the kernel does not know about: the data. Replacing the key or
/// its file object is not possible through it (see [`SelectorKey`]); for
/// mutable access to the file object, and to change or end the
/// registration from code that holds the object and the data, the key is
/// lent instead: [`Selector::with_key`](crate::Selector::with_key),
/// [`Selector::dispatch`](crate::Selector::dispatch).
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
        self.key.data_mut()
    }

    /// The user data, for as long as the selector stays borrowed.
    #[inline]
    pub fn into_data_mut(self) -> &'a mut T {
        self.key.data_mut()
    }

    /// The file object (shared) and the user data (mutable) at once, for
    /// handlers that read from the one into the other.
    ///
    /// A shared reference is enough to do I/O on the standard library's
    /// sockets and files: `Read` and `Write` are implemented for
    /// `&TcpStream`, `&UnixStream` and `&File`. Rebind it mutably to use
    /// them, `let mut sock: &TcpStream = sock;` (`let Sock::Conn(mut sock)
    /// = fileobj` would try to move the stream out of the key instead, and
    /// fail with E0507).
    #[inline]
    pub fn parts_mut(&mut self) -> (&F, &mut T) {
        let (fileobj, data) = self.key.parts_mut();
        (fileobj, data)
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
/// [`Selector::dispatch`](crate::Selector::dispatch) (or to a closure by
/// [`Selector::with_key`](crate::Selector::with_key)): the file object and
/// the data, mutably, and the registration's own changes.
///
/// The key is out of the selector while the handler runs, so the handler
/// can use the selector (register, modify or unregister *other* keys) and
/// its own key at once. Meanwhile the selector reports the lent descriptor
/// as [`Error::Busy`] (it is still registered: it cannot be registered
/// again), and changes to the lent registration are made here and applied
/// when the handler returns: [`unregister`](LentKey::unregister) and
/// [`modify_events`](LentKey::modify_events), or the same through the
/// [`Registration`] of [`split`](LentKey::split).
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
    /// [`Error::FdChanged`]. To watch another descriptor, unregister this
    /// one and register the new object.
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

    /// The file object and the user data, both mutably, and a
    /// [`Registration`] handle that changes the registration when the
    /// handler returns: what an object that is the key's data needs to
    /// handle its own readiness and change what it waits for (Python's
    /// `Message` pattern; see [`Registration`] for an example).
    pub fn split(&mut self) -> (&mut F, &mut T, Registration<'_>) {
        let (fileobj, data, fd, events) = self.key.split_mut();
        let reg = Registration {
            fd,
            events: *events,
            pending: &mut self.pending,
            unregister: &mut self.unregister,
        };
        (fileobj, data, reg)
    }

    /// Changes the events the registration waits for, keeping the data,
    /// when the handler returns (Python's `selector.modify(fileobj, events,
    /// data=self)` from inside the object that is the data). The kernel's
    /// refusal is reported by `dispatch`, and leaves the old events in
    /// place.
    ///
    /// # Errors
    ///
    /// [`InvalidEvents`](Error::InvalidEvents) for an empty mask.
    pub fn modify_events(&mut self, events: Events) -> Result<()> {
        self.split().2.modify_events(events)
    }

    /// Changes the events and replaces the data (Python's
    /// `selector.modify(fileobj, events, new_data)` with data other than
    /// the object itself): the data at once, the events when the handler
    /// returns (see [`modify_events`](LentKey::modify_events), which keeps
    /// the data).
    ///
    /// # Errors
    ///
    /// [`InvalidEvents`](Error::InvalidEvents) for an empty mask;
    /// nothing changes then.
    pub fn modify(&mut self, events: Events, data: T) -> Result<()> {
        self.modify_events(events)?;
        *self.key.data_mut() = data;
        Ok(())
    }

    /// The events the registration will wait for once the handler returns.
    #[must_use]
    pub fn next_events(&self) -> Events {
        self.pending.unwrap_or(self.key.events())
    }

    /// Ends the registration when the handler returns (Python's
    /// `selector.unregister(fileobj)` inside a callback). The key is then
    /// dropped with its file object (closing an owned one: Python's
    /// `close()`) and its data.
    pub fn unregister(&mut self) {
        self.split().2.unregister();
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
