//! Medians, ratios, the performance goals, and the table and JSON output.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use crate::run::{Cell, Extras, Impl};
use crate::workloads::{Plan, Workload, CHAIN_ACTIVE};

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

impl Cell {
    /// The median ns per operation of `name`.
    pub fn median(&self, name: &str) -> Option<f64> {
        median(self.samples.get(name)?.iter().flatten().copied())
    }

    /// The median over rounds of `num / den`, both taken in the same round.
    pub fn ratio(&self, num: &str, den: &str) -> Option<f64> {
        let (a, b) = (self.samples.get(num)?, self.samples.get(den)?);
        median(a.iter().zip(b).filter_map(|(a, b)| Some((*a)? / (*b)?)))
    }
}

/// A goal on the ratio `num / den`.
struct Goal {
    num: &'static str,
    den: &'static str,
    /// Workloads it applies to (every size of each); empty: all.
    workloads: &'static [Workload],
    limit: f64,
    /// `<` rather than `<=`.
    strict: bool,
    /// The raw syscalls doing what `num` does: where the goal is missed,
    /// `raw / den` says whether the kernel itself allows it.
    raw: Option<&'static str>,
}

impl Goal {
    fn applies(&self, workload: Workload) -> bool {
        self.workloads.is_empty() || self.workloads.contains(&workload)
    }

    fn holds(&self, ratio: f64) -> bool {
        if self.strict {
            ratio < self.limit
        } else {
            ratio <= self.limit
        }
    }

    fn describe(&self) -> String {
        let on = if self.workloads.is_empty() {
            "every workload".to_string()
        } else {
            self.workloads
                .iter()
                .map(|w| w.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let op = if self.strict { "<" } else { "<=" };
        format!("{}/{} {op} {:.2} on {on}", self.num, self.den, self.limit)
    }
}

const GOALS: &[Goal] = &[
    Goal {
        num: "default",
        den: "raw-epoll",
        workloads: &[Workload::Pingpong, Workload::Chain, Workload::ManyReady],
        limit: 1.05,
        strict: false,
        raw: None,
    },
    Goal {
        num: "default",
        den: "raw-epoll",
        workloads: &[Workload::Churn],
        limit: 1.10,
        strict: false,
        raw: None,
    },
    Goal {
        num: "default",
        den: "mio",
        workloads: &[Workload::Pingpong, Workload::Chain],
        limit: 1.00,
        strict: false,
        raw: Some("raw-epoll"),
    },
    Goal {
        num: "default",
        den: "polling",
        workloads: &[Workload::Pingpong, Workload::Chain],
        limit: 1.00,
        strict: true,
        raw: Some("raw-epoll"),
    },
    Goal {
        num: "poll",
        den: "raw-poll",
        workloads: WAITS,
        limit: 1.10,
        strict: false,
        raw: None,
    },
    Goal {
        num: "select",
        den: "raw-select",
        workloads: WAITS,
        limit: 1.10,
        strict: false,
        raw: None,
    },
    // Against raw baselines that keep what a program on poll or select
    // must (see `drivers::RawPoll`): no system call, so the bookkeeping
    // is all there is to compare.
    Goal {
        num: "poll",
        den: "raw-poll",
        workloads: &[Workload::Churn],
        limit: 1.50,
        strict: false,
        raw: None,
    },
    Goal {
        num: "select",
        den: "raw-select",
        workloads: &[Workload::Churn],
        limit: 1.50,
        strict: false,
        raw: None,
    },
];

/// The workloads that wait in the kernel (all but `churn`).
const WAITS: &[Workload] = &[
    Workload::Pingpong,
    Workload::Chain,
    Workload::Idle,
    Workload::ManyReady,
];

/// The ratio columns: each goal's ratio, CPython against us for context, and
/// first `default/epoll`: the same code (`DefaultSelector` is
/// `EpollSelector`), so its distance from 1 is the noise of the measurement.
const RATIOS: &[(&str, &str)] = &[
    ("default", "epoll"),
    ("default", "raw-epoll"),
    ("default", "mio"),
    ("default", "polling"),
    ("poll", "raw-poll"),
    ("select", "raw-select"),
    ("cpython", "default"),
];

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    format!("{cpu}, {cores} cores, Linux {kernel}")
}

/// The lines before any measurement.
pub fn header(
    out: &mut impl Write,
    rounds: usize,
    plan: &Plan,
    python: Option<&str>,
) -> io::Result<()> {
    writeln!(out, "selectors side-by-side benchmark")?;
    writeln!(out, "machine: {}", machine())?;
    writeln!(
        out,
        "method:  {rounds} rounds; in each, every implementation takes one {} ms sample \
         (fresh selector, warm-up, calibration) in shuffled order",
        plan.target.as_millis()
    )?;
    writeln!(
        out,
        "         time is the thread's CPU time (nothing sleeps: every select has work); \
         medians of the rounds; ratios are medians of the per-round ratios"
    )?;
    if let Some(python) = python {
        writeln!(out, "cpython: {python}, selectors.DefaultSelector")?;
    }
    Ok(())
}

/// One line on stderr per finished (workload, n).
pub fn progress(cell: &Cell, elapsed: Duration) {
    let def = cell.median("default").map_or("-".into(), fmt_ns);
    eprintln!(
        "[{:>5.1}s] {} n={}: default {def} ns/op",
        elapsed.as_secs_f64(),
        cell.workload.name(),
        cell.n
    );
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 100.0 {
        format!("{ns:.0}")
    } else {
        format!("{ns:.1}")
    }
}

fn unit(workload: Workload) -> &'static str {
    match workload {
        Workload::Pingpong => "round trip",
        Workload::Chain => "event",
        Workload::Idle => "select",
        Workload::ManyReady => "event",
        Workload::Churn => "operation",
    }
}

