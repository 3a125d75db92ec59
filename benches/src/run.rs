//! The benchmark proper: the implementations, the schedule, the rounds.

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, Instant};

use selectors::{DefaultSelector, EpollSelector, PollSelector, SelectSelector, Selector};

use crate::cpython::Cpython;
use crate::drivers::{Borrowed, Mio, Ours, Polling, RawEpoll, RawPoll, RawSelect};
use crate::fixture::Fixture;
use crate::workloads::{Clock, Plan, Workload};
use crate::{echo, echo_servers, fixture, memory, report, svg, workloads};

#[global_allocator]
static ALLOCATOR: crate::alloc::Counting = crate::alloc::Counting;

type SampleFn = fn(Workload, &Fixture, &Plan) -> io::Result<Option<f64>>;
type AllocFn = fn(&Fixture) -> io::Result<f64>;
type CheckFn = fn(&Fixture) -> io::Result<()>;

/// An implementation: its name in the table and the JSON, and how to run it.
#[derive(Clone, Copy, Debug)]
pub struct Impl {
    /// The name in the table and the JSON.
    pub name: &'static str,
    kind: Kind,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Native(SampleFn, AllocFn, CheckFn),
    Cpython,
}

macro_rules! native {
    ($name:literal, $driver:ty) => {
        Impl {
            name: $name,
            kind: Kind::Native(
                workloads::sample::<$driver>,
                workloads::allocations_per_select::<$driver>,
                workloads::check_refusals::<$driver>,
            ),
        }
    };
}

/// Every implementation, in table order.
fn implementations() -> Vec<Impl> {
    vec![
        native!("default", Ours<DefaultSelector<Borrowed, usize>>),
        native!("epoll", Ours<EpollSelector<Borrowed, usize>>),
        native!("dyn", Ours<Box<dyn Selector<Borrowed, usize>>>),
        native!("raw-epoll", RawEpoll),
        native!("mio", Mio),
        native!("polling", Polling),
        native!("poll", Ours<PollSelector<Borrowed, usize>>),
        native!("raw-poll", RawPoll),
        native!("select", Ours<SelectSelector<Borrowed, usize>>),
        native!("raw-select", RawSelect),
        Impl {
            name: "cpython",
            kind: Kind::Cpython,
        },
    ]
}

/// The workloads and their sizes.
fn schedule(quick: bool, smoke: bool) -> Vec<(Workload, Vec<usize>)> {
    if smoke {
        return vec![
            (Workload::Pingpong, vec![1]),
            (Workload::Chain, vec![100]),
            (Workload::Idle, vec![10, 100]),
            (Workload::ManyReady, vec![100]),
            (Workload::Churn, vec![100]),
        ];
    }
    let idle = if quick {
        vec![10, 100, 1000, 3000, 10000, 19000]
    } else {
        vec![10, 30, 100, 300, 1000, 3000, 10000, 19000]
    };
    vec![
        (Workload::Pingpong, vec![1]),
        (Workload::Chain, vec![100, 1000, 10000]),
        (Workload::Idle, idle),
        (Workload::ManyReady, vec![1000]),
        (Workload::Churn, vec![1000]),
    ]
}

/// The CPython script runs these only.
fn cpython_runs(workload: Workload) -> bool {
    matches!(
        workload,
        Workload::Pingpong | Workload::Chain | Workload::ManyReady
    )
}

/// What the command line asks for.
struct Options {
    quick: bool,
    json: Option<String>,
    plot: Option<String>,
    only: Option<Vec<String>>,
    impls: Option<Vec<String>>,
    rounds: Option<usize>,
    target: Option<Duration>,
    samples: bool,
    clock: Clock,
    settle: Duration,
    profile: Option<(String, String, usize, u64)>,
    /// The echo server's binary (`echo_server`), for the `echo` workload.
    echo_bin: Option<String>,
    /// No argument at all: `cargo test --all-targets` runs bench binaries
    /// that way, so do every workload once, small and fast, as a test.
    smoke: bool,
}

