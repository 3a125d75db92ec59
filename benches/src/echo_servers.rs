//! The peers of our echo server in the `echo` workload, run as child
//! processes of this bench binary (`compare --echo-server NAME
//! [--max-buffered BYTES]`): the same server written on raw epoll and on
//! mio, and the echo server a tokio user writes, on tokio's current-thread
//! runtime (`tokio`) and on its multi-thread runtime with two workers
//! (`tokio-mt`).
//!
//! raw epoll and mio run one thread each, as the workload runs ours, with
//! our server's own buffering rules ([`selectors_echo_server::buffer`]), so
//! that the three do the same work: a 64 KiB read buffer shared by all
//! connections, the echo written straight back from it and only what the
//! socket does not take kept, at most 1 MiB per connection and freed once
//! written out; all connections together hold at most the budget (64 MiB by
//! default), and a connection that may not read and has nothing to write
//! waits, unwatched, for room. `TCP_NODELAY` on every client. They print our
//! server's first line (`echo server listening on ADDR (…)`) and run until
//! killed.
//!
//! tokio's server is written as tokio's docs teach it (see [`tokio_echo`]):
//! one task per connection, `read` into the task's own 64 KiB buffer, then
//! `write_all` of what was read. It keeps no pending buffer: a task reads
//! again only once its client has taken the whole echo, so a connection
//! holds at most one read (64 KiB, below our 1 MiB per client), and a slow
//! client stops its own task. tokio has no count of bytes held across tasks
//! short of a semaphore acquired around every read; the idiom for a global
//! bound is a semaphore of connections (as tokio's mini-redis does), and
//! the budget maps to `budget / 64 KiB` connections (1024 by default), each
//! holding its buffer for its life. The workload's 1000 clients stay under
//! it.

use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use selectors_echo_server::buffer::{Budget, Connection, Outcome, DEFAULT_MAX_BUFFERED, READ_SIZE};

/// `--echo-server NAME [--max-buffered BYTES]`: runs that server on a free
/// port of 127.0.0.1 until killed; `None` if the arguments are not that.
pub fn main_if_asked() -> Option<io::Result<()>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("--echo-server") {
        return None;
    }
    let name = args.get(1).cloned().unwrap_or_default();
    let max_buffered = match args.get(2).map(String::as_str) {
        Some("--max-buffered") => match args.get(3).and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return Some(Err(io::Error::other("--max-buffered needs a number"))),
        },
        _ => DEFAULT_MAX_BUFFERED,
    };
    Some(serve(&name, max_buffered))
}

fn serve(name: &str, max_buffered: usize) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let backend = match name {
        "raw-epoll" => "raw epoll",
        "mio" => "mio",
        "tokio" => "tokio, current-thread runtime",
        "tokio-mt" => "tokio, multi-thread runtime",
        other => return Err(io::Error::other(format!("no echo server `{other}`"))),
    };
    let _ = writeln!(
        io::stdout(),
        "echo server listening on {} (backend: {backend})",
        listener.local_addr()?
    );
    let budget = Budget::new(max_buffered);
    match name {
        "raw-epoll" => RawEpoll::new(listener, budget)?.run(),
        "mio" => MioServer::new(listener, budget)?.run(),
        "tokio" => tokio_echo(listener, 1, max_buffered),
        _ => tokio_echo(listener, TOKIO_WORKERS, max_buffered),
    }
}

/// One client: its socket and what the shared rules keep for it.
struct Conn {
    stream: TcpStream,
    buffer: Connection,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buffer: Connection::default(),
        }
    }
}

/// Accepts what is waiting, non-blocking and `TCP_NODELAY`, onto `out`;
/// errors other than `WouldBlock` end the round (the bench never runs out
/// of descriptors).
fn accept_all(listener: &TcpListener, out: &mut Vec<TcpStream>) {
    while let Ok((stream, _)) = listener.accept() {
        if stream.set_nonblocking(true).is_ok() && stream.set_nodelay(true).is_ok() {
            out.push(stream);
        }
    }
}

// ---------------------------------------------------------------------------
// raw epoll, level-triggered, as our server's selector does it

struct RawEpoll {
    epfd: OwnedFd,
    listener: TcpListener,
    /// By descriptor: the connection and the events it is registered for.
    conns: Vec<Option<(Conn, u32)>>,
    registered: usize,
    events: Vec<libc::epoll_event>,
    parked: Vec<Conn>,
    budget: Budget,
    buf: Box<[u8]>,
    accepted: Vec<TcpStream>,
}

