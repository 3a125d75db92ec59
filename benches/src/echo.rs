//! The `echo` workload: round trips through a real echo server process.
//!
//! Three servers, each a child process serving one thread: `ours`, the
//! `echo_server` binary of `selectors-echo-server` (built in release by
//! `cargo xtask bench` and passed with `--echo-bin`), and the same server
//! on raw epoll and on mio, with its buffering rules
//! ([`crate::echo_servers`], this binary re-executed with a hidden
//! argument). The clients are this process's main thread: `c`
//! connections per server (opened once per size and kept), each with one
//! message of `m` bytes in flight at a time, driven by one level-triggered
//! raw epoll; a round trip ends when the whole message is back.
//!
//! The client thread and every server are pinned to one CPU (see [`run`]).
//! For each (c, m), every round gives every server one sample in shuffled
//! order: a short warm-up, then a timed stretch, then the messages in
//! flight are drained (untimed) so the next server starts from idle
//! connections. A sample's time is, as in the rest of the bench, CPU time:
//! the client thread's (`CLOCK_THREAD_CPUTIME_ID`) plus the server's
//! (`/proc/<pid>/schedstat`, ns), which on one CPU is the wall time less
//! what other processes took (`--wall` uses wall time). Figures are
//! medians over rounds; ratios are medians of per-round ratios. The
//! server's CPU per round trip is shown on its own too.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::median;
use crate::workloads::{cpu_time, shuffle, Clock};

/// Client counts.
const CLIENTS: [usize; 3] = [1, 64, 1000];
/// Message sizes: small (round trips per second is the figure), and large
/// (MB/s is).
const MESSAGES: [usize; 2] = [64, 16 * 1024];
/// The servers, in table order; `ours` first.
const SERVERS: [&str; 3] = ["ours", "raw-epoll", "mio"];

/// What the goal asks of `ours / raw-epoll` throughput in every cell.
const GOAL: f64 = 0.95;

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
    server_cpu_ns: u64,
}

impl Sample {
    fn per_second(&self) -> f64 {
        self.round_trips as f64 / self.time.as_secs_f64()
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

/// Runs the workload against `ours` (the `echo_server` binary) and the peers.
///
/// # Errors
///
/// If a server cannot be started, or a socket fails.
pub fn run(ours: &Path, plan: &Plan) -> io::Result<Vec<Cell>> {
    let started = Instant::now();
    // The client thread and every server share one CPU. Left to the
    // scheduler, a server and the client sometimes share a CPU and
    // sometimes not, and on a VM a wake-up across CPUs can cost several
    // times a whole round trip, so that placement, not the server, decides
    // a sample. On one CPU a round trip costs the client's time plus the
    // server's, and every server gets the same conditions.
    let cpus = allowed_cpus()?;
    let cpu = cpus.last().copied();
    let (client_cpu, server_cpu) = (cpu, cpu);
    let mut servers = Vec::new();
    for name in SERVERS {
        servers.push(Server::start(name, ours, server_cpu)?);
    }
    if let Some(cpu) = client_cpu {
        pin(0, &[cpu])?;
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
            let ratio = cell.ratio("ours", "raw-epoll", Sample::per_second);
            eprintln!(
                "[{:>5.1}s] echo c={clients} m={message}: ours {ours_rt:.0} rt/s, ours/raw-epoll {}",
                started.elapsed().as_secs_f64(),
                ratio.map_or("-".into(), |r| format!("{r:.3}"))
            );
            cells.push(cell);
        }
    }
    for server in servers {
        server.stop()?;
    }
    pin(0, &cpus)?;
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
}

impl Server {
    /// Starts `name`: the `echo_server` binary `ours` on a free port, or this
    /// binary as a peer server.
    fn start(name: &'static str, ours: &Path, cpu: Option<usize>) -> io::Result<Server> {
        let mut command = if name == "ours" {
            let mut command = Command::new(ours);
            command.arg("127.0.0.1:0");
            command
        } else {
            let mut command = Command::new(std::env::current_exe()?);
            command.args(["--echo-server", name]);
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
        Ok(Server { name, child, addr })
    }

    /// The server's CPU time so far, in ns (its one thread's).
    fn cpu_ns(&self) -> io::Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/schedstat", self.child.id()))?;
        stat.split_whitespace()
            .next()
            .and_then(|ns| ns.parse().ok())
            .ok_or_else(|| io::Error::other("unreadable schedstat"))
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
                    time = match plan.clock {
                        Clock::Wall => now - wall0,
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
            server_cpu_ns: cpu_ns,
        })
    }
}

