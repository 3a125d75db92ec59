//! The echo server, over real sockets on 127.0.0.1.
//!
//! In this process (its `server` module on a thread): hundreds of clients
//! at once, a client that reads late, one that half-closes, and clients that
//! reset or vanish in the middle of a transfer. Every client sends its own
//! pseudo-random byte stream and checks the echo byte for byte, then
//! end-of-file.
//!
//! As an operator runs it (the `echo_server` binary, as a child process; on Linux,
//! where `/proc` shows its descriptors, CPU time and memory, and on
//! Windows, without those): see the [`operator`] module.
//!
//! Every socket has a timeout, so a server bug fails a test instead of
//! hanging it.

#[cfg(any(target_os = "linux", windows))]
mod operator;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use selectors_echo_server::buffer::MAX_PENDING;
use selectors_echo_server::server::EchoServer;

/// The longest any one connect, read or write may take before a test fails.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The unit in which clients write and check their streams.
const CHUNK: usize = 64 * 1024;

/// What tests that shrink socket buffers ask for (Linux doubles it).
const SMALL_BUFFER: usize = 64 * 1024;

/// The server's budget in these tests: more than all their clients hold.
const MAX_BUFFERED: usize = 1 << 30;

#[test]
fn hundreds_of_concurrent_clients_each_get_their_own_bytes_back() {
    const CLIENTS: u64 = 256;
    const CHUNKS: usize = (1 << 20) / CHUNK; // 1 MiB per client

    let listener = bind();
    // Small kernel buffers on the server's side, so that its own buffering
    // is busy too.
    shrink_buffers(&listener);
    let addr = spawn_server(listener);
    thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|seed| s.spawn(move || echo(addr, seed, CHUNKS)))
            .collect();
        for (seed, client) in clients.into_iter().enumerate() {
            let result = client.join().expect("client panicked");
            result.unwrap_or_else(|err| panic!("client {seed}: {err}"));
        }
    });
}

#[test]
fn a_client_that_reads_late_gets_every_byte_and_holds_the_server_back() {
    const SEED: u64 = 1000;
    // Far more than the server may buffer plus what the shrunken kernel
    // buffers hold: four of them (client send, server receive, server send,
    // client receive) of at most 2 * SMALL_BUFFER each.
    const CHUNKS: usize = 8 * MAX_PENDING / CHUNK;
    const HELD_BACK_AT: usize = 2 * MAX_PENDING;
    const STALL_WAIT: Duration = Duration::from_millis(500);

    let listener = bind();
    shrink_buffers(&listener); // inherited by the server's connections
    let addr = spawn_server(listener);
    let stream = connect(addr).unwrap();
    shrink_buffers(&stream);

    let sent = AtomicUsize::new(0);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        let writer = s.spawn(|| {
            let _done = done_tx; // dropped, so `done_rx` hears, however this ends
            send_noise(&stream, SEED, CHUNKS, &sent)
        });
        // Not reading yet. A server that bounds its buffer stops reading
        // once it is full, and the writer stalls; one that does not would
        // take all 8 MiB within this wait.
        let stalled = done_rx.recv_timeout(STALL_WAIT) == Err(RecvTimeoutError::Timeout);
        let sent_early = sent.load(Ordering::Relaxed);
        if !stalled {
            let outcome = writer.join().expect("writer panicked");
            panic!(
                "the writer ended ({outcome:?}) after {sent_early} bytes, \
                 the client reading nothing"
            );
        }
        assert!(
            sent_early < HELD_BACK_AT,
            "the writer got {sent_early} bytes out, the client reading nothing: \
             the server does not hold back",
        );
        let received = expect_noise(&stream, SEED, CHUNKS);
        let written = writer.join().expect("writer panicked");
        written.expect("writer");
        received.expect("reader");
    });
}

