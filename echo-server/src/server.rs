//! One echo server: a listener and its connections, all registered with one
//! [`DefaultSelector`], served by one thread.
//!
//! The selector owns every socket and each key's data is its connection's
//! [`Connection`] (the listener's is unused), so closing a connection is
//! unregistering it, and taking a socket out of the selector without closing
//! it is unregistering it and keeping the key's parts.
//!
//! - **No byte is lost.** What a client's socket will not take yet waits in
//!   its connection's buffer, and the connection waits for `WRITE` until the
//!   buffer is empty.
//! - **Memory is bounded, and given back.** A connection buffers at most
//!   [`MAX_PENDING`] bytes, and all connections together at most the
//!   server's budget (`--max-buffered`). Over either, the server stops
//!   reading (TCP flow control then slows the clients down: backpressure,
//!   not loss). A buffer is freed as soon as it is written out. The rules
//!   are in [`buffer`](crate::buffer).
//! - **No `accept` error stops it.** Out of descriptors, the listener is
//!   taken out of the selector, so the server serves its clients without
//!   spinning and new clients wait in the kernel's backlog; it is put back
//!   when a connection closes (or a quarter of a second later). Every error
//!   is counted in [`Stats`].
//! - **No client disturbs another.** One that half-closes gets the rest of
//!   its echo and then end-of-file; one that disconnects or resets is
//!   dropped. Only a failure of the selector itself stops the server.
//!
//! [`MAX_PENDING`]: crate::buffer::MAX_PENDING
//!
//! # Examples
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{Shutdown, TcpListener, TcpStream};
//! use std::thread;
//!
//! use selectors_echo_server::buffer::DEFAULT_MAX_BUFFERED;
//! use selectors_echo_server::server::EchoServer;
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let mut server = EchoServer::new(listener, DEFAULT_MAX_BUFFERED)?;
//! let waker = server.waker()?;
//! let running = thread::spawn(move || server.run());
//!
//! let mut client = TcpStream::connect(addr)?;
//! client.write_all(b"hello")?;
//! client.shutdown(Shutdown::Write)?;
//! let mut echo = Vec::new();
//! client.read_to_end(&mut echo)?;
//! assert_eq!(echo, b"hello");
//!
//! waker.wake()?;
//! let stats = running.join().expect("the server panicked")?;
//! assert_eq!(stats.served, 1);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use selectors::{
    DefaultSelector, Events, FileObject, RawFd, Selector, Waker, EVENT_READ, EVENT_WRITE,
};

use crate::buffer::{Budget, Connection, READ_SIZE};

/// How long `accept` stays paused, at most, when it failed for want of
/// descriptors or memory and no connection of this server closed since.
///
/// Descriptors are a per-process resource (`EMFILE`, shared by every thread)
/// or a system-wide one (`ENFILE`), and memory is system-wide (Winsock's
/// `WSAEMFILE` and `WSAENOBUFS` are the same two shortages): what frees
/// them may happen elsewhere, so the server also tries again on its own,
/// four times a second, which costs nothing measurable.
const ACCEPT_RETRY: Duration = Duration::from_millis(250);

/// What a server did, once [`EchoServer::run`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    /// Clients accepted and served.
    pub served: u64,
    /// Of those, the ones still connected when the server stopped.
    pub closed_at_stop: usize,
    /// Failed `accept` calls, by error code (`errno`; Winsock's `WSAE*` code
    /// on Windows), in order of first occurrence.
    pub accept_errors: Vec<(i32, u64)>,
    /// Times the listener was taken out of the selector after an `accept`
    /// error (out of descriptors or memory).
    pub accept_pauses: u64,
}

impl Stats {
    /// Counts one failed `accept`.
    fn count_accept_error(&mut self, err: &io::Error) {
        let errno = err.raw_os_error().unwrap_or(0);
        match self.accept_errors.iter_mut().find(|(e, _)| *e == errno) {
            Some((_, count)) => *count += 1,
            None => self.accept_errors.push((errno, 1)),
        }
    }
}

