//! The `Selector` trait: Python's `SelectorImpl`, made Rust.

use crate::RawFd;
use std::fmt;
use std::io;
use std::iter::FusedIterator;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use crate::{
    Error, Events, FileObject, KeyMut, LendError, LentKey, RegisterError, Result, SelectorKey,
    SelectorMap, Waker,
};

/// Proof that a call comes from this crate: the [`Selector`] methods that
/// take it are the plumbing of [`Selector::dispatch`] and
/// [`Selector::with_fileobj_mut`], which a user can forward but not call.
#[doc(hidden)]
#[derive(Debug)]
pub struct Private(());

/// A check that [`Selector::set_interrupt_check`] runs each time a
/// `select`'s wait is interrupted by a signal: `Ok(())` resumes the wait
/// with the time left, `Err(e)` ends the `select` with `e`.
///
/// It returns the crate's [`Result`], so `?` works on `io::Error`s and
/// [`Error`]s alike; an error of another kind travels as
/// [`Error::Os`] around an [`io::Error::other`](std::io::Error::other), and
/// the caller takes it back out with `get_ref`/`into_inner` and a
/// downcast. `Send + Sync`, so every selector stays `Send` and `Sync`.
pub type InterruptCheck = Box<dyn FnMut() -> Result<()> + Send + Sync>;

/// High-level I/O multiplexing: Python's `selectors.SelectorImpl`.
///
/// A selector watches file objects for readiness. Each registration is a
/// [`SelectorKey`] holding the file object `F`, its descriptor, the events it
/// waits for and user data `T`. The descriptor is the registration's
/// identity: every look-up ([`get_key`](Selector::get_key),
/// [`modify`](Selector::modify), [`unregister`](Selector::unregister), the
/// [map](Selector::get_map)) is by descriptor, and one descriptor can be
/// registered once.
///
/// Readiness is level-triggered, as in Python: a descriptor is reported by
/// every `select` for as long as it is ready. Hang-up and error conditions
/// are reported as both readable and writable, masked by what was registered.
///
/// The trait is object-safe: `Box<dyn Selector<F, T>>` chooses a backend at
/// run time, and is itself a `Selector`.
///
/// # Errors
///
/// Every backend reports the same [`Error`](crate::Error) variant for the same
/// mistake, and a failed call changes nothing. After [`close`](Selector::close)
/// every call but `close`, [`is_closed`](Selector::is_closed) and
/// [`get_map`](Selector::get_map) fails with [`Error::Closed`](crate::Error::Closed).
///
/// # Examples
///
/// The shape of a server loop: the data of each key says how to handle it,
/// and handlers may register, modify and unregister while the ready list is
/// dispatched, because [`select_into`](Selector::select_into) fills a list
/// the caller owns.
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::{TcpListener, TcpStream};
/// use selectors::{DefaultSelector, Events, FileObject, RawFd, Selector, EVENT_READ};
///
/// // What the selector holds: the listener and the connections, owned.
/// enum Socket { Listener(TcpListener), Conn(TcpStream) }
/// impl FileObject for Socket {
///     fn fileno(&self) -> RawFd {
///         match self { Socket::Listener(l) => l.fileno(), Socket::Conn(c) => c.fileno() }
///     }
/// }
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let mut sel = DefaultSelector::<Socket, &str>::new()?;
/// sel.register(Socket::Listener(listener), EVENT_READ, "accept")?;
///
/// let mut client = TcpStream::connect(addr)?;
/// client.write_all(b"ping")?;
///
/// let mut ready: Vec<(RawFd, Events)> = Vec::new();
/// let mut echoed = 0;
/// while echoed < 4 {
///     sel.select_into(&mut ready, None)?;
///     for &(fd, _events) in &ready {
///         let Ok(key) = sel.get_key(fd) else { continue };
///         match key.fileobj() {
///             Socket::Listener(l) => {
///                 let (conn, _) = l.accept()?;
///                 sel.register(Socket::Conn(conn), EVENT_READ, "echo")?;
///             }
///             Socket::Conn(conn) => {
///                 let mut conn: &TcpStream = conn;
///                 let mut buf = [0; 64];
///                 let n = conn.read(&mut buf)?;
///                 conn.write_all(&buf[..n])?;
///                 echoed += n;
///                 if n == 0 {
///                     sel.unregister(fd)?;
///                 }
///             }
///         }
///     }
/// }
/// let mut back = [0; 4];
/// client.read_exact(&mut back)?;
/// assert_eq!(&back, b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// [`dispatch`](Selector::dispatch) does the same with less: it selects,
/// skips what earlier handlers of the round unregistered, and lends each
/// handler the selector and its own key.
pub trait Selector<F: FileObject, T> {
    /// Registers `fileobj` for `events`, with `data` attached, and returns its
    /// key (Python's `register`).
    ///
    /// # Errors
    ///
    /// Checked in Python's order: [`InvalidEvents`](crate::Error::InvalidEvents)
    /// for an empty mask, [`InvalidFd`](crate::Error::InvalidFd) for a negative
    /// descriptor, [`FdOutOfRange`](crate::Error::FdOutOfRange) for one the
    /// backend cannot take, [`AlreadyRegistered`](crate::Error::AlreadyRegistered)
    /// if the descriptor is registered (through any object), and
    /// [`Os`](crate::Error::Os) if the kernel refuses it (`EBADF` for a closed
    /// descriptor on every backend, `EPERM` for a regular file on epoll). On
    /// error nothing is registered anywhere, and `fileobj` and `data` are
    /// dropped: use [`try_register`](Selector::try_register) to get them
    /// back.
    fn register(&mut self, fileobj: F, events: Events, data: T) -> Result<&SelectorKey<F, T>> {
        self.try_register(fileobj, events, data)
            .map_err(RegisterError::into_error)
    }

