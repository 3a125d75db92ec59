//! The `echo` workload: round trips through a real echo server process.
//!
//! Two sets of servers, each a child process. The first serves one thread
//! each: `ours`, the `echo_server` binary of `selectors-echo-server` (built
//! in release by `cargo xtask bench` and passed with `--echo-bin`), the same
//! server on raw epoll and on mio, with its buffering rules, and the echo
//! server a tokio user writes, on tokio's current-thread runtime
//! ([`crate::echo_servers`], this binary re-executed with a hidden
//! argument). The second serves two threads each: ours with `--threads 2`
//! (two selectors, one listener each, `SO_REUSEPORT`) and tokio's server on
//! its multi-thread runtime with two workers. The clients are this
//! process's main thread: `c` connections per server (opened once per size
//! and kept), each with one message of `m` bytes in flight at a time,
//! driven by one level-triggered raw epoll; a round trip ends when the
//! whole message is back.
//!
//! In the first set the client thread and every server are pinned to one
//! CPU (see [`run`]); the second is not pinned, so that two server threads
//! can run at once. For each (c, m), every round gives every server of the
//! set one sample in shuffled order: a short warm-up, then a timed
//! stretch, then the messages in flight are drained (untimed) so the next
//! server starts from idle connections. A sample's time is, as in the rest
//! of the bench, CPU time: the client thread's (`CLOCK_THREAD_CPUTIME_ID`)
//! plus the server process's, all its threads (its CPU-time clock,
//! `clock_getcpuclockid`), which on one CPU is the wall time less what
//! other processes took (`--wall` uses wall time). Figures are medians over
//! rounds; ratios are medians of per-round ratios. The server's CPU per
//! round trip is shown on its own too, and for the second set the round
//! trips per second of wall time.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::echo_servers::TOKIO_WORKERS;
use crate::report::median;
use crate::workloads::{cpu_time, shuffle, Clock};

/// Client counts.
const CLIENTS: [usize; 3] = [1, 64, 1000];
/// Message sizes: small (round trips per second is the figure), and large
/// (MB/s is).
const MESSAGES: [usize; 2] = [64, 16 * 1024];
/// The one-thread servers, in table order; `ours` first.
const SERVERS: [&str; 4] = ["ours", "raw-epoll", "mio", "tokio"];
/// The two-thread servers: ours with `--threads 2`, tokio's multi-thread
/// runtime with [`TOKIO_WORKERS`] workers (the names are the same as in
/// the first set; [`Server::start`] is told the thread count).
const THREADED: [&str; 2] = ["ours", "tokio"];

/// What the goal asks of `ours / raw-epoll` throughput in every cell.
const GOAL: f64 = 0.95;
/// What the goal asks of `ours / tokio` throughput in every cell of both
/// sets.
const GOAL_TOKIO: f64 = 1.0;

/// How long the echo workload samples.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Rounds per (clients, message).
    pub rounds: usize,
    /// The timed part of one sample.
    pub sample: Duration,
    /// The untimed warm-up before it.
    pub warm_up: Duration,
    /// What throughput is per: the CPU time of the client and the server
    /// (the default), or wall time.
    pub clock: Clock,
}

impl Plan {
    /// The plan for `--quick` or a full run; `rounds` overrides.
    pub fn new(quick: bool, rounds: Option<usize>, clock: Clock) -> Plan {
        let (default_rounds, sample) = if quick {
            (9, Duration::from_millis(120))
        } else {
            (15, Duration::from_millis(300))
        };
        Plan {
            rounds: rounds.unwrap_or(default_rounds),
            sample,
            warm_up: sample / 4,
            clock,
        }
    }
}

/// One sample: round trips, bytes echoed, and the time they took.
#[derive(Clone, Copy, Debug)]
struct Sample {
    round_trips: u64,
    bytes: u64,
    /// Wall time, or the client's and the server's CPU time together.
    time: Duration,
    /// Wall time.
    wall: Duration,
    server_cpu_ns: u64,
}

impl Sample {
    fn per_second(&self) -> f64 {
        self.round_trips as f64 / self.time.as_secs_f64()
    }

    fn per_wall_second(&self) -> f64 {
        self.round_trips as f64 / self.wall.as_secs_f64()
    }

    fn mb_per_second(&self) -> f64 {
        self.bytes as f64 / self.time.as_secs_f64() / 1e6
    }

