//! Decides where the crate has `/dev/poll`: illumos and Solaris, the one
//! definition of that list, and Linux under
//! `--cfg selectors_devpoll_emulation`, where the tests run on the
//! emulation of the driver (`devpoll-emulation`, preloaded by
//! `cargo xtask devpoll`). There the crate is built with
//! `--cfg selectors_devpoll`, which gates the selector, the tests and the
//! doctests (elsewhere the crate is empty, but for its unit tests); on
//! Linux also with `--cfg devpoll_emulation`, which gives the FFI module
//! illumos's ABI (the user's cfg alone does not: RUSTFLAGS do not reach
//! rustdoc). Std only: no build-dependencies.

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(selectors_devpoll, devpoll_emulation)");
    // Cfgs set here reach both rustc and rustdoc (which compiles the crate
    // again to collect its doctests). Cargo sets CARGO_CFG_<NAME> for every
    // cfg of the target, the ones passed with `--cfg` in RUSTFLAGS included.
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let emulation = os == "linux" && env::var_os("CARGO_CFG_SELECTORS_DEVPOLL_EMULATION").is_some();
    if matches!(os.as_str(), "illumos" | "solaris") || emulation {
        println!("cargo::rustc-cfg=selectors_devpoll");
    }
    if emulation {
        println!("cargo::rustc-cfg=devpoll_emulation");
    }
}