impl RawEpoll {
    fn new(listener: TcpListener, budget: Budget) -> io::Result<RawEpoll> {
        // SAFETY: plain system call; checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor owned by nobody else.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let server = RawEpoll {
            epfd,
            listener,
            conns: Vec::new(),
            registered: 1,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 1],
            parked: Vec::new(),
            budget,
            buf: vec![0; READ_SIZE].into_boxed_slice(),
            accepted: Vec::new(),
        };
        server.ctl(
            libc::EPOLL_CTL_ADD,
            server.listener.as_raw_fd(),
            libc::EPOLLIN as u32,
        )?;
        Ok(server)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        // SAFETY: `event` is valid for the call; the result is checked.
        if unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut event) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn add(&mut self, conn: Conn, events: u32) -> io::Result<()> {
        let fd = conn.stream.as_raw_fd();
        self.ctl(libc::EPOLL_CTL_ADD, fd, events)?;
        if self.conns.len() <= fd as usize {
            self.conns.resize_with(fd as usize + 1, || None);
        }
        self.conns[fd as usize] = Some((conn, events));
        self.registered += 1;
        if self.events.len() < self.registered {
            self.events
                .resize(self.registered, libc::epoll_event { events: 0, u64: 0 });
        }
        Ok(())
    }

    fn remove(&mut self, fd: RawFd) -> io::Result<Conn> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0)?;
        self.registered -= 1;
        let (conn, _) = self.conns[fd as usize].take().expect("registered");
        Ok(conn)
    }

    fn run(mut self) -> io::Result<()> {
        let listener_fd = self.listener.as_raw_fd();
        loop {
            let n = crate::drivers::epoll_wait(&self.epfd, &mut self.events)?;
            for i in 0..n {
                let event = self.events[i];
                let fd = event.u64 as RawFd;
                if fd == listener_fd {
                    accept_all(&self.listener, &mut self.accepted);
                    let accepted = std::mem::take(&mut self.accepted);
                    for stream in accepted {
                        self.add(Conn::new(stream), libc::EPOLLIN as u32)?;
                    }
                    continue;
                }
                self.on_ready(fd, event.events)?;
            }
            if !self.parked.is_empty() && self.budget.has_room_for_a_read() {
                for conn in std::mem::take(&mut self.parked) {
                    self.add(conn, libc::EPOLLIN as u32)?;
                }
            }
        }
    }

    fn on_ready(&mut self, fd: RawFd, bits: u32) -> io::Result<()> {
        let Some(Some((conn, registered))) = self.conns.get_mut(fd as usize) else {
            return Ok(());
        };
        let registered = *registered;
        // Python's poll-like rule, as the selector applies it: an error or
        // hang-up is both readable and writable, masked by what is watched.
        let readable =
            bits & !(libc::EPOLLOUT as u32) != 0 && registered & libc::EPOLLIN as u32 != 0;
        let writable =
            bits & !(libc::EPOLLIN as u32) != 0 && registered & libc::EPOLLOUT as u32 != 0;
        let Conn { stream, buffer } = conn;
        let result = (|| {
            if writable {
                buffer.flush(stream, &mut self.budget)?;
            }
            if readable {
                buffer.fill(stream, &mut self.buf, &mut self.budget)?;
            }
            buffer.finish(stream)
        })();
        let mut events = 0;
        if buffer.wants_read(&self.budget) {
            events |= libc::EPOLLIN as u32;
        }
        if buffer.wants_write() {
            events |= libc::EPOLLOUT as u32;
        }
        match result {
            Ok(false) if events != 0 => {
                if events != registered {
                    self.ctl(libc::EPOLL_CTL_MOD, fd, events)?;
                    if let Some(Some((_, registered))) = self.conns.get_mut(fd as usize) {
                        *registered = events;
                    }
                }
            }
            Ok(false) => {
                let conn = self.remove(fd)?;
                self.parked.push(conn);
            }
            Ok(true) | Err(_) => {
                let conn = self.remove(fd)?;
                conn.buffer.release(&mut self.budget);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// mio, edge-triggered, as its docs teach: read and write until `WouldBlock`

/// The listener's token; connections use their slab index.
const LISTENER: mio::Token = mio::Token(usize::MAX);

struct MioServer {
    poll: mio::Poll,
    listener: mio::net::TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Connections that stopped reading for want of budget: driven again
    /// once there is room (edge-triggered: no event would come for them).
    paused: Vec<usize>,
    budget: Budget,
    buf: Box<[u8]>,
}

impl MioServer {
    fn new(listener: TcpListener, budget: Budget) -> io::Result<MioServer> {
        let poll = mio::Poll::new()?;
        let mut listener = mio::net::TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, mio::Interest::READABLE)?;
        Ok(MioServer {
            poll,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            paused: Vec::new(),
            budget,
            buf: vec![0; READ_SIZE].into_boxed_slice(),
        })
    }

    fn run(mut self) -> io::Result<()> {
        let mut events = mio::Events::with_capacity(1024);
        loop {
            if let Err(err) = self.poll.poll(&mut events, None) {
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            for event in &events {
                if event.token() == LISTENER {
                    self.accept()?;
                } else {
                    self.drive(event.token().0)?;
                }
            }
            if !self.paused.is_empty() && self.budget.has_room_for_a_read() {
                for token in std::mem::take(&mut self.paused) {
                    self.drive(token)?;
                }
            }
        }
    }

    fn accept(&mut self) -> io::Result<()> {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(_) => return Ok(()),
            };
            if stream.set_nodelay(true).is_err() {
                continue;
            }
            let token = self.free.pop().unwrap_or(self.conns.len());
            let mut stream = stream;
            self.poll.registry().register(
                &mut stream,
                mio::Token(token),
                mio::Interest::READABLE | mio::Interest::WRITABLE,
            )?;
            // The descriptor moves to std's stream, which owns it from
            // here; mio's registration is by descriptor.
            let conn = Conn::new(TcpStream::from(stream));
            if token == self.conns.len() {
                self.conns.push(Some(conn));
            } else {
                self.conns[token] = Some(conn);
            }
        }
    }

    /// Writes and reads until the socket would block, the buffer is full
    /// (a writable edge comes back for it), or the budget is spent (then
    /// the connection waits on `paused`).
    fn drive(&mut self, token: usize) -> io::Result<()> {
        let Some(Some(conn)) = self.conns.get_mut(token) else {
            return Ok(());
        };
        let Conn { stream, buffer } = conn;
        let paused = &mut self.paused;
        let result = (|| -> io::Result<bool> {
            loop {
                // Write until empty or the socket is full.
                while buffer.wants_write() {
                    if buffer.flush(stream, &mut self.budget)? == Outcome::WouldBlock {
                        break;
                    }
                }
                // Done once all is written after end-of-file; else the
                // writable edge comes back here.
                if buffer.finish(stream)? {
                    return Ok(true);
                }
                if buffer.eof() {
                    return Ok(false);
                }
                if !buffer.wants_read(&self.budget) {
                    // Its own buffer full: the writable edge comes back.
                    // The budget spent: it waits for room.
                    if !buffer.is_full() && !paused.contains(&token) {
                        paused.push(token);
                    }
                    return Ok(false);
                }
                if buffer.fill(stream, &mut self.buf, &mut self.budget)? == Outcome::WouldBlock {
                    // Read until it would block: the readable edge comes back.
                    return Ok(false);
                }
            }
        })();
        match result {
            Ok(false) => Ok(()),
            Ok(true) | Err(_) => {
                if let Some(Conn { stream, buffer }) = self.conns[token].take() {
                    buffer.release(&mut self.budget);
                    // mio 1.x deregisters a closed descriptor by itself
                    // (epoll forgets it on close).
                    drop(stream);
                    self.free.push(token);
                }
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------
// tokio, one task per connection, as its docs teach

/// The workers of `tokio-mt`: as many as the threads ours is given in the
/// same table (`--threads 2`).
pub const TOKIO_WORKERS: usize = 2;

/// The echo server a tokio user writes: `#[tokio::main]` spelled out, on the
/// current-thread runtime (`workers` 1) or the multi-thread one. The accept
/// loop runs in `block_on`, each connection in a task of its own; a
/// semaphore of `max_buffered / READ_SIZE` connections bounds the memory,
/// as the module docs say.
fn tokio_echo(listener: TcpListener, workers: usize, max_buffered: usize) -> io::Result<()> {
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_io()
            .build()?
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let connections = Arc::new(tokio::sync::Semaphore::new(
            (max_buffered / READ_SIZE).max(1),
        ));
        loop {
            let permit = Arc::clone(&connections)
                .acquire_owned()
                .await
                .map_err(io::Error::other)?;
            // As our server, an `accept` error is not fatal (the bench
            // never runs out of descriptors).
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                // An error ends the connection, as in ours.
                let _ = tokio_connection(stream).await;
                drop(permit);
            });
        }
    })
}

/// One connection: read into the task's buffer, write all of it back, until
/// the client shuts down its side; then shut down ours.
async fn tokio_connection(mut stream: tokio::net::TcpStream) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    stream.set_nodelay(true)?;
    let mut buf = vec![0; READ_SIZE];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return stream.shutdown().await;
        }
        stream.write_all(&buf[..n]).await?;
    }
}
