//! The buffering rules: how much is read at once, what a connection keeps
//! when its client will not take the echo yet, and how much all of a
//! server's connections may keep together.
//!
//! A [`Connection`] holds one client's bytes read and not yet echoed; a
//! [`Budget`] counts those bytes over all of a server's connections. Both
//! leave the waiting to their caller: [`server`](crate::server) waits on a
//! level-triggered selector, asking [`Connection::wants_read`] and
//! [`Connection::wants_write`] what to watch; the benchmark's peer on mio
//! (edge-triggered) calls [`Connection::fill`] and [`Connection::flush`]
//! until they return [`Outcome::WouldBlock`].
//!
//! # Examples
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//!
//! use selectors_echo_server::buffer::{Budget, Connection, Outcome, READ_SIZE};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut client = TcpStream::connect(listener.local_addr()?)?;
//! let (stream, _) = listener.accept()?;
//! stream.set_nonblocking(true)?;
//!
//! let mut budget = Budget::new(1 << 20);
//! let mut connection = Connection::default();
//! let mut buf = vec![0; READ_SIZE];
//! // Nothing sent yet: the read would block.
//! assert_eq!(connection.fill(&stream, &mut buf, &mut budget)?, Outcome::WouldBlock);
//!
//! client.write_all(b"hello")?;
//! client.shutdown(std::net::Shutdown::Write)?;
//! // The echo goes straight back: nothing is kept.
//! while connection.wants_read(&budget) {
//!     connection.fill(&stream, &mut buf, &mut budget)?;
//! }
//! assert!(!connection.wants_write());
//! assert!(connection.finish(&stream)?); // the client's end-of-file, passed on
//! connection.release(&mut budget);
//!
//! let mut echo = Vec::new();
//! client.read_to_end(&mut echo)?;
//! assert_eq!(echo, b"hello");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};

/// The most bytes one connection holds read but not yet echoed: 1 MiB.
///
/// A connection with this much pending is not read from until its client has
/// taken some of the echo back.
pub const MAX_PENDING: usize = 1 << 20;

/// The most bytes taken from a socket in one read: the size of the read
/// buffer a server's connections share.
pub const READ_SIZE: usize = 64 * 1024;

/// What all of a server's connections may hold when no other maximum is
/// given (`--max-buffered`): 64 clients that stopped reading, at
/// [`MAX_PENDING`] each.
pub const DEFAULT_MAX_BUFFERED: usize = 64 * MAX_PENDING;

/// What one non-blocking read or write came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was done, or there was nothing to do.
    Done,
    /// The socket would block: nothing was done.
    WouldBlock,
}

/// Bytes held by all of a server's connections, against its maximum.
#[derive(Debug)]
pub struct Budget {
    /// Bytes read and not yet echoed, over all connections.
    held: usize,
    /// The most `held` may reach.
    max: usize,
}

impl Budget {
    /// A budget of `max` bytes (at least one), none of them held.
    pub fn new(max: usize) -> Budget {
        Budget {
            held: 0,
            max: max.max(1),
        }
    }

    /// Bytes that may still be buffered.
    #[inline]
    fn room(&self) -> usize {
        self.max - self.held
    }

    /// There is room for a full read (or for all of the budget, when it is
    /// smaller than that): the moment to read again from connections that
    /// stopped for want of room.
    #[inline]
    pub fn has_room_for_a_read(&self) -> bool {
        self.room() >= READ_SIZE.min(self.max)
    }
}

/// One connection's bytes read and not yet echoed, and whether its client
/// is done sending.
///
/// The socket is the caller's, passed to each call, so that it can live
/// where the event loop keeps it (a selector's key, for one).
#[derive(Debug, Default)]
pub struct Connection {
    /// Bytes read and not yet written back, oldest first; never more than
    /// [`MAX_PENDING`]. Freed whenever it is emptied: most connections
    /// never need it (the echo goes straight back), and one that did gives
    /// its memory back as soon as its client catches up.
    pending: VecDeque<u8>,
    /// The client shut down its side (a read returned 0). Once `pending` is
    /// written, [`finish`](Connection::finish) shuts down the server's side.
    eof: bool,
}

