//! `cargo xtask windows`, also the windows stage of `cargo xtask ci`: the
//! Windows build of the packages in [`PACKAGES`], tested on Linux under
//! Wine.
//!
//! 1. Needs `x86_64-w64-mingw32-gcc` (the linker) and `wine`. When one is
//!    missing and we run as root, they are installed with apt-get; when they
//!    still are not there, the stage prints `SKIPPED` and passes: it never
//!    fails for lack of these tools. The `x86_64-pc-windows-gnu` target is
//!    added with rustup when missing.
//! 2. Builds `xtask/windows/bcryptprimitives.c` into
//!    `target/x86_64-pc-windows-gnu/wine-shim/bcryptprimitives.dll`: Wine 8
//!    lacks the `ProcessPrng` that Rust's standard library imports, so no
//!    Rust .exe starts under it without this DLL (the C file says more). No
//!    `WINEDLLOVERRIDES` is needed: Wine 8 has no bcryptprimitives.dll of
//!    its own, so the one beside the executable is the only one.
//! 3. `cargo test --no-run` for the target: the test executables, and the
//!    facade's example and the `echo_server` binary as plain programs (the
//!    tests start them, from `debug/examples` and `debug`). The DLL is
//!    copied into every directory holding them, where Wine's loader looks
//!    first, and into the `system32` of a Wine prefix of our own
//!    (`target/x86_64-pc-windows-gnu/wine-prefix`, so that `~/.wine` is
//!    left alone), for the doctests, which rustdoc builds into temporary
//!    directories of their own.
//! 4. `cargo test`, run by `wine` (cargo's runner for the target) in that
//!    prefix: unit, integration and doc tests. A last line counts the tests
//!    that passed.
//!
//! Linux hosts only: a Windows host has run the workspace's tests natively
//! already, and other Unix hosts test their own backend.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{
    apt_get_install, cargo, is_root, project_root, quiet, run, stdout, target_dir, tee, TestCount,
};

/// The packages whose tests run under Wine.
const PACKAGES: &[&str] = &[
    "selectors-core",
    "selectors-select",
    "selectors-rs",
    "selectors-conformance",
    "selectors-echo-server",
];

/// The Rust target, and the C compiler that links for it.
const TARGET: &str = "x86_64-pc-windows-gnu";
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

/// What apt-get installs when a tool is missing (Debian's names; `wine`
/// holds the `wine` command, `wine64` the 64-bit Wine it runs).
const APT_PACKAGES: &[&str] = &["wine", "wine64", "gcc-mingw-w64-x86-64"];

/// The DLL that lets Rust programs start under Wine 8, and its source,
/// relative to the project root.
const SHIM_DLL: &str = "bcryptprimitives.dll";
const SHIM_SOURCE: &str = "xtask/windows/bcryptprimitives.c";

/// `cargo xtask windows`, and the windows stage of `ci`: the workspace's
/// [`PACKAGES`] under Wine, or a `SKIPPED` line saying why not.
pub fn ci_stage() -> Result<(), String> {
    println!(
        "\n==> windows: the {TARGET} tests of {}, under Wine",
        PACKAGES.join(", ")
    );
    if let Err(why) = host_ready() {
        println!("windows: SKIPPED ({why})");
        return Ok(());
    }
    let manifest = project_root().join("Cargo.toml");
    test_under_wine(&manifest, PACKAGES, &target_dir())
}

/// Whether this host can run the stage: a Linux host with the tools, which
/// are installed if they are missing and we may. `Err` says why not.
fn host_ready() -> Result<(), String> {
    if cfg!(windows) {
        return Err("a Windows host: the workspace's own tests already ran natively".into());
    }
    if !cfg!(target_os = "linux") {
        return Err("a Linux-host stage; this host tests its own backend".into());
    }
    let missing = missing_tools();
    if missing.is_empty() {
        return Ok(());
    }
    let missing = missing.join(" and ");
    if !is_root() {
        return Err(format!(
            "{missing} not found, and not root to install them: \
             apt-get install {}",
            APT_PACKAGES.join(" ")
        ));
    }
    println!(
        "windows: {missing} not found: installing {}",
        APT_PACKAGES.join(" ")
    );
    let installed = apt_get_install(APT_PACKAGES);
    match (installed, missing_tools()) {
        (_, still) if still.is_empty() => Ok(()),
        (Err(why), still) => Err(format!("{} not found: {why}", still.join(" and "))),
        (Ok(()), still) => Err(format!(
            "{} still not found after installing {}",
            still.join(" and "),
            APT_PACKAGES.join(" ")
        )),
    }
}