    /// As [`register`](Selector::register), but a refused registration hands
    /// the file object and the data back inside the error, so the caller
    /// can still use them (answer "busy" on a connection, then close it).
    ///
    /// # Errors
    ///
    /// As [`register`](Selector::register), in a [`RegisterError`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use selectors::{DefaultSelector, Error, Events, Selector, EVENT_READ};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let _client = TcpStream::connect(listener.local_addr()?)?;
    /// let (conn, _) = listener.accept()?;
    /// let mut sel = DefaultSelector::<TcpStream, &str>::new()?;
    /// // An empty mask is refused, and the socket comes back, still open.
    /// let err = sel.try_register(conn, Events::EMPTY, "conn").unwrap_err();
    /// assert!(matches!(err.error(), Error::InvalidEvents));
    /// let (_error, conn, data) = err.into_parts();
    /// assert_eq!(data, "conn");
    /// sel.register(conn, EVENT_READ, "conn, again")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn try_register(
        &mut self,
        fileobj: F,
        events: Events,
        data: T,
    ) -> Result<&SelectorKey<F, T>, RegisterError<F, T>>;

    /// Unregisters `fd` and returns its key, with the file object and data
    /// (Python's `unregister`).
    ///
    /// Succeeds for a descriptor the caller already closed, or whose number
    /// was reused since: the kernel forgot it or never knew the new file.
    ///
    /// # Errors
    ///
    /// [`NotRegistered`](crate::Error::NotRegistered) if `fd` is not
    /// registered; [`Busy`](crate::Error::Busy) if its key is lent to the
    /// running [`dispatch`](Selector::dispatch) handler (which ends it with
    /// [`LentKey::unregister`]).
    fn unregister(&mut self, fd: RawFd) -> Result<SelectorKey<F, T>>;

    /// Changes the events and the data of `fd`'s registration (Python's
    /// `modify`).
    ///
    /// When the events do not change, no system call is made.
    ///
    /// # Errors
    ///
    /// [`InvalidEvents`](crate::Error::InvalidEvents),
    /// [`NotRegistered`](crate::Error::NotRegistered), or the kernel's refusal
    /// as [`Os`](crate::Error::Os); on any error the old registration is left
    /// fully intact (CPython's poll-like selectors drop it), and `data` is
    /// dropped.
    fn modify(&mut self, fd: RawFd, events: Events, data: T) -> Result<&SelectorKey<F, T>>;

    /// Changes only the events of `fd`'s registration, keeping its data.
    ///
    /// # Errors
    ///
    /// As [`modify`](Selector::modify).
    fn modify_events(&mut self, fd: RawFd, events: Events) -> Result<&SelectorKey<F, T>>;

    /// Waits until a registered descriptor is ready, or `timeout` passes, and
    /// returns the ready keys with their ready events (Python's `select`).
    ///
    /// `None` blocks; `Some(Duration::ZERO)` polls; a positive timeout waits
    /// at least that long (rounded up to the backend's precision). A wait
    /// interrupted by a signal is resumed with the time left (PEP 475),
    /// unless the [interrupt check](Selector::set_interrupt_check) ends it.
    /// Each ready descriptor appears once, with `ready & registered` events.
    ///
    /// In steady state this allocates nothing and makes one system call.
    ///
    /// # Errors
    ///
    /// [`Closed`](crate::Error::Closed) after [`close`](Selector::close), the
    /// kernel's error as [`Os`](crate::Error::Os), or the error of the
    /// [interrupt check](Selector::set_interrupt_check).
    fn select(&mut self, timeout: Option<Duration>) -> Result<Ready<'_, F, T>>;

    /// As [`select`](Selector::select), but writes `(fd, ready events)` into
    /// `ready` (cleared first) and returns how many there are. `ready` belongs
    /// to the caller, so the selector can be changed while the list is
    /// dispatched; reuse it across calls to allocate nothing.
    ///
    /// Entries are looked up by descriptor, so a loop of one's own over them
    /// must mind two things. An entry whose descriptor a previous handler
    /// unregistered is skipped by looking its key up with
    /// [`get_key`](Selector::get_key) (which then fails). And a handler that
    /// unregisters (closes) *another* descriptor and registers a new one in
    /// the same round may get the old number back (the kernel hands out the
    /// lowest free number: `accept` after a `close`), so the old entry would
    /// reach the new key: with a non-blocking socket a spurious
    /// `WouldBlock`, with a blocking one a read that hangs.
    /// [`dispatch`](Selector::dispatch) has neither problem: it skips keys
    /// unregistered during the round, and never hands a registration made
    /// during the round the readiness of the round.
    ///
    /// # Errors
    ///
    /// As [`select`](Selector::select).
    fn select_into(
        &mut self,
        ready: &mut Vec<(RawFd, Events)>,
        timeout: Option<Duration>,
    ) -> Result<usize>;

    /// Sets the check that runs each time a wait of
    /// [`select`](Selector::select) (or [`select_into`](Selector::select_into),
    /// or [`dispatch`](Selector::dispatch)) is interrupted by a signal, and
    /// returns the check it replaces; `None` removes it.
    ///
    /// Without a check, an interrupted wait is resumed with the time left
    /// (PEP 475), so a signal alone never ends a `select`. With one, the
    /// check runs first, on the selecting thread, after the signal handler
    /// has returned (so it is not restricted to async-signal-safe code):
    /// `Ok(())` resumes the wait with the time left, and `Err(e)` ends the
    /// `select` at once with `e` and an empty ready list; the selector is
    /// unchanged and can select again. It runs once per interruption, and
    /// never otherwise: a select that is not interrupted costs nothing more.
    ///
    /// This is how a program with a signal flag of its own (set by a
    /// handler) stops a blocking `select` on Ctrl-C or `SIGTERM`, and how
    /// an embedding runtime runs its own signal handling while a `select`
    /// waits (the `selectors_rs` Python module runs Python's signal
    /// handlers there, as CPython's `select` module does). A signal
    /// interrupts the wait only if it is delivered to the selecting thread
    /// while it waits, and its handler was installed without `SA_RESTART`
    /// where the system restarts waits (Linux never restarts `epoll_wait`,
    /// `poll` or `select`, whatever the flag); a signal that lands just
    /// before the wait begins does not interrupt it, so a handler that must
    /// always end the wait should also wake the selector with a
    /// [`Waker`](crate::Waker). Windows has no such signals: the check
    /// never runs there.
    ///
    /// # Examples
    ///
    /// A `SIGINT` handler sets a flag; the check turns it into an error, so
    /// a blocking `select` returns promptly on Ctrl-C instead of resuming
    /// (here the program signals itself).
    ///
    /// ```
    /// # #[cfg(unix)] { // Unix signals
    /// use std::io;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::time::{Duration, Instant};
    /// use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    /// use selectors::{DefaultSelector, Error, Selector};
    ///
    /// static STOP: AtomicBool = AtomicBool::new(false);
    /// extern "C" fn on_sigint(_: libc::c_int) {
    ///     STOP.store(true, Ordering::SeqCst); // async-signal-safe
    /// }
    /// // No SA_RESTART: the signal interrupts the wait.
    /// let action = SigAction::new(SigHandler::Handler(on_sigint), SaFlags::empty(), SigSet::empty());
    /// // SAFETY: the handler only stores to an atomic.
    /// unsafe { sigaction(Signal::SIGINT, &action) }?;
    ///
    /// let mut sel: DefaultSelector = DefaultSelector::new()?;
    /// let previous = sel.set_interrupt_check(Some(Box::new(|| {
    ///     if STOP.load(Ordering::SeqCst) {
    ///         Err(io::Error::new(io::ErrorKind::Interrupted, "stopped by SIGINT").into())
    ///     } else {
    ///         Ok(()) // another signal: keep waiting
    ///     }
    /// })));
    /// assert!(previous.is_none());
    ///
    /// // SAFETY: always safe to call.
    /// let selecting = unsafe { libc::pthread_self() } as usize;
    /// let ctrl_c = std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_millis(100));
    ///     // SAFETY: the selecting thread outlives this one (it joins it).
    ///     unsafe { libc::pthread_kill(selecting as libc::pthread_t, libc::SIGINT) }
    /// });
    /// let start = Instant::now();
    /// let err = sel.select(Some(Duration::from_secs(30))).unwrap_err();
    /// assert_eq!(ctrl_c.join().unwrap(), 0);
    /// assert!(matches!(&err, Error::Os(e) if e.to_string() == "stopped by SIGINT"));
    /// assert!(start.elapsed() < Duration::from_secs(10));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn set_interrupt_check(&mut self, check: Option<InterruptCheck>) -> Option<InterruptCheck>;

    /// Closes the selector (Python's `close`): every registration is dropped
    /// (an owned file object is closed with it) and every later call fails
    /// with [`Closed`](crate::Error::Closed). Closing twice is harmless.
    /// Dropping a selector closes it too.
    ///
    /// The kernel object of epoll, kqueue and /dev/poll is released when the
    /// selector is dropped, so its `AsFd` stays sound in between.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for backends that might report
    /// one.
    fn close(&mut self) -> Result<()>;

    /// `true` once [`close`](Selector::close) was called.
    #[must_use]
    fn is_closed(&self) -> bool;

    /// The key of `fd` (Python's `get_key`).
    ///
    /// # Errors
    ///
    /// [`NotRegistered`](crate::Error::NotRegistered),
    /// [`Busy`](crate::Error::Busy) while the key is lent to a
    /// [`dispatch`](Selector::dispatch) handler, or
    /// [`Closed`](crate::Error::Closed).
    fn get_key(&self, fd: RawFd) -> Result<&SelectorKey<F, T>>;

    /// The key of `fd`, to change its data in place (see [`KeyMut`]).
    ///
    /// # Errors
    ///
    /// As [`get_key`](Selector::get_key).
    fn get_key_mut(&mut self, fd: RawFd) -> Result<KeyMut<'_, F, T>>;

    /// The registered keys (Python's `get_map`): a live, read-only view,
    /// empty after [`close`](Selector::close).
    #[must_use]
    fn get_map(&self) -> &SelectorMap<F, T>;

    /// The backend's name: `"epoll"`, `"kqueue"`, `"devpoll"`, `"poll"` or
    /// `"select"`.
    #[must_use]
    fn backend(&self) -> &'static str;

    /// A [`Waker`] that makes this selector's current or next `select`
    /// return, from any thread or from a signal handler.
    ///
    /// The wake-up channel (an `eventfd`, a pipe, or a kqueue user event) is
    /// created on the first call, so a selector that never asks for a waker
    /// opens nothing extra; later calls return clones of the same waker. Its
    /// descriptor never appears in the key map or the ready list, and cannot
    /// be registered.
    ///
    /// # Errors
    ///
    /// [`Closed`](crate::Error::Closed), or the kernel's error creating the
    /// channel.
    fn waker(&mut self) -> Result<Waker>;

    /// `true` if the last [`select`](Selector::select) or
    /// [`select_into`](Selector::select_into) consumed a wake-up from a
    /// [`Waker`] (it may have returned ready keys as well). However many
    /// wakes came before it, a select reports them once.
    #[must_use]
    fn was_woken(&self) -> bool;

    /// Lends `fd`'s file object and data mutably to `f`, and returns what `f`
    /// returns: how to read a registered `BufReader`, child pipe, TLS stream
    /// or [`Fd`](crate::Fd)-wrapped type that needs `&mut self`.
    ///
    /// The key is out of the selector while `f` runs; when it returns, the
    /// selector checks that the file object still has the descriptor it was
    /// registered with. If it does not (`f` replaced it), the registration
    /// is withdrawn (the kernel stops watching the old descriptor, and the
    /// key is dropped with the object and the data) and
    /// [`FdChanged`](crate::Error::FdChanged) is returned, so the key map
    /// and the kernel still agree. A panic in `f` puts the key back first.
    ///
    /// # Errors
    ///
    /// As [`get_key`](Selector::get_key) (`f` did not run), or
    /// [`FdChanged`](crate::Error::FdChanged) (`f` ran: what it returned is
    /// in the error, [`LendError::into_value`], so that nothing it handed
    /// back, such as the object it replaced, is dropped unseen).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{BufRead, BufReader, Write};
    /// use std::net::{TcpListener, TcpStream};
    /// use selectors::{DefaultSelector, Selector, EVENT_READ};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (conn, _) = listener.accept()?;
    /// let mut sel = DefaultSelector::<BufReader<TcpStream>, usize>::new()?;
    /// let fd = sel.register(BufReader::new(conn), EVENT_READ, 0)?.fd();
    /// client.write_all(b"one\ntwo\n")?;
    /// sel.select(None)?;
    /// let mut line = String::new();
    /// sel.with_fileobj_mut(fd, |reader, lines| {
    ///     reader.read_line(&mut line)?;
    ///     *lines += 1;
    ///     std::io::Result::Ok(())
    /// })??;
    /// assert_eq!((line.as_str(), *sel.get_key(fd)?.data()), ("one\n", 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn with_fileobj_mut<R>(
        &mut self,
        fd: RawFd,
        f: impl FnOnce(&mut F, &mut T) -> R,
    ) -> Result<R, LendError<R>>
    where
        Self: Sized,
    {
        self.with_key(fd, |key| {
            let (fileobj, data) = key.parts_mut();
            f(fileobj, data)
        })
    }

    /// Lends `fd`'s whole key to `f`, as [`dispatch`](Selector::dispatch)
    /// lends it to a handler, and returns what `f` returns: the file object
    /// and the data mutably, and the registration's own changes
    /// ([`LentKey::modify_events`], [`LentKey::unregister`], or the
    /// [`Registration`](crate::Registration) of [`LentKey::split`]), applied
    /// when `f` returns. For a loop of one's own over
    /// [`select_into`](Selector::select_into)'s list, where an object that
    /// is a key's data handles its readiness and changes what it waits for.
    ///
    /// As in [`with_fileobj_mut`](Selector::with_fileobj_mut), a file
    /// object replaced by one of another descriptor withdraws the
    /// registration, and a panic in `f` puts the key back first.
    ///
    /// # Errors
    ///
    /// As [`with_fileobj_mut`](Selector::with_fileobj_mut), or the kernel's
    /// refusal of a change of events (the old events stay), with what `f`
    /// returned.
    ///
    /// # Examples
    ///
    /// A client's loop of its own: each key's data is the request it is
    /// sending, which switches its registration to reading once sent.
    ///
    /// ```
    /// use std::io::{self, Read, Write};
    /// use std::net::{TcpListener, TcpStream};
    /// use selectors::{DefaultSelector, Selector, EVENT_READ, EVENT_WRITE};
    ///
    /// let server = TcpListener::bind("127.0.0.1:0")?;
    /// let sock = TcpStream::connect(server.local_addr()?)?;
    /// let mut sel = DefaultSelector::new()?;
    /// sel.register(sock, EVENT_WRITE, b"ping".to_vec())?;
    ///
    /// let mut ready = Vec::new();
    /// sel.select_into(&mut ready, None)?;
    /// for &(fd, mask) in &ready {
    ///     sel.with_key(fd, |key| -> io::Result<()> {
    ///         let (sock, pending, mut reg) = key.split();
    ///         if mask.is_writable() {
    ///             let n = sock.write(pending)?;
    ///             pending.drain(..n);
    ///             if pending.is_empty() {
    ///                 reg.modify_events(EVENT_READ)?; // applied when the closure returns
    ///             }
    ///         }
    ///         Ok(())
    ///     })??;
    /// }
    /// # let fd = ready[0].0;
    /// assert_eq!(sel.get_key(fd)?.events(), EVENT_READ);
    /// let (mut peer, _) = server.accept()?;
    /// let mut got = [0; 4];
    /// peer.read_exact(&mut got)?;
    /// assert_eq!(&got, b"ping");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn with_key<R>(
        &mut self,
        fd: RawFd,
        f: impl FnOnce(&mut LentKey<F, T>) -> R,
    ) -> Result<R, LendError<R>>
    where
        Self: Sized,
    {
        let mut key = self
            .lend_key(fd, None, Private(()))
            .map_err(LendError::new)?;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(&mut key)));
        let returned = self.return_key(key, Private(()));
        match outcome {
            Ok(value) => match returned {
                Ok(()) => Ok(value),
                Err(error) => Err(LendError::with_value(error, value)),
            },
            Err(payload) => panic::resume_unwind(payload),
        }
    }

    /// Selects once, then calls `handler` for each ready key with the
    /// selector, the key and its ready events: Python's
    /// `for key, mask in sel.select(timeout): key.data(key.fileobj, mask)`.
    /// Returns how many keys were handled.
    ///
    /// The handler gets the selector *and* its own key, both mutably: the
    /// key is lent out of the selector for the call (see [`LentKey`]), so
    /// the handler can register, modify and unregister other file objects
    /// while it reads or writes its own and changes its data. Its own
    /// registration changes through the key
    /// ([`LentKey::modify_events`], [`LentKey::unregister`], or the
    /// [`Registration`](crate::Registration) of [`LentKey::split`]), applied
    /// when the handler returns.
    ///
    /// As in Python, where `select()` returns the key objects themselves, a
    /// round hands each readiness to the registration the kernel reported it
    /// for: a key that an earlier handler of the round unregistered is
    /// skipped, and so is a registration made during the round, even at a
    /// descriptor number freed in it (what `accept` after a `close` gets).
    /// Each key's events are masked by what it is registered for at its
    /// turn. A handler that [`close`](Selector::close)s the selector ends
    /// the round: `dispatch` returns how many keys were handled, that one
    /// included.
    ///
    /// The ready list is the selector's own buffer: in steady state this
    /// allocates nothing and makes one system call (plus one per
    /// [`LentKey::modify_events`] that changes the events).
    ///
    /// The handler returns an [`io::Result`], as the I/O it does does, so
    /// that `?` works on both I/O errors and this crate's [`Error`]s and a
    /// closure ending in `Ok(())` needs no annotation.
    ///
    /// # Errors
    ///
    /// [`select`](Selector::select)'s errors, or the first error of a
    /// handler (the rest of the round is left to the next call: readiness
    /// is level-triggered), or an error applying a lent key's changes
    /// ([`FdChanged`](crate::Error::FdChanged), or the kernel's refusal of
    /// a `modify_events`, which leaves the old events). This crate's errors
    /// come as the [`io::Error`] they convert into, whose
    /// [`get_ref`](io::Error::get_ref) downcasts to the [`Error`].
    ///
    /// # Panics
    ///
    /// A panic in `handler` is resumed after its key is put back.
    ///
    /// # Examples
    ///
    /// Python's callback idiom: each key's data is the function that handles
    /// it.
    ///
    /// ```
    /// use std::io::{self, Read, Write};
    /// use std::net::{TcpListener, TcpStream};
    /// use selectors::{DefaultSelector, Events, LentKey, Selector, EVENT_READ};
    ///
    /// type Sel = DefaultSelector<TcpStream, Callback>;
    /// #[derive(Clone, Copy)]
    /// struct Callback(fn(&mut Sel, &mut LentKey<TcpStream, Callback>, Events) -> io::Result<()>);
    ///
    /// fn echo(_sel: &mut Sel, key: &mut LentKey<TcpStream, Callback>, _: Events) -> io::Result<()> {
    ///     let mut buf = [0; 64];
    ///     let n = key.fileobj_mut().read(&mut buf)?;
    ///     if n == 0 {
    ///         key.unregister(); // the socket is closed once the handler returns
    ///     } else {
    ///         key.fileobj_mut().write_all(&buf[..n])?;
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (server, _) = listener.accept()?;
    /// let mut sel = Sel::new()?;
    /// sel.register(server, EVENT_READ, Callback(echo))?;
    /// client.write_all(b"ping")?;
    /// sel.dispatch(None, |sel, key, mask| {
    ///     let callback = *key.data();
    ///     (callback.0)(sel, key, mask)
    /// })?;
    /// let mut back = [0; 4];
    /// client.read_exact(&mut back)?;
    /// assert_eq!(&back, b"ping");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn dispatch<H>(&mut self, timeout: Option<Duration>, mut handler: H) -> io::Result<usize>
    where
        Self: Sized,
        H: FnMut(&mut Self, &mut LentKey<F, T>, Events) -> io::Result<()>,
    {
        let mut ready = self.take_ready_buffer(Private(()));
        let result = dispatch_list(self, &mut ready, timeout, &mut handler);
        self.restore_ready_buffer(ready, Private(()));
        result
    }

    /// Plumbing of [`dispatch`](Selector::dispatch): takes `fd`'s key out of
    /// the selector, which then reports `fd` as
    /// [`Busy`](crate::Error::Busy); given a
    /// [`registration_mark`](Selector::registration_mark), a key registered
    /// after it counts as not registered. Implementations forward it; the
    /// default fails with `Unsupported`.
    #[doc(hidden)]
    fn lend_key(
        &mut self,
        fd: RawFd,
        registered_before: Option<u32>,
        _: Private,
    ) -> Result<LentKey<F, T>> {
        let _ = (fd, registered_before);
        Err(Error::Os(io::ErrorKind::Unsupported.into()))
    }

    /// Plumbing of [`dispatch`](Selector::dispatch): a mark between the
    /// registrations made so far and the ones to come, for
    /// [`lend_key`](Selector::lend_key).
    #[doc(hidden)]
    fn registration_mark(&self, _: Private) -> u32 {
        0
    }

    /// Plumbing of [`dispatch`](Selector::dispatch): puts a lent key back,
    /// applying its changes.
    #[doc(hidden)]
    fn return_key(&mut self, key: LentKey<F, T>, _: Private) -> Result<()> {
        drop(key);
        Ok(())
    }

    /// Plumbing of [`dispatch`](Selector::dispatch): the selector's ready
    /// buffer, taken for one round.
    #[doc(hidden)]
    fn take_ready_buffer(&mut self, _: Private) -> Vec<(RawFd, Events)> {
        Vec::new()
    }

    /// Plumbing of [`dispatch`](Selector::dispatch): gives the buffer back.
    #[doc(hidden)]
    fn restore_ready_buffer(&mut self, buffer: Vec<(RawFd, Events)>, _: Private) {
        drop(buffer);
    }
}

