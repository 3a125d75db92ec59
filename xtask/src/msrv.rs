//! `cargo xtask msrv`, also the msrv stage of `cargo xtask ci`: the code
//! users compile builds with the oldest Rust the workspace claims
//! (`rust-version` in Cargo.toml), installed with rustup when missing.
//!
//! Checked (`cargo check --lib --bins --examples`): every library (the
//! published ones, and the conformance suite the backends' tests compile),
//! the facade's examples, and the echo server package, library and
//! `echo_server` binary: the README's first command runs it, and its
//! manifest claims the same `rust-version`. Cargo.lock holds versions of
//! their dependencies that build with it. Left out: the benchmark package
//! (whose peers, mio and polling, make no such promise), the Python module
//! (a wheel, with PyO3's minimum as its own `rust-version`), xtask, and
//! the tests. The version the READMEs and the facade's docs state is checked
//! too. A Unix host checks the Windows build as well
//! (`x86_64-pc-windows-gnu`). Builds go to `target/msrv`.

use std::fs;
use std::process::Command;

use crate::cmd::{project_root, run, stdout, target_dir};

/// The files that state the minimum supported Rust version.
const STATED_IN: &[&str] = &["README.md", "selectors/README.md", "selectors/src/lib.rs"];

/// Runs the task (it takes no arguments).
pub fn main() -> Result<(), String> {
    let manifest = fs::read_to_string(project_root().join("Cargo.toml"))
        .map_err(|e| format!("reading Cargo.toml: {e}"))?;
    let version = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .ok_or("no rust-version in Cargo.toml")?;
    let stated = format!("Rust {version}.");
    for file in STATED_IN {
        let text = fs::read_to_string(project_root().join(file))
            .map_err(|e| format!("reading {file}: {e}"))?;
        if !text.contains(&stated) {
            return Err(format!(
                "msrv: {file} does not state the minimum supported Rust version (`{stated}`)"
            ));
        }
    }
    let installed = stdout(Command::new("rustup").args(["run", &version, "rustc", "--version"]));
    if installed.is_err() {
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            &version,
            "--profile",
            "minimal",
        ]))?;
    }
    // `rustup run` so that cargo and rustc are both the old ones (the `cargo`
    // running xtask exported its own paths in RUSTC/CARGO; drop them).
    let mut check = Command::new("rustup");
    check
        .current_dir(project_root())
        .env_remove("RUSTC")
        .env_remove("CARGO")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env("CARGO_TARGET_DIR", target_dir().join("msrv"))
        .args([
            "run",
            &version,
            "cargo",
            "check",
            "--locked",
            "--lib",
            "--bins",
            "--examples",
            "--workspace",
            "--exclude",
            "xtask",
            "--exclude",
            "selectors-bench",
            "--exclude",
            "selectors-python",
        ]);
    run(&mut check)?;
    if cfg!(windows) {
        // The check above was the Windows one.
        return Ok(());
    }
    // The Windows build too (select backend, facade, examples, echo
    // server), with the old toolchain's own standard library for that
    // target.
    const WINDOWS: &str = "x86_64-pc-windows-gnu";
    run(Command::new("rustup").args(["target", "add", "--toolchain", &version, WINDOWS]))?;
    check.args(["--target", WINDOWS]);
    run(&mut check)
}
