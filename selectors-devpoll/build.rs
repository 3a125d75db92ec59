//! Decides where the crate has `/dev/poll`: illumos and Solaris, the one
//! definition of that list. There the crate is built with
//! `--cfg selectors_devpoll`, which gates the selector, the tests and the
//! doctests (elsewhere the crate is empty, but for its unit tests). Std
//! only: no build-dependencies.

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(selectors_devpoll)");
    // Cfgs set here reach both rustc and rustdoc (which compiles the crate
    // again to collect its doctests).
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(os.as_str(), "illumos" | "solaris") {
        println!("cargo::rustc-cfg=selectors_devpoll");
    }
}
