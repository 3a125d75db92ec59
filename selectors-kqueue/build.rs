//! Decides where the crate has a kqueue, and links libkqueue where that
//! kqueue is libkqueue's.
//!
//! The one definition of the kqueue platforms is [`has_kqueue`]: where it
//! holds, the crate is built with `--cfg selectors_kqueue`, which gates the
//! crate, its tests and its doctest (elsewhere the crate is empty).
//!
//! Built for Linux with `--cfg selectors_libkqueue`, the crate links
//! libkqueue (on macOS and the BSDs kqueue is the kernel's), and is built
//! with `--cfg libkqueue`, which gates the code for libkqueue's deviations
//! (the user's cfg alone does not: it means nothing elsewhere). The library is
//! looked up in `LIBKQUEUE_DIR` (an install prefix: its `lib/` or `lib64/`,
//! or the directory holding `libkqueue.so` itself), then with
//! `pkg-config --variable=libdir libkqueue`. Std only: no
//! build-dependencies.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{self, Command};

/// Whether a target has a kqueue: the kernel's on Apple's systems and the
/// BSDs, libkqueue's on Linux under `--cfg selectors_libkqueue`.
fn has_kqueue(os: &str, vendor: &str, libkqueue: bool) -> bool {
    vendor == "apple"
        || matches!(os, "freebsd" | "netbsd" | "openbsd" | "dragonfly")
        || (os == "linux" && libkqueue)
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for var in [
        "LIBKQUEUE_DIR",
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rustc-check-cfg=cfg(selectors_kqueue, libkqueue)");
    // Cargo sets CARGO_CFG_<NAME> for every cfg of the target, the ones
    // passed with `--cfg` in RUSTFLAGS included.
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let vendor = env::var("CARGO_CFG_TARGET_VENDOR").unwrap_or_default();
    let libkqueue = env::var_os("CARGO_CFG_SELECTORS_LIBKQUEUE").is_some();
    // Cfgs set here reach both rustc and rustdoc (which compiles the crate
    // again to collect its doctests); RUSTFLAGS reach rustc only.
    if has_kqueue(&os, &vendor, libkqueue) {
        println!("cargo::rustc-cfg=selectors_kqueue");
    }
    if !(libkqueue && os == "linux") {
        return;
    }
    println!("cargo::rustc-cfg=libkqueue");
    let dir = match find_libdir() {
        Ok(dir) => dir,
        Err(why) => {
            eprintln!("error: --cfg selectors_libkqueue: {why}");
            process::exit(1);
        }
    };
    println!("cargo::rustc-link-search=native={}", dir.display());
    println!("cargo::rustc-link-lib=dylib=kqueue");
    // So that this package's tests and examples find the library at run time
    // without LD_LIBRARY_PATH. (Other packages' binaries need it set.)
    println!("cargo::rustc-link-arg=-Wl,-rpath,{}", dir.display());
}

/// The directory holding `libkqueue.so`.
fn find_libdir() -> Result<PathBuf, String> {
    if let Some(prefix) = env::var_os("LIBKQUEUE_DIR") {
        let prefix = PathBuf::from(prefix);
        return [prefix.join("lib"), prefix.join("lib64"), prefix.clone()]
            .into_iter()
            .find(|dir| has_library(dir))
            .ok_or_else(|| {
                format!(
                    "LIBKQUEUE_DIR={} has no libkqueue.so in lib/, lib64/ or itself",
                    prefix.display()
                )
            });
    }
    let pkg_config = env::var_os("PKG_CONFIG").unwrap_or_else(|| OsString::from("pkg-config"));
    let output = Command::new(&pkg_config)
        .args(["--variable=libdir", "libkqueue"])
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_library(&dir) {
                Ok(dir)
            } else {
                Err(format!(
                    "pkg-config names {} for libkqueue, which has no libkqueue.so",
                    dir.display()
                ))
            }
        }
        _ => Err(
            "libkqueue not found: set LIBKQUEUE_DIR to its install prefix, \
             or make `pkg-config libkqueue` find it"
                .to_owned(),
        ),
    }
}

fn has_library(dir: &Path) -> bool {
    dir.join("libkqueue.so").exists()
}