const USAGE: &str = "\
compare [--quick] [--json FILE] [--plot FILE.svg] [--only WORKLOAD,...] [--impls IMPL,...]
        [--rounds N] [--target-ms MS] [--samples] [--wall]
        [--settle-ms MS] [--profile IMPL WORKLOAD N OPS] [--echo-bin PATH]

  (none)       a smoke run: every workload once, small (what `cargo test
               --all-targets` does with a bench binary); `cargo bench` passes
               --bench, which runs the full benchmark
  --quick      fewer rounds, shorter samples, fewer idle sizes (under two minutes)
  --json FILE  write [{\"workload\", \"n\", \"impl\", \"ns_per_op\"}, ...] (medians)
  --plot FILE  draw the idle workload (cost against n) as SVG
  --only LIST  run only these workloads (pingpong, chain, idle, many_ready, churn,
               echo)
  --impls LIST run only these implementations
  --rounds N   rounds per (workload, n)
  --target-ms  the timed part of each sample
  --samples    print every sample (stderr), for diagnosis
  --wall       time with the wall clock instead of the thread's CPU time
  --settle-ms  pause after each sample (default 2), see `measure_cell`
  --profile IMPL WORKLOAD N OPS
               run OPS operations of one cell, untimed and without warm-up, for
               `valgrind --tool=callgrind` or `perf record`
  --echo-bin PATH
               the echo server's binary, `echo_server` (`cargo xtask bench`
               builds it and passes this; by hand: `cargo build --release -p
               selectors-echo-server`, then ../target/release/echo_server): the
               echo workload runs it against the same server on raw epoll and
               on mio and against tokio's echo server (then, with --threads
               2, against tokio's multi-thread runtime); without it, echo is
               skipped
";

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        json: None,
        plot: None,
        only: None,
        impls: None,
        rounds: None,
        target: None,
        samples: false,
        clock: Clock::Cpu,
        settle: Duration::from_millis(2),
        profile: None,
        echo_bin: None,
        smoke: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        options.smoke = false;
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--json" => options.json = Some(value("--json")?),
            "--plot" => options.plot = Some(value("--plot")?),
            "--only" => {
                options.only = Some(value("--only")?.split(',').map(String::from).collect())
            }
            "--impls" => {
                options.impls = Some(value("--impls")?.split(',').map(String::from).collect())
            }
            "--rounds" => {
                let n = value("--rounds")?;
                options.rounds = Some(n.parse().map_err(|_| format!("bad --rounds `{n}`"))?);
            }
            "--target-ms" => {
                let ms = value("--target-ms")?;
                let ms = ms.parse().map_err(|_| format!("bad --target-ms `{ms}`"))?;
                options.target = Some(Duration::from_millis(ms));
            }
            "--samples" => options.samples = true,
            "--profile" => {
                let imp = value("--profile")?;
                let workload = value("--profile")?;
                let n = value("--profile")?;
                let ops = value("--profile")?;
                let bad = |what: &str| format!("bad --profile {what}");
                options.profile = Some((
                    imp,
                    workload,
                    n.parse().map_err(|_| bad("N"))?,
                    ops.parse().map_err(|_| bad("OPS"))?,
                ));
            }
            "--settle-ms" => {
                let ms = value("--settle-ms")?;
                let ms = ms.parse().map_err(|_| format!("bad --settle-ms `{ms}`"))?;
                options.settle = Duration::from_millis(ms);
            }
            "--wall" => options.clock = Clock::Wall,
            "--echo-bin" => options.echo_bin = Some(value("--echo-bin")?),
            // `cargo bench` passes this to every bench binary; `cargo test
            // --all-targets` runs it with no argument at all.
            "--bench" => options.smoke = false,
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    Ok(options)
}

/// The samples of one (workload, n): by implementation, one per round
/// (`None` where the implementation does not run it).
#[derive(Debug)]
pub struct Cell {
    /// The workload.
    pub workload: Workload,
    /// Its size.
    pub n: usize,
    /// ns per operation, by implementation and round.
    pub samples: BTreeMap<&'static str, Vec<Option<f64>>>,
}

/// Everything measured once per run.
#[derive(Debug)]
pub struct Extras {
    /// Allocations per select, by implementation.
    pub allocations: Vec<(&'static str, f64)>,
    /// Heap bytes per registration, by implementation.
    pub bytes: Vec<(&'static str, f64)>,
    /// Registrations the bytes were measured over.
    pub bytes_n: usize,
}

/// Parses the command line and runs the benchmark.
pub fn main() {
    // This binary re-executed as a peer server of the echo workload.
    if let Some(result) = echo_servers::main_if_asked() {
        if let Err(err) = result {
            eprintln!("compare --echo-server: {err}");
            std::process::exit(1);
        }
        return;
    }
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("compare: {message}");
            std::process::exit(2);
        }
    };
    if let Err(err) = run(&options) {
        eprintln!("compare: {err}");
        std::process::exit(1);
    }
}