    fn cpu_ns_per_round_trip(&self) -> f64 {
        self.server_cpu_ns as f64 / self.round_trips.max(1) as f64
    }
}

/// The samples of one (clients, message), by server, one per round.
#[derive(Debug)]
pub struct Cell {
    clients: usize,
    message: usize,
    samples: BTreeMap<&'static str, Vec<Sample>>,
}

impl Cell {
    fn median(&self, server: &str, f: impl Fn(&Sample) -> f64) -> Option<f64> {
        median(self.samples.get(server)?.iter().map(f))
    }

    fn ratio(&self, num: &str, den: &str, f: impl Fn(&Sample) -> f64) -> Option<f64> {
        let (a, b) = (self.samples.get(num)?, self.samples.get(den)?);
        median(a.iter().zip(b).map(|(a, b)| f(a) / f(b)))
    }
}

/// The cells of both sets of servers.
#[derive(Debug)]
pub struct Cells {
    /// One server thread each, pinned with the client to one CPU.
    pinned: Vec<Cell>,
    /// Two server threads each, nothing pinned.
    threaded: Vec<Cell>,
}

/// Runs the workload against `ours` (the `echo_server` binary) and the peers.
///
/// # Errors
///
/// If a server cannot be started, or a socket fails.
pub fn run(ours: &Path, plan: &Plan) -> io::Result<Cells> {
    let started = Instant::now();
    // The client thread and every one-thread server share one CPU. Left to
    // the scheduler, a server and the client sometimes share a CPU and
    // sometimes not, and on a VM a wake-up across CPUs can cost several
    // times a whole round trip, so that placement, not the server, decides
    // a sample. On one CPU a round trip costs the client's time plus the
    // server's, and every server gets the same conditions.
    let cpus = allowed_cpus()?;
    let cpu = cpus.last().copied();
    if let Some(cpu) = cpu {
        pin(0, &[cpu])?;
    }
    let pinned = run_set(&SERVERS, 1, ours, cpu, plan, started);
    pin(0, &cpus)?;
    let pinned = pinned?;
    // Two server threads need two CPUs: nothing is pinned, and the client
    // thread competes with them for the machine's CPUs.
    let threaded = run_set(&THREADED, TOKIO_WORKERS, ours, None, plan, started)?;
    Ok(Cells { pinned, threaded })
}

/// The smoke run's echo: every peer server of this binary (raw epoll, mio,
/// tokio on both runtimes) echoes a few 16 KiB messages for two clients,
/// whole and in order (the driver checks what comes back).
///
/// # Errors
///
/// If a server does not start or does not echo.
pub fn smoke() -> io::Result<()> {
    let plan = Plan {
        rounds: 1,
        sample: Duration::from_millis(10),
        warm_up: Duration::from_millis(2),
        clock: Clock::Cpu,
    };
    let peers = [
        ("raw-epoll", 1),
        ("mio", 1),
        ("tokio", 1),
        ("tokio", TOKIO_WORKERS),
    ];
    for (name, threads) in peers {
        let server = Server::start(name, threads, Path::new(""), None)?;
        let sample = Driver::connect(server.addr, 2)?.sample(&server, 16 * 1024, &plan)?;
        server.stop()?;
        if sample.bytes == 0 {
            return Err(io::Error::other(format!("{name}: no round trip")));
        }
    }
    println!("echo: every peer server echoes");
    Ok(())
}

