//! A TCP echo server: every byte a client sends comes back to it, in order.
//!
//! ```text
//! cargo run --release --example echo_server [-- ADDR]
//! ```
//!
//! It listens on `ADDR` (default `127.0.0.1:1234`) and serves any number of
//! clients at once from one thread with a [`DefaultSelector`]. The selector
//! owns every socket (a [`Socket`]) and each key's data is the state of its
//! connection (a [`Connection`]), so closing a connection is unregistering
//! it. Try it with `nc 127.0.0.1 1234`.
//!
//! - **No byte is lost.** What a client's socket will not take yet waits in
//!   its connection's buffer, and the connection waits for `WRITE` until the
//!   buffer is empty, then goes back to `READ` only.
//! - **Memory is bounded.** A buffer holds at most [`MAX_PENDING`] bytes. A
//!   full one is not read from (`WRITE` only) until its client takes some of
//!   the echo back; TCP flow control then slows the client down. That is
//!   backpressure, not loss.
//! - **No client disturbs another.** One that half-closes gets the rest of
//!   its echo and then end-of-file; one that disconnects or resets is
//!   dropped. Only a failure of the selector or of the listener itself (out
//!   of descriptors, say) stops the server.
//! - **Ctrl-C stops it cleanly.** The `SIGINT` handler calls
//!   [`Waker::wake`], which is async-signal-safe; the loop sees
//!   [`Selector::was_woken`], closes every connection and the listener, and
//!   `main` prints how many clients it served.
//!
//! In steady state the loop allocates nothing: the ready list, the read
//! buffer and each connection's buffer are reused.

use std::collections::VecDeque;
use std::env;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::OnceLock;

use selectors::{DefaultSelector, Events, FileObject, Selector, Waker, EVENT_READ, EVENT_WRITE};

/// The address to listen on when none is given.
const DEFAULT_ADDR: &str = "127.0.0.1:1234";

/// The most bytes a connection holds read but not yet echoed: 1 MiB.
///
/// A connection with this much pending is not read from until its client has
/// taken some of the echo back.
pub const MAX_PENDING: usize = 1 << 20;

/// The most bytes taken from a socket in one read: the size of the read
/// buffer all connections share.
const READ_SIZE: usize = 64 * 1024;

fn main() -> io::Result<()> {
    let addr = env::args().nth(1);
    let listener = TcpListener::bind(addr.as_deref().unwrap_or(DEFAULT_ADDR))?;
    let local_addr = listener.local_addr()?;
    let mut server = EchoServer::new(listener)?;
    stop_on_ctrl_c(server.waker()?)?;
    println!(
        "echo server listening on {local_addr} (backend: {})",
        server.backend()
    );
    let stats = server.run()?;
    println!(
        "stopped: served {} clients ({} still connected were closed)",
        stats.served, stats.closed_at_stop
    );
    Ok(())
}

/// The waker the `SIGINT` handler calls.
static STOP: OnceLock<Waker> = OnceLock::new();

extern "C" fn on_sigint(_signal: libc::c_int) {
    // Async-signal-safe: `OnceLock::get` is an atomic load, `wake` an atomic
    // load and one `write(2)`.
    if let Some(waker) = STOP.get() {
        let _ = waker.wake();
    }
}

/// Makes Ctrl-C (`SIGINT`) wake `waker`, so that [`EchoServer::run`] returns.
///
/// # Errors
///
/// If a handler was installed already, or `sigaction` fails.
pub fn stop_on_ctrl_c(waker: Waker) -> io::Result<()> {
    STOP.set(waker).map_err(|_| {
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "Ctrl-C handler installed twice",
        )
    })?;
    // SAFETY: `sigaction` is plain old data, so all-zero is a valid value;
    // the handler is an `extern "C" fn(c_int)` doing only async-signal-safe
    // work; both calls' results are checked.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        if libc::sigemptyset(&mut action.sa_mask) != 0
            || libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What a server did, once [`EchoServer::run`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Clients accepted and served.
    pub served: u64,
    /// Of those, the ones still connected when the server stopped.
    pub closed_at_stop: usize,
}

/// An echo server: a listening socket and its connections, all registered
/// with one selector.
pub struct EchoServer {
    selector: DefaultSelector<Socket, Connection>,
    /// The read buffer. Bytes are copied out of it into a connection's
    /// buffer only when the socket will not take them straight back.
    buf: Box<[u8]>,
    /// Connections accepted in this turn and not yet registered; kept for
    /// its capacity.
    accepted: Vec<TcpStream>,
    /// Clients accepted so far.
    served: u64,
}