/// `--profile`: one implementation on one cell, a fixed number of operations.
fn profile(imp: &str, workload: &str, n: usize, ops: u64) -> io::Result<()> {
    let all = [
        Workload::Pingpong,
        Workload::Chain,
        Workload::Idle,
        Workload::ManyReady,
        Workload::Churn,
    ];
    let workload = all
        .into_iter()
        .find(|w| w.name() == workload)
        .ok_or_else(|| io::Error::other(format!("no workload `{workload}`")))?;
    let Some(Kind::Native(sample, _, _)) = implementations()
        .into_iter()
        .find(|i| i.name == imp)
        .map(|i| i.kind)
    else {
        return Err(io::Error::other(format!("no Rust implementation `{imp}`")));
    };
    let fx = workload.fixture(n)?;
    let plan = Plan {
        target: Duration::ZERO,
        clock: Clock::Wall,
        fixed: Some(ops),
    };
    let ns = sample(workload, &fx, &plan)?;
    println!("{imp} {} n={n}: {ops} ops, {ns:?} ns/op", workload.name());
    Ok(())
}

fn run(options: &Options) -> io::Result<()> {
    if let Some((imp, workload, n, ops)) = &options.profile {
        fixture::raise_fd_limit();
        return profile(imp, workload, *n, *ops);
    }
    let started = Instant::now();
    let fd_limit = fixture::raise_fd_limit();
    let (rounds, target) = if options.smoke {
        println!("smoke run (no arguments, as `cargo test --all-targets` runs it): every workload once, tiny");
        (1, Duration::from_millis(1))
    } else if options.quick {
        (21, Duration::from_millis(8))
    } else {
        (31, Duration::from_millis(20))
    };
    let rounds = options.rounds.unwrap_or(rounds);
    let plan = Plan {
        target: options.target.unwrap_or(target),
        clock: options.clock,
        fixed: None,
    };
    let mut impls = implementations();
    if let Some(wanted) = &options.impls {
        impls.retain(|imp| wanted.iter().any(|w| w == imp.name));
    }
    if options.smoke {
        check_refusals(&impls)?;
    }

    let mut cpython = match Cpython::start() {
        _ if !impls.iter().any(|imp| imp.name == "cpython") => None,
        Ok(cpython) => Some(cpython),
        Err(reason) => {
            println!("note: cpython skipped: {reason}");
            None
        }
    };

    let mut notes = Vec::new();
    report::header(
        &mut io::stdout(),
        rounds,
        &plan,
        cpython.as_ref().map(|c| c.version.as_str()),
    )?;

    let mut cells = Vec::new();
    for (workload, sizes) in schedule(options.quick, options.smoke) {
        if let Some(only) = &options.only {
            if !only.iter().any(|w| w == workload.name()) {
                continue;
            }
        }
        for n in sizes {
            if workload.fds_needed(n) as u64 > fd_limit {
                notes.push(format!(
                    "{} n={n} skipped: needs about {} descriptors, the limit is {fd_limit}",
                    workload.name(),
                    workload.fds_needed(n)
                ));
                continue;
            }
            let cell = measure_cell(
                workload,
                n,
                rounds,
                &plan,
                options.settle,
                &impls,
                cpython.as_mut(),
            )?;
            report::progress(&cell, started.elapsed());
            if options.samples {
                for (name, values) in &cell.samples {
                    let values: Vec<String> = values
                        .iter()
                        .map(|v| v.map_or("-".into(), |v| format!("{v:.1}")))
                        .collect();
                    eprintln!("    {name:>10}: {}", values.join(" "));
                }
            }
            cells.push(cell);
        }
    }

    let extras = measure_extras(&impls, cpython.as_mut())?;
    if cells.iter().any(|c| c.workload == Workload::ManyReady) {
        notes.push(
            "mio has no many_ready figure: it is edge-triggered, so a descriptor that \
             stays readable is reported once, not on every poll"
                .into(),
        );
    }
    if cpython.is_none() {
        notes.push("cpython was not measured (python3 not found)".into());
    }

    report::print(&mut io::stdout(), &cells, &impls, &extras, &notes)?;
    run_echo(options)?;
    println!(
        "\n(total {:.0} s, {} rounds, {} ms per sample)",
        started.elapsed().as_secs_f64(),
        rounds,
        plan.target.as_millis()
    );

    if let Some(path) = &options.json {
        std::fs::write(path, report::json(&cells))?;
        println!("wrote {path}");
    }
    if let Some(path) = &options.plot {
        let idle: Vec<&Cell> = cells
            .iter()
            .filter(|c| c.workload == Workload::Idle)
            .collect();
        std::fs::write(path, svg::plot(&idle, &impls))?;
        println!("wrote {path}");
    }
    Ok(())
}