/// Every (clients, message) against one set of servers, each run with
/// `threads` threads (on `cpu`, if given).
fn run_set(
    names: &[&'static str],
    threads: usize,
    ours: &Path,
    cpu: Option<usize>,
    plan: &Plan,
    started: Instant,
) -> io::Result<Vec<Cell>> {
    let mut servers = Vec::new();
    for &name in names {
        servers.push(Server::start(name, threads, ours, cpu)?);
    }
    let mut cells = Vec::new();
    for clients in CLIENTS {
        // One set of connections per server, for both sizes.
        let mut drivers = servers
            .iter()
            .map(|server| Driver::connect(server.addr, clients))
            .collect::<io::Result<Vec<_>>>()?;
        for message in MESSAGES {
            let cell = measure_cell(&servers, &mut drivers, clients, message, plan)?;
            let ours_rt = cell.median("ours", Sample::per_second).unwrap_or(0.0);
            let ratios: Vec<String> = names[1..]
                .iter()
                .map(|peer| {
                    let r = cell.ratio("ours", peer, Sample::per_second);
                    format!(
                        "ours/{peer} {}",
                        r.map_or("-".into(), |r| format!("{r:.3}"))
                    )
                })
                .collect();
            eprintln!(
                "[{:>5.1}s] echo{} c={clients} m={message}: ours {ours_rt:.0} rt/s, {}",
                started.elapsed().as_secs_f64(),
                if threads == 1 {
                    String::new()
                } else {
                    format!(" ({threads} threads)")
                },
                ratios.join(", ")
            );
            cells.push(cell);
        }
    }
    for server in servers {
        server.stop()?;
    }
    Ok(cells)
}

/// All rounds of one (clients, message), servers interleaved.
fn measure_cell(
    servers: &[Server],
    drivers: &mut [Driver],
    clients: usize,
    message: usize,
    plan: &Plan,
) -> io::Result<Cell> {
    let mut samples: BTreeMap<&'static str, Vec<Sample>> = BTreeMap::new();
    let mut order: Vec<usize> = (0..servers.len()).collect();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ (clients as u64) << 20 ^ message as u64;
    for _round in 0..plan.rounds {
        shuffle(&mut order, &mut seed);
        for &i in &order {
            let sample = drivers[i].sample(&servers[i], message, plan)?;
            samples.entry(servers[i].name).or_default().push(sample);
        }
    }
    Ok(Cell {
        clients,
        message,
        samples,
    })
}

/// An echo server child process.
struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    /// The CPU-time clock of the whole process (every thread, those ended
    /// included).
    clock: libc::clockid_t,
}

impl Server {
    /// Starts `name` with `threads` threads (1 or 2): the `echo_server`
    /// binary `ours` on a free port, or this binary as a peer server; the
    /// server and its threads pinned to `cpu`, if given.
    fn start(
        name: &'static str,
        threads: usize,
        ours: &Path,
        cpu: Option<usize>,
    ) -> io::Result<Server> {
        let mut command = if name == "ours" {
            let mut command = Command::new(ours);
            if threads > 1 {
                command.args(["--threads", &threads.to_string()]);
            }
            command.arg("127.0.0.1:0");
            command
        } else {
            let peer = match (name, threads) {
                ("tokio", t) if t == TOKIO_WORKERS => "tokio-mt",
                (name, 1) => name,
                _ => {
                    return Err(io::Error::other(format!(
                        "no {name} echo server with {threads} threads"
                    )))
                }
            };
            let mut command = Command::new(std::env::current_exe()?);
            command.args(["--echo-server", peer]);
            command
        };
        if let Some(cpu) = cpu {
            // SAFETY: the hook runs in the child between fork and exec and
            // only makes one system call (`sched_setaffinity`), which is
            // async-signal-safe.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut command, move || pin(0, &[cpu]));
            }
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| io::Error::other(format!("starting {name}: {err}")))?;
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("piped")).read_line(&mut line)?;
        let addr = line
            .strip_prefix("echo server listening on ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|addr| addr.parse().ok())
            .ok_or_else(|| io::Error::other(format!("{name} did not start: {line:?}")))?;
        let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
        let mut clock: libc::clockid_t = 0;
        // SAFETY: `clock` is a valid, writable `clockid_t`; the child is ours
        // and not yet reaped, so `pid` names it.
        let ret = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
        if ret != 0 {
            // It returns the error number rather than setting `errno`.
            return Err(io::Error::from_raw_os_error(ret));
        }
        Ok(Server {
            name,
            child,
            addr,
            clock,
        })
    }

    /// The server's CPU time so far, in ns: all its threads'.
    fn cpu_ns(&self) -> io::Result<u64> {
        // SAFETY: `timespec` is plain old data; zero is a valid value.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: `ts` is a valid, writable `timespec`.
        if unsafe { libc::clock_gettime(self.clock, &mut ts) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }

    /// Stops the server: ours with `SIGTERM` (and checks that it says it
    /// stopped), the peers with `SIGKILL`.
    fn stop(mut self) -> io::Result<()> {
        if self.name != "ours" {
            self.child.kill()?;
            self.child.wait()?;
            return Ok(());
        }
        let pid = libc::pid_t::try_from(self.child.id()).map_err(io::Error::other)?;
        // SAFETY: plain system call; the child is ours and not yet reaped.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let status = self.child.wait()?;
        let mut rest = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout.read_to_string(&mut rest)?;
        }
        if !status.success() || !rest.contains("stopped: served") {
            return Err(io::Error::other(format!(
                "our echo server did not stop cleanly ({status}): {rest:?}"
            )));
        }
        Ok(())
    }
}