/// The tools the stage needs that do not run.
fn missing_tools() -> Vec<&'static str> {
    [MINGW_GCC, "wine"]
        .into_iter()
        .filter(|tool| stdout(Command::new(tool).arg("--version")).is_err())
        .collect()
}

/// Builds the tests of `packages` (of the workspace or package at
/// `manifest`) for [`TARGET`] into `target_dir`, and runs them under Wine.
fn test_under_wine(manifest: &Path, packages: &[&str], target_dir: &Path) -> Result<(), String> {
    add_target()?;
    let triple_dir = target_dir.join(TARGET);
    let dll = build_shim(&triple_dir.join("wine-shim"))?;
    println!(
        "windows: {SHIM_DLL} (from {SHIM_SOURCE}) goes beside every test executable: \
         Wine 8 lacks ProcessPrng, which Rust's std imports, so no Rust .exe starts without it"
    );
    let prefix = triple_dir.join("wine-prefix");
    let with_wine = |cmd: &mut Command| {
        cmd.env("WINEPREFIX", &prefix)
            // Wine's own diagnostics off: test output only.
            .env("WINEDEBUG", "-all");
    };
    // Made before the tests, quietly: Wine prints a few lines while it makes
    // a prefix, one of them a c0000135 for the 32-bit rundll32 (only 64-bit
    // Wine is needed), which would mislead in a test's output.
    if !prefix.join("system.reg").exists() {
        let mut wineboot = Command::new("wine");
        with_wine(&mut wineboot);
        quiet(wineboot.args(["wineboot", "--init"]))?;
        println!("windows: made the Wine prefix {}", prefix.display());
    }
    let system32 = prefix.join("drive_c/windows/system32");
    let cargo_test = || {
        let mut cmd = cargo();
        with_wine(&mut cmd);
        cmd.env("CARGO_TARGET_DIR", target_dir)
            .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER", MINGW_GCC)
            .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", "wine")
            .arg("test")
            .arg("--manifest-path")
            .arg(manifest)
            .args(["--target", TARGET]);
        for package in packages {
            cmd.args(["-p", package]);
        }
        cmd
    };
    // The examples are built too, as plain programs, since the tests start
    // them.
    run(cargo_test().arg("--no-run"))?;
    let profile_dir = triple_dir.join("debug");
    for dir in [
        profile_dir.join("deps"),
        profile_dir.clone(),
        profile_dir.join("examples"),
        system32,
    ] {
        if dir.is_dir() {
            let to = dir.join(SHIM_DLL);
            fs::copy(&dll, &to)
                .map_err(|e| format!("copying {SHIM_DLL} to {}: {e}", to.display()))?;
        }
    }
    let mut totals = TestCount::default();
    match tee(&mut cargo_test(), |line| totals.add(line)) {
        Ok(()) => {
            println!(
                "windows: {} tests passed under Wine ({} ignored)",
                totals.passed, totals.ignored
            );
            Ok(())
        }
        Err(why) => {
            println!(
                "windows: FAILED ({} passed, {} failed, {} ignored under Wine)",
                totals.passed, totals.failed, totals.ignored
            );
            Err(format!("windows: {why}"))
        }
    }
}

/// Adds [`TARGET`] with rustup if it is not installed.
fn add_target() -> Result<(), String> {
    let installed = stdout(Command::new("rustup").args(["target", "list", "--installed"]))
        .map_err(|e| format!("windows: rustup is needed to add the target: {e}"))?;
    if installed.lines().any(|line| line.trim() == TARGET) {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", TARGET]))
}

/// Compiles [`SHIM_SOURCE`] into `dir`; returns the DLL's path.
fn build_shim(dir: &Path) -> Result<PathBuf, String> {
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let dll = dir.join(SHIM_DLL);
    run(Command::new(MINGW_GCC)
        .args(["-shared", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&dll)
        .arg(project_root().join(SHIM_SOURCE))
        .arg("-ladvapi32"))?;
    Ok(dll)
}