/// An echo server: a listening socket and its connections, all registered
/// with one selector.
pub struct EchoServer {
    selector: DefaultSelector<Socket, Connection>,
    /// The listener: in the selector, or out of it while `accept` is paused.
    listener: Listener,
    /// The read buffer. Bytes are copied out of it into a connection's
    /// buffer only when the socket will not take them straight back.
    buf: Box<[u8]>,
    /// Connections accepted in this turn and not yet registered; kept for
    /// its capacity.
    accepted: Vec<TcpStream>,
    /// Bytes buffered by all connections, against the server's budget.
    budget: Budget,
    /// Connections taken out of the selector because the budget was spent
    /// and they had nothing to write: they wait for room, oldest first.
    parked: Vec<(TcpStream, Connection)>,
    /// A connection closed in this turn, so a descriptor is free again.
    closed_one: bool,
    stats: Stats,
}

/// Where the listener is.
enum Listener {
    /// Registered for `READ`, under this descriptor.
    Watched(RawFd),
    /// Out of the selector until `retry_at` or until a connection closes.
    Paused {
        listener: TcpListener,
        retry_at: Instant,
    },
    /// Gone: the kernel would not watch it again (out of memory). The
    /// connected clients are still served.
    Lost,
}

/// A socket the selector owns: the listener, or a client's connection.
#[derive(Debug)]
enum Socket {
    /// The listening socket: readable when clients are waiting.
    Listener(TcpListener),
    /// A connection to one client.
    Client(TcpStream),
}

impl FileObject for Socket {
    fn fileno(&self) -> RawFd {
        match self {
            Socket::Listener(listener) => listener.fileno(),
            Socket::Client(stream) => stream.fileno(),
        }
    }
}

