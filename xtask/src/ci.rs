//! `cargo xtask ci`: everything CI runs (`.ci/run` and every CI job run
//! this). The stages run in order, and a failing one stops the run (the
//! cross-platform ones all run before they report); a stage this host
//! cannot run prints `SKIPPED (reason)` and passes.

use crate::cmd::{cargo, run};
use crate::{cross, devpoll, msrv, publish, python, reliability, windows};

/// Runs every stage (the task takes no arguments).
pub fn main() -> Result<(), String> {
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
    msrv::main()?;
    publish::ci_stage()?;
    cross::ci_stages()?;
    devpoll::ci_stage()?;
    windows::ci_stage()?;
    reliability::ci_stages()?;
    python::ci_stage()?;
    println!("\nxtask ci: all stages passed");
    Ok(())
}