#[test]
fn a_client_that_half_closes_gets_all_its_bytes_then_eof() {
    const SEED: u64 = 2000;
    // More than the kernel buffers on the way back hold, so the server still
    // has bytes pending when it reads end-of-file; less than it buffers, so
    // the client can write it all before reading anything.
    const CHUNKS: usize = 3 * MAX_PENDING / 4 / CHUNK;

    let listener = bind();
    shrink_buffers(&listener);
    let addr = spawn_server(listener);
    let stream = connect(addr).unwrap();
    shrink_buffers(&stream);

    // Writes everything, then shuts down its writing side.
    send_noise(&stream, SEED, CHUNKS, &AtomicUsize::new(0)).unwrap();
    // Everything comes back, then end-of-file.
    expect_noise(&stream, SEED, CHUNKS).unwrap();
}

/// The budget is the server's, not a client's: while a client that does not
/// read holds all of it, no other client is read from (a new one's bytes
/// wait in the kernel); once it reads its echo, everyone is served again.
#[test]
fn a_spent_budget_pauses_every_client_until_it_drains() {
    const SEED: u64 = 4000;
    const BUDGET: usize = 256 * 1024;
    // Far more than the budget plus the shrunken kernel buffers.
    const CHUNKS: usize = 4 * MAX_PENDING / CHUNK;
    const STALL_WAIT: Duration = Duration::from_millis(300);
    const NO_ECHO_WAIT: Duration = Duration::from_millis(500);

    let listener = bind();
    shrink_buffers(&listener);
    let addr = spawn_server_with_budget(listener, BUDGET);
    let hog = connect(addr).unwrap();
    shrink_buffers(&hog);

    let sent = AtomicUsize::new(0);
    thread::scope(|s| {
        let writer = s.spawn(|| send_noise(&hog, SEED, CHUNKS, &sent));
        // Wait for the writer to stall: the server holds the whole budget.
        let mut last = usize::MAX;
        while sent.load(Ordering::Relaxed) != last {
            last = sent.load(Ordering::Relaxed);
            thread::sleep(STALL_WAIT);
        }
        assert!(last < CHUNKS * CHUNK, "the writer never stalled");

        let mut other = connect(addr).unwrap();
        other.write_all(b"hello").unwrap();
        other.set_read_timeout(Some(NO_ECHO_WAIT)).unwrap();
        let mut echo = [0; 5];
        let early = other.read(&mut echo);
        assert!(
            matches!(&early, Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)),
            "a client was read from while the budget was spent: {early:?}"
        );

        expect_noise(&hog, SEED, CHUNKS).expect("the hog's echo");
        writer.join().expect("writer panicked").expect("writer");
        other.set_read_timeout(Some(TIMEOUT)).unwrap();
        other.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"hello");
    });
}

#[test]
fn clients_that_reset_or_vanish_mid_transfer_do_not_disturb_others() {
    const SEED: u64 = 3000;
    const CHUNKS: usize = 64;
    const RUDE_CLIENTS: usize = 48;

    let addr = spawn_server(bind());
    let mut healthy = connect(addr).unwrap();
    let mut outgoing = Noise::new(SEED);
    let mut incoming = Noise::new(SEED);
    let mut echoed = vec![0; CHUNK];
    thread::scope(|s| {
        let mut rude = Vec::new();
        for index in 0..CHUNKS {
            // The rude clients come and go while the healthy one is a
            // quarter to three quarters through its transfer.
            if index == CHUNKS / 4 {
                rude = (SEED + 1..)
                    .zip(Exit::ALL.into_iter().cycle())
                    .take(RUDE_CLIENTS)
                    .map(|(seed, exit)| s.spawn(move || leave_rudely(addr, seed, exit)))
                    .collect();
            }
            if index == 3 * CHUNKS / 4 {
                for (n, client) in rude.drain(..).enumerate() {
                    let result = client.join().expect("rude client panicked");
                    result.unwrap_or_else(|err| panic!("rude client {n}: {err}"));
                }
            }
            healthy.write_all(outgoing.next_chunk()).unwrap();
            healthy.read_exact(&mut echoed).unwrap();
            check_chunk(&echoed, incoming.next_chunk(), index).unwrap();
        }
    });
    healthy.shutdown(Shutdown::Write).unwrap();
    assert_eq!(healthy.read(&mut echoed).unwrap(), 0, "bytes past the end");

    // And the server still takes new clients.
    echo(addr, SEED + 999, 4).unwrap();
}