/// The smoke run's check that every Rust implementation, the raw baselines
/// included, refuses what would corrupt its bookkeeping
/// ([`workloads::check_refusals`]).
fn check_refusals(impls: &[Impl]) -> io::Result<()> {
    let fx = Fixture::new(0, 2)?;
    for imp in impls {
        if let Kind::Native(_, _, check) = imp.kind {
            check(&fx).map_err(|err| io::Error::other(format!("{}: {err}", imp.name)))?;
        }
    }
    println!("every implementation refuses a double registration and a stranger");
    Ok(())
}

/// All rounds of one (workload, n), implementations interleaved.
fn measure_cell(
    workload: Workload,
    n: usize,
    rounds: usize,
    plan: &Plan,
    settle: Duration,
    impls: &[Impl],
    mut cpython: Option<&mut Cpython>,
) -> io::Result<Cell> {
    let fx = workload.fixture(n)?;
    let mut samples: BTreeMap<&'static str, Vec<Option<f64>>> = BTreeMap::new();
    // A fixed pseudo-random order per round: every implementation is
    // measured early, late, and after each of the others equally often on
    // average, so neither drift nor what the previous sample left behind
    // favours one of them.
    let mut order: Vec<usize> = (0..impls.len()).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ (n as u64) ^ ((workload as u64) << 32);
    for _round in 0..rounds {
        workloads::shuffle(&mut order, &mut seed);
        for &i in &order {
            let imp = impls[i];
            let value = match imp.kind {
                Kind::Native(sample, _, _) => sample(workload, &fx, plan)?,
                Kind::Cpython => match cpython.as_deref_mut() {
                    Some(py) if cpython_runs(workload) => py.sample(workload, n, plan)?,
                    _ => None,
                },
            };
            samples.entry(imp.name).or_default().push(value);
            // Closing an epoll instance frees its registrations through RCU,
            // which the kernel finishes later in softirqs, charged to whatever
            // runs then. A short sleep lets that happen outside the next
            // sample.
            std::thread::sleep(settle);
        }
    }
    if let Some(py) = cpython {
        py.release()?;
    }
    Ok(Cell {
        workload,
        n,
        samples,
    })
}

/// Allocations per select and bytes per registration.
fn measure_extras(impls: &[Impl], cpython: Option<&mut Cpython>) -> io::Result<Extras> {
    let fx = Workload::Pingpong.fixture(1)?;
    let mut allocations = Vec::new();
    for imp in impls {
        if let Kind::Native(_, allocs, _) = imp.kind {
            allocations.push((imp.name, allocs(&fx)?));
        }
    }
    drop(fx);

    let bytes_n = 10_000;
    let fx = Fixture::new(0, bytes_n)?;
    let mut bytes = memory::bytes_per_registration(&fx)?;
    drop(fx);
    if let Some(py) = cpython {
        allocations.push(("cpython", py.objects_per_select()?));
        bytes.push(("cpython", py.bytes_per_registration(bytes_n)?));
    }
    Ok(Extras {
        allocations,
        bytes,
        bytes_n,
    })
}

/// The `echo` workload, when asked for (every full run, or `--only echo`)
/// and given the echo server's binary.
fn run_echo(options: &Options) -> io::Result<()> {
    if options.smoke && options.echo_bin.is_none() {
        // `cargo test` builds no echo server binary; the peers are here.
        return echo::smoke();
    }
    let wanted = match &options.only {
        Some(only) => only.iter().any(|w| w == "echo"),
        None => !options.smoke,
    };
    if !wanted {
        return Ok(());
    }
    let Some(bin) = &options.echo_bin else {
        println!(
            "\necho: skipped (no --echo-bin; `cargo xtask bench` builds the echo server and passes it)"
        );
        return Ok(());
    };
    let plan = echo::Plan::new(options.quick, options.rounds, options.clock);
    let bin = std::path::Path::new(bin);
    let cells = echo::run(bin, &plan)?;
    echo::print(&mut io::stdout(), &cells, &plan, bin)
}