impl EchoServer {
    /// Makes a server of `listener`, which may already have clients waiting,
    /// buffering at most `max_buffered` bytes over all its connections.
    ///
    /// # Errors
    ///
    /// If the selector cannot be created, or `listener` cannot be made
    /// non-blocking and registered.
    pub fn new(listener: TcpListener, max_buffered: usize) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let fd = listener.fileno();
        let mut selector = DefaultSelector::new()?;
        // Every key carries a `Connection`; the listener's is never used.
        selector.register(
            Socket::Listener(listener),
            EVENT_READ,
            Connection::default(),
        )?;
        Ok(EchoServer {
            selector,
            listener: Listener::Watched(fd),
            buf: vec![0; READ_SIZE].into_boxed_slice(),
            accepted: Vec::new(),
            budget: Budget::new(max_buffered),
            parked: Vec::new(),
            closed_one: false,
            stats: Stats::default(),
        })
    }

    /// A waker that makes [`run`](EchoServer::run) stop, from any thread or
    /// from a signal handler.
    ///
    /// # Errors
    ///
    /// If the selector cannot create its wake-up channel.
    pub fn waker(&mut self) -> io::Result<Waker> {
        Ok(self.selector.waker()?)
    }

    /// The selector's backend: `"epoll"`, `"kqueue"`, `"poll"`…
    pub fn backend(&self) -> &'static str {
        self.selector.backend()
    }

    /// Serves clients until a [`waker`](EchoServer::waker) is woken, then
    /// closes every connection and the listener.
    ///
    /// # Errors
    ///
    /// If the selector fails. A connection's own errors close that
    /// connection and nothing else; `accept`'s are counted in [`Stats`].
    pub fn run(mut self) -> io::Result<Stats> {
        let mut ready = Vec::new();
        loop {
            // Blocks for good, unless `accept` is paused: then until it is
            // time to try again.
            let timeout = match &self.listener {
                Listener::Watched(_) | Listener::Lost => None,
                Listener::Paused { retry_at, .. } => {
                    Some(retry_at.saturating_duration_since(Instant::now()))
                }
            };
            self.selector.select_into(&mut ready, timeout)?;
            if self.selector.was_woken() {
                break;
            }
            for &(fd, events) in &ready {
                self.dispatch(fd, events)?;
            }
            self.resume_listener();
            self.resume_parked();
        }
        let listener_watched = matches!(self.listener, Listener::Watched(_));
        self.stats.closed_at_stop =
            self.selector.get_map().len() - usize::from(listener_watched) + self.parked.len();
        // Dropping the keys closes every socket: clients see end-of-file.
        self.selector.close()?;
        Ok(self.stats)
    }

    /// Handles the readiness `events` of `fd`.
    fn dispatch(&mut self, fd: RawFd, events: Events) -> io::Result<()> {
        if self.listener.is_watched(fd) {
            return self.accept_clients(fd);
        }
        // Handlers only ever close their own connection, so every descriptor
        // of the ready list is still registered; a missing one is skipped
        // all the same, as the `select_into` docs advise.
        let next = {
            let Ok(mut key) = self.selector.get_key_mut(fd) else {
                return Ok(());
            };
            let (Socket::Client(stream), connection) = key.parts_mut() else {
                return Ok(());
            };
            on_ready(connection, stream, events, &mut self.buf, &mut self.budget)
        };
        match next {
            // No system call unless the interest changed. If the kernel
            // refuses the change (out of memory), the connection is closed.
            Ok(Next::Wait(interest)) => {
                if self.selector.modify_events(fd, interest).is_err() {
                    self.close(fd)?;
                }
            }
            // Nothing to write and no room to read into: out of the selector
            // until there is room, so that a readable socket does not make
            // every select return at once.
            Ok(Next::Park) => {
                let (socket, connection) = self.selector.unregister(fd)?.into_parts();
                if let Socket::Client(stream) = socket {
                    self.parked.push((stream, connection));
                }
            }
            // Done, or failed (reset, broken pipe…): either way, dropping the
            // key closes the socket.
            Ok(Next::Close) | Err(_) => self.close(fd)?,
        }
        Ok(())
    }

    /// Closes the connection of `fd`, giving back what it held.
    fn close(&mut self, fd: RawFd) -> io::Result<()> {
        let (_, connection) = self.selector.unregister(fd)?.into_parts();
        connection.release(&mut self.budget);
        self.closed_one = true;
        Ok(())
    }

    /// Accepts every client waiting on the listener `fd` and registers them;
    /// on an error that says the process or the system is out of something,
    /// pauses `accept`.
    fn accept_clients(&mut self, fd: RawFd) -> io::Result<()> {
        let Ok(Socket::Listener(listener)) = self.selector.get_key(fd).map(|key| key.fileobj())
        else {
            return Ok(());
        };
        let outcome = accept_all(listener, &mut self.accepted, &mut self.stats);
        for stream in self.accepted.drain(..) {
            // A client that cannot be set up or watched (no kernel memory, or
            // past `FD_SETSIZE` on the select backend) is turned away: its
            // stream is dropped, so closed.
            if add_client(&mut self.selector, stream).is_ok() {
                self.stats.served += 1;
            }
        }
        if outcome == AcceptOutcome::Pause {
            // A level-triggered listener left registered would make every
            // select return at once, to fail again: a busy loop. Taken out
            // of the selector, it waits in the kernel's backlog with the
            // clients queued on it, and they are accepted once a descriptor
            // is free.
            //
            // The other common remedy, a spare descriptor closed to accept
            // and drop one client at a time, turns clients away that could
            // be served a moment later, and still needs this pause for the
            // errors that are not about descriptors (`ENOBUFS`, `ENOMEM`).
            let (socket, _) = self.selector.unregister(fd)?.into_parts();
            if let Socket::Listener(listener) = socket {
                self.listener = Listener::Paused {
                    listener,
                    retry_at: Instant::now() + ACCEPT_RETRY,
                };
                self.stats.accept_pauses += 1;
            }
        }
        Ok(())
    }

    /// Puts a paused listener back in the selector once a connection closed
    /// or it is time to try again.
    fn resume_listener(&mut self) {
        let closed_one = std::mem::take(&mut self.closed_one);
        let due = match &self.listener {
            Listener::Watched(_) | Listener::Lost => return,
            Listener::Paused { retry_at, .. } => closed_one || Instant::now() >= *retry_at,
        };
        if !due {
            return;
        }
        let Listener::Paused { listener, .. } =
            std::mem::replace(&mut self.listener, Listener::Lost)
        else {
            return;
        };
        let fd = listener.fileno();
        // The backlog may hold clients already: the next select reports the
        // listener readable at once.
        self.listener = match self.selector.register(
            Socket::Listener(listener),
            EVENT_READ,
            Connection::default(),
        ) {
            Ok(_) => Listener::Watched(fd),
            // Registering a descriptor that was registered a moment ago
            // fails only when the kernel is out of memory; the selector then
            // dropped (closed) the listener. Said once, on stderr: an event
            // loop has no one else to tell.
            Err(err) => {
                let _ = writeln!(io::stderr(), "echo server: listener lost: {err}");
                Listener::Lost
            }
        };
    }

    /// Puts parked connections back in the selector once the budget has
    /// room for a full read (or all of it, when it is smaller than that).
    fn resume_parked(&mut self) {
        if self.parked.is_empty() || !self.budget.has_room_for_a_read() {
            return;
        }
        for (stream, connection) in self.parked.drain(..) {
            // Parked connections hold nothing, so reading is all they wait
            // for. One the kernel refuses to watch is closed (dropped).
            if self
                .selector
                .register(Socket::Client(stream), EVENT_READ, connection)
                .is_err()
            {
                self.closed_one = true;
            }
        }
    }
}

