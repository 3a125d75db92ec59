//! The server binary as an operator runs it: a child process, real
//! `RLIMIT_NOFILE`, real signals, its CPU time and memory read from
//! `/proc/<pid>/stat` and `/proc/<pid>/status`.
//!
//! Cargo builds the binary for these tests, so it is never stale. Bounds on
//! CPU time and memory are loose enough for a loaded 2-core machine, and
//! far from what a server that spins or keeps its buffers would show.
//!
//! On Windows the tests that need none of that run: the command line,
//! serving, a closed stdout, and a graceful stop. There is no signal to
//! send, and a console control event reaches a child only if it shares the
//! test's console (`GenerateConsoleCtrlEvent`), which a test run may not
//! have and which Wine does not deliver dependably: the server runs with
//! `--stop-on-stdin-eof`, and the tests stop it by closing its standard
//! input, which wakes its selectors as its Ctrl-C handler does.

use std::env;
#[cfg(target_os = "linux")]
use std::fs;
#[cfg(target_os = "linux")]
use std::io;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
#[cfg(unix)]
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

#[cfg(unix)]
use nix::sys::signal::Signal;

use super::{connect, TIMEOUT};
#[cfg(target_os = "linux")]
use super::{sockopt, MAX_PENDING};

#[cfg(target_os = "linux")]
const MIB: usize = 1 << 20;

/// The option that makes the server stop when its standard input ends.
const STOP_ON_STDIN_EOF: &str = "--stop-on-stdin-eof";

/// How a test stops the server gracefully.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// Sends it this signal.
    #[cfg(unix)]
    Signal(Signal),
    /// Closes its standard input (it runs with [`STOP_ON_STDIN_EOF`]).
    StdinEof,
}

/// What an operator's Ctrl-C does: `SIGINT` on Unix; on Windows, closing its
/// standard input stands for it (see the module docs).
#[cfg(unix)]
const CTRL_C: Stop = Stop::Signal(Signal::SIGINT);
#[cfg(windows)]
const CTRL_C: Stop = Stop::StdinEof;

/// What a service manager does: `SIGTERM`.
#[cfg(target_os = "linux")]
const GRACEFUL: Stop = Stop::Signal(Signal::SIGTERM);

/// Out of descriptors: the server keeps serving its clients, uses next to
/// no CPU while clients wait in the backlog, serves them as soon as
/// connections close, and reports the `EMFILE`s when stopped.
///
/// Linux only: it needs `RLIMIT_NOFILE` and `/proc`. (Windows has no
/// per-process socket limit that a test could lower.)
#[cfg(target_os = "linux")]
#[test]
fn out_of_descriptors_it_keeps_serving_idles_and_recovers() {
    const LIMIT: usize = 64;
    const WAITING: usize = 16;
    const IDLE_FOR: Duration = Duration::from_secs(2);

    let server = Server::start_limited(&["127.0.0.1:0"], LIMIT as u64);
    // What the server opened for itself (standard streams, selector,
    // waker, listener): the rest is for clients. (Descriptors inherited
    // from a test that was spawning at the time may lie beyond the limit:
    // only those below it count.)
    let capacity = LIMIT - server.open_fds_below(LIMIT);
    let mut clients: Vec<TcpStream> = (0..capacity + WAITING)
        .map(|i| {
            let mut client = connect(server.addr).unwrap();
            client.write_all(&message(i)).unwrap();
            client
        })
        .collect();
    // FIFO backlog: the first `capacity` are accepted, and served.
    for (i, client) in clients[..capacity].iter_mut().enumerate() {
        expect_echo(client, i);
    }
    assert_eq!(
        server.open_fds_below(LIMIT),
        LIMIT,
        "the server is out of descriptors"
    );

    // Exhausted, with clients waiting: a server whose listener stayed
    // registered would spin on `accept` failing.
    let cpu_before = server.cpu_time();
    thread::sleep(IDLE_FOR);
    let cpu = server.cpu_time() - cpu_before;
    eprintln!(
        "out of descriptors: {cpu:?} of CPU in {IDLE_FOR:?} ({} waiting clients)",
        WAITING
    );
    assert!(
        cpu < Duration::from_millis(200),
        "the server used {cpu:?} of CPU in {IDLE_FOR:?} while out of descriptors"
    );
    for (i, client) in clients.iter_mut().enumerate().skip(capacity) {
        client.set_nonblocking(true).unwrap();
        let got = client.read(&mut [0; 8]);
        assert!(
            matches!(&got, Err(err) if err.kind() == io::ErrorKind::WouldBlock),
            "client {i}, beyond the limit, was answered: {got:?}"
        );
        client.set_nonblocking(false).unwrap();
    }
    // Its clients are still served.
    for (i, client) in clients[..capacity].iter_mut().enumerate() {
        client.write_all(&message(i)).unwrap();
        expect_echo(client, i);
    }

    // Connections close: the waiting clients are accepted and served.
    clients.drain(..WAITING);
    for (i, client) in clients.iter_mut().enumerate().skip(capacity - WAITING) {
        expect_echo(client, i + WAITING);
    }
    // Full again; one more closes, a new client is served.
    clients.pop();
    let mut late = connect(server.addr).unwrap();
    late.write_all(&message(999)).unwrap();
    expect_echo(&mut late, 999);

    let stop = server.stop(GRACEFUL);
    stop.assert_clean();
    let served = capacity + WAITING + 1;
    stop.assert_says(&format!("stopped: served {served} clients"));
    stop.assert_says("accept errors: EMFILE ");
}

