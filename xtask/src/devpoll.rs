//! `cargo xtask devpoll`, also the devpoll stage of `cargo xtask ci`:
//! `DevpollSelector` on Linux, on the emulation of the illumos `/dev/poll`
//! driver (the `devpoll-emulation` package), as the libkqueue stage runs
//! `KqueueSelector` on libkqueue.
//!
//! Everything builds with `--cfg selectors_devpoll_emulation` in
//! `RUSTFLAGS`, into `target/devpoll`: the devpoll crate then builds for
//! Linux with illumos's ABI, and the facade's `DefaultSelector` is
//! `DevpollSelector`. The `RUSTFLAGS` of the environment are kept, but for
//! `--cfg selectors_force_poll` and `--cfg selectors_force_select` (the CI
//! jobs that force the portable backends set them), which would take
//! `DefaultSelector` away from devpoll.
//!
//! 1. Builds the emulation, `libdevpoll_emulation.so`.
//! 2. Lints what the cfg changes (`clippy --all-targets -D warnings`): the
//!    emulation, the devpoll crate, the facade, the conformance suite and
//!    its cross-backend tests, the echo server.
//! 3. Runs the tests with the emulation preloaded into the test executables
//!    only (cargo's target runner is `env LD_PRELOAD=…`; cargo and rustc
//!    run without it; what the tests start inherits it), with a count of
//!    the tests that passed for each part:
//!    - the emulation's own tests, one per rule of the driver;
//!    - the devpoll crate's: unit tests, the conformance suite, the
//!      /dev/poll-specific tests, the doctests; then all of them again with
//!      the emulation as Oracle Solaris (`DEVPOLL_EMULATION=solaris`: a
//!      `dp_nfds` at the descriptor limit is `EINVAL`, the opener owns a
//!      set);
//!    - the cross-backend tests: `differential`, `bad_input`, `scale`,
//!      `signals_and_time` and `signal_routes` for devpoll and for
//!      `DefaultSelector` (plain and boxed; the other backends' ran in
//!      `cargo test --workspace`),
//!      `default_selector` (the conformance suite through the facade), and
//!      the echo server's tests, whose server runs on `DefaultSelector`.
//!      The differential tests run their default count of programs (2,000
//!      per backend, `PROPTEST_CASES`).
//!
//! Linux hosts on x86_64 and aarch64 (what the emulation is built for);
//! elsewhere the stage prints `SKIPPED`: the illumos CI job runs the
//! backend on the kernel's `/dev/poll`.

use std::env;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::cmd::{cargo, run, stdout, target_dir, tee, TestCount};

/// The emulation's package, and the shared object it builds.
const EMULATION: &str = "devpoll-emulation";
const LIBRARY: &str = "libdevpoll_emulation.so";

/// The environment variable that makes the emulation Oracle Solaris.
const FLAVOUR: &str = "DEVPOLL_EMULATION";

/// The cross-backend tests that instantiate a test per backend, and the
/// instances this stage runs (the filters select them).
const PER_BACKEND: &[&str] = &[
    "differential",
    "bad_input",
    "scale",
    "signals_and_time",
    "signal_routes",
];
const INSTANCES: &[&str] = &["devpoll::", "default_selector::", "boxed_dyn::"];

/// `cargo xtask devpoll`, and the devpoll stage of `ci`.
pub fn ci_stage() -> Result<(), String> {
    if !(cfg!(target_os = "linux") && cfg!(any(target_arch = "x86_64", target_arch = "aarch64"))) {
        println!(
            "\ndevpoll: SKIPPED (the /dev/poll emulation is built for Linux on x86_64 and \
             aarch64; the illumos job runs the backend on the kernel's)"
        );
        return Ok(());
    }
    let start = Instant::now();
    println!("\n==> devpoll: DevpollSelector on Linux, on the emulation of the /dev/poll driver");
    match stage() {
        Ok(lines) => {
            println!();
            for line in lines {
                println!("devpoll: {line}");
            }
            println!("devpoll: ok ({:.0} s)", start.elapsed().as_secs_f64());
            Ok(())
        }
        Err(why) => {
            println!("devpoll: FAILED");
            Err(format!("devpoll: {why}"))
        }
    }
}

