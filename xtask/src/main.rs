//! The workspace's task runner (`cargo xtask <task>`), std only.
//!
//! `cargo xtask ci` runs exactly what `.ci/run` (and every CI job) runs.
//! One module per task; [`cmd`] runs their commands.

mod bench;
mod ci;
mod cmd;
mod cross;
mod devpoll;
mod msrv;
mod publish;
mod python;
mod reliability;
mod windows;

use std::env;
use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <task>

Tasks:
  ci        everything CI runs: fmt, clippy, tests, docs, msrv, publish dry run,
            cross-target checks, libkqueue, devpoll, windows, sanitizers, the
            Python module (this is what .ci/run runs)
  msrv      check the libraries, the facade's examples and the echo server with
            the workspace's rust-version (installed if missing), for the host
            and for Windows
  publish-dry-run
            `cargo publish --dry-run` of every library crate, in dependency
            order, then the facade's doctests run from its .crate
  bench     side-by-side benchmarks (see `cargo xtask bench --help`)
  soak      the property tests with 100x the cases
  sanitize  the tests under AddressSanitizer (nightly)
  devpoll   DevpollSelector's tests, and the cross-backend ones with it as
            DefaultSelector, on Linux, on an emulation of the /dev/poll driver
  python    the Python module's wheel against CPython's own test suites
            (`--bench`: its benchmark)
  windows   the Windows tests (x86_64-pc-windows-gnu) under Wine, on Linux
  help      this text
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "ci" => no_args(task, rest).and_then(|()| ci::main()),
        "msrv" => no_args(task, rest).and_then(|()| msrv::main()),
        "publish-dry-run" => no_args(task, rest).and_then(|()| publish::dry_run()),
        "bench" => bench::main(rest),
        "soak" => reliability::soak(rest),
        "sanitize" => reliability::sanitize(rest),
        "devpoll" => no_args(task, rest).and_then(|()| devpoll::ci_stage()),
        "python" => python::main(rest),
        "windows" => no_args(task, rest).and_then(|()| windows::ci_stage()),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown task `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Fails on any argument, for tasks that take none.
fn no_args(task: &str, args: &[String]) -> Result<(), String> {
    match args.first() {
        Some(arg) => Err(format!("`{task}` takes no arguments, got `{arg}`")),
        None => Ok(()),
    }
}
