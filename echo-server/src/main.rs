//! A TCP echo server: every byte a client sends comes back to it, in order.
//!
//! ```text
//! cargo run --release -p selectors-echo-server -- [--threads N] [--max-buffered SIZE] [--stop-on-stdin-eof] [ADDR]
//! ```
//!
//! It listens on `ADDR` (default `127.0.0.1:1234`; port 0 picks a free port,
//! and the address bound is printed) and serves any number of clients at
//! once, each thread with its own [`DefaultSelector`].
//! Try it with `nc 127.0.0.1 1234`; `--help` lists the options.
//!
//! - [`server`]: one server, one thread, one selector. What it guarantees
//!   (no byte lost, bounded memory, no `accept` error fatal) is said there;
//!   its buffering rules are in [`buffer`](selectors_echo_server::buffer).
//! - [`listen`]: the listening sockets. With `--threads N` every thread has
//!   its own listener on the same address (`SO_REUSEPORT`), and the kernel
//!   spreads new connections among them: this is how a program built on a
//!   selector uses more than one core. (Where the OS cannot spread them,
//!   Windows among them, the server runs one thread.)
//! - This file: the command line, the stop, and the report. Printing never
//!   fails the server: a closed stdout is ignored.
//!
//! The server threads serve; the main thread waits for the stop on a
//! selector of its own, which nothing but its waker wakes: Ctrl-C and
//! `SIGTERM`, routed to it by `selectors::Signals` (on Windows, a console
//! control handler for Ctrl-C and Ctrl-Break), the end of standard input
//! with `--stop-on-stdin-eof` (the way to stop it gracefully for a parent
//! process that cannot send Ctrl-C or a signal; the tests on Windows stop it
//! so), or a server thread failing. It then wakes every server thread's
//! selector: each loop closes its connections and returns.
//!
//! In steady state a thread's loop allocates nothing: the ready list and the
//! read buffer are reused, and a connection only has a buffer while its
//! client is slower than its own sending.

use selectors_echo_server::buffer::DEFAULT_MAX_BUFFERED;
use selectors_echo_server::{listen, server};

use std::env;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::thread;

use selectors::{DefaultSelector, RawFd, Selector, Waker};
use server::{EchoServer, Stats};

/// The address to listen on when none is given.
const DEFAULT_ADDR: &str = "127.0.0.1:1234";

/// The most threads `--threads` takes.
const MAX_THREADS: usize = 1024;

const USAGE: &str =
    "usage: echo_server [--threads N] [--max-buffered SIZE] [--stop-on-stdin-eof] [ADDR]";

const HELP: &str = "\
A TCP echo server: every byte a client sends comes back to it, in order.

Arguments:
  ADDR                 where to listen (default 127.0.0.1:1234); port 0 picks a
                       free port, and the address bound is printed

Options:
  -t, --threads N      serve from N threads (default 1), each with its own
                       selector and its own listener on ADDR (SO_REUSEPORT):
                       the kernel spreads clients among them. Linux, Android,
                       FreeBSD and DragonFly only: elsewhere (macOS, the
                       other BSDs, Windows) no option spreads them, and N
                       must be 1
  --max-buffered SIZE  stop reading from clients while the server holds SIZE
                       bytes not yet echoed, until they drain (default 64M;
                       suffixes K, M, G; split evenly among threads); each
                       client is also held to 1M
  --stop-on-stdin-eof  stop also when standard input ends (for a parent
                       process that cannot send Ctrl-C or a signal)
  -h, --help           this text

Ctrl-C or SIGTERM (on Windows, Ctrl-C or Ctrl-Break) stops it: every client
is closed and a summary printed.";

fn main() -> ExitCode {
    let options = match parse_args(env::args_os().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            say(format_args!("{USAGE}\n\n{HELP}"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            complain(format_args!(
                "echo_server: {message}\n{USAGE}\n(--help for more)"
            ));
            return ExitCode::from(2);
        }
    };
    match serve(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            complain(format_args!("echo_server: {message}"));
            ExitCode::FAILURE
        }
    }
}

/// Prints a line on stdout. A write error (a closed pipe: `EPIPE`, since
/// Rust ignores `SIGPIPE`) is ignored: nobody is reading, and the server's
/// work does not depend on it. `println!` would panic instead.
fn say(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stdout(), "{line}");
}