/// How a rude client leaves.
#[derive(Debug, Clone, Copy)]
enum Exit {
    /// Resets the connection: `SO_LINGER` 0, then close.
    Reset,
    /// Closes with echo unread, which makes the kernel reset the connection.
    CloseUnread,
    /// Closes as soon as it has written, without waiting for any echo.
    Vanish,
}

impl Exit {
    /// Every way, for rude clients to take turns.
    const ALL: [Exit; 3] = [Exit::Reset, Exit::CloseUnread, Exit::Vanish];
}

/// A client that sends half a megabyte and leaves by `exit` while the server
/// is echoing it.
fn leave_rudely(addr: SocketAddr, seed: u64, exit: Exit) -> io::Result<()> {
    let mut stream = connect(addr)?;
    let mut noise = Noise::new(seed);
    // Less than the server buffers: never blocks for long unread.
    for _ in 0..MAX_PENDING / 2 / CHUNK {
        stream.write_all(noise.next_chunk())?;
    }
    match exit {
        Exit::Reset | Exit::CloseUnread => {
            // The server is echoing to us; leave in the middle of it.
            let mut first = [0];
            stream.read_exact(&mut first)?;
            if let Exit::Reset = exit {
                sockopt::reset_on_close(&stream);
            }
        }
        Exit::Vanish => {}
    }
    Ok(())
}

/// A well-behaved client of `addr`: writes `chunks` chunks of stream `seed`
/// from one thread while reading and checking the echo on another, then
/// expects end-of-file.
fn echo(addr: SocketAddr, seed: u64, chunks: usize) -> io::Result<()> {
    let stream = connect(addr)?;
    thread::scope(|s| {
        let writer = s.spawn(|| send_noise(&stream, seed, chunks, &AtomicUsize::new(0)));
        let received = expect_noise(&stream, seed, chunks);
        if received.is_err() {
            // Unblock the writer: nobody reads the echo any more.
            let _ = stream.shutdown(Shutdown::Both);
        }
        let written = writer.join().expect("writer panicked");
        // The reader's error first: after it, the writer fails too, with a
        // broken pipe that says nothing about the cause.
        received.and(written)
    })
}

/// Writes `chunks` chunks of stream `seed` to `stream`, counting the bytes
/// written in `sent`, then shuts down the writing side.
fn send_noise(
    mut stream: &TcpStream,
    seed: u64,
    chunks: usize,
    sent: &AtomicUsize,
) -> io::Result<()> {
    let mut noise = Noise::new(seed);
    for _ in 0..chunks {
        stream.write_all(noise.next_chunk())?;
        sent.fetch_add(CHUNK, Ordering::Relaxed);
    }
    stream.shutdown(Shutdown::Write)
}

/// Reads `chunks` chunks from `stream`, checks that they are stream `seed`,
/// and then that end-of-file follows.
fn expect_noise(mut stream: &TcpStream, seed: u64, chunks: usize) -> io::Result<()> {
    let mut noise = Noise::new(seed);
    let mut received = vec![0; CHUNK];
    for index in 0..chunks {
        stream.read_exact(&mut received)?;
        check_chunk(&received, noise.next_chunk(), index)?;
    }
    match stream.read(&mut received)? {
        0 => Ok(()),
        n => Err(io::Error::other(format!("{n} bytes past the end"))),
    }
}

/// Checks that the `index`-th chunk `received` is the one `expected`.
fn check_chunk(received: &[u8], expected: &[u8], index: usize) -> io::Result<()> {
    if received == expected {
        return Ok(());
    }
    let at = received
        .iter()
        .zip(expected)
        .take_while(|(a, b)| a == b)
        .count();
    Err(io::Error::other(format!(
        "byte {} is wrong: {:#04x} instead of {:#04x}",
        index * CHUNK + at,
        received[at],
        expected[at],
    )))
}

/// A client's byte stream, chunk by chunk: pseudo-random (`SplitMix64`), and
/// different for every seed, so bytes lost, repeated, reordered or sent to
/// the wrong client are all caught.
struct Noise {
    state: u64,
    chunk: Vec<u8>,
}

impl Noise {
    /// `SplitMix64`'s increment: the golden ratio, in 64 bits.
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    /// The stream of `seed`, from its start.
    fn new(seed: u64) -> Self {
        Noise {
            // Scrambled, so that nearby seeds start far apart.
            state: Noise::mix(seed),
            chunk: vec![0; CHUNK],
        }
    }

