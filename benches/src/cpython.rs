//! CPython's `selectors.DefaultSelector` on the same workloads: a
//! long-lived `python3 benches/cpython_bench.py` child, asked for one sample
//! at a time so it interleaves with the Rust implementations.

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::workloads::{Clock, Plan, Workload};

// The script is at the package root, beside `src/`.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/cpython_bench.py");

/// The running script.
pub struct Cpython {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// `python3 --version`.
    pub version: String,
}

impl Cpython {
    /// Starts the script; `Err` with the reason if python3 cannot run it.
    pub fn start() -> Result<Cpython, String> {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let version = Command::new(&python)
            .arg("--version")
            .output()
            .map_err(|e| format!("`{python}` not found ({e})"))?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        let mut child = Command::new(&python)
            .arg(SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start `{python} {SCRIPT}`: {e}"))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Cpython {
            child,
            stdin,
            stdout,
            version,
        })
    }

    fn ask(&mut self, command: &str) -> io::Result<String> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        let mut answer = String::new();
        if self.stdout.read_line(&mut answer)? == 0 {
            return Err(io::Error::other("the CPython script exited"));
        }
        Ok(answer.trim().to_string())
    }

    fn ask_number(&mut self, command: &str) -> io::Result<Option<f64>> {
        let answer = self.ask(command)?;
        if answer == "na" {
            return Ok(None);
        }
        answer
            .parse()
            .map(Some)
            .map_err(|_| io::Error::other(format!("CPython answered `{answer}` to `{command}`")))
    }

    /// One sample: ns per operation.
    pub fn sample(&mut self, workload: Workload, n: usize, plan: &Plan) -> io::Result<Option<f64>> {
        let target = plan.target.as_nanos();
        let clock = match plan.clock {
            Clock::Cpu => "cpu",
            Clock::Wall => "wall",
        };
        self.ask_number(&format!("run {} {n} {target} {clock}", workload.name()))
    }

    /// Closes the descriptors the script keeps between samples.
    pub fn release(&mut self) -> io::Result<()> {
        self.ask("release").map(drop)
    }

    /// Objects each `select()` returns (kept alive), per call.
    pub fn objects_per_select(&mut self) -> io::Result<f64> {
        Ok(self.ask_number("allocs")?.unwrap_or(f64::NAN))
    }

    /// Traced heap bytes per registration, over `n` registrations.
    pub fn bytes_per_registration(&mut self, n: usize) -> io::Result<f64> {
        Ok(self.ask_number(&format!("mem {n}"))?.unwrap_or(f64::NAN))
    }
}

impl Drop for Cpython {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}