/// stdout closed (`echo_server | head -1`): serving and stopping still
/// work, exit status 0, no panic.
#[test]
fn a_closed_stdout_is_ignored() {
    let mut server = Server::start(&["127.0.0.1:0"]);
    drop(server.stdout.take()); // the first line was read; the pipe closes
    let mut client = connect(server.addr).unwrap();
    client.write_all(&message(7)).unwrap();
    expect_echo(&mut client, 7);
    let stop = server.stop(CTRL_C);
    stop.assert_clean();
    assert_eq!(stop.stdout, "", "stdout was closed");
}

/// `SIGINT` (Ctrl-C) and `SIGTERM` alike: every client sees end-of-file,
/// exit status 0, and the summary.
#[cfg(unix)]
#[test]
fn sigint_and_sigterm_stop_it_and_close_every_connection() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        stops_and_closes_every_connection(&["127.0.0.1:0"], Stop::Signal(signal));
    }
}

/// With `--stop-on-stdin-eof`, the end of standard input stops it as
/// Ctrl-C does (on Windows, the tests' way to stop it).
#[test]
fn the_end_of_stdin_stops_it_and_closes_every_connection_when_asked() {
    stops_and_closes_every_connection(&[STOP_ON_STDIN_EOF, "127.0.0.1:0"], Stop::StdinEof);
}

/// Starts the server with `args`, serves a few clients, stops it by `how`:
/// every client sees end-of-file, exit status 0, and the summary.
fn stops_and_closes_every_connection(args: &[&str], how: Stop) {
    const CLIENTS: usize = 3;
    let server = Server::start(args);
    let clients = echoed_clients(server.addr, CLIENTS);
    let stop = server.stop(how);
    stop.assert_clean();
    stop.assert_says(&format!(
        "stopped: served {CLIENTS} clients ({CLIENTS} still connected were closed)"
    ));
    stop.assert_says("accept errors: none");
    for mut client in clients {
        assert_eq!(
            client.read(&mut [0; 1]).unwrap(),
            0,
            "end-of-file ({how:?})"
        );
    }
}