impl Listener {
    /// `fd` is the listener, and it is watched.
    fn is_watched(&self, fd: RawFd) -> bool {
        matches!(self, Listener::Watched(watched) if *watched == fd)
    }
}

impl fmt::Debug for EchoServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EchoServer")
            .field("selector", &self.selector)
            .field("budget", &self.budget)
            .field("parked", &self.parked.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// What a connection waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// These events (never empty).
    Wait(Events),
    /// Room in the server's budget: nothing to write, nothing may be read.
    Park,
    /// Nothing: the connection is done.
    Close,
}

/// Handles the readiness `ready` of `connection`'s `stream`, reading into
/// `buf` and accounting what is kept in `budget`; says what to wait for next.
///
/// # Errors
///
/// The socket's (the client reset the connection, …); the caller closes the
/// connection.
fn on_ready(
    connection: &mut Connection,
    stream: &TcpStream,
    ready: Events,
    buf: &mut [u8],
    budget: &mut Budget,
) -> io::Result<Next> {
    // Write first: it makes room for what is read next. Level-triggered, a
    // socket that would block is simply watched again.
    if ready.is_writable() {
        connection.flush(stream, budget)?;
    }
    if ready.is_readable() {
        connection.fill(stream, buf, budget)?;
    }
    if connection.finish(stream)? {
        return Ok(Next::Close);
    }
    let mut events = Events::EMPTY;
    if connection.wants_read(budget) {
        events |= EVENT_READ;
    }
    if connection.wants_write() {
        events |= EVENT_WRITE;
    }
    Ok(if events.is_empty() {
        Next::Park
    } else {
        Next::Wait(events)
    })
}

/// What the listener needs after [`accept_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AcceptOutcome {
    /// Nothing: the backlog is empty.
    Drained,
    /// To be taken out of the selector for a while: `accept` fails for a
    /// reason that will not go away at once.
    Pause,
}

/// Accepts every client waiting on `listener`, onto `accepted`, counting
/// every failure in `stats`.
///
/// Errors about one pending connection (it was aborted or refused before it
/// was accepted; Linux also passes on the network errors of a pending
/// connection, see accept(2)) skip that one. The others (`EMFILE`,
/// `ENFILE`: out of descriptors; `ENOBUFS`, `ENOMEM`: out of memory;
/// `WSAEMFILE` and `WSAENOBUFS` on Windows; and anything unexpected) end the
/// loop and ask for a pause.
fn accept_all(
    listener: &TcpListener,
    accepted: &mut Vec<TcpStream>,
    stats: &mut Stats,
) -> AcceptOutcome {
    loop {
        match listener.accept() {
            Ok((stream, _peer)) => accepted.push(stream),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return AcceptOutcome::Drained,
            Err(err) => {
                stats.count_accept_error(&err);
                let errno = err.raw_os_error().unwrap_or(0);
                if !codes::ABOUT_ONE_CLIENT.contains(&errno) {
                    return AcceptOutcome::Pause;
                }
            }
        }
    }
}

/// Registers a newly accepted client, waiting for it to send.
///
/// # Errors
///
/// If the stream cannot be set up, or the selector refuses it; the stream is
/// closed then.
fn add_client(
    selector: &mut DefaultSelector<Socket, Connection>,
    stream: TcpStream,
) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    // Echo what arrives at once, rather than waiting to fill a segment.
    stream.set_nodelay(true)?;
    selector.register(Socket::Client(stream), EVENT_READ, Connection::default())?;
    Ok(())
}

