//! Decides where the crate has epoll: Linux and Android, the one definition
//! of that list. There the crate is built with `--cfg selectors_epoll`,
//! which gates the crate, its tests and its doctest (elsewhere the crate is
//! empty). Std only: no build-dependencies.

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(selectors_epoll)");
    // Cfgs set here reach both rustc and rustdoc (which compiles the crate
    // again to collect its doctests).
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(os.as_str(), "linux" | "android") {
        println!("cargo::rustc-cfg=selectors_epoll");
    }
}
