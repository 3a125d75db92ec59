//! Running commands, and where they run: every task starts its programs
//! through these few functions.
//!
//! - [`run`]: prints the command, runs it with its output shown, and fails
//!   loudly;
//! - [`tee`]: the same, with each line of its standard output also handed
//!   to the caller as it comes;
//! - [`quiet`] and [`stdout`]: run it with its output captured, for tools
//!   whose chatter would mislead and for probes (is `wine` installed?);
//!   a failure's error carries the command's standard error.
//!
//! [`cargo`] is the `cargo` that runs xtask, in [`project_root`];
//! [`target_dir`] is where it builds (each stage that needs a directory of
//! its own joins its name to it).

use std::env;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The workspace root (this crate lives in `<root>/xtask`).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in a workspace")
        .to_path_buf()
}

/// The target directory cargo uses here: `CARGO_TARGET_DIR` (a relative one
/// taken from the project root, where xtask runs cargo), or `target`.
pub fn target_dir() -> PathBuf {
    let target =
        env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    project_root().join(target)
}

/// The `cargo` that runs us, so toolchain overrides carry through, in the
/// project root.
pub fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(project_root());
    cmd
}

/// Prints `cmd` (with the environment it sets), runs it, and fails loudly.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = shown(cmd);
    println!("\n==> {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not start `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

/// Like [`run`], with the standard output echoed as it comes and each of
/// its lines (lossily UTF-8, line ending included) handed to `line`.
pub fn tee(cmd: &mut Command, mut line: impl FnMut(&str)) -> Result<(), String> {
    let shown = shown(cmd);
    println!("\n==> {shown}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start `{shown}`: {e}"))?;
    let mut reader = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut stdout = std::io::stdout();
    let mut buf = Vec::new();
    // Bytes as they come (test output need not be UTF-8), line by line.
    while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
        let _ = stdout.write_all(&buf);
        let _ = stdout.flush();
        line(&String::from_utf8_lossy(&buf));
        buf.clear();
    }
    match child.wait() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`{shown}` failed ({status})")),
        Err(e) => Err(format!("waiting for `{shown}`: {e}")),
    }
}

/// Runs `cmd` with its output captured and not shown; a failure's error
/// ends with its standard error.
pub fn quiet(cmd: &mut Command) -> Result<(), String> {
    captured(cmd).map(drop)
}

/// Runs `cmd` with its output captured; returns its standard output. A
/// failure's error ends with its standard error.
pub fn stdout(cmd: &mut Command) -> Result<String, String> {
    captured(cmd).map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn captured(cmd: &mut Command) -> Result<Output, String> {
    let shown = shown(cmd);
    let out = cmd
        .output()
        .map_err(|e| format!("could not start `{shown}`: {e}"))?;
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    if stderr.is_empty() {
        Err(format!("`{shown}` failed ({})", out.status))
    } else {
        Err(format!("`{shown}` failed ({}):\n{stderr}", out.status))
    }
}

/// `cmd` as [`run`] prints it: the environment it sets, then the command.
pub fn shown(cmd: &Command) -> String {
    let envs: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let program = cmd.get_program().to_string_lossy().into_owned();
    [envs, vec![program], args].concat().join(" ")
}

/// Whether we run as root (and may install what is missing).
pub fn is_root() -> bool {
    stdout(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// `apt-get install -y PACKAGES`, non-interactive; after an `apt-get
/// update` if the first attempt fails (most often a stale package list).
pub fn apt_get_install(packages: &[&str]) -> Result<(), String> {
    let apt_get = |args: &[&str]| {
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(args))
    };
    let install = || apt_get(&[&["install", "-y"], packages].concat());
    install().or_else(|_| apt_get(&["update"]).and_then(|()| install()))
}

/// The sums of libtest's `test result:` lines, as a command's output is
/// read ([`tee`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TestCount {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl TestCount {
    /// Adds one line of test output, if it is a `test result:` line
    /// (`test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; …`).
    pub fn add(&mut self, line: &str) {
        let Some((_, counts)) = line.split_once("test result:") else {
            return;
        };
        for part in counts.split(';') {
            // `ok. 3 passed`, ` 0 failed`: a number, then what it counts.
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real processes: `sh` from the host (these tests are Unix-only).
    #[cfg(unix)]
    #[test]
    fn captures_stdout_and_reports_stderr() {
        let out = stdout(Command::new("sh").args(["-c", "echo out; echo err >&2"]));
        assert_eq!(out.as_deref(), Ok("out\n"));
        let err = quiet(Command::new("sh").args(["-c", "echo out; echo why >&2; exit 3"]))
            .expect_err("exit 3 fails");
        assert!(err.starts_with("`sh -c "), "{err}");
        assert!(err.ends_with("(exit status: 3):\nwhy"), "{err}");
        let err = stdout(&mut Command::new("/nonexistent/program")).expect_err("no program");
        assert!(
            err.starts_with("could not start `/nonexistent/program`"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn tee_hands_over_every_line() {
        // The lines are echoed too, past the test harness's capture.
        let mut lines = Vec::new();
        let result = tee(
            Command::new("sh").args(["-c", "printf 'tee: 1\\ntee: 2\\ntee: 3'; exit 1"]),
            |line| lines.push(line.to_string()),
        );
        // The last line has no newline of its own.
        let _ = std::io::stdout().write_all(b"\n");
        assert_eq!(lines, ["tee: 1\n", "tee: 2\n", "tee: 3"]);
        assert!(result.is_err_and(|e| e.ends_with("failed (exit status: 1)")));
    }

    #[test]
    fn shows_environment_then_command() {
        let mut cmd = Command::new("cargo");
        cmd.env("A", "1").env_remove("B").args(["test", "-p", "x"]);
        assert_eq!(shown(&cmd), "A=1 cargo test -p x");
    }

    #[test]
    fn sums_test_result_lines() {
        let mut count = TestCount::default();
        for line in [
            "running 4 tests",
            "test tests::adds ... ok",
            "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; \
             finished in 0.00s",
            "test result: \x1b[32mok\x1b[0m. 2 passed; 0 failed; 0 ignored; 0 measured; \
             0 filtered out; finished in 0.03s\r\n",
            "test result: FAILED. 5 passed; 2 failed; 3 ignored; 0 measured; 0 filtered out",
        ] {
            count.add(line);
        }
        assert_eq!((count.passed, count.failed, count.ignored), (10, 2, 4));
    }
}
