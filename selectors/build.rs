//! Names, once, the backends the target has and the one `DefaultSelector`
//! is, as cfgs for `src/lib.rs`:
//!
//! - `has_epoll`: Linux and Android;
//! - `has_kqueue`: Apple's systems, FreeBSD, NetBSD, OpenBSD and DragonFly,
//!   and Linux under `--cfg selectors_libkqueue` (the kqueue crate's build
//!   script decides the same; a disagreement does not build, as the facade
//!   then re-exports what is not there);
//! - `has_devpoll`: illumos and Solaris, and Linux under
//!   `--cfg selectors_devpoll_emulation` (the devpoll crate's build script
//!   decides the same), where the driver is emulated for the tests;
//! - `selectors_default = "…"`: the backend of `DefaultSelector`, in
//!   Python's order (kqueue, epoll, devpoll, poll, select), but for Linux
//!   with libkqueue, where epoll stays the default, and Linux with the
//!   /dev/poll emulation, where devpoll is (the emulation exists to test
//!   it); or the one that `--cfg selectors_force_select` or
//!   `--cfg selectors_force_poll` (Unix only) forces. None on a target that
//!   is neither Unix nor Windows.
//!
//! `devpoll_emulation` says that `DevpollSelector` is the emulation's
//! (Linux under `--cfg selectors_devpoll_emulation`). The forcing cfgs are
//! passed on too: cfgs set here reach both rustc and rustdoc (which
//! compiles the crate again to collect its doctests), while RUSTFLAGS reach
//! rustc only. Std only: no build-dependencies.

use std::env;

/// What the build script reads of the target. Cargo sets `CARGO_CFG_<NAME>`
/// for every cfg of the target, the ones passed with `--cfg` in RUSTFLAGS
/// included.
struct Target {
    os: String,
    vendor: String,
    unix: bool,
    windows: bool,
    libkqueue: bool,
    devpoll_emulation: bool,
    force_poll: bool,
    force_select: bool,
}

impl Target {
    fn from_env() -> Target {
        let var = |name: &str| env::var(name).unwrap_or_default();
        let set = |name: &str| env::var_os(name).is_some();
        Target {
            os: var("CARGO_CFG_TARGET_OS"),
            vendor: var("CARGO_CFG_TARGET_VENDOR"),
            unix: set("CARGO_CFG_UNIX"),
            windows: set("CARGO_CFG_WINDOWS"),
            libkqueue: set("CARGO_CFG_SELECTORS_LIBKQUEUE"),
            devpoll_emulation: set("CARGO_CFG_SELECTORS_DEVPOLL_EMULATION"),
            force_poll: set("CARGO_CFG_SELECTORS_FORCE_POLL"),
            force_select: set("CARGO_CFG_SELECTORS_FORCE_SELECT"),
        }
    }

    fn has_epoll(&self) -> bool {
        matches!(self.os.as_str(), "linux" | "android")
    }

    /// A kqueue of the kernel's.
    fn has_native_kqueue(&self) -> bool {
        self.vendor == "apple"
            || matches!(
                self.os.as_str(),
                "freebsd" | "netbsd" | "openbsd" | "dragonfly"
            )
    }

    /// libkqueue's kqueue, emulated over epoll (for testing).
    fn has_libkqueue(&self) -> bool {
        self.os == "linux" && self.libkqueue
    }

    fn has_devpoll(&self) -> bool {
        matches!(self.os.as_str(), "illumos" | "solaris") || self.has_devpoll_emulation()
    }

    /// The /dev/poll driver emulated on Linux (for testing).
    fn has_devpoll_emulation(&self) -> bool {
        self.os == "linux" && self.devpoll_emulation
    }

    fn default_backend(&self) -> Option<&'static str> {
        Some(if self.force_select {
            "select"
        } else if self.force_poll && self.unix {
            "poll"
        } else if self.has_devpoll_emulation() {
            "devpoll"
        } else if self.has_native_kqueue() {
            "kqueue"
        } else if self.has_epoll() {
            "epoll"
        } else if self.has_devpoll() {
            "devpoll"
        } else if self.unix {
            "poll"
        } else if self.windows {
            "select"
        } else {
            return None;
        })
    }
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(has_epoll, has_kqueue, has_devpoll)");
    println!(
        "cargo::rustc-check-cfg=cfg(selectors_default, \
         values(\"epoll\", \"kqueue\", \"devpoll\", \"poll\", \"select\"))"
    );
    println!("cargo::rustc-check-cfg=cfg(selectors_force_poll, selectors_force_select)");
    println!("cargo::rustc-check-cfg=cfg(devpoll_emulation)");
    let target = Target::from_env();
    let cfgs = [
        ("has_epoll", target.has_epoll()),
        (
            "has_kqueue",
            target.has_native_kqueue() || target.has_libkqueue(),
        ),
        ("has_devpoll", target.has_devpoll()),
        ("selectors_force_poll", target.force_poll),
        ("selectors_force_select", target.force_select),
        ("devpoll_emulation", target.has_devpoll_emulation()),
    ];
    for (cfg, set) in cfgs {
        if set {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    if let Some(backend) = target.default_backend() {
        println!("cargo::rustc-cfg=selectors_default=\"{backend}\"");
    }
}
