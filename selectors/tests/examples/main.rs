//! The facade's examples, run as the real programs.

mod callbacks;
mod message;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The longest any one read or write may take before a test fails.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The binary of the example `name`. `cargo test` builds the examples with
/// the tests, but `cargo test --test examples` does not, and would run a
/// stale one: in the default layout (`target/debug`) it is built here (a
/// no-op when fresh). Other layouts (`--target`, another target dir) come
/// from a full `cargo test`, which built it.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace_target = manifest_dir.parent().unwrap().join("target").join("debug");
    if dir == workspace_target {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", name])
            .current_dir(&manifest_dir)
            .status()
            .expect("cargo build --example");
        assert!(status.success());
    }
    dir.join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}
