"""CPython's test_asyncio, test_subprocess and test_socketserver, run twice:
with the standard library's selector classes, and with selectors_rs's in
their place; the sets of failing tests must be identical.

The two interpreters are two virtual environments of the same Python:
--stdlib has nothing installed; --ours has selectors_rs and the
sitecustomize that puts its classes in place of the standard library's in
every process (tests/sitecustomize.py). Both run regrtest
(`python -m test`) the same way, with a JUnit XML report per run.

A test that fails in one run and not in the other is run again on its own,
on the side where it failed, up to RERUNS times: a test that passes once is
flaky there, not failing. The stage then fails unless the failing sets are
identical, and unless the records the --ours processes leave
(SELECTORS_RS_USAGE_DIR) show that our classes were in use, and the
--stdlib run left none.

Prints, per suite and per side, `N passed, M failed, K skipped`, and last
`N passed, M failed` for our side. Exits 1 on any difference.

Usage: python stdlib_suites.py --ours PY --stdlib PY --out DIR [-j N]
"""

import argparse
import collections
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

SUITES = ["test_asyncio", "test_subprocess", "test_socketserver"]
# test_socketserver needs `network` (loopback only); `cpu` and `walltime`
# enable the last few tests these suites skip by default.
RESOURCES = "network,cpu,walltime"
# Runs of a differing test on its own, on the side where it failed.
RERUNS = 2
# A test file that runs longer is killed (and fails): no hang stops the stage.
TIMEOUT = 600


def regrtest(python, tests, xml, log, usage, jobs, match=None):
    """Runs `python -m test` on `tests`; returns its output."""
    env = dict(os.environ, SELECTORS_RS_USAGE_DIR=usage)
    env.pop("PYTHONPATH", None)
    cmd = [python, "-m", "test", *tests, f"-j{jobs}", "-u", RESOURCES]
    cmd += ["--timeout", str(TIMEOUT), "--junit-xml", xml]
    if match:
        cmd += ["-m", match]
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
            stdin=subprocess.DEVNULL, text=True, errors="replace",
        )
        out.write(proc.stdout)
    return proc.stdout


def suite_of(test_id):
    """`test.test_asyncio.test_events.X.test_y` -> `test_asyncio`."""
    parts = test_id.split(".")
    return parts[1] if parts[0] == "test" and len(parts) > 1 else parts[0]


def outcomes(xml, output):
    """Each test's outcome ('passed', 'failed', 'skipped') by id, from the
    JUnit report; and a test file regrtest reports as failed or crashed
    without any failing test of its own counts as `<file> (file)`."""
    results = {}
    if os.path.exists(xml):
        for case in ET.parse(xml).getroot().iter("testcase"):
            kinds = {child.tag for child in case}
            if kinds & {"failure", "error"}:
                outcome = "failed"
            elif "skipped" in kinds:
                outcome = "skipped"
            else:
                outcome = "passed"
            results[case.get("name")] = outcome
    failed_files = set(re.findall(
        r"\] (test[\w.]+) (?:failed|crashed|timed out|interrupted)", output
    ))
    for name in re.findall(r"^(test[\w.]+) (?:failed|crashed)", output, re.M):
        failed_files.add(name)
    for name in failed_files:
        if not any(t.startswith(f"test.{name}.") and o == "failed" for t, o in results.items()):
            results[f"test.{name} (file)"] = "failed"
    return results


def test_file(test_id):
    """The test file regrtest runs for a test: `test_asyncio.test_events`
    for a test of that package's module, `test_subprocess` otherwise."""
    parts = test_id.split(".")
    package = importlib.util.find_spec(f"test.{parts[1]}")
    if package is not None and package.submodule_search_locations:
        return ".".join(parts[1:3])
    return parts[1]


def counts(results):
    """(passed, failed, skipped) per suite."""
    per_suite = collections.defaultdict(collections.Counter)
    for test, outcome in results.items():
        per_suite[suite_of(test)][outcome] += 1
    return per_suite


def rerun(python, test, out, side, usage, attempt):
    """Runs one test (or one test file) on its own; True if it passed."""
    if test.endswith(" (file)"):
        module, match = test[len("test."):-len(" (file)")], None
    else:
        module, match = test_file(test), test
    xml = os.path.join(out, f"rerun-{side}-{attempt}.xml")
    if os.path.exists(xml):
        os.remove(xml)
    output = regrtest(python, [module], xml, os.path.join(out, f"{side}.log"), usage, 1, match)
    results = outcomes(xml, output)
    if test.endswith(" (file)"):
        return test not in results and not any(o == "failed" for o in results.values())
    return results.get(test) == "passed"