/// One round of [`Selector::dispatch`], with the ready list taken out of the
/// selector.
fn dispatch_list<F, T, S, H>(
    sel: &mut S,
    ready: &mut Vec<(RawFd, Events)>,
    timeout: Option<Duration>,
    handler: &mut H,
) -> io::Result<usize>
where
    F: FileObject,
    S: Selector<F, T>,
    H: FnMut(&mut S, &mut LentKey<F, T>, Events) -> io::Result<()>,
{
    sel.select_into(ready, timeout)?;
    // A handler may end a registration and make another at the same number
    // (`close`, then `accept`): the entry is the old file's readiness, which
    // the new registration must not be handed.
    let mark = sel.registration_mark(Private(()));
    let mut handled = 0;
    for &(fd, events) in ready.iter() {
        let mut key = match sel.lend_key(fd, Some(mark), Private(())) {
            Ok(key) => key,
            // Unregistered by an earlier handler of this round (or
            // registered by one), or the key of an enclosing dispatch's
            // handler.
            Err(Error::NotRegistered(_) | Error::Busy(_)) => continue,
            Err(err) => return Err(err.into()),
        };
        let events = events & key.events();
        if events.is_empty() {
            sel.return_key(key, Private(()))?;
            continue;
        }
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| handler(sel, &mut key, events)));
        let returned = sel.return_key(key, Private(()));
        match outcome {
            Ok(result) => result?,
            Err(payload) => panic::resume_unwind(payload),
        }
        returned?;
        handled += 1;
        if sel.is_closed() {
            // The handler closed the selector: the round ends with it.
            break;
        }
    }
    Ok(handled)
}

