//! `cargo xtask bench`: our selectors side by side with the raw syscalls,
//! mio, polling and CPython, on five workloads (pingpong, chain, idle,
//! many_ready, churn); then the echo workload, our echo server
//! (`selectors-echo-server`) against the same server on raw epoll and on
//! mio and against the echo server a tokio user writes (current-thread
//! runtime), then with two threads against tokio's multi-thread runtime.
//!
//! Each (workload, n) gets its own descriptors; then, for several rounds,
//! every implementation takes one sample in turn (the order rotates each
//! round), each on a fresh selector that registers, warms up, calibrates
//! and times one batch. The tables show medians over rounds; ratios are the
//! median of the per-round ratios, so slow drift on a shared machine cancels.
//!
//! ```text
//! cargo bench -p selectors-bench --bench compare -- [--quick] [--json FILE] [--plot FILE.svg]
//!                                                  [--only WORKLOAD[,WORKLOAD…]] [--rounds N]
//!                                                  [--echo-bin PATH]
//! ```
//!
//! The echo workload needs `--echo-bin`: the `echo_server` binary, built by
//! `cargo build --release -p selectors-echo-server` (its path absolute, or
//! relative to `benches/`, where cargo runs the bench: so
//! `../target/release/echo_server`). `cargo xtask bench` builds and passes it.
//!
//! Linux only: it sets epoll, mio and polling side by side (on other
//! systems it compiles to a stub that says so).

#[cfg(target_os = "linux")]
mod alloc;
#[cfg(target_os = "linux")]
mod cpython;
#[cfg(target_os = "linux")]
mod drivers;
#[cfg(target_os = "linux")]
mod echo;
#[cfg(target_os = "linux")]
mod echo_servers;
#[cfg(target_os = "linux")]
mod fixture;
#[cfg(target_os = "linux")]
mod memory;
#[cfg(target_os = "linux")]
mod report;
#[cfg(target_os = "linux")]
mod run;
#[cfg(target_os = "linux")]
mod svg;
#[cfg(target_os = "linux")]
mod workloads;

#[cfg(target_os = "linux")]
fn main() {
    run::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("compare: this benchmark runs on Linux only");
}
