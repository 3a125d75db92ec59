//! `cargo xtask python`, also the python stage of `cargo xtask ci`: the
//! Python module (`selectors-python/`, imported as `selectors_rs`) built
//! into a wheel, and tested with CPython's own tests.
//!
//! Everything lives in `target/python/`: a virtual environment (`venv`)
//! with maturin from PyPI, which builds the wheel (`wheels/`) and has it
//! installed; two bare ones for the standard library's suites, `venv-ours`
//! (the wheel, and `selectors-python/tests/sitecustomize.py`, which puts our
//! classes in place of the standard library's in every process) and
//! `venv-stdlib` (nothing). Then, in order:
//!
//! 1. our own tests (`selectors-python/tests/test_selectors_rs.py`);
//! 2. CPython's `Lib/test/test_selectors.py` of the interpreter, against
//!    each of our classes (`run_test_selectors.py`): with `python3`, and
//!    with every other CPython >= 3.9 found (`python3.N` on `PATH`, and
//!    pyenv's versions), in parallel, from the wheel unpacked in `site/`;
//! 3. `test_asyncio`, `test_subprocess` and `test_socketserver` with the
//!    standard library's selectors and with ours (`stdlib_suites.py`): the
//!    failing tests must be the same.
//!
//! `--bench` builds the same wheel and runs `selectors-python/bench/bench.py`
//! (our classes against CPython's, and asyncio against uvloop if it
//! installs) instead of the tests.
//!
//! Without a `python3` >= 3.9 the stage prints `SKIPPED` and passes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cmd::{apt_get_install, is_root, project_root, run, stdout, target_dir, tee};

const HELP: &str = "\
cargo xtask python [--bench [-- BENCH-ARGS...]]

Builds the `selectors_rs` wheel (selectors-python/) with maturin in a
virtual environment under target/python, then runs our tests, CPython's
test_selectors against each of our classes (with python3 and every other
CPython >= 3.9 found), and CPython's test_asyncio, test_subprocess and
test_socketserver with the standard library's selectors and with ours.

  --bench   run the benchmark (selectors-python/bench/bench.py) instead:
            ours against CPython's selectors, asyncio against uvloop
  -- ARGS   passed to the benchmark (`-- --help` lists them)

$PYTHON names the interpreter (default: python3).
";

/// The oldest Python the module supports (its wheel is `abi3-py39`).
const MIN_MINOR: u32 = 9;

/// Runs the task with the arguments after `python`.
pub fn main(args: &[String]) -> Result<(), String> {
    let mut bench: Option<Vec<String>> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                print!("{HELP}");
                return Ok(());
            }
            "--bench" => bench = Some(Vec::new()),
            "--" => match &mut bench {
                Some(forward) => forward.extend(args.by_ref().cloned()),
                None => return Err(format!("`--` is for --bench's arguments\n\n{HELP}")),
            },
            other => return Err(format!("unknown argument `{other}`\n\n{HELP}")),
        }
    }
    match bench {
        Some(forward) => run_bench(&forward),
        None => ci_stage(),
    }
}