fn table(out: &mut String, title: &str, cells: &[Cell], names: &[&str]) {
    let _ = writeln!(out, "\n{title}");
    let _ = write!(out, "{:<11}{:>6}  {:<10}", "workload", "n", "per");
    for name in names {
        let _ = write!(out, "{name:>11}");
    }
    out.push('\n');
    for cell in cells {
        if names.iter().all(|name| cell.median(name).is_none()) {
            continue;
        }
        let _ = write!(
            out,
            "{:<11}{:>6}  {:<10}",
            cell.workload.name(),
            cell.n,
            unit(cell.workload)
        );
        for name in names {
            let value = cell.median(name).map_or("-".into(), fmt_ns);
            let _ = write!(out, "{value:>11}");
        }
        out.push('\n');
    }
}

/// The tables, the goals, the allocation and memory figures, the notes.
pub fn print(
    out: &mut impl Write,
    cells: &[Cell],
    impls: &[Impl],
    extras: &Extras,
    notes: &[String],
) -> io::Result<()> {
    let mut s = String::new();
    let present = |name: &str| impls.iter().any(|i| i.name == name);
    let epoll_side: Vec<&str> = [
        "default",
        "epoll",
        "dyn",
        "raw-epoll",
        "mio",
        "polling",
        "cpython",
    ]
    .into_iter()
    .filter(|n| present(n))
    .collect();
    table(
        &mut s,
        "ns per operation, epoll and peers (median)",
        cells,
        &epoll_side,
    );
    table(
        &mut s,
        "ns per operation, portable backends (median)",
        cells,
        &["poll", "raw-poll", "select", "raw-select"],
    );

    // Ratios, with `!` on a missed goal.
    let _ = writeln!(
        s,
        "\nratios (median of per-round ratios; ! = goal missed; default/epoll is the same code: \
         its distance from 1 is noise)"
    );
    // Two header lines: numerators, then denominators.
    let _ = write!(s, "{:<19}", "");
    for (num, _) in RATIOS {
        let _ = write!(s, "{:>12}", format!("{num}/"));
    }
    let _ = write!(s, "\n{:<11}{:>6}  ", "workload", "n");
    for (_, den) in RATIOS {
        let _ = write!(s, "{den:>11} ");
    }
    s.push('\n');
    for cell in cells {
        let _ = write!(s, "{:<11}{:>6}  ", cell.workload.name(), cell.n);
        for &(num, den) in RATIOS {
            let text = match cell.ratio(num, den) {
                None => "-".to_string(),
                Some(r) => {
                    let missed = GOALS.iter().any(|g| {
                        g.num == num && g.den == den && g.applies(cell.workload) && !g.holds(r)
                    });
                    format!("{r:.3}{}", if missed { "!" } else { " " })
                }
            };
            let _ = write!(s, "{text:>12}");
        }
        s.push('\n');
    }

    let _ = writeln!(s, "\ngoals");
    for goal in GOALS {
        let ratios: Vec<(String, f64)> = cells
            .iter()
            .filter(|c| goal.applies(c.workload))
            .filter_map(|c| {
                let r = c.ratio(goal.num, goal.den)?;
                let mut at = format!("{} n={}", c.workload.name(), c.n);
                if let Some(raw) = goal.raw.filter(|_| !goal.holds(r)) {
                    if let Some(bound) = c.ratio(raw, goal.den) {
                        at = format!("{at} [{raw}/{}: {bound:.3}]", goal.den);
                    }
                }
                Some((at, r))
            })
            .collect();
        let _ = writeln!(s, "  {}", verdict(goal, &ratios));
    }
    let idle: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.workload == Workload::Idle)
        .collect();
    if let (Some(first), Some(last)) = (idle.first(), idle.last()) {
        if let (Some(a), Some(b)) = (first.median("epoll"), last.median("epoll")) {
            let flat = b / a;
            let _ = writeln!(
                s,
                "  {:<5} idle flat for epoll: n={} costs {flat:.2}x n={} (limit 1.50)",
                if flat <= 1.5 { "HOLDS" } else { "MISS" },
                last.n,
                first.n
            );
        }
    }

    // Memory: one small table, implementations as columns.
    let _ = writeln!(
        s,
        "\nmemory: allocations per select in steady state (1000 pingpong round trips after \
         warm-up);\n        heap bytes per registration with T = () ({} registrations, \
         amortised growth included)",
        extras.bytes_n
    );
    let _ = writeln!(
        s,
        "{:<14}{:>16}{:>22}",
        "", "allocs/select", "heap bytes/register"
    );
    for imp in impls {
        let name = imp.name;
        let allocs = extras.allocations.iter().find(|(n, _)| *n == name).map_or(
            "-".to_string(),
            |(n, v)| {
                if *n == "cpython" {
                    format!("{v:.1}*")
                } else {
                    format!("{v:.2}")
                }
            },
        );
        // `default` and `dyn` are the epoll selector.
        let lookup = match name {
            "default" | "dyn" => "epoll",
            other => other,
        };
        let bytes = extras
            .bytes
            .iter()
            .find(|(n, _)| *n == lookup)
            .map_or("-".to_string(), |(_, v)| format!("{v:.1}"));
        let _ = writeln!(s, "  {name:<12}{allocs:>16}{bytes:>22}");
    }
    let _ = writeln!(
        s,
        "  * objects each select() returns (gc off); CPython allocates and frees more inside\n  \
         mio and polling keep nothing per registration in user space (the kernel does); their \
         caller keeps a token -> object table,\n  as the raw-* versions do (8 to 16 bytes per \
         descriptor number)"
    );

    let _ = writeln!(
        s,
        "\nnotes\n  chain: n watched descriptors (n/2 socket pairs, both ends watched), {CHAIN_ACTIVE} \
         bytes in flight; one op = one read event that found data (and forwarded it)"
    );
    let _ = writeln!(
        s,
        "  idle: n idle watched descriptors plus one active pair; one op = write, select, read"
    );
    for note in notes {
        let _ = writeln!(s, "  {note}");
    }
    out.write_all(s.as_bytes())
}

