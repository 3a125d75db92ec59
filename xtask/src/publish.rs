//! The publish stage of `cargo xtask ci` (`cargo xtask publish-dry-run`):
//! what crates.io would receive, checked without uploading anything.
//!
//! 1. The READMEs that crates.io renders (each library's own `README.md`)
//!    use absolute links only and no hidden doctest lines (`# …`, shown
//!    literally there), and every Rust example of the workspace's README is
//!    one of the facade README's, which the facade's doctests run. The
//!    examples of core's user-facing items, which the facade's
//!    documentation shows as its own (it re-exports them), are written as
//!    a user of the facade writes them: `use selectors::…`, no core or
//!    backend crate named (they run as core's doctests against the facade,
//!    a dev-dependency of core).
//! 2. `cargo publish --dry-run --workspace`: every library crate packaged
//!    and built from its `.crate` in dependency order, the later ones
//!    against the earlier ones' packages (multi-package publishing, Cargo
//!    1.90 or later); the unpublished packages (`publish = false`: the
//!    conformance suite, the echo server, the benchmark, xtask) are left
//!    out. `--allow-dirty`, so that it checks the working tree, as the
//!    other stages do.
//! 3. The facade's `.crate` unpacked, with the other libraries' `.crate`s
//!    beside it, into a directory of its own outside the workspace (as a
//!    user's download would be), and its doctests run there, README
//!    included, against those packages (`[patch.crates-io]` to their
//!    unpacked directories). Builds go to `target/publish-check`.
//!
//! Linux hosts only: what is packaged does not depend on the host, and the
//! other CI jobs test their own backend natively.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{cargo, project_root, run, target_dir};

/// The library crates: (package, directory), in dependency order.
const LIBRARIES: &[(&str, &str)] = &[
    ("selectors-core", "selectors-core"),
    ("selectors-epoll", "selectors-epoll"),
    ("selectors-kqueue", "selectors-kqueue"),
    ("selectors-poll", "selectors-poll"),
    ("selectors-select", "selectors-select"),
    ("selectors-devpoll", "selectors-devpoll"),
    ("selectors-rs", "selectors"),
];

/// The facade: the package whose doctests run from its `.crate`.
const FACADE: &str = "selectors-rs";

/// Runs the stage on Linux hosts; prints `SKIPPED` elsewhere.
pub fn ci_stage() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        println!(
            "\npublish: SKIPPED (a Linux-host stage: what is packaged does not depend on the host)"
        );
        return Ok(());
    }
    dry_run()
}

/// `cargo xtask publish-dry-run`: the three steps above, on any host.
pub fn dry_run() -> Result<(), String> {
    println!("\n==> publish: READMEs, `cargo publish --dry-run`, the packaged facade's doctests");
    check_readmes()?;
    println!("publish: READMEs ok ({} crates)", LIBRARIES.len());
    let checked = check_item_examples()?;
    println!(
        "publish: the examples of core's user-facing items name the facade only ({checked} files)"
    );
    // No `.crate` of an earlier run may stand in for this run's.
    let version = workspace_version()?;
    for path in LIBRARIES
        .iter()
        .flat_map(|&(name, _)| crate_files(name, &version))
    {
        if path.exists() {
            fs::remove_file(&path).map_err(|e| format!("removing {}: {e}", path.display()))?;
        }
    }
    remove_stale_extractions(&version)?;
    // The verification builds the crates as registry packages, which cargo
    // never rebuilds for a version it built before: a target directory of
    // their own, emptied first, so that this run's sources are the ones
    // verified.
    let verify_dir = verify_dir();
    if verify_dir.exists() {
        fs::remove_dir_all(&verify_dir)
            .map_err(|e| format!("removing {}: {e}", verify_dir.display()))?;
    }
    run(cargo().env("CARGO_TARGET_DIR", &verify_dir).args([
        "publish",
        "--dry-run",
        "--workspace",
        "--allow-dirty",
    ]))
    .map_err(|e| format!("publish: {e} (multi-package publishing needs Cargo 1.90 or later)"))?;
    let unpacked = env::temp_dir().join(format!("selectors-rs-publish-{}", std::process::id()));
    let result = packaged_doctests(&version, &unpacked);
    // The unpacked sources are throwaway; the builds stay in target/.
    let _ = fs::remove_dir_all(&unpacked);
    result?;
    let names: Vec<&str> = LIBRARIES.iter().map(|&(name, _)| name).collect();
    println!(
        "publish: ok (dry run of {} crates: {}; {FACADE} {version}'s doctests from its .crate)",
        names.len(),
        names.join(", ")
    );
    Ok(())
}

