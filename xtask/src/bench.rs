//! `cargo xtask bench`: the side-by-side benchmark.
//!
//! Builds `benches/` (the unpublished `selectors-bench` package) in release
//! (the `bench` profile) and runs it; the peers (mio, polling, tokio) are
//! dependencies of that package only, and the CPython side is a stdlib-only
//! script it drives.

use std::process::Command;

use crate::cmd::{apt_get_install, cargo, is_root, run, stdout, target_dir};

const HELP: &str = "\
cargo xtask bench [--quick] [--json FILE] [--plot FILE.svg] [-- BENCH-ARGS...]

Runs every workload (pingpong, chain, idle, many_ready, churn) on every
implementation (default, epoll, dyn, poll, select, raw-epoll, raw-poll,
raw-select, mio, polling, cpython), interleaved over several rounds, and
prints medians, ratios and the performance goals. Then the echo workload:
the echo server (`selectors-echo-server`, built here in release) as a child
process against the same server on raw epoll and on mio and against the
echo server a tokio user writes, for 1, 64 and 1000 clients, on one thread,
then on two (`-- --only echo` runs it alone).

  --quick          about two and a half minutes on 2 cores (fewer rounds and sizes)
  --json FILE      the medians as [{\"workload\", \"n\", \"impl\", \"ns_per_op\"}, ...]
  --plot FILE.svg  cost against n for the idle (scaling) workload
  -- ARGS          passed to the bench binary as is (`-- --help` lists them)

CPython is measured when `python3` (or $PYTHON) runs; otherwise it is
skipped with a note. Relative paths are relative to the current directory.
";

/// Runs the task with the arguments after `bench`.
pub fn main(args: &[String]) -> Result<(), String> {
    let mut forward: Vec<String> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                print!("{HELP}");
                return Ok(());
            }
            "--quick" => forward.push(arg.clone()),
            "--json" | "--plot" => {
                let value = args
                    .next()
                    .ok_or_else(|| format!("`{arg}` needs a file name"))?;
                // The bench runs in `benches/`: hand it
                // an absolute path, relative to where the task was started.
                let path = std::env::current_dir()
                    .map_err(|e| format!("no current directory: {e}"))?
                    .join(value);
                forward.extend([arg.clone(), path.to_string_lossy().into_owned()]);
            }
            "--" => {
                forward.extend(args.by_ref().cloned());
            }
            other => return Err(format!("unknown argument `{other}`\n\n{HELP}")),
        }
    }
    ensure_python();
    let echo_server = build_echo_server()?;
    forward.extend(["--echo-bin".to_string(), echo_server]);
    run(cargo()
        .args(["bench", "-p", "selectors-bench", "--bench", "compare", "--"])
        .args(&forward))
}

/// CPython is optional, but a fresh Debian-like machine gets it if it can.
fn ensure_python() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if stdout(Command::new(&python).arg("--version")).is_ok() {
        return;
    }
    let has_apt = stdout(Command::new("apt-get").arg("--version")).is_ok();
    if python == "python3" && has_apt && is_root() {
        println!("xtask bench: python3 not found, installing it for the CPython comparison");
        if apt_get_install(&["python3"]).is_ok() {
            return;
        }
    }
    println!("xtask bench: `{python}` not found; the CPython column will be skipped");
}

/// Builds the echo server in release (the bench profile's settings) and
/// returns the path of its binary, for the echo workload.
fn build_echo_server() -> Result<String, String> {
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "selectors-echo-server",
        "--bin",
        "echo_server",
    ]))?;
    let binary = target_dir()
        .join("release")
        .join(format!("echo_server{}", std::env::consts::EXE_SUFFIX));
    Ok(binary.to_string_lossy().into_owned())
}
