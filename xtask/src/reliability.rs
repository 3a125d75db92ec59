//! `cargo xtask soak` and `cargo xtask sanitize`, and the reliability stages
//! of `cargo xtask ci`.
//!
//! - `soak`: the differential property tests
//!   (`selectors-conformance/tests/differential/`) with 100 times their CI
//!   case count, in release mode, and the signal storm of
//!   `selectors-conformance/tests/signals_and_time.rs` ten times longer.
//! - `sanitize`: the whole workspace's tests under AddressSanitizer, with the
//!   nightly toolchain and a sanitized standard library (`-Zbuild-std`).
//!   `ci` runs it when a nightly toolchain is installed, and says SKIPPED
//!   otherwise, and on Windows.

use std::env;
use std::fs;
use std::process::Command;

use crate::cmd::{cargo, project_root, run, stdout, target_dir};

/// Programs per backend in `cargo test` (the tests' own default).
const CI_CASES: u64 = 2_000;
/// Programs per backend under AddressSanitizer: it looks for memory errors,
/// which do not need many programs, and everything runs several times
/// slower.
const SANITIZE_CASES: u64 = 200;

/// LeakSanitizer suppressions: allocations leaked on purpose, each with its
/// reason. Written to target/sanitize/ at run time.
const LSAN_SUPPRESSIONS: &str = "\
# selectors-conformance: a signal handler may still reach the waker after the test
# ends, so the test leaks it on purpose (`Box::leak`).
leak:test_waker_from_signal_handler
";

const SOAK_HELP: &str = "\
cargo xtask soak [--multiplier N]

Runs the differential property tests with N times (default 100) their CI
case count, per backend, in release mode, then the signal storm N/10 times
longer. A divergence prints the shrunk program.
";

const SANITIZE_HELP: &str = "\
cargo xtask sanitize

Runs `cargo test --workspace` under AddressSanitizer: nightly toolchain,
`-Zsanitizer=address`, `-Zbuild-std` (installs the nightly `rust-src`
component if missing). Builds into target/sanitize. `cargo xtask ci` runs
it when a nightly toolchain is installed (SELECTORS_SKIP_SANITIZE=1 skips
it there).
";

/// The reliability stages of `cargo xtask ci`. The differential, bad-input,
/// signal and scale tests already ran in `cargo test --workspace`.
pub fn ci_stages() -> Result<(), String> {
    if cfg!(windows) {
        println!("\n==> sanitize: SKIPPED (set up for Linux, macOS and FreeBSD hosts)");
        return Ok(());
    }
    // Missing tools skip the stage, loudly; a failing test fails it.
    match nightly_missing().map_or_else(ensure_rust_src, Err) {
        Err(why) => {
            println!("\n==> sanitize: SKIPPED ({why})");
            Ok(())
        }
        Ok(()) => sanitize(&[]),
    }
}

pub fn soak(args: &[String]) -> Result<(), String> {
    let mut multiplier: u64 = 100;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--multiplier" => {
                multiplier = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--multiplier takes a positive number")?;
            }
            "--help" | "-h" => {
                print!("{SOAK_HELP}");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`\n\n{SOAK_HELP}")),
        }
    }
    let cases = CI_CASES * multiplier;
    println!("soak: {cases} programs per backend");
    run(cargo()
        .args([
            "test",
            "--release",
            "--package",
            "selectors-conformance",
            "--test",
            "differential",
        ])
        .env("PROPTEST_CASES", cases.to_string()))?;
    run(cargo()
        .args([
            "test",
            "--release",
            "--package",
            "selectors-conformance",
            "--test",
            "signals_and_time",
            "signal_storm",
        ])
        .env("SELECTORS_SOAK", (multiplier / 10).max(1).to_string()))?;
    println!("\nxtask soak: passed ({cases} programs per backend)");
    Ok(())
}

pub fn sanitize(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        if arg == "--help" || arg == "-h" {
            print!("{SANITIZE_HELP}");
            return Ok(());
        }
        return Err(format!("`sanitize` takes no arguments, got `{arg}`"));
    }
    if let Some(why) = nightly_missing() {
        return Err(format!("sanitize needs a nightly toolchain: {why}"));
    }
    let target = host_target()?;
    // AddressSanitizer's supported targets, as far as this workspace runs.
    const ASAN_TARGETS: &[&str] = &[
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
        "x86_64-unknown-freebsd",
    ];
    if !ASAN_TARGETS.contains(&target.as_str()) {
        return Err(format!(
            "AddressSanitizer does not support the host {target}"
        ));
    }
    ensure_rust_src()?;
    let target_dir = target_dir().join("sanitize");
    fs::create_dir_all(&target_dir)
        .map_err(|e| format!("creating {}: {e}", target_dir.display()))?;
    let suppressions = target_dir.join("lsan-suppressions.txt");
    fs::write(&suppressions, LSAN_SUPPRESSIONS)
        .map_err(|e| format!("writing {}: {e}", suppressions.display()))?;
    let flags = "-Zsanitizer=address";
    let mut test = rustup();
    test.current_dir(project_root())
        // The `cargo` running xtask exported its own toolchain; drop it so
        // that rustup's nightly cargo, rustc and rustdoc are used throughout.
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("CARGO")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTDOCFLAGS")
        .env("RUSTFLAGS", flags)
        .env("RUSTDOCFLAGS", flags)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env(
            "LSAN_OPTIONS",
            format!("suppressions={}", suppressions.display()),
        )
        .env("PROPTEST_CASES", SANITIZE_CASES.to_string())
        .args([
            "run",
            "nightly",
            "cargo",
            "test",
            "--workspace",
            "--no-fail-fast",
            "-Zbuild-std",
            "--target",
            &target,
            "--",
            // The echo server's operator tests judge a child process by its
            // resident memory and CPU time, which AddressSanitizer's shadow
            // memory and quarantine distort; the same server code runs
            // in-process under the sanitizer in the other echo tests.
            "--skip",
            "operator::",
        ]);
    run(&mut test)?;
    println!("\nxtask sanitize: passed (AddressSanitizer, {target})");
    Ok(())
}

fn rustup() -> Command {
    Command::new("rustup")
}

/// Why the nightly toolchain cannot be used, or `None` if it can.
fn nightly_missing() -> Option<String> {
    if env::var_os("SELECTORS_SKIP_SANITIZE").is_some() {
        return Some("SELECTORS_SKIP_SANITIZE is set".into());
    }
    if stdout(rustup().arg("--version")).is_err() {
        return Some("rustup is not installed".into());
    }
    let version = stdout(rustup().args(["run", "nightly", "rustc", "--version"]));
    match version {
        Ok(_) => None,
        Err(_) => Some("no nightly toolchain: `rustup toolchain install nightly`".into()),
    }
}

/// Installs nightly's `rust-src` (the standard library's source, which
/// `-Zbuild-std` compiles) if it is missing.
fn ensure_rust_src() -> Result<(), String> {
    let installed =
        stdout(rustup().args(["component", "list", "--installed", "--toolchain", "nightly"]))
            .is_ok_and(|list| list.lines().any(|l| l.starts_with("rust-src")));
    if installed {
        return Ok(());
    }
    run(rustup().args(["component", "add", "rust-src", "--toolchain", "nightly"]))
        .map_err(|e| format!("no rust-src for nightly, and it could not be installed: {e}"))
}

/// The host's target triple, from `rustc -vV`.
fn host_target() -> Result<String, String> {
    let info = stdout(rustup().args(["run", "nightly", "rustc", "-vV"]))?;
    info.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "no host in `rustc -vV`".into())
}