impl Connection {
    /// Reading may add to the echo: the client has not shut down its side
    /// and there is room, in this connection and in `budget`.
    #[inline]
    pub fn wants_read(&self, budget: &Budget) -> bool {
        !self.eof && self.room(budget) > 0
    }

    /// Bytes wait to be written back.
    #[inline]
    pub fn wants_write(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The client shut down its side (a read returned end-of-file).
    #[inline]
    pub fn eof(&self) -> bool {
        self.eof
    }

    /// This connection holds [`MAX_PENDING`] bytes: it may not read until
    /// its client takes some back, whatever the budget.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.pending.len() == MAX_PENDING
    }

    /// Bytes this connection may still buffer: its own room, within the
    /// budget's.
    #[inline]
    fn room(&self, budget: &Budget) -> usize {
        (MAX_PENDING - self.pending.len()).min(budget.room())
    }

    /// Reads once from `stream` into `buf`, at most what may be buffered.
    /// When nothing is waiting to be echoed the bytes go straight back from
    /// `buf`, and only what the socket does not take is kept, and counted
    /// in `budget`. Without room it does nothing.
    ///
    /// # Errors
    ///
    /// The socket's (the client reset the connection, …); then the caller
    /// closes the connection. A signal's interruption is retried.
    #[inline]
    pub fn fill(
        &mut self,
        mut stream: &TcpStream,
        buf: &mut [u8],
        budget: &mut Budget,
    ) -> io::Result<Outcome> {
        let len = self.room(budget).min(buf.len());
        if len == 0 {
            return Ok(Outcome::Done);
        }
        let buf = &mut buf[..len];
        let n = match try_io(|| stream.read(buf))? {
            Some(0) => {
                self.eof = true;
                return Ok(Outcome::Done);
            }
            Some(n) => n,
            None => return Ok(Outcome::WouldBlock),
        };
        let mut read = &buf[..n];
        if self.pending.is_empty() {
            let written = try_io(|| stream.write(read))?.unwrap_or(0);
            read = &read[written..];
        }
        self.pending.extend(read);
        budget.held += read.len();
        Ok(Outcome::Done)
    }

    /// Writes as much of what is pending as `stream` takes now, in one
    /// call, giving it back to `budget`, and frees the buffer once it is
    /// empty.
    ///
    /// # Errors
    ///
    /// As [`fill`](Connection::fill).
    #[inline]
    pub fn flush(&mut self, mut stream: &TcpStream, budget: &mut Budget) -> io::Result<Outcome> {
        if self.pending.is_empty() {
            return Ok(Outcome::Done);
        }
        let (front, back) = self.pending.as_slices();
        let bufs = [IoSlice::new(front), IoSlice::new(back)];
        let Some(written) = try_io(|| stream.write_vectored(&bufs))? else {
            return Ok(Outcome::WouldBlock);
        };
        self.pending.drain(..written);
        budget.held -= written;
        if self.pending.is_empty() {
            self.pending = VecDeque::new();
        }
        Ok(Outcome::Done)
    }

    /// Once the client is done sending and all of it is echoed, shuts down
    /// the sending side of `stream`, so that the client reads end-of-file;
    /// `true` then: the connection is done, to be closed.
    ///
    /// # Errors
    ///
    /// The shutdown's; the caller closes the connection.
    pub fn finish(&self, stream: &TcpStream) -> io::Result<bool> {
        if self.eof && self.pending.is_empty() {
            stream.shutdown(Shutdown::Write)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Gives back to `budget` what this connection holds, as it is closed.
    pub fn release(self, budget: &mut Budget) {
        budget.held -= self.pending.len();
    }
}

/// Runs a non-blocking I/O call, again if a signal interrupted it; `Ok(None)`
/// means it would block.
#[inline]
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