/// Step 3: unpacks every library's `.crate` into `unpacked` and runs the
/// facade's doctests there.
fn packaged_doctests(version: &str, unpacked: &Path) -> Result<(), String> {
    let _ = fs::remove_dir_all(unpacked);
    fs::create_dir_all(unpacked).map_err(|e| format!("creating {}: {e}", unpacked.display()))?;
    for &(name, _) in LIBRARIES {
        let crate_file = crate_files(name, version)
            .into_iter()
            .find(|path| path.exists())
            .ok_or_else(|| format!("publish: the dry run left no {name}-{version}.crate"))?;
        run(Command::new("tar")
            .arg("-xzf")
            .arg(&crate_file)
            .arg("-C")
            .arg(unpacked))?;
    }
    let mut test = cargo();
    test.current_dir(unpacked.join(format!("{FACADE}-{version}")))
        .env("CARGO_TARGET_DIR", target_dir().join("publish-check"))
        .args(["test", "--doc"]);
    for &(name, _) in LIBRARIES.iter().filter(|&&(name, _)| name != FACADE) {
        test.arg("--config").arg(format!(
            "patch.crates-io.{name}.path = \"../{name}-{version}\""
        ));
    }
    run(&mut test)
}

/// Where cargo leaves the `.crate` of a package: target/package/tmp-crate
/// after `cargo publish --dry-run`, target/package after `cargo package`.
/// Removes what cargo extracted of our crates from an earlier dry run.
///
/// The dry run verifies each crate against the others through a local
/// registry under target/package, which cargo extracts into
/// `$CARGO_HOME/registry/src/-<hash of its path>/NAME-VERSION` and reuses
/// whenever that directory exists: on a second run from the same checkout,
/// the verification would build against the first run's sources. Only our
/// crates at this version, and only from such local registries (named with
/// a leading `-`; crates.io's are `index.crates.io-…`), are removed.
fn remove_stale_extractions(version: &str) -> Result<(), String> {
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    let Some(src) = cargo_home.map(|home| home.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = fs::read_dir(&src) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for &(name, _) in LIBRARIES {
            let extracted = registry.path().join(format!("{name}-{version}"));
            if extracted.exists() {
                fs::remove_dir_all(&extracted)
                    .map_err(|e| format!("removing {}: {e}", extracted.display()))?;
            }
        }
    }
    Ok(())
}

/// The target directory of the dry run (see [`dry_run`]).
fn verify_dir() -> PathBuf {
    target_dir().join("publish-verify")
}

fn crate_files(name: &str, version: &str) -> [PathBuf; 2] {
    let file = format!("{name}-{version}.crate");
    let package_dir = verify_dir().join("package");
    [
        package_dir.join("tmp-crate").join(&file),
        package_dir.join(file),
    ]
}