    /// The next [`CHUNK`] bytes of the stream.
    fn next_chunk(&mut self) -> &[u8] {
        for word in self.chunk.chunks_exact_mut(8) {
            self.state = self.state.wrapping_add(Noise::GAMMA);
            word.copy_from_slice(&Noise::mix(self.state).to_le_bytes());
        }
        &self.chunk
    }

    /// `SplitMix64`'s output function, a bijection of `u64`.
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A listener on a free port of 127.0.0.1.
fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

/// Serves `listener` on a background thread, for the rest of the process;
/// returns its address.
fn spawn_server(listener: TcpListener) -> SocketAddr {
    spawn_server_with_budget(listener, MAX_BUFFERED)
}

/// As [`spawn_server`], the server holding at most `budget` bytes.
fn spawn_server_with_budget(listener: TcpListener, budget: usize) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    let server = EchoServer::new(listener, budget).expect("echo server");
    thread::spawn(move || server.run().expect("echo server failed"));
    addr
}

/// Connects to `addr`, with every later read and write limited to [`TIMEOUT`].
fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    Ok(stream)
}

/// Shrinks the kernel's send and receive buffers of `socket` to
/// [`SMALL_BUFFER`], so the server's own buffering shows. A listener passes
/// them on to the connections it accepts.
fn shrink_buffers(socket: &impl sockopt::AsSocket) {
    sockopt::set_buffer_sizes(socket, SMALL_BUFFER);
}

/// The socket options the tests set, with nix on Unix.
#[cfg(unix)]
mod sockopt {
    pub use std::os::fd::AsFd as AsSocket;

    use nix::sys::socket::{setsockopt, sockopt};

    /// Sets `SO_SNDBUF` and `SO_RCVBUF` to `size`.
    pub fn set_buffer_sizes(socket: &impl AsSocket, size: usize) {
        setsockopt(socket, sockopt::SndBuf, &size).expect("SO_SNDBUF");
        setsockopt(socket, sockopt::RcvBuf, &size).expect("SO_RCVBUF");
    }

    /// `SO_LINGER` on, with a time of 0: closing resets the connection.
    pub fn reset_on_close(socket: &impl AsSocket) {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        setsockopt(socket, sockopt::Linger, &linger).expect("SO_LINGER");
    }
}

/// The socket options the tests set, with Winsock's `setsockopt` through
/// windows-sys.
#[cfg(windows)]
mod sockopt {
    use std::io;
    use std::os::windows::io::AsRawSocket;
    pub use std::os::windows::io::AsSocket;

    use windows_sys::Win32::Networking::WinSock::{
        setsockopt, LINGER, SOCKET, SOL_SOCKET, SO_LINGER, SO_RCVBUF, SO_SNDBUF,
    };

    /// Sets the `SOL_SOCKET` option `name` of `socket` to `value`.
    fn set<T>(socket: &impl AsSocket, name: i32, value: &T) {
        let len = i32::try_from(std::mem::size_of::<T>()).unwrap();
        let socket = socket.as_socket().as_raw_socket() as SOCKET;
        // SAFETY: the pointer and length describe `value`, which outlives
        // the call; the kernel only reads them, and refuses a length wrong
        // for `name`.
        let ret = unsafe { setsockopt(socket, SOL_SOCKET, name, (value as *const T).cast(), len) };
        assert_eq!(ret, 0, "setsockopt({name}): {}", io::Error::last_os_error());
    }

    /// Sets `SO_SNDBUF` and `SO_RCVBUF` to `size`.
    pub fn set_buffer_sizes(socket: &impl AsSocket, size: usize) {
        let size = i32::try_from(size).unwrap();
        set(socket, SO_SNDBUF, &size);
        set(socket, SO_RCVBUF, &size);
    }

    /// `SO_LINGER` on, with a time of 0: closing resets the connection.
    pub fn reset_on_close(socket: &impl AsSocket) {
        let linger = LINGER {
            l_onoff: 1,
            l_linger: 0,
        };
        set(socket, SO_LINGER, &linger);
    }
}
