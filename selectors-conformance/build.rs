//! Short cfg aliases for the platform lists this package's code gates on,
//! so that each list is spelled once, here (std only, no
//! build-dependencies):
//!
//! - `has_epoll`: Linux and Android. Also the Linux kernel's rules and
//!   `/proc`, which the Linux-only cross-backend tests rely on.
//! - `has_kqueue`: the kernel's kqueue on Apple's systems and the BSDs,
//!   libkqueue's on Linux under `--cfg selectors_libkqueue` (the rule of
//!   the kqueue crate's build script).
//! - `libkqueue`: that kqueue is libkqueue's emulation, with its stated
//!   deviations.
//! - `has_devpoll`: illumos and Solaris, and Linux under
//!   `--cfg selectors_devpoll_emulation` (the rule of the devpoll crate's
//!   build script).
//! - `devpoll_emulation`: that /dev/poll is the emulation of the driver
//!   (`devpoll-emulation`), on Linux.

use std::env;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for alias in [
        "has_epoll",
        "has_kqueue",
        "libkqueue",
        "has_devpoll",
        "devpoll_emulation",
    ] {
        println!("cargo::rustc-check-cfg=cfg({alias})");
    }
    // Cargo sets CARGO_CFG_<NAME> for every cfg of the target, the ones
    // passed with `--cfg` in RUSTFLAGS included.
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let vendor = env::var("CARGO_CFG_TARGET_VENDOR").unwrap_or_default();
    let libkqueue = os == "linux" && env::var_os("CARGO_CFG_SELECTORS_LIBKQUEUE").is_some();
    let devpoll_emulation =
        os == "linux" && env::var_os("CARGO_CFG_SELECTORS_DEVPOLL_EMULATION").is_some();
    let has_devpoll = matches!(os.as_str(), "illumos" | "solaris") || devpoll_emulation;
    let has_epoll = matches!(os.as_str(), "linux" | "android");
    let has_kqueue = vendor == "apple"
        || matches!(os.as_str(), "freebsd" | "netbsd" | "openbsd" | "dragonfly")
        || libkqueue;
    for (alias, holds) in [
        ("has_epoll", has_epoll),
        ("has_kqueue", has_kqueue),
        ("libkqueue", libkqueue),
        ("has_devpoll", has_devpoll),
        ("devpoll_emulation", devpoll_emulation),
    ] {
        if holds {
            println!("cargo::rustc-cfg={alias}");
        }
    }
}