fn verdict(goal: &Goal, ratios: &[(String, f64)]) -> String {
    if ratios.is_empty() {
        return format!("n/a   {} (not measured)", goal.describe());
    }
    let missed: Vec<String> = ratios
        .iter()
        .filter(|(_, r)| !goal.holds(*r))
        .map(|(at, r)| format!("{at}: {r:.3}"))
        .collect();
    let worst = ratios.iter().map(|(_, r)| *r).fold(f64::MIN, f64::max);
    if missed.is_empty() {
        format!("HOLDS {} (worst {worst:.3})", goal.describe())
    } else {
        format!("MISS  {} ({})", goal.describe(), missed.join("; "))
    }
}

/// `[{"workload": .., "n": .., "impl": .., "ns_per_op": ..}, ...]`, medians.
pub fn json(cells: &[Cell]) -> String {
    let mut s = String::from("[\n");
    let mut first = true;
    for cell in cells {
        for name in cell.samples.keys() {
            let Some(ns) = cell.median(name) else {
                continue;
            };
            if !first {
                s.push_str(",\n");
            }
            first = false;
            let _ = write!(
                s,
                "  {{\"workload\": \"{}\", \"n\": {}, \"impl\": \"{name}\", \"ns_per_op\": {ns:.3}}}",
                cell.workload.name(),
                cell.n
            );
        }
    }
    s.push_str("\n]\n");
    s
}