macro_rules! forward_selector {
    ($ty:ty) => {
        impl<F: FileObject, T, S: Selector<F, T> + ?Sized> Selector<F, T> for $ty {
            fn register(
                &mut self,
                fileobj: F,
                events: Events,
                data: T,
            ) -> Result<&SelectorKey<F, T>> {
                (**self).register(fileobj, events, data)
            }
            fn try_register(
                &mut self,
                fileobj: F,
                events: Events,
                data: T,
            ) -> Result<&SelectorKey<F, T>, RegisterError<F, T>> {
                (**self).try_register(fileobj, events, data)
            }
            fn unregister(&mut self, fd: RawFd) -> Result<SelectorKey<F, T>> {
                (**self).unregister(fd)
            }
            fn modify(&mut self, fd: RawFd, events: Events, data: T) -> Result<&SelectorKey<F, T>> {
                (**self).modify(fd, events, data)
            }
            fn modify_events(&mut self, fd: RawFd, events: Events) -> Result<&SelectorKey<F, T>> {
                (**self).modify_events(fd, events)
            }
            #[inline]
            fn select(&mut self, timeout: Option<Duration>) -> Result<Ready<'_, F, T>> {
                (**self).select(timeout)
            }
            #[inline]
            fn select_into(
                &mut self,
                ready: &mut Vec<(RawFd, Events)>,
                timeout: Option<Duration>,
            ) -> Result<usize> {
                (**self).select_into(ready, timeout)
            }
            fn set_interrupt_check(
                &mut self,
                check: Option<InterruptCheck>,
            ) -> Option<InterruptCheck> {
                (**self).set_interrupt_check(check)
            }
            fn close(&mut self) -> Result<()> {
                (**self).close()
            }
            fn is_closed(&self) -> bool {
                (**self).is_closed()
            }
            #[inline]
            fn get_key(&self, fd: RawFd) -> Result<&SelectorKey<F, T>> {
                (**self).get_key(fd)
            }
            #[inline]
            fn get_key_mut(&mut self, fd: RawFd) -> Result<KeyMut<'_, F, T>> {
                (**self).get_key_mut(fd)
            }
            fn get_map(&self) -> &SelectorMap<F, T> {
                (**self).get_map()
            }
            fn backend(&self) -> &'static str {
                (**self).backend()
            }
            fn waker(&mut self) -> Result<Waker> {
                (**self).waker()
            }
            #[inline]
            fn was_woken(&self) -> bool {
                (**self).was_woken()
            }
            fn lend_key(
                &mut self,
                fd: RawFd,
                registered_before: Option<u32>,
                private: Private,
            ) -> Result<LentKey<F, T>> {
                (**self).lend_key(fd, registered_before, private)
            }
            fn registration_mark(&self, private: Private) -> u32 {
                (**self).registration_mark(private)
            }
            fn return_key(&mut self, key: LentKey<F, T>, private: Private) -> Result<()> {
                (**self).return_key(key, private)
            }
            fn take_ready_buffer(&mut self, private: Private) -> Vec<(RawFd, Events)> {
                (**self).take_ready_buffer(private)
            }
            fn restore_ready_buffer(&mut self, buffer: Vec<(RawFd, Events)>, private: Private) {
                (**self).restore_ready_buffer(buffer, private)
            }
        }
    };
}