impl EchoServer {
    /// Makes a server of `listener`, which may already have clients waiting.
    ///
    /// # Errors
    ///
    /// If the selector cannot be created, or `listener` cannot be made
    /// non-blocking and registered.
    pub fn new(listener: TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let mut selector = DefaultSelector::new()?;
        // Every key carries a `Connection`; the listener's is never used.
        selector.register(
            Socket::Listener(listener),
            EVENT_READ,
            Connection::default(),
        )?;
        Ok(EchoServer {
            selector,
            buf: vec![0; READ_SIZE].into_boxed_slice(),
            accepted: Vec::new(),
            served: 0,
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
    /// If the selector fails, or the listener does (for example when the
    /// process is out of file descriptors). A connection's own errors close
    /// that connection and nothing else.
    pub fn run(mut self) -> io::Result<Stats> {
        let mut ready = Vec::new();
        loop {
            self.selector.select_into(&mut ready, None)?;
            if self.selector.was_woken() {
                break;
            }
            for &(fd, events) in &ready {
                self.dispatch(fd, events)?;
            }
        }
        let closed_at_stop = self.selector.get_map().len() - 1; // not the listener
                                                                // Dropping the keys closes every socket: clients see end-of-file.
        self.selector.close()?;
        Ok(Stats {
            served: self.served,
            closed_at_stop,
        })
    }

    /// Handles the readiness `events` of `fd`.
    fn dispatch(&mut self, fd: RawFd, events: Events) -> io::Result<()> {
        // Handlers only ever close their own connection, so every descriptor
        // of the ready list is still registered; a missing one is skipped
        // all the same, as the `select_into` docs advise.
        let Ok(mut key) = self.selector.get_key_mut(fd) else {
            return Ok(());
        };
        match key.parts_mut() {
            (Socket::Listener(listener), _) => {
                accept_all(listener, &mut self.accepted)?;
                for stream in self.accepted.drain(..) {
                    // A client that cannot be set up or watched (no kernel
                    // memory, or past `FD_SETSIZE` on the select backend)
                    // is turned away: its stream is dropped, so closed.
                    if add_client(&mut self.selector, stream).is_ok() {
                        self.served += 1;
                    }
                }
            }
            (Socket::Client(stream), connection) => {
                match connection.on_ready(stream, events, &mut self.buf) {
                    Ok(Some(interest)) => {
                        // No system call unless the interest changed.
                        self.selector.modify_events(fd, interest)?;
                    }
                    // Done, or failed (reset, broken pipe…): either way,
                    // dropping the key closes the socket.
                    Ok(None) | Err(_) => {
                        self.selector.unregister(fd)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for EchoServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EchoServer")
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
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
            Socket::Listener(listener) => listener.as_raw_fd(),
            Socket::Client(stream) => stream.as_raw_fd(),
        }
    }
}

/// The state of one client connection.
#[derive(Debug, Default)]
struct Connection {
    /// Bytes read and not yet written back, oldest first; never more than
    /// [`MAX_PENDING`].
    pending: VecDeque<u8>,
    /// The client shut down its side (a read returned 0). Once `pending` is
    /// written the server shuts down its side too, and closes.
    eof: bool,
}

impl Connection {
    /// Handles the readiness `ready` of `stream`, reading into `buf`; returns
    /// the events to wait for next, or `None` when the connection is done.
    ///
    /// # Errors
    ///
    /// The socket's (the client reset the connection, …); the caller closes
    /// the connection.
    fn on_ready(
        &mut self,
        stream: &TcpStream,
        ready: Events,
        buf: &mut [u8],
    ) -> io::Result<Option<Events>> {
        // Write first: it makes room for what is read next.
        if ready.is_writable() {
            self.flush(stream)?;
        }
        if ready.is_readable() {
            self.fill(stream, buf)?;
        }
        if self.eof && self.pending.is_empty() {
            stream.shutdown(Shutdown::Write)?;
            return Ok(None);
        }
        Ok(Some(self.interest()))
    }

    /// The events to wait for: readable while the client may send and the
    /// buffer has room, writable while the buffer holds anything. Never
    /// empty for a connection that is not done.
    fn interest(&self) -> Events {
        let mut events = Events::EMPTY;
        if !self.eof && self.pending.len() < MAX_PENDING {
            events |= EVENT_READ;
        }
        if !self.pending.is_empty() {
            events |= EVENT_WRITE;
        }
        events
    }

    /// Reads once from `stream`, at most what the buffer has room for. When
    /// nothing is waiting to be echoed the bytes go straight back from `buf`,
    /// and only what the socket does not take is kept.
    fn fill(&mut self, mut stream: &TcpStream, buf: &mut [u8]) -> io::Result<()> {
        let room = MAX_PENDING - self.pending.len();
        if room == 0 {
            return Ok(());
        }
        let len = room.min(buf.len());
        let buf = &mut buf[..len];
        let n = match try_io(|| stream.read(buf))? {
            Some(0) => {
                self.eof = true;
                return Ok(());
            }
            Some(n) => n,
            None => return Ok(()),
        };
        let mut read = &buf[..n];
        if self.pending.is_empty() {
            let written = try_io(|| stream.write(read))?.unwrap_or(0);
            read = &read[written..];
        }
        self.pending.extend(read);
        Ok(())
    }

    /// Writes as much of the buffer as `stream` takes now, in one call.
    fn flush(&mut self, mut stream: &TcpStream) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (front, back) = self.pending.as_slices();
        let bufs = [IoSlice::new(front), IoSlice::new(back)];
        if let Some(written) = try_io(|| stream.write_vectored(&bufs))? {
            self.pending.drain(..written);
        }
        Ok(())
    }
}

/// Accepts every client waiting on `listener`, onto `accepted`.
///
/// # Errors
///
/// The listener's own, such as `EMFILE` when the process is out of
/// descriptors. A client that gave up before it was accepted
/// (`ECONNABORTED`) is skipped.
fn accept_all(listener: &TcpListener, accepted: &mut Vec<TcpStream>) -> io::Result<()> {
    loop {
        match try_io(|| listener.accept()) {
            Ok(Some((stream, _peer))) => accepted.push(stream),
            Ok(None) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(err) => return Err(err),
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

/// Runs a non-blocking I/O call, again if a signal interrupted it; `Ok(None)`
/// means it would block.
fn try_io<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<Option<T>> {
    loop {
        match call() {
            Ok(value) => return Ok(Some(value)),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}