/// Step 1: the READMEs crates.io shows, and the workspace README's
/// examples.
fn check_readmes() -> Result<(), String> {
    let root = project_root();
    let read = |path: &Path| {
        fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
    };
    let mut problems = Vec::new();
    for &(name, dir) in LIBRARIES {
        let path = root.join(dir).join("README.md");
        let text = read(&path)?;
        for target in link_targets(&text) {
            let absolute = target.starts_with("https://") || target.starts_with("http://");
            if !absolute && !target.starts_with('#') {
                problems.push(format!(
                    "{dir}/README.md: link `{target}` is relative (broken on crates.io, \
                     which shows {name} without a repository)"
                ));
            }
        }
        for block in rust_blocks(&text) {
            if let Some(line) = block.lines().find(|line| is_hidden(line)) {
                problems.push(format!(
                    "{dir}/README.md: hidden doctest line `{}` (shown as is on crates.io)",
                    line.trim()
                ));
            }
        }
    }
    let workspace = read(&root.join("README.md"))?;
    let facade = read(&root.join("selectors").join("README.md"))?;
    let tested = rust_blocks(&facade);
    for block in rust_blocks(&workspace) {
        if !tested.contains(&block) {
            let first = block.lines().next().unwrap_or("");
            problems.push(format!(
                "README.md: the Rust example starting `{first}` is not in selectors/README.md \
                 (whose examples run as the facade's doctests): copy it there verbatim"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "publish: README problems:\n  {}",
            problems.join("\n  ")
        ))
    }
}

/// Core's user-facing items (everything but the `backend` module, for
/// backend authors, and what it re-exports: `backend.rs`, `timeout.rs`,
/// `sys/`) show examples that compile with the facade alone. Returns how
/// many files were checked.
fn check_item_examples() -> Result<usize, String> {
    let dir = project_root().join("selectors-core").join("src");
    let entries = fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut problems = Vec::new();
    let mut checked = 0;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.ends_with(".rs") || matches!(name, "backend.rs" | "timeout.rs") {
            continue;
        }
        checked += 1;
        let text = fs::read_to_string(&path).map_err(|e| format!("reading {name}: {e}"))?;
        for (number, line) in text.lines().enumerate() {
            let doc = line.trim_start();
            if (doc.starts_with("///") || doc.starts_with("//!"))
                && [
                    "selectors_core",
                    "selectors_poll",
                    "selectors_epoll",
                    "selectors_select",
                ]
                .iter()
                .any(|krate| doc.contains(krate))
            {
                problems.push(format!(
                    "selectors-core/src/{name}:{}: `{}`: the facade's docs show this \
                     example; write it with `use selectors::…`",
                    number + 1,
                    doc.trim()
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(checked)
    } else {
        Err(format!("publish: {}", problems.join("\n  ")))
    }
}

/// The bodies of the ```` ```rust ```` blocks of a Markdown text (a block
/// opened with ```` ``` ```` alone is Rust to rustdoc too).
fn rust_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    // Inside a fence: `Some(body)` for Rust, `None` for another language.
    let mut fence: Option<Option<String>> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match fence.as_mut() {
            Some(body) if trimmed.starts_with("```") => {
                blocks.extend(body.take());
                fence = None;
            }
            Some(Some(body)) => {
                body.push_str(line);
                body.push('\n');
            }
            Some(None) => {}
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let lang = info.split(',').next().unwrap_or("").trim();
                    let is_rust = lang.is_empty() || lang == "rust";
                    fence = Some(is_rust.then(String::new));
                }
            }
        }
    }
    blocks
}

/// Whether a line of a Rust block is hidden by rustdoc (`#` alone or `# …`).
fn is_hidden(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed == "#" || trimmed.starts_with("# ")
}

/// The targets of the inline Markdown links and images of a text.
fn link_targets(markdown: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = markdown;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after.find(')').unwrap_or(after.len());
        targets.push(after[..end].trim());
        rest = &after[end..];
    }
    targets
}

/// `version` of `[workspace.package]` in the root Cargo.toml.
fn workspace_version() -> Result<String, String> {
    let path = project_root().join("Cargo.toml");
    let manifest =
        fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    manifest
        .lines()
        .find_map(|line| line.strip_prefix("version = "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .ok_or_else(|| "no version in Cargo.toml's [workspace.package]".to_string())
}