/// Clients that stop reading make the server buffer; once they have read
/// everything, the server's memory is back near where it started.
///
/// Linux only: the memory is read from `/proc`.
#[cfg(target_os = "linux")]
#[test]
fn memory_is_given_back_after_a_drain() {
    const CLIENTS: usize = 40;

    let server = Server::start(&["127.0.0.1:0"]);
    let before = server.settled_rss(|_| true);
    let mut clients = stalled_clients(server.addr, CLIENTS);
    let sent = stall(&mut clients);
    let during = server.rss();
    drain(&mut clients, &sent);
    // Every client has its echo, so every buffer is empty: the memory
    // should be back, within a few scheduling rounds.
    let after = server.settled_rss(|rss| rss < before + 8 * MIB);
    eprintln!(
        "RSS before {:.1} MiB, during {:.1} MiB (clients sent {:.1} MiB), after the drain {:.1} MiB",
        mib(before),
        mib(during),
        mib(sent.iter().sum()),
        mib(after)
    );
    assert!(
        during > before + CLIENTS * MAX_PENDING / 2,
        "the server did not buffer (RSS {:.1} MiB from {:.1} MiB): the test proves nothing",
        mib(during),
        mib(before)
    );
    assert!(
        after < before + 8 * MIB,
        "RSS {:.1} MiB after the drain, {:.1} MiB before",
        mib(after),
        mib(before)
    );
    server.stop(GRACEFUL).assert_clean();
}

/// `--max-buffered` holds what the server buffers over all its clients,
/// and no byte is lost for it.
///
/// Linux only: the memory is read from `/proc`.
#[cfg(target_os = "linux")]
#[test]
fn max_buffered_caps_the_memory_of_all_clients() {
    const CLIENTS: usize = 40;
    const CAP: usize = 8 * MIB;

    let server = Server::start(&["--max-buffered", "8M", "127.0.0.1:0"]);
    let before = server.settled_rss(|_| true);
    let mut clients = stalled_clients(server.addr, CLIENTS);
    let sent = stall(&mut clients);
    let during = server.rss();
    eprintln!(
        "--max-buffered 8M: RSS before {:.1} MiB, during {:.1} MiB (clients sent {:.1} MiB)",
        mib(before),
        mib(during),
        mib(sent.iter().sum())
    );
    // Buffers may have twice the capacity they fill, and the allocator its
    // own slack; uncapped, these clients make the server hold 40 MiB.
    assert!(
        during < before + 2 * CAP + 4 * MIB,
        "RSS {:.1} MiB with {:.1} MiB before and a cap of 8 MiB",
        mib(during),
        mib(before)
    );
    drain(&mut clients, &sent);
    server.stop(GRACEFUL).assert_clean();
}

/// `--threads 2`: two threads, each with its own listener on the one
/// address; the kernel spreads the clients, and both threads serve some.
///
/// Linux only: the threads are counted in `/proc`. (Windows cannot spread
/// connections among listeners: `help_and_bad_arguments` checks that
/// `--threads 2` is refused there.)
#[cfg(target_os = "linux")]
#[test]
fn two_threads_both_serve_clients() {
    const CLIENTS: usize = 64;

    let server = Server::start(&["--threads", "2", "127.0.0.1:0"]);
    let clients = echoed_clients(server.addr, CLIENTS);
    let tasks = fs::read_dir(format!("/proc/{}/task", server.pid()))
        .unwrap()
        .count();
    assert!(tasks >= 2, "{tasks} threads");
    drop(clients);
    let stop = server.stop(CTRL_C);
    stop.assert_clean();
    let line = stop
        .stdout
        .lines()
        .find(|line| line.starts_with("stopped:"))
        .unwrap_or_else(|| panic!("no summary in {:?}", stop.stdout));
    let per_thread: Vec<u64> = line
        .split("per thread: ")
        .nth(1)
        .and_then(|rest| rest.split(" (").next())
        .unwrap_or_else(|| panic!("no count per thread in {line:?}"))
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    eprintln!("--threads 2: {line}");
    assert_eq!(per_thread.len(), 2, "{line}");
    assert_eq!(per_thread.iter().sum::<u64>(), CLIENTS as u64, "{line}");
    assert!(
        per_thread.iter().all(|&n| n > 0),
        "a thread served nobody: {line}"
    );
}