/// The python stage of `cargo xtask ci`.
pub fn ci_stage() -> Result<(), String> {
    let start = Instant::now();
    println!("\n==> python: the selectors_rs wheel, against CPython's own tests");
    let Some(python) = find_python() else {
        println!("\npython: SKIPPED (no python3 >= 3.{MIN_MINOR}: set $PYTHON to one)");
        return Ok(());
    };
    ensure_test_suite(&python)?;
    let env = Env::new();
    env.build(&python)?;
    let mut summary = Vec::new();
    let mut keep = |line: &str| {
        let line = line.trim_end();
        if line.contains(" passed, ")
            || line.starts_with("test_selectors of ")
            || line.starts_with("ours in use")
            || (line.starts_with("  ") && line.contains("Selector"))
        {
            summary.push(line.to_string());
        }
    };

    // 1. Our own tests.
    let tests = project_root().join("selectors-python/tests");
    let own = tee(
        Command::new(&env.python)
            .current_dir(&tests)
            .arg("test_selectors_rs.py"),
        &mut keep,
    );

    // 2. CPython's test_selectors, with python3, then the others at once.
    let runner = tests.join("run_test_selectors.py");
    let primary = tee(Command::new(&env.python).arg(&runner).arg("-v"), &mut keep);
    let others = other_pythons(&python);
    let mut children = Vec::new();
    for (other, version) in &others {
        println!(
            "\n==> PYTHONPATH={} {other} {}",
            env.site.display(),
            runner.display()
        );
        let child = Command::new(other)
            .arg(&runner)
            .env("PYTHONPATH", &env.site)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {other}: {e}"));
        children.push((version.clone(), child));
    }
    let mut failed_others = Vec::new();
    for (version, child) in children {
        let output = child.and_then(|c| c.wait_with_output().map_err(|e| e.to_string()));
        match output {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                print!("{text}");
                text.lines().for_each(&mut keep);
                if !out.status.success() {
                    failed_others.push(version);
                }
            }
            Err(e) => {
                println!("python {version}: {e}");
                failed_others.push(version);
            }
        }
    }

    // 3. The standard library's suites, with its selectors and with ours.
    let suites = tee(
        Command::new(&env.python)
            .arg(tests.join("stdlib_suites.py"))
            .arg("--ours")
            .arg(env.ours.join("bin/python"))
            .arg("--stdlib")
            .arg(env.stdlib.join("bin/python"))
            .arg("--out")
            .arg(env.root.join("stdlib-suites"))
            .arg("-j2"),
        &mut keep,
    );

    println!("\npython: summary");
    for line in &summary {
        println!("{line}");
    }
    let versions: Vec<&str> = others.iter().map(|(_, v)| v.as_str()).collect();
    println!(
        "python: test_selectors with python3{}{}; {:.0} s",
        if versions.is_empty() { "" } else { " and " },
        versions.join(", "),
        start.elapsed().as_secs_f64()
    );
    let mut failures = Vec::new();
    for (what, result) in [
        ("our tests", own),
        ("test_selectors", primary),
        ("the stdlib suites", suites),
    ] {
        if let Err(e) = result {
            failures.push(format!("{what}: {e}"));
        }
    }
    if !failed_others.is_empty() {
        failures.push(format!("test_selectors with {}", failed_others.join(", ")));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("python: {}", failures.join("; ")))
    }
}

/// `--bench`: the wheel, then the benchmark (uvloop too, if it installs).
fn run_bench(forward: &[String]) -> Result<(), String> {
    let python = find_python().ok_or("no python3 >= 3.9: set $PYTHON to one")?;
    let env = Env::new();
    env.build(&python)?;
    // Optional: the benchmark says so when uvloop is missing.
    let _ = run(Command::new(&env.python).args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        "uvloop",
    ]));
    run(Command::new(&env.python)
        .arg(project_root().join("selectors-python/bench/bench.py"))
        .args(forward))
}

/// The interpreter to use, if it is CPython >= 3.9: `$PYTHON` or `python3`.
fn find_python() -> Option<String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = stdout(Command::new(&python).args([
        "-c",
        &format!(
            "import sys, platform; \
             print(sys.version_info >= (3, {MIN_MINOR}) and platform.python_implementation() == 'CPython')"
        ),
    ]));
    (ok.ok()?.trim() == "True").then_some(python)
}

/// The interpreter's own test suite (`test.test_selectors` and the
/// rest): Debian ships it apart, as `libpython3.N-testsuite`, which is
/// installed when missing if we may.
fn ensure_test_suite(python: &str) -> Result<(), String> {
    let probe = || {
        stdout(Command::new(python).args([
            "-c",
            "import test.test_selectors, test.test_asyncio, test.test_subprocess, test.test_socketserver",
        ]))
    };
    if probe().is_ok() {
        return Ok(());
    }
    let minor = stdout(Command::new(python).args([
        "-c",
        "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')",
    ]))?;
    let package = format!("libpython{}-testsuite", minor.trim());
    if is_root() && stdout(Command::new("apt-get").arg("--version")).is_ok() {
        println!("python: {python} has no test suite; installing {package}");
        apt_get_install(&[&package])?;
    }
    probe().map(drop).map_err(|e| {
        format!(
            "python: {python} has no test suite (the `test` package; on Debian: {package}): {e}"
        )
    })
}