def usage_records(directory):
    records = []
    for name in os.listdir(directory):
        try:
            with open(os.path.join(directory, name)) as f:
                records.append(json.load(f))
        except (OSError, ValueError):
            pass  # a process killed while writing
    return records


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ours", required=True)
    parser.add_argument("--stdlib", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("tests", nargs="*", default=SUITES)
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    sides = {"stdlib": args.stdlib, "ours": args.ours}
    results, usage = {}, {}
    for side, python in sides.items():
        usage[side] = os.path.join(out, f"usage-{side}")
        os.makedirs(usage[side])
        xml = os.path.join(out, f"{side}.xml")
        log = os.path.join(out, f"{side}.log")
        t0 = time.monotonic()
        output = regrtest(python, args.tests, xml, log, usage[side], args.jobs)
        results[side] = outcomes(xml, output)
        total = re.search(r"^Total tests: .*$", output, re.M)
        print(f"{side}: regrtest {' '.join(args.tests)} -j{args.jobs} -u {RESOURCES}: "
              f"{time.monotonic() - t0:.0f} s ({total.group(0) if total else 'see ' + log})",
              flush=True)

    failing = {side: {t for t, o in r.items() if o == "failed"} for side, r in results.items()}
    flaky = {side: set() for side in sides}
    for side, other in (("ours", "stdlib"), ("stdlib", "ours")):
        for test in sorted(failing[side] - failing[other]):
            for attempt in range(RERUNS):
                if rerun(sides[side], test, out, side, usage[side], attempt):
                    flaky[side].add(test)
                    break
        failing[side] -= flaky[side]

    ok = True
    print()
    for suite in args.tests:
        for side in sides:
            c = counts(results[side]).get(suite, collections.Counter())
            failed = sum(1 for t in failing[side] if suite_of(t) == suite)
            passed = c["passed"] + c["failed"] - failed
            print(f"{suite:<18} {side:<7} {passed} passed, {failed} failed, "
                  f"{c['skipped']} skipped")
    for side in sides:
        for test in sorted(flaky[side]):
            print(f"flaky ({side}): {test} failed in the full run, passed on its own")
    only_ours = failing["ours"] - failing["stdlib"]
    only_stdlib = failing["stdlib"] - failing["ours"]
    for test in sorted(failing["ours"] & failing["stdlib"]):
        print(f"fails on both sides (this machine): {test}")
    for test in sorted(only_ours):
        print(f"DIFFERENCE: fails with ours only: {test}")
    for test in sorted(only_stdlib):
        print(f"DIFFERENCE: fails with the stdlib's only: {test}")
    if only_ours or only_stdlib:
        ok = False
    missing = set(results["stdlib"]) - set(results["ours"])
    for test in sorted(missing):
        print(f"DIFFERENCE: did not run with ours: {test}")
        ok = False

    # Were ours in use, and only on our side?
    records = usage_records(usage["ours"])
    opened = collections.Counter()
    captured = collections.defaultdict(collections.Counter)
    for record in records:
        opened.update(record["opened"])
        for name, cls in record["captured"].items():
            captured[name][cls] += 1
    stray = usage_records(usage["stdlib"])
    print(f"\nours in use: {len(records)} processes recorded; selectors opened: "
          + ", ".join(f"{n} {c}" for c, n in sorted(opened.items()) if n))
    for name, classes in sorted(captured.items()):
        print(f"  {name}: " + ", ".join(f"{c} in {n} processes" for c, n in classes.items()))
    expected = ["EpollSelector", "PollSelector", "SelectSelector"] if sys.platform == "linux" \
        else ["PollSelector", "SelectSelector"]
    for cls in expected:
        if not opened[cls]:
            print(f"NOT IN USE: no {cls} of ours was opened")
            ok = False
    for name, classes in captured.items():
        if any(not c.startswith("selectors_rs.") for c in classes):
            print(f"NOT IN USE: {name} was the standard library's in some process")
            ok = False
    if stray:
        print(f"CONTAMINATED: {len(stray)} processes of the stdlib run loaded ours")
        ok = False

    passed = sum(1 for o in results["ours"].values() if o in ("passed", "failed")) - len(failing["ours"])
    print(f"\nstdlib suites with ours: {passed} passed, {len(failing['ours'])} failed")
    print("stdlib suites: " + ("the same failing tests with ours and the stdlib's selectors"
                               if ok else "FAILED (see above; logs in " + out + ")"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
