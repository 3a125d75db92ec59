//! The five workloads, written once over [`Driver`], and the timing loop.

use std::hint::black_box;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use selectors::{Events, EVENT_READ, EVENT_WRITE};

use crate::drivers::Driver;
use crate::fixture::{consume, write_bytes, Fixture};

/// Tokens in flight in `chain`, as in libevent's bench (`-a 100`).
pub const CHAIN_ACTIVE: usize = 100;

/// A workload; `n` is given with it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Workload {
    /// One socket pair: write a byte, select, read it. Per round trip.
    Pingpong,
    /// `n` watched descriptors in a ring, 100 bytes in flight; each read
    /// handler forwards what it read to the next. Per event delivered.
    Chain,
    /// `n` idle watched descriptors and one active pair, as `Pingpong`. Per
    /// select.
    Idle,
    /// `n` descriptors, all readable, never read. Per delivered event.
    ManyReady,
    /// Register, modify, unregister `n` descriptors. Per operation.
    Churn,
}

impl Workload {
    /// The name in the table and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Pingpong => "pingpong",
            Workload::Chain => "chain",
            Workload::Idle => "idle",
            Workload::ManyReady => "many_ready",
            Workload::Churn => "churn",
        }
    }

    /// The descriptors the workload runs on.
    pub fn fixture(self, n: usize) -> io::Result<Fixture> {
        let fx = match self {
            Workload::Pingpong => Fixture::new(1, 0)?,
            Workload::Idle => Fixture::new(1, n)?,
            Workload::Chain | Workload::ManyReady | Workload::Churn => Fixture::new(0, n)?,
        };
        if self == Workload::ManyReady {
            fx.fill();
        }
        Ok(fx)
    }

    /// Descriptors the process needs for size `n` (fixture, selectors,
    /// standard streams, the CPython pipes, with room to spare).
    pub fn fds_needed(self, n: usize) -> usize {
        let fixture = match self {
            Workload::Pingpong => 2,
            Workload::Idle => n + 2,
            _ => n,
        };
        fixture + 32
    }
}

/// The fewest operations a timed batch has.
const MIN_OPS: u64 = 16;

/// How long to time each sample.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// The timed part of one sample.
    pub target: Duration,
    /// What it is timed with.
    pub clock: Clock,
    /// Run exactly this many operations, once, with no warm-up (for
    /// profilers: `--profile`).
    pub fixed: Option<u64>,
}