/// Every other CPython >= 3.9 on this machine, with its version: `python3.N`
/// on `PATH`, and pyenv's installed versions; not `python`'s own version.
fn other_pythons(python: &str) -> Vec<(String, String)> {
    let version_of = |exe: &str| {
        stdout(Command::new(exe).args([
            "-c",
            &format!(
                "import sys, platform, test.test_selectors; \
                 assert sys.version_info >= (3, {MIN_MINOR}) and platform.python_implementation() == 'CPython'; \
                 print(platform.python_version())"
            ),
        ]))
        .ok()
        .map(|v| v.trim().to_string())
    };
    let mut candidates: Vec<String> = (MIN_MINOR..=20)
        .map(|minor| format!("python3.{minor}"))
        .collect();
    if let Ok(root) = stdout(Command::new("pyenv").arg("root")) {
        let versions = Path::new(root.trim()).join("versions");
        if let Ok(entries) = fs::read_dir(versions) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin/python3"))
                .filter(|p| p.exists())
                .collect();
            found.sort();
            candidates.extend(found.iter().map(|p| p.to_string_lossy().into_owned()));
        }
    }
    let mut seen = vec![version_of(python).unwrap_or_default()];
    let mut others = Vec::new();
    for exe in candidates {
        if let Some(version) = version_of(&exe) {
            if !seen.contains(&version) {
                seen.push(version.clone());
                others.push((exe, version));
            }
        }
    }
    // Oldest first: 3.9 before 3.10.
    others.sort_by_key(|(_, version)| {
        version
            .split('.')
            .map(|part| part.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    others
}

/// The virtual environments and directories under `target/python`.
struct Env {
    root: PathBuf,
    /// The tools' environment (maturin, the wheel): its interpreter.
    python: PathBuf,
    /// Where maturin puts the wheel.
    wheels: PathBuf,
    /// The wheel unpacked, for the other interpreters' `PYTHONPATH`.
    site: PathBuf,
    ours: PathBuf,
    stdlib: PathBuf,
}

impl Env {
    fn new() -> Env {
        let root = target_dir().join("python");
        Env {
            python: root.join("venv/bin/python"),
            wheels: root.join("wheels"),
            site: root.join("site"),
            ours: root.join("venv-ours"),
            stdlib: root.join("venv-stdlib"),
            root,
        }
    }

    /// Creates the environments, installs maturin, builds the wheel and
    /// installs it.
    fn build(&self, python: &str) -> Result<(), String> {
        let venv = self.root.join("venv");
        for (dir, pip) in [(&venv, true), (&self.ours, false), (&self.stdlib, false)] {
            if !dir.join("bin/python").exists() {
                let mut create = Command::new(python);
                create.args(["-m", "venv"]);
                if !pip {
                    create.arg("--without-pip");
                }
                run(create.arg(dir))?;
            }
        }
        run(Command::new(&self.python).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "maturin>=1.9.4,<2",
        ]))?;
        let _ = fs::remove_dir_all(&self.wheels);
        run(Command::new(venv.join("bin/maturin"))
            .current_dir(project_root())
            .args([
                "build",
                "--release",
                "--manifest-path",
                "selectors-python/Cargo.toml",
            ])
            .arg("--interpreter")
            .arg(&self.python)
            .arg("--out")
            .arg(&self.wheels))?;
        let wheel = fs::read_dir(&self.wheels)
            .map_err(|e| format!("reading {}: {e}", self.wheels.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|ext| ext == "whl"))
            .ok_or("maturin built no wheel")?;
        for target in [&venv, &self.ours] {
            run(Command::new(&self.python)
                .args(["-m", "pip", "--python"])
                .arg(target.join("bin/python"))
                .args([
                    "install",
                    "--disable-pip-version-check",
                    "--quiet",
                    "--no-deps",
                    "--force-reinstall",
                ])
                .arg(&wheel))?;
        }
        // Our classes in place of the standard library's, in every process
        // of `venv-ours`.
        let site_packages = stdout(Command::new(self.ours.join("bin/python")).args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ]))?;
        let sitecustomize = project_root().join("selectors-python/tests/sitecustomize.py");
        fs::copy(
            &sitecustomize,
            Path::new(site_packages.trim()).join("sitecustomize.py"),
        )
        .map_err(|e| format!("installing {}: {e}", sitecustomize.display()))?;
        // The wheel unpacked, for interpreters with no environment here.
        let _ = fs::remove_dir_all(&self.site);
        run(Command::new(&self.python)
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&self.site))
    }
}