// `Box<dyn Selector<F, T>>` chooses a backend at run time; `&mut S` lets
// generic code take `&mut impl Selector` and pass it on.
forward_selector!(Box<S>);
forward_selector!(&mut S);

/// The ready keys of one [`Selector::select`] call, each once, with its ready
/// events (already masked by the registered ones).
///
/// It borrows the selector: collect what you need, or use
/// [`Selector::select_into`] to change the selector while dispatching.
pub struct Ready<'a, F, T> {
    map: &'a SelectorMap<F, T>,
    events: std::slice::Iter<'a, (RawFd, Events)>,
    woken: bool,
}

impl<'a, F, T> Ready<'a, F, T> {
    /// The ready list `events`, as the poller reported it: masked by the
    /// registered events, and unregistered descriptors skipped, as it is
    /// walked.
    pub(crate) fn new(
        map: &'a SelectorMap<F, T>,
        events: &'a [(RawFd, Events)],
        woken: bool,
    ) -> Self {
        Ready {
            map,
            events: events.iter(),
            woken,
        }
    }

    /// `true` if this select consumed a wake-up from a [`Waker`] (see
    /// [`Selector::was_woken`]).
    #[must_use]
    pub fn was_woken(&self) -> bool {
        self.woken
    }

    /// How many ready keys are left to walk (counted: O(n)).
    #[must_use]
    pub fn len(&self) -> usize {
        self.clone().count()
    }

    /// `true` if no ready key is left.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.clone().next().is_none()
    }
}

impl<F, T> Clone for Ready<'_, F, T> {
    fn clone(&self) -> Self {
        Ready {
            map: self.map,
            events: self.events.clone(),
            woken: self.woken,
        }
    }
}

impl<F, T> fmt::Debug for Ready<'_, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.clone().map(|(key, events)| (key.fd(), events)))
            .finish()
    }
}

impl<'a, F, T> Iterator for Ready<'a, F, T> {
    type Item = (&'a SelectorKey<F, T>, Events);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // Masking here, where the key is looked up anyway, rather than in a
        // pass of its own before: one map look-up per event instead of two.
        for &(fd, events) in self.events.by_ref() {
            if let Some(key) = self.map.get(fd) {
                let events = events & key.events();
                if !events.is_empty() {
                    return Some((key, events));
                }
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.events.len()))
    }
}

impl<F, T> FusedIterator for Ready<'_, F, T> {}
