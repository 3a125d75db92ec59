//! The workspace's task runner (`cargo xtask <task>`), std only.
//!
//! `cargo xtask ci` runs exactly what `.ci/run` (and every CI job) runs.

mod bench;
mod cross;
mod publish;
mod reliability;
mod windows;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const HELP: &str = "\
cargo xtask <task>

Tasks:
  ci        everything CI runs: fmt, clippy, tests, docs, msrv, publish dry run,
            cross-target checks, libkqueue, windows, sanitizers (this is what
            .ci/run runs)
  msrv      check the libraries and the facade's examples with the workspace's
            rust-version (installed if missing), for the host and for Windows
  publish-dry-run
            `cargo publish --dry-run` of every library crate, in dependency
            order, then the facade's doctests run from its .crate
  bench     side-by-side benchmarks (see `cargo xtask bench --help`)
  soak      the property tests with 100x the cases
  sanitize  the tests under AddressSanitizer (nightly)
  windows   the Windows tests (x86_64-pc-windows-gnu) under Wine, on Linux
  help      this text
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "ci" => ci(rest),
        "msrv" => msrv(),
        "publish-dry-run" => no_args("publish-dry-run", rest).and_then(|()| publish::dry_run()),
        "bench" => bench::main(rest),
        "soak" => reliability::soak(rest),
        "sanitize" => reliability::sanitize(rest),
        "windows" => windows::main(rest),
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

/// The workspace root (this crate lives in `<root>/xtask`).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in a workspace")
        .to_path_buf()
}

/// The `cargo` that runs us, so toolchain overrides carry through.
pub fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(project_root());
    cmd
}

/// The target directory cargo uses here (`CARGO_TARGET_DIR`, relative to
/// the project root, or `target`).
pub fn target_dir() -> PathBuf {
    let target =
        env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    project_root().join(target)
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

fn ci(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("`ci` takes no arguments, got `{arg}`"));
    }
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["test", "--workspace"]))?;
    run(cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    msrv()?;
    publish::ci_stage()?;
    cross::ci_stages()?;
    windows::ci_stage()?;
    reliability::ci_stages()?;
    println!("\nxtask ci: all stages passed");
    Ok(())
}

/// Fails on any argument, for tasks that take none.
fn no_args(task: &str, args: &[String]) -> Result<(), String> {
    match args.first() {
        Some(arg) => Err(format!("`{task}` takes no arguments, got `{arg}`")),
        None => Ok(()),
    }
}

/// The libraries and the facade's examples build with the oldest Rust the
/// workspace claims (`rust-version` in Cargo.toml), installed with rustup
/// when missing. The examples compile the facade's dev-dependencies too:
/// Cargo.lock holds versions of them that build with it. The benchmark
/// package (whose peers make no such promise) and xtask are left out. The
/// version the READMEs and the facade's docs state is checked too. A Unix
/// host checks the Windows build as well (`x86_64-pc-windows-gnu`).
fn msrv() -> Result<(), String> {
    let manifest = std::fs::read_to_string(project_root().join("Cargo.toml"))
        .map_err(|e| format!("reading Cargo.toml: {e}"))?;
    let version = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .ok_or("no rust-version in Cargo.toml")?;
    let stated = format!("Rust {version}.");
    for file in ["README.md", "selectors/README.md", "selectors/src/lib.rs"] {
        let text = std::fs::read_to_string(project_root().join(file))
            .map_err(|e| format!("reading {file}: {e}"))?;
        if !text.contains(&stated) {
            return Err(format!(
                "msrv: {file} does not state the minimum supported Rust version (`{stated}`)"
            ));
        }
    }
    let installed = Command::new("rustup")
        .args(["run", &version, "rustc", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
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
        .env(
            "CARGO_TARGET_DIR",
            project_root().join("target").join("msrv"),
        )
        .args([
            "run",
            &version,
            "cargo",
            "check",
            "--locked",
            "--lib",
            "--examples",
            "--workspace",
            "--exclude",
            "xtask",
            "--exclude",
            "selectors-bench",
        ]);
    run(&mut check)?;
    if cfg!(windows) {
        // The check above was the Windows one.
        return Ok(());
    }
    // The Windows build too (select backend, facade, examples), with the
    // old toolchain's own standard library for that target.
    const WINDOWS: &str = "x86_64-pc-windows-gnu";
    run(Command::new("rustup").args(["target", "add", "--toolchain", &version, WINDOWS]))?;
    check.args(["--target", WINDOWS]);
    run(&mut check)
}