/// The thread's CPU time (user + system). Nothing a workload times ever
/// sleeps (every select has something ready), so on an idle machine this is
/// wall time; on a shared one it leaves out the time other processes hold the
/// core, which is most of the noise.
pub fn cpu_time() -> Duration {
    // SAFETY: `timespec` is plain old data; zero is a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a valid, writable `timespec`.
    let ret = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(ret, 0, "clock_gettime: {}", io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The clock samples are timed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// [`cpu_time`] (the default).
    Cpu,
    /// [`Instant`]: wall time.
    Wall,
}

impl Clock {
    fn elapsed(self, run: impl FnOnce() -> io::Result<u64>) -> io::Result<(Duration, u64)> {
        match self {
            Clock::Cpu => {
                let start = cpu_time();
                let ops = run()?;
                Ok((cpu_time().saturating_sub(start), ops))
            }
            Clock::Wall => {
                let start = Instant::now();
                let ops = run()?;
                Ok((start.elapsed(), ops))
            }
        }
    }
}

impl Plan {
    /// Warms up and calibrates (batches doubling until one takes an eighth of
    /// the target), then times one batch sized to the target. `run(iters)`
    /// does at least `iters` operations and returns how many it did.
    pub fn measure(&self, mut run: impl FnMut(u64) -> io::Result<u64>) -> io::Result<f64> {
        if let Some(ops) = self.fixed {
            let (elapsed, ops) = self.clock.elapsed(|| run(ops))?;
            return Ok(elapsed.as_secs_f64() * 1e9 / ops.max(1) as f64);
        }
        let mut iters = 1;
        let per_op = loop {
            let (elapsed, ops) = self.clock.elapsed(|| run(iters))?;
            if elapsed >= self.target / 8 || iters >= 1 << 40 {
                break elapsed.as_secs_f64() / ops.max(1) as f64;
            }
            iters = ops.max(iters) * 2;
        };
        // At least `MIN_OPS`, so that a sample of a slow operation (a poll
        // over 19000 descriptors takes milliseconds) is not one or two
        // selects at the mercy of a single disturbance.
        let iters = ((self.target.as_secs_f64() / per_op) as u64).max(MIN_OPS);
        let (elapsed, ops) = self.clock.elapsed(|| run(iters))?;
        Ok(elapsed.as_secs_f64() * 1e9 / ops.max(1) as f64)
    }
}

/// Runs one sample of `workload` on a fresh `D` over `fx`: ns per operation,
/// or `None` if `D` cannot do it faithfully.
pub fn sample<D: Driver>(workload: Workload, fx: &Fixture, plan: &Plan) -> io::Result<Option<f64>> {
    match workload {
        Workload::Pingpong | Workload::Idle => round_trips::<D>(fx, plan).map(Some),
        Workload::Chain => chain::<D>(fx, plan).map(Some),
        Workload::ManyReady if D::EDGE => Ok(None),
        Workload::ManyReady => many_ready::<D>(fx, plan).map(Some),
        Workload::Churn => churn::<D>(fx, plan).map(Some),
    }
}

/// Registers every watched descriptor for reading, with its index as handler.
fn register_all<D: Driver>(fx: &Fixture) -> io::Result<D> {
    let mut d = D::open()?;
    for (k, &fd) in fx.watched.iter().enumerate() {
        d.register(fd, EVENT_READ, k)?;
    }
    Ok(d)
}

/// `pingpong` and `idle`: the active pair is watched descriptor 0.
fn round_trips<D: Driver>(fx: &Fixture, plan: &Plan) -> io::Result<f64> {
    let mut d = register_all::<D>(fx)?;
    let writer = fx.peer[0];
    let mut buf = [0; 64];
    plan.measure(|iters| {
        for _ in 0..iters {
            write_bytes(writer, 1);
            let mut got = 0;
            d.select(|fd, _events, _handler| {
                got += consume(D::EDGE, fd, &mut buf);
            })?;
            debug_assert_eq!(got, 1);
        }
        Ok(iters)
    })
}

/// `chain`: libevent's bench. Handler `k` forwards what it reads to the
/// descriptor after it in the ring.
fn chain<D: Driver>(fx: &Fixture, plan: &Plan) -> io::Result<f64> {
    let n = fx.len();
    let next: Vec<RawFd> = (0..n).map(|k| fx.peer[(k + 1) % n]).collect();
    let mut d = register_all::<D>(fx)?;
    let active = CHAIN_ACTIVE.min(n);
    let space = n / active;
    for i in 0..active {
        write_bytes(fx.peer[i * space], 1);
    }
    // As libevent's read_cb: one byte per callback under level-triggered
    // readiness. Edge-triggered handlers must drain, so they read with room
    // for everything and forward all of it.
    let mut buf = [0; 64];
    let room = if D::EDGE { 64 } else { 1 };
    let result = plan.measure(|iters| {
        let mut delivered = 0;
        while delivered < iters {
            d.select(|fd, _events, k| {
                let got = consume(D::EDGE, fd, &mut buf[..room]);
                // An edge-triggered poller may report a descriptor whose
                // bytes an earlier drain already took: only events that
                // found data count as delivered, their cost is counted all
                // the same.
                if got > 0 {
                    write_bytes(next[k], got);
                    delivered += 1;
                }
            })?;
        }
        Ok(delivered)
    });
    drop(d);
    fx.drain();
    result
}

/// `many_ready`: every descriptor stays readable; the handler touches its
/// data, nothing more.
fn many_ready<D: Driver>(fx: &Fixture, plan: &Plan) -> io::Result<f64> {
    let mut d = register_all::<D>(fx)?;
    plan.measure(|iters| {
        let mut delivered = 0;
        let mut sum = 0;
        while delivered < iters {
            delivered += d.select(|_fd, events, k| {
                sum += k + events.bits() as usize;
            })? as u64;
        }
        black_box(sum);
        Ok(delivered)
    })
}

/// `churn`: register all, modify all (to read and write), unregister all.
fn churn<D: Driver>(fx: &Fixture, plan: &Plan) -> io::Result<f64> {
    let mut d = D::open()?;
    let both: Events = EVENT_READ | EVENT_WRITE;
    plan.measure(|iters| {
        let per_pass = 3 * fx.len() as u64;
        let passes = iters.div_ceil(per_pass);
        for _ in 0..passes {
            for (k, &fd) in fx.watched.iter().enumerate() {
                d.register(fd, EVENT_READ, k)?;
            }
            for (k, &fd) in fx.watched.iter().enumerate() {
                d.modify(fd, both, k)?;
            }
            for &fd in &fx.watched {
                d.unregister(fd)?;
            }
        }
        Ok(passes * per_pass)
    })
}

/// Checks that `D` refuses what would corrupt its bookkeeping: a second
/// registration of a descriptor, and the `modify` or `unregister` of one
/// that is not registered (the smoke run calls this for every driver, so
/// the raw baselines are held to the checks the libraries make).
pub fn check_refusals<D: Driver>(fx: &Fixture) -> io::Result<()> {
    let mut d = D::open()?;
    let (fd, other) = (fx.watched[0], fx.watched[1]);
    d.register(fd, EVENT_READ, 0)?;
    let refused = [
        ("a second register", d.register(fd, EVENT_READ, 1).is_err()),
        (
            "modify of a stranger",
            d.modify(other, EVENT_READ, 1).is_err(),
        ),
        ("unregister of a stranger", d.unregister(other).is_err()),
    ];
    d.unregister(fd)?;
    let twice = d.unregister(fd).is_err();
    for (what, refused) in refused.into_iter().chain([("a second unregister", twice)]) {
        if !refused {
            return Err(io::Error::other(format!("{what} was accepted")));
        }
    }
    Ok(())
}

/// Allocations per `select` in steady state: a pingpong, warmed up, then
/// 1000 round trips counted by the global allocator.
pub fn allocations_per_select<D: Driver>(fx: &Fixture) -> io::Result<f64> {
    let mut d = register_all::<D>(fx)?;
    let writer = fx.peer[0];
    let mut buf = [0; 64];
    let mut round_trip = |d: &mut D| -> io::Result<()> {
        write_bytes(writer, 1);
        d.select(|fd, _, _| {
            consume(D::EDGE, fd, &mut buf);
        })?;
        Ok(())
    };
    for _ in 0..100 {
        round_trip(&mut d)?;
    }
    let before = crate::alloc::allocations();
    const ROUNDS: u64 = 1000;
    for _ in 0..ROUNDS {
        round_trip(&mut d)?;
    }
    let allocations = crate::alloc::allocations() - before;
    Ok(allocations as f64 / ROUNDS as f64)
}

/// Shuffles `order` in place (Fisher-Yates over an xorshift of `seed`), for
/// the order in which implementations take their sample in a round.
pub fn shuffle(order: &mut [usize], seed: &mut u64) {
    for i in (1..order.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        order.swap(i, (*seed % (i as u64 + 1)) as usize);
    }
}