/// The name of an error code `accept` may return, for the report.
pub fn errno_name(errno: i32) -> String {
    match codes::NAMES.iter().find(|(e, _)| *e == errno) {
        Some((_, name)) => (*name).to_string(),
        None if cfg!(windows) => format!("error {errno}"),
        None => format!("errno {errno}"),
    }
}

/// The error codes `accept` reports: `errno` values on Unix.
#[cfg(unix)]
mod codes {
    /// Errors about the one pending connection `accept` was taking: the
    /// next one may be fine.
    pub const ABOUT_ONE_CLIENT: &[i32] = &[
        libc::EINTR,
        libc::ECONNABORTED,
        libc::ECONNRESET,
        libc::EPROTO,
        libc::EPERM,
        libc::ETIMEDOUT,
        libc::ENETDOWN,
        libc::ENETUNREACH,
        libc::EHOSTDOWN,
        libc::EHOSTUNREACH,
        libc::ENOPROTOOPT,
        libc::EOPNOTSUPP,
    ];

    /// The names of the codes the report may show.
    pub const NAMES: &[(i32, &str)] = &[
        (libc::EMFILE, "EMFILE"),
        (libc::ENFILE, "ENFILE"),
        (libc::ENOBUFS, "ENOBUFS"),
        (libc::ENOMEM, "ENOMEM"),
        (libc::ECONNABORTED, "ECONNABORTED"),
        (libc::ECONNRESET, "ECONNRESET"),
        (libc::EPROTO, "EPROTO"),
        (libc::EPERM, "EPERM"),
        (libc::EINTR, "EINTR"),
        (libc::ETIMEDOUT, "ETIMEDOUT"),
        (libc::ENETDOWN, "ENETDOWN"),
        (libc::ENETUNREACH, "ENETUNREACH"),
        (libc::EHOSTDOWN, "EHOSTDOWN"),
        (libc::EHOSTUNREACH, "EHOSTUNREACH"),
        (libc::ENOPROTOOPT, "ENOPROTOOPT"),
        (libc::EOPNOTSUPP, "EOPNOTSUPP"),
    ];
}

/// The error codes `accept` reports: Winsock's on Windows (`WSAGetLastError`,
/// what `raw_os_error` holds).
#[cfg(windows)]
mod codes {
    use windows_sys::Win32::Networking::WinSock::{
        WSAECONNABORTED, WSAECONNRESET, WSAEHOSTDOWN, WSAEHOSTUNREACH, WSAEINTR, WSAEMFILE,
        WSAENETDOWN, WSAENETRESET, WSAENETUNREACH, WSAENOBUFS, WSAETIMEDOUT,
    };

    /// Errors about the one pending connection `accept` was taking (the
    /// client gave up or its network failed before it was accepted): the
    /// next one may be fine. `WSAENETDOWN` is not one: on Windows it says
    /// the network subsystem itself failed.
    pub const ABOUT_ONE_CLIENT: &[i32] = &[
        WSAEINTR,
        WSAECONNABORTED,
        WSAECONNRESET,
        WSAENETRESET,
        WSAETIMEDOUT,
        WSAENETUNREACH,
        WSAEHOSTDOWN,
        WSAEHOSTUNREACH,
    ];

    /// The names of the codes the report may show.
    pub const NAMES: &[(i32, &str)] = &[
        (WSAEMFILE, "WSAEMFILE"),
        (WSAENOBUFS, "WSAENOBUFS"),
        (WSAENETDOWN, "WSAENETDOWN"),
        (WSAECONNABORTED, "WSAECONNABORTED"),
        (WSAECONNRESET, "WSAECONNRESET"),
        (WSAENETRESET, "WSAENETRESET"),
        (WSAEINTR, "WSAEINTR"),
        (WSAETIMEDOUT, "WSAETIMEDOUT"),
        (WSAENETUNREACH, "WSAENETUNREACH"),
        (WSAEHOSTDOWN, "WSAEHOSTDOWN"),
        (WSAEHOSTUNREACH, "WSAEHOSTUNREACH"),
    ];
}