/// As [`say`], on stderr.
fn complain(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// What the command line asks for.
#[derive(Debug)]
struct Options {
    addr: SocketAddr,
    threads: usize,
    max_buffered: usize,
    stop_on_stdin_eof: bool,
}

/// Parses the arguments; `Ok(None)` for `--help`.
///
/// # Errors
///
/// A message naming the argument at fault.
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Option<Options>, String> {
    let mut addr = None;
    let mut threads = 1;
    let mut max_buffered = DEFAULT_MAX_BUFFERED;
    let mut stop_on_stdin_eof = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|arg| format!("argument `{}` is not UTF-8", arg.to_string_lossy()))?;
        // `--flag value` or `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || match inline.clone() {
            Some(value) => Ok(value),
            None => args
                .next()
                .map(|v| v.to_string_lossy().into_owned())
                .ok_or(format!("{flag} needs a value")),
        };
        match flag {
            "-h" | "--help" => return Ok(None),
            "--stop-on-stdin-eof" if inline.is_none() => stop_on_stdin_eof = true,
            "-t" | "--threads" => {
                let n = value()?;
                threads = match n.parse::<usize>() {
                    Ok(n) if (1..=MAX_THREADS).contains(&n) => n,
                    _ => {
                        return Err(format!(
                            "{flag} `{n}`: expected a number of threads from 1 to {MAX_THREADS}"
                        ))
                    }
                };
            }
            "--max-buffered" => {
                let size = value()?;
                max_buffered = parse_size(&size).ok_or(format!(
                    "--max-buffered `{size}`: expected a size in bytes above 0, \
                     such as 65536, 512K, 64M or 1G"
                ))?;
            }
            _ if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("unknown option `{arg}`"));
            }
            _ if addr.is_some() => return Err(format!("unexpected argument `{arg}`")),
            _ => addr = Some(arg),
        }
    }
    let addr = addr.as_deref().unwrap_or(DEFAULT_ADDR);
    let addr = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or(format!(
            "address `{addr}`: expected HOST:PORT, such as 127.0.0.1:1234 or [::1]:0"
        ))?;
    if threads > 1 && listen::spread_option().is_none() {
        return Err(format!(
            "--threads {threads}: this OS cannot spread connections among listeners \
             (no SO_REUSEPORT load balancing); use one thread"
        ));
    }
    Ok(Some(Options {
        addr,
        threads,
        max_buffered,
        stop_on_stdin_eof,
    }))
}

/// `65536`, `512K`, `64M`, `1G` (binary multiples) as bytes; `None` for
/// anything else, zero, or an overflow.
fn parse_size(text: &str) -> Option<usize> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 10),
        b'M' | b'm' => (&text[..text.len() - 1], 20),
        b'G' | b'g' => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: usize = digits.parse().ok()?;
    let bytes = n.checked_mul(1 << shift)?;
    (bytes > 0).then_some(bytes)
}

/// Binds, serves until stopped, and prints the summary.
///
/// # Errors
///
/// A message saying what failed: binding, setting up, or a selector.
fn serve(options: &Options) -> Result<(), String> {
    let Options {
        addr,
        threads,
        max_buffered,
        stop_on_stdin_eof,
    } = *options;
    let listeners =
        listen::bind(addr, threads).map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    let local_addr = listeners[0]
        .local_addr()
        .map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    // Each thread gets an equal share of the budget.
    let share = (max_buffered / threads).max(1);
    let mut servers = listeners
        .into_iter()
        .map(|listener| EchoServer::new(listener, share))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|err| format!("cannot set up a selector: {err}"))?;
    let wakers = servers
        .iter_mut()
        .map(EchoServer::waker)
        .collect::<io::Result<Vec<_>>>()
        .map_err(|err| format!("cannot set up a waker: {err}"))?;
    let mut stop = Stop::new().map_err(|err| format!("cannot handle signals: {err}"))?;
    if stop_on_stdin_eof {
        stop_at_stdin_eof(stop.waker.clone())
            .map_err(|err| format!("cannot watch standard input: {err}"))?;
    }

    let backend = servers[0].backend();
    let threads_note = if threads == 1 {
        String::new()
    } else {
        format!(", {threads} threads")
    };
    say(format_args!(
        "echo server listening on {local_addr} (backend: {backend}{threads_note})"
    ));

    let (results, waited) = thread::scope(|scope| {
        let handles: Vec<_> = servers
            .into_iter()
            .map(|server| {
                let stop = stop.waker.clone();
                scope.spawn(move || {
                    let result = server.run();
                    // One thread failing stops them all.
                    if result.is_err() {
                        let _ = stop.wake();
                    }
                    result
                })
            })
            .collect();
        let waited = stop.wait();
        for waker in &wakers {
            let _ = waker.wake();
        }
        let results: Vec<io::Result<Stats>> = handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("the thread panicked")))
            })
            .collect();
        (results, waited)
    });
    report(&results)?;
    waited.map_err(|err| format!("cannot wait for the stop: {err}"))
}