/// `--help`, and bad arguments: each named in a one-line error with the
/// usage, exit status 2; an address in use: exit status 1. Never Rust's
/// debug form of an error, never a panic.
#[test]
fn help_and_bad_arguments() {
    for help in ["--help", "-h"] {
        let out = run_to_end(&[help]);
        assert!(out.status.success(), "{help}: {out:?}");
        for needle in [
            "usage: echo_server",
            "--threads",
            "--max-buffered",
            STOP_ON_STDIN_EOF,
            "ADDR",
        ] {
            assert!(
                out.stdout.contains(needle),
                "{help}: no {needle:?} in {out:?}"
            );
        }
    }
    let bad: &[(&[&str], &str)] = &[
        (&["--threads"], "--threads needs a value"),
        (&["--threads", "0"], "--threads `0`"),
        (&["--threads", "two"], "--threads `two`"),
        (&["--threads=99999"], "--threads `99999`"),
        (&["--max-buffered", "12Q"], "--max-buffered `12Q`"),
        (&["--max-buffered", "0"], "--max-buffered `0`"),
        (&["--frobnicate"], "unknown option `--frobnicate`"),
        (&["no-such-address"], "address `no-such-address`"),
        (&["127.0.0.1:0", "extra"], "unexpected argument `extra`"),
        (
            &["--stop-on-stdin-eof=yes"],
            "unknown option `--stop-on-stdin-eof=yes`",
        ),
        // No option spreads connections among listeners on Windows.
        #[cfg(windows)]
        (
            &["--threads", "2"],
            "--threads 2: this OS cannot spread connections",
        ),
    ];
    for &(args, needle) in bad {
        let out = run_to_end(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(needle),
            "{args:?}: no {needle:?} in {out:?}"
        );
        assert!(
            out.stderr.contains("usage: echo_server"),
            "{args:?}: {out:?}"
        );
        assert_eq!(out.stdout, "", "{args:?}");
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut in_use = vec![vec![addr.as_str()]];
    // Several listeners (Linux, here): binding fails the same way. (On
    // Windows `--threads 2` is refused before any bind, above.)
    if cfg!(unix) {
        in_use.push(vec!["--threads", "2", addr.as_str()]);
    }
    for args in in_use {
        let out = run_to_end(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(&format!("cannot listen on {addr}")),
            "{args:?}: {out:?}"
        );
    }
}

/// The few bytes client `i` sends and expects back.
fn message(i: usize) -> [u8; 4] {
    u32::try_from(i).unwrap().to_le_bytes()
}

/// `n` clients of `addr`, each of which has had one message echoed.
fn echoed_clients(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let mut client = connect(addr).unwrap();
            client.write_all(&message(i)).unwrap();
            expect_echo(&mut client, i);
            client
        })
        .collect()
}

/// Reads `message(i)` from `client`.
fn expect_echo(client: &mut TcpStream, i: usize) {
    let mut echo = [0; 4];
    client
        .read_exact(&mut echo)
        .unwrap_or_else(|err| panic!("client {i}: no echo: {err}"));
    assert_eq!(echo, message(i), "client {i}");
}

/// `n` clients of `addr` with small kernel buffers (set before connecting,
/// so the window is small from the start), so that what they send and do
/// not read back piles up in the server rather than in the kernel.
#[cfg(target_os = "linux")]
fn stalled_clients(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

    let SocketAddr::V4(v4) = addr else {
        panic!("an IPv4 address");
    };
    (0..n)
        .map(|_| {
            let socket = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .expect("socket");
            sockopt::set_buffer_sizes(&socket, 16 * 1024);
            // nix's `connect` takes a raw descriptor (it has no `AsFd` form).
            connect(socket.as_raw_fd(), &SockaddrIn::from(v4)).expect("connect");
            let stream = TcpStream::from(socket);
            stream.set_nonblocking(true).unwrap();
            stream
        })
        .collect()
}