/// The tables and the goal.
pub fn print(out: &mut impl Write, cells: &[Cell], plan: &Plan, ours: &Path) -> io::Result<()> {
    let mut s = String::new();
    use std::fmt::Write as _;
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
        "{:>8} {:>8}  {:>11}{:>11}{:>11}  {:>9}{:>11}{:>9}",
        "clients", "message", "ours rt/s", "raw-epoll", "mio", "ours MB/s", "raw-epoll", "mio"
    );
    for cell in cells {
        let _ = write!(s, "{:>8} {:>8}  ", cell.clients, size(cell.message));
        for server in SERVERS {
            let v = cell.median(server, Sample::per_second);
            let _ = write!(s, "{:>11}", v.map_or("-".into(), |v| format!("{v:.0}")));
        }
        s.push_str("  ");
        for (server, width) in SERVERS.iter().zip([9, 11, 9]) {
            let v = cell.median(server, Sample::mb_per_second);
            let _ = write!(s, "{:>width$}", v.map_or("-".into(), |v| format!("{v:.1}")));
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "\necho ratios (throughput, median of per-round ratios; ! = below {GOAL}), and the \
         server's CPU per round trip"
    );
    let _ = writeln!(
        s,
        "{:>8} {:>8}  {:>15}{:>10}   {:>11}{:>11}{:>9}",
        "clients", "message", "ours/raw-epoll", "ours/mio", "CPU ns: ours", "raw-epoll", "mio"
    );
    let mut missed = Vec::new();
    let mut worst = f64::MAX;
    for cell in cells {
        let raw = cell.ratio("ours", "raw-epoll", Sample::per_second);
        let mio = cell.ratio("ours", "mio", Sample::per_second);
        let raw_text = raw.map_or("-".into(), |r| {
            worst = worst.min(r);
            if r < GOAL {
                missed.push(format!(
                    "c={} m={}: {r:.3}",
                    cell.clients,
                    size(cell.message)
                ));
            }
            format!("{r:.3}{}", if r < GOAL { "!" } else { " " })
        });
        let _ = write!(
            s,
            "{:>8} {:>8}  {raw_text:>15}{:>10}   ",
            cell.clients,
            size(cell.message),
            mio.map_or("-".into(), |r| format!("{r:.3}"))
        );
        for (server, width) in SERVERS.iter().zip([11, 11, 9]) {
            let v = cell.median(server, Sample::cpu_ns_per_round_trip);
            let _ = write!(s, "{:>width$}", v.map_or("-".into(), |v| format!("{v:.0}")));
        }
        s.push('\n');
    }
    if !cells.is_empty() {
        let verdict = if missed.is_empty() {
            format!("HOLDS ours/raw-epoll >= {GOAL} on every echo cell (worst {worst:.3})")
        } else {
            format!(
                "MISS  ours/raw-epoll >= {GOAL} on every echo cell ({})",
                missed.join("; ")
            )
        };
        let _ = writeln!(s, "  {verdict}");
    }
    let per = match plan.clock {
        Clock::Cpu => "per second of CPU time (the client thread's plus the server's)",
        Clock::Wall => "per second of wall time",
    };
    let _ = writeln!(
        s,
        "  rt/s: round trips {per}, all clients together;\n  MB/s: bytes echoed \
         back (one way), per the same second; client and servers are pinned to one CPU"
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