/// Prints the summary: clients served (per thread, with several), those
/// closed at the stop, and `accept`'s errors.
///
/// # Errors
///
/// The first thread's failure, if any failed.
fn report(results: &[io::Result<Stats>]) -> Result<(), String> {
    let stats: Vec<&Stats> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let served: u64 = stats.iter().map(|s| s.served).sum();
    let closed: usize = stats.iter().map(|s| s.closed_at_stop).sum();
    let per_thread = if results.len() == 1 {
        String::new()
    } else {
        let counts: Vec<String> = results
            .iter()
            .map(|r| r.as_ref().map_or("failed".into(), |s| s.served.to_string()))
            .collect();
        format!(", per thread: {}", counts.join(" "))
    };
    say(format_args!(
        "stopped: served {served} clients{per_thread} ({closed} still connected were closed)"
    ));

    let mut errors: Vec<(i32, u64)> = Vec::new();
    for (errno, count) in stats.iter().flat_map(|s| &s.accept_errors) {
        match errors.iter_mut().find(|(e, _)| e == errno) {
            Some((_, total)) => *total += count,
            None => errors.push((*errno, *count)),
        }
    }
    let pauses: u64 = stats.iter().map(|s| s.accept_pauses).sum();
    if errors.is_empty() {
        say(format_args!("accept errors: none"));
    } else {
        let list: Vec<String> = errors
            .iter()
            .map(|&(errno, count)| format!("{} {count}", server::errno_name(errno)))
            .collect();
        say(format_args!(
            "accept errors: {}; accepting paused {pauses} times",
            list.join(", ")
        ));
    }

    match results.iter().position(Result::is_err) {
        None => Ok(()),
        Some(index) => {
            let Err(err) = &results[index] else {
                unreachable!("position found an error");
            };
            Err(format!("thread {index} failed: {err}"))
        }
    }
}

/// The main thread's own selector, which waits for the stop: nothing is
/// registered, only its [`waker`](Stop::waker) wakes it.
struct Stop {
    selector: DefaultSelector<RawFd, ()>,
    /// Wakes [`wait`](Stop::wait).
    waker: Waker,
    /// Ctrl-C and `SIGTERM`, routed to `waker` (and back to their default
    /// actions when dropped).
    #[cfg(unix)]
    _signals: selectors::Signals,
}

impl Stop {
    /// The selector, with Ctrl-C and `SIGTERM` (on Windows, Ctrl-C and
    /// Ctrl-Break) routed to its waker.
    ///
    /// # Errors
    ///
    /// If the selector or its waker cannot be created, or the signals (the
    /// console handler) cannot be routed.
    fn new() -> io::Result<Stop> {
        let mut selector = DefaultSelector::new()?;
        let waker = selector.waker()?;
        #[cfg(unix)]
        let signals = {
            use selectors::{Signal, Signals};
            Signals::new(waker.clone(), &[Signal::INT, Signal::TERM])?
        };
        #[cfg(windows)]
        console::wake_on_ctrl_c(waker.clone())?;
        Ok(Stop {
            selector,
            waker,
            #[cfg(unix)]
            _signals: signals,
        })
    }

    /// Blocks until the waker is woken.
    ///
    /// # Errors
    ///
    /// If `select` fails.
    fn wait(&mut self) -> io::Result<()> {
        while !self.selector.select(None)?.was_woken() {}
        Ok(())
    }
}

/// The console control handler, through windows-sys.
#[cfg(windows)]
mod console {
    use std::io;
    use std::sync::OnceLock;

    use selectors::Waker;
    use windows_sys::core::BOOL;
    use windows_sys::Win32::Foundation::{FALSE, TRUE};
    use windows_sys::Win32::System::Console::{
        SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_C_EVENT,
    };

    /// What the handler wakes.
    static STOP: OnceLock<Waker> = OnceLock::new();

    /// Windows calls it on a thread of its own when the console sends a
    /// control event: Ctrl-C and Ctrl-Break (delivered even to a process
    /// started with `CREATE_NEW_PROCESS_GROUP`, which ignores Ctrl-C) wake
    /// [`STOP`] (the event is handled: the process is not ended); any other
    /// (the console closed, log-off, shut-down) is left to the default
    /// handler, which ends the process.
    extern "system" fn on_console_event(ctrl_type: u32) -> BOOL {
        match ctrl_type {
            CTRL_C_EVENT | CTRL_BREAK_EVENT => {
                if let Some(waker) = STOP.get() {
                    let _ = waker.wake();
                }
                TRUE
            }
            _ => FALSE,
        }
    }

    /// Makes Ctrl-C and Ctrl-Break wake `waker`.
    ///
    /// # Errors
    ///
    /// If a handler was installed already, or `SetConsoleCtrlHandler` fails.
    pub fn wake_on_ctrl_c(waker: Waker) -> io::Result<()> {
        STOP.set(waker).map_err(|_| {
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "console handler installed twice",
            )
        })?;
        // SAFETY: the handler is an `extern "system" fn(u32) -> BOOL`, as the
        // routine type requires, and lives as long as the program; the
        // result is checked.
        if unsafe { SetConsoleCtrlHandler(Some(on_console_event), TRUE) } == FALSE {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// With `--stop-on-stdin-eof`: a thread reads standard input (what it reads
/// is ignored) and, once it ends or fails, wakes `stop` as Ctrl-C does. A
/// parent process stops the server gracefully by closing the pipe.
///
/// # Errors
///
/// If the thread cannot be started.
fn stop_at_stdin_eof(stop: Waker) -> io::Result<()> {
    thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = [0; 512];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = stop.wake();
        })
        .map(drop)
}