/// The byte at `offset` of client `client`'s stream: different for every
/// client and offset, so loss, reordering and mix-ups show.
#[cfg(target_os = "linux")]
fn stream_byte(client: usize, offset: usize) -> u8 {
    let x = (offset as u64 ^ ((client as u64) << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8
}

/// Every (non-blocking) client writes its stream, reading nothing, until no
/// client can write more for a while: then the server holds back. Returns
/// what each sent.
#[cfg(target_os = "linux")]
fn stall(clients: &mut [TcpStream]) -> Vec<usize> {
    let mut sent = vec![0; clients.len()];
    let mut chunk = vec![0; 64 * 1024];
    let start = Instant::now();
    let mut last_progress = Instant::now();
    while last_progress.elapsed() < Duration::from_millis(500) {
        assert!(start.elapsed() < 4 * TIMEOUT, "the clients never stalled");
        let mut progress = false;
        for (c, client) in clients.iter_mut().enumerate() {
            for (k, byte) in chunk.iter_mut().enumerate() {
                *byte = stream_byte(c, sent[c] + k);
            }
            match client.write(&chunk) {
                Ok(n) => {
                    sent[c] += n;
                    progress = true;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => panic!("client {c}: {err}"),
            }
        }
        if progress {
            last_progress = Instant::now();
        } else {
            thread::sleep(Duration::from_millis(10));
        }
    }
    sent
}

/// Every client reads back all it `sent`, checking each byte.
#[cfg(target_os = "linux")]
fn drain(clients: &mut [TcpStream], sent: &[usize]) {
    let mut received = vec![0; clients.len()];
    let mut buf = vec![0; 64 * 1024];
    let start = Instant::now();
    while received != sent {
        assert!(
            start.elapsed() < 4 * TIMEOUT,
            "the echo did not all come back: {received:?} of {sent:?}"
        );
        let mut progress = false;
        for (c, client) in clients.iter_mut().enumerate() {
            match client.read(&mut buf) {
                Ok(0) => panic!("client {c}: end-of-file after {} bytes", received[c]),
                Ok(n) => {
                    for (k, &byte) in buf[..n].iter().enumerate() {
                        let offset = received[c] + k;
                        assert_eq!(byte, stream_byte(c, offset), "client {c}, byte {offset}");
                    }
                    received[c] += n;
                    progress = true;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => panic!("client {c}: {err}"),
            }
        }
        if !progress {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(target_os = "linux")]
fn mib(bytes: usize) -> f64 {
    bytes as f64 / MIB as f64
}

/// The server binary, which cargo builds for this package's tests.
fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_echo_server"))
}

/// A finished run of the binary.
#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    /// Exit status 0, nothing on stderr.
    fn assert_clean(&self) {
        #[cfg(unix)]
        let signal = self.status.signal();
        #[cfg(windows)]
        let signal: Option<i32> = None;
        assert!(
            self.status.success(),
            "exit status {:?} (signal {signal:?}): {self:?}",
            self.status.code(),
        );
        assert_eq!(self.stderr, "", "stderr");
    }

    /// stdout has `needle`.
    fn assert_says(&self, needle: &str) {
        assert!(
            self.stdout.contains(needle),
            "no {needle:?} in stdout: {:?}",
            self.stdout
        );
    }
}

/// Runs the binary with `args`, expecting it to end at once.
fn run_to_end(args: &[&str]) -> Output {
    let child = Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server {
        child,
        stdout: None,
        addr: "0.0.0.0:0".parse().unwrap(),
    };
    server.wait()
}

/// The echo server as a child process, listening; killed if a test fails.
struct Server {
    /// Its standard input is a pipe, which [`Stop::StdinEof`] closes.
    child: Child,
    /// The rest of stdout, after the first line.
    stdout: Option<BufReader<ChildStdout>>,
    /// The address it printed.
    addr: SocketAddr,
}

impl Server {
    /// Starts the binary with `args` (on Windows, with
    /// [`STOP_ON_STDIN_EOF`] too); returns once it said where it listens.
    fn start(args: &[&str]) -> Server {
        let mut command = Server::command(args);
        if cfg!(windows) && !args.contains(&STOP_ON_STDIN_EOF) {
            command.arg(STOP_ON_STDIN_EOF);
        }
        Server::spawn(command)
    }

    /// As [`start`](Server::start), with a limit of `fd_limit` descriptors.
    #[cfg(target_os = "linux")]
    fn start_limited(args: &[&str], fd_limit: u64) -> Server {
        use nix::sys::resource::{setrlimit, Resource};

        let mut command = Server::command(args);
        // SAFETY: the hook runs in the child between fork and exec, and
        // only calls `setrlimit` (nix's wrapper allocates nothing), which is
        // async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                setrlimit(Resource::RLIMIT_NOFILE, fd_limit, fd_limit)?;
                Ok(())
            });
        }
        Server::spawn(command)
    }

    /// The command that runs the binary with `args`, its standard streams
    /// piped.
    fn command(args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `command` and reads the address it listens on.
    fn spawn(mut command: Command) -> Server {
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let mut server = Server {
            child,
            stdout: Some(stdout),
            addr: "0.0.0.0:0".parse().unwrap(),
        };
        let Some(addr) = line
            .strip_prefix("echo server listening on ")
            .and_then(|rest| rest.split(' ').next())
        else {
            let out = server.wait();
            panic!("the server did not start: {line:?} {out:?}");
        };
        server.addr = addr.parse().unwrap();
        server
    }

    #[cfg(target_os = "linux")]
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it by `how` and waits for the exit.
    fn stop(mut self, how: Stop) -> Output {
        match how {
            #[cfg(unix)]
            Stop::Signal(signal) => {
                // The child is ours and not yet reaped, so its pid is still
                // its.
                let pid = nix::unistd::Pid::from_raw(self.child.id().try_into().unwrap());
                nix::sys::signal::kill(pid, signal).expect("kill");
            }
            Stop::StdinEof => drop(self.child.stdin.take()),
        }
        self.wait()
    }

    /// Waits (at most [`TIMEOUT`]) for the exit, and collects the output.
    fn wait(&mut self) -> Output {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("the server did not exit within {TIMEOUT:?}");
            }
            thread::sleep(Duration::from_millis(5));
        };
        let mut stdout = String::new();
        if let Some(mut pipe) = self.stdout.take() {
            pipe.read_to_string(&mut stdout).unwrap();
        } else if let Some(mut pipe) = self.child.stdout.take() {
            pipe.read_to_string(&mut stdout).unwrap();
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut stderr).unwrap();
        }
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// `/proc/<pid>/<file>`.
    #[cfg(target_os = "linux")]
    fn proc_file(&self, file: &str) -> String {
        fs::read_to_string(format!("/proc/{}/{file}", self.pid())).unwrap()
    }

    /// Descriptors open in the server with a number below `limit`.
    #[cfg(target_os = "linux")]
    fn open_fds_below(&self, limit: usize) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .filter(|entry| {
                let name = entry.as_ref().unwrap().file_name();
                name.to_str().unwrap().parse::<usize>().unwrap() < limit
            })
            .count()
    }

    /// User plus system CPU time, from `/proc/<pid>/stat`.
    #[cfg(target_os = "linux")]
    fn cpu_time(&self) -> Duration {
        let stat = self.proc_file("stat");
        // Fields after the command name (which may hold spaces), from the
        // third: utime and stime are the 14th and 15th.
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .expect("sysconf")
            .expect("a clock tick");
        assert!(per_second > 0);
        Duration::from_secs_f64(ticks as f64 / per_second as f64)
    }

    /// Resident memory, from `VmRSS` in `/proc/<pid>/status`.
    #[cfg(target_os = "linux")]
    fn rss(&self) -> usize {
        let status = self.proc_file("status");
        let kib: usize = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse().ok())
            .unwrap();
        kib * 1024
    }

    /// The resident memory once `ok` says it is (or after 5 s), and after
    /// one round trip, so that it is idle.
    #[cfg(target_os = "linux")]
    fn settled_rss(&self, ok: impl Fn(usize) -> bool) -> usize {
        let mut probe = connect(self.addr).unwrap();
        probe.write_all(&message(1)).unwrap();
        expect_echo(&mut probe, 1);
        drop(probe);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let rss = self.rss();
            if ok(rss) || Instant::now() >= deadline {
                return rss;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