/// The CPUs this thread may run on.
fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: `cpu_set_t` is plain old data; all-zero is an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable `cpu_set_t` of the size given.
    let ret =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `CPU_ISSET` reads the set; `cpu` is below `CPU_SETSIZE`.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Pins thread `tid` (0: the calling one) to `cpus`. Async-signal-safe
/// (one system call), so usable in `pre_exec`.
fn pin(tid: libc::pid_t, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain old data; all-zero is an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: `cpu` came from `allowed_cpus`, so below `CPU_SETSIZE`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid `cpu_set_t` of the size given.
    let ret = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One client connection's message in flight.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// Bytes of the message not yet written.
    unsent: usize,
    /// Bytes written and not yet echoed back.
    outstanding: usize,
    /// `EPOLLOUT` is registered.
    watching_out: bool,
}

/// `n` connections to one server, driven by one epoll.
struct Driver {
    epfd: OwnedFd,
    conns: Vec<Conn>,
    events: Vec<libc::epoll_event>,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl Driver {
    fn connect(addr: SocketAddr, n: usize) -> io::Result<Driver> {
        // SAFETY: plain system call; checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor owned by nobody else.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut driver = Driver {
            epfd,
            conns: Vec::with_capacity(n),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; n.max(1)],
            out: Vec::new(),
            buf: vec![0; 64 * 1024],
        };
        for index in 0..n {
            let stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            stream.set_nonblocking(true)?;
            driver.ctl(libc::EPOLL_CTL_ADD, &stream, index, false)?;
            driver.conns.push(Conn {
                stream,
                unsent: 0,
                outstanding: 0,
                watching_out: false,
            });
        }
        Ok(driver)
    }

    fn ctl(&self, op: libc::c_int, stream: &TcpStream, index: usize, out: bool) -> io::Result<()> {
        let mut events = libc::EPOLLIN as u32;
        if out {
            events |= libc::EPOLLOUT as u32;
        }
        let mut event = libc::epoll_event {
            events,
            u64: index as u64,
        };
        // SAFETY: `event` is valid for the call; the result is checked.
        let ret =
            unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, stream.as_raw_fd(), &mut event) };
        if ret != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Writes what it can of connection `index`'s message; watches for
    /// `EPOLLOUT` while some is left.
    fn push(&mut self, index: usize) -> io::Result<()> {
        let conn = &mut self.conns[index];
        while conn.unsent > 0 {
            let len = conn.unsent.min(self.out.len());
            match (&conn.stream).write(&self.out[..len]) {
                Ok(n) => {
                    conn.unsent -= n;
                    conn.outstanding += n;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        let want_out = conn.unsent > 0;
        if want_out != conn.watching_out {
            conn.watching_out = want_out;
            let conn = &self.conns[index];
            self.ctl(libc::EPOLL_CTL_MOD, &conn.stream, index, want_out)?;
        }
        Ok(())
    }

    /// Reads what has come back on connection `index`; `true` when its
    /// message is complete.
    fn pull(&mut self, index: usize) -> io::Result<bool> {
        let conn = &mut self.conns[index];
        loop {
            match (&conn.stream).read(&mut self.buf) {
                Ok(0) => return Err(io::Error::other("the server closed a connection")),
                Ok(n) => {
                    if n > conn.outstanding {
                        return Err(io::Error::other("more bytes back than were sent"));
                    }
                    conn.outstanding -= n;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(conn.unsent == 0 && conn.outstanding == 0)
    }

    /// One sample against `server`: every connection keeps one `message`
    /// in flight for the warm-up and the timed stretch, then the messages
    /// in flight are drained.
    fn sample(&mut self, server: &Server, message: usize, plan: &Plan) -> io::Result<Sample> {
        self.out.resize(message, 0x5a);
        for index in 0..self.conns.len() {
            self.conns[index].unsent = message;
            self.push(index)?;
        }
        let start = Instant::now();
        // When timing started: wall clock, server CPU (ns), client CPU.
        let mut timing: Option<(Instant, u64, Duration)> = None;
        let (mut round_trips, mut bytes) = (0u64, 0u64);
        let mut in_flight = self.conns.len();
        let end = start + plan.warm_up + plan.sample;
        let mut time = Duration::ZERO;
        let mut wall = Duration::ZERO;
        let mut cpu_ns = 0;
        while in_flight > 0 {
            let now = Instant::now();
            if timing.is_none() && now >= start + plan.warm_up {
                timing = Some((now, server.cpu_ns()?, cpu_time()));
            }
            let sending = now < end;
            if !sending && time.is_zero() {
                if let Some((wall0, server0, client0)) = timing {
                    cpu_ns = server.cpu_ns()? - server0;
                    wall = now - wall0;
                    time = match plan.clock {
                        Clock::Wall => wall,
                        Clock::Cpu => {
                            cpu_time().saturating_sub(client0) + Duration::from_nanos(cpu_ns)
                        }
                    };
                }
            }
            // SAFETY: `events` has room for `events.len()` entries.
            let n = unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    self.events.as_mut_ptr(),
                    self.events.len() as libc::c_int,
                    1000,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if n == 0 {
                return Err(io::Error::other(format!(
                    "{}: no echo for a second",
                    server.name
                )));
            }
            for k in 0..n as usize {
                let event = self.events[k];
                let index = event.u64 as usize;
                if event.events & libc::EPOLLOUT as u32 != 0 {
                    self.push(index)?;
                }
                if event.events & !(libc::EPOLLOUT as u32) != 0 && self.pull(index)? {
                    if sending && timing.is_some() {
                        round_trips += 1;
                        bytes += message as u64;
                    }
                    if sending {
                        self.conns[index].unsent = message;
                        self.push(index)?;
                    } else {
                        in_flight -= 1;
                    }
                }
            }
        }
        Ok(Sample {
            round_trips: round_trips.max(1),
            bytes,
            time: time.max(Duration::from_nanos(1)),
            wall: wall.max(Duration::from_nanos(1)),
            server_cpu_ns: cpu_ns,
        })
    }
}

/// A throughput goal, `ours / peer >= limit` in every cell of `cells`: its
/// verdict line.
fn goal(cells: &[Cell], peer: &str, limit: f64, what: &str) -> String {
    let mut missed = Vec::new();
    let mut worst = f64::MAX;
    for cell in cells {
        if let Some(r) = cell.ratio("ours", peer, Sample::per_second) {
            worst = worst.min(r);
            if r < limit {
                missed.push(format!(
                    "c={} m={}: {r:.3}",
                    cell.clients,
                    size(cell.message)
                ));
            }
        }
    }
    if missed.is_empty() {
        format!("HOLDS ours/{peer} >= {limit:.2} on every {what} (worst {worst:.3})")
    } else {
        format!(
            "MISS  ours/{peer} >= {limit:.2} on every {what} ({})",
            missed.join("; ")
        )
    }
}

/// A ratio with `!` when it is below `limit`.
fn flagged(ratio: Option<f64>, limit: f64) -> String {
    ratio.map_or("-".into(), |r| {
        format!("{r:.3}{}", if r < limit { "!" } else { " " })
    })
}

fn whole(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

/// The tables and the goals.
pub fn print(out: &mut impl Write, cells: &Cells, plan: &Plan, ours: &Path) -> io::Result<()> {
    let mut s = String::new();
    use std::fmt::Write as _;
    let per = match plan.clock {
        Clock::Cpu => {
            "per second of CPU time (the client thread's plus the server's, all its threads)"
        }
        Clock::Wall => "per second of wall time",
    };
    let _ = writeln!(
        s,
        "\necho: round trips through a server process, one client thread, one message in flight \
         per client\n      ({} rounds; in each, every server takes one {} ms sample in shuffled \
         order; medians; ours = {})",
        plan.rounds,
        plan.sample.as_millis(),
        ours.display()
    );
    let _ = writeln!(
        s,
        "\none server thread (tokio: current-thread runtime); client and servers pinned to one CPU"
    );
    let _ = write!(s, "{:>8} {:>8}  ", "clients", "message");
    for (i, server) in SERVERS.iter().enumerate() {
        let head = if i == 0 { "ours rt/s" } else { server };
        let _ = write!(s, "{head:>10}");
    }
    s.push_str("  ");
    for (i, server) in SERVERS.iter().enumerate() {
        let head = if i == 0 { "ours MB/s" } else { server };
        let _ = write!(s, "{head:>10}");
    }
    s.push('\n');
    for cell in &cells.pinned {
        let _ = write!(s, "{:>8} {:>8}  ", cell.clients, size(cell.message));
        for server in SERVERS {
            let _ = write!(s, "{:>10}", whole(cell.median(server, Sample::per_second)));
        }
        s.push_str("  ");
        for server in SERVERS {
            let v = cell.median(server, Sample::mb_per_second);
            let _ = write!(s, "{:>10}", v.map_or("-".into(), |v| format!("{v:.1}")));
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "\necho ratios (throughput, median of per-round ratios; ! = below the goal), and the \
         server's CPU per round trip"
    );
    let _ = writeln!(
        s,
        "{:>8} {:>8}  {:>15}{:>10}{:>12}   {:>11}{:>10}{:>8}{:>8}",
        "clients",
        "message",
        "ours/raw-epoll",
        "ours/mio",
        "ours/tokio",
        "CPU ns: ours",
        "raw-epoll",
        "mio",
        "tokio"
    );
    for cell in &cells.pinned {
        let _ = write!(
            s,
            "{:>8} {:>8}  {:>15}{:>10}{:>12}   ",
            cell.clients,
            size(cell.message),
            flagged(cell.ratio("ours", "raw-epoll", Sample::per_second), GOAL),
            cell.ratio("ours", "mio", Sample::per_second)
                .map_or("-".into(), |r| format!("{r:.3} ")),
            flagged(cell.ratio("ours", "tokio", Sample::per_second), GOAL_TOKIO),
        );
        for (server, width) in SERVERS.iter().zip([11, 10, 8, 8]) {
            let v = cell.median(server, Sample::cpu_ns_per_round_trip);
            let _ = write!(s, "{:>width$}", whole(v));
        }
        s.push('\n');
    }
    if !cells.pinned.is_empty() {
        let _ = writeln!(
            s,
            "  {}",
            goal(&cells.pinned, "raw-epoll", GOAL, "echo cell")
        );
        let _ = writeln!(
            s,
            "  {}",
            goal(&cells.pinned, "tokio", GOAL_TOKIO, "echo cell")
        );
    }
    let _ = writeln!(
        s,
        "  rt/s: round trips {per}, all clients together;\n  MB/s: bytes echoed \
         back (one way), per the same second"
    );

    let _ = writeln!(
        s,
        "\ntwo server threads: ours --threads 2 (two selectors, a listener each, SO_REUSEPORT) \
         against tokio's\nmulti-thread runtime ({TOKIO_WORKERS} workers); nothing pinned, so \
         the client thread and both server threads share the machine's CPUs"
    );
    let _ = writeln!(
        s,
        "{:>8} {:>8}  {:>10}{:>8}   {:>10}{:>8}   {:>11}{:>10}   {:>11}{:>8}",
        "clients",
        "message",
        "ours rt/s",
        "tokio",
        "wall rt/s",
        "tokio",
        "ours/tokio",
        "wall",
        "CPU ns: ours",
        "tokio"
    );
    for cell in &cells.threaded {
        let wall = cell
            .ratio("ours", "tokio", Sample::per_wall_second)
            .map_or("-".into(), |r| format!("{r:.3}"));
        let _ = writeln!(
            s,
            "{:>8} {:>8}  {:>10}{:>8}   {:>10}{:>8}   {:>11}{:>10}   {:>11}{:>8}",
            cell.clients,
            size(cell.message),
            whole(cell.median("ours", Sample::per_second)),
            whole(cell.median("tokio", Sample::per_second)),
            whole(cell.median("ours", Sample::per_wall_second)),
            whole(cell.median("tokio", Sample::per_wall_second)),
            flagged(cell.ratio("ours", "tokio", Sample::per_second), GOAL_TOKIO),
            wall,
            whole(cell.median("ours", Sample::cpu_ns_per_round_trip)),
            whole(cell.median("tokio", Sample::cpu_ns_per_round_trip)),
        );
    }
    if !cells.threaded.is_empty() {
        let _ = writeln!(
            s,
            "  {}",
            goal(&cells.threaded, "tokio", GOAL_TOKIO, "two-thread echo cell")
        );
    }
    let _ = writeln!(
        s,
        "  rt/s as above (the goal's ratio); wall rt/s: round trips per second of wall time"
    );
    out.write_all(s.as_bytes())
}

fn size(bytes: usize) -> String {
    if bytes >= 1024 && bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}