/// Builds, lints and tests; returns the summary lines.
fn stage() -> Result<Vec<String>, String> {
    let dir = target_dir().join("devpoll");
    let rustflags = rustflags(&env::var("RUSTFLAGS").unwrap_or_default());
    let cargo_with = |args: &[&str]| {
        let mut cmd = cargo();
        cmd.env("RUSTFLAGS", &rustflags)
            .env("CARGO_TARGET_DIR", &dir)
            .args(args);
        cmd
    };

    run(&mut cargo_with(&["build", "-p", EMULATION]))?;
    let library = dir.join("debug").join(LIBRARY);
    if !library.is_file() {
        return Err(format!("{} was not built", library.display()));
    }
    let mut clippy = cargo_with(&["clippy", "--all-targets"]);
    for package in [
        EMULATION,
        "selectors-devpoll",
        "selectors-rs",
        "selectors-conformance",
        "selectors-echo-server",
    ] {
        clippy.args(["-p", package]);
    }
    run(clippy.args(["--", "-D", "warnings"]))?;

    let runner = runner_config(&library)?;
    // `cargo test` with the emulation preloaded into the test executables,
    // as `flavour` ("illumos" or "solaris").
    let test = |flavour: &str, args: &[&str]| {
        let mut cmd = cargo_with(&["test", "--config", &runner]);
        cmd.env(FLAVOUR, flavour).args(args);
        cmd
    };
    let devpoll = |target: &str| test("illumos", &["-p", "selectors-devpoll", target]);

    let emulation = passed(test("illumos", &["-p", EMULATION]))?;
    let unit = passed(devpoll("--lib"))?;
    let conformance = passed(devpoll("--test=conformance"))?;
    let specific = passed(devpoll("--test=devpoll"))?;
    let doc = passed(devpoll("--doc"))?;
    let solaris = passed(test("solaris", &["-p", "selectors-devpoll"]))?;

    let mut cross = Vec::new();
    for name in PER_BACKEND {
        let mut cmd = test("illumos", &["-p", "selectors-conformance", "--test", name]);
        cmd.arg("--").args(INSTANCES);
        cross.push((*name, passed(cmd)?));
    }
    let default = test(
        "illumos",
        &["-p", "selectors-conformance", "--test", "default_selector"],
    );
    cross.push(("default_selector", passed(default)?));
    cross.push((
        "echo server",
        passed(test("illumos", &["-p", "selectors-echo-server"]))?,
    ));
    let cross_total: u64 = cross.iter().map(|&(_, n)| n).sum();
    let cross_parts: Vec<String> = cross
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();

    Ok(vec![
        format!("the emulation's tests: {emulation} passed"),
        format!(
            "the devpoll crate as illumos: conformance {conformance}, unit {unit}, \
             /dev/poll-specific {specific}, doctests {doc} passed"
        ),
        format!("the devpoll crate as Oracle Solaris: {solaris} passed"),
        format!(
            "cross-backend, DefaultSelector = DevpollSelector: {cross_total} passed ({})",
            cross_parts.join(", ")
        ),
    ])
}

/// `RUSTFLAGS` for the stage: `inherited` without the cfgs that force
/// `DefaultSelector` onto another backend, plus the emulation's cfg.
fn rustflags(inherited: &str) -> String {
    const FORCING: [&str; 2] = ["selectors_force_poll", "selectors_force_select"];
    let mut kept: Vec<&str> = Vec::new();
    let mut words = inherited.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if word == "--cfg" && words.peek().is_some_and(|cfg| FORCING.contains(cfg)) {
            words.next();
        } else if !FORCING.iter().any(|cfg| word == format!("--cfg={cfg}")) {
            kept.push(word);
        }
    }
    kept.extend(["--cfg", "selectors_devpoll_emulation"]);
    kept.join(" ")
}

/// The `--config` value that makes `env LD_PRELOAD=<library>` the runner of
/// the host's executables (a triple's key overrides a `cfg(…)` one that a
/// user's configuration may have).
fn runner_config(library: &Path) -> Result<String, String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = stdout(Command::new(rustc).arg("-vV"))?;
    let host = version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .ok_or("rustc -vV names no host")?
        .trim();
    // A TOML basic string.
    let path = library
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", library.display()))?
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    Ok(format!(
        "target.{host}.runner = [\"env\", \"LD_PRELOAD={path}\"]"
    ))
}

/// Runs `cmd` (a `cargo test`), and counts the tests that passed; fails if
/// any test failed, or none ran.
fn passed(mut cmd: Command) -> Result<u64, String> {
    let mut count = TestCount::default();
    tee(&mut cmd, |line| count.add(line))?;
    if count.failed > 0 || count.passed == 0 {
        return Err(format!(
            "{} passed, {} failed: `{}`",
            count.passed,
            count.failed,
            crate::cmd::shown(&cmd)
        ));
    }
    Ok(count.passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustflags_lose_the_forcing_cfgs() {
        assert_eq!(rustflags(""), "--cfg selectors_devpoll_emulation");
        assert_eq!(
            rustflags(" --cfg selectors_force_poll -C debuginfo=1 --cfg=selectors_force_select "),
            "-C debuginfo=1 --cfg selectors_devpoll_emulation"
        );
        assert_eq!(
            rustflags("--cfg selectors_libkqueue"),
            "--cfg selectors_libkqueue --cfg selectors_devpoll_emulation"
        );
    }

    #[test]
    fn the_runner_preloads_the_library() {
        let config = runner_config(Path::new("/x/lib\"q\".so")).unwrap();
        assert!(config.starts_with("target."), "{config}");
        assert!(
            config.ends_with(".runner = [\"env\", \"LD_PRELOAD=/x/lib\\\"q\\\".so\"]"),
            "{config}"
        );
    }
}
