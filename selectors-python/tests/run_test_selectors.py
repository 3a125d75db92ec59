"""CPython's own test_selectors, unmodified, against selectors_rs.

Imports Lib/test/test_selectors.py from the running interpreter's standard
library and, for each of its test cases (SelectSelectorTestCase,
PollSelectorTestCase, ..., DefaultSelectorTestCase), runs a subclass whose
SELECTOR is this module's class of the same name: every test CPython runs
against its own class, the scalable mix-in (test_above_fd_setsize) where
CPython's class has it. A class the platform lacks is reported as not
applicable.

The tests that patch CPython's private internals are listed in PRIVATE, by
name, with the reason, and skipped; every other test must pass. Prints one
line per class and `N passed, M failed`; exits 1 if any test failed.

Usage: python run_test_selectors.py [-v]   (-v: one line per test)
"""

import platform
import sys
import time
import unittest

import selectors_rs
from test import support
from test import test_selectors as cpython

# CPython's test case, and the class of ours it runs against.
CASES = [
    ("SelectSelectorTestCase", "SelectSelector"),
    ("PollSelectorTestCase", "PollSelector"),
    ("EpollSelectorTestCase", "EpollSelector"),
    ("KqueueSelectorTestCase", "KqueueSelector"),
    ("DevpollSelectorTestCase", "DevpollSelector"),
    ("DefaultSelectorTestCase", "DefaultSelector"),
]

# Tests that patch CPython's private internals, with the reason.
PRIVATE = {
    "test_modify_unregister": (
        "patches CPython's private `selectors.<Class>._selector_cls` to make "
        "modify() fail, and reads the private `_map`; neither exists here "
        "(and a failed modify() keeps the registration here: README)"
    ),
}


# The skip reason of the tests in PRIVATE.
LISTED = "listed: patches CPython's private internals"


class Result(unittest.TextTestResult):
    """Records each test's outcome by name."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = []

    def addSuccess(self, test):
        super().addSuccess(test)
        self.outcomes.append((test, "passed", ""))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.outcomes.append((test, "FAILED", ""))

    def addError(self, test, err):
        super().addError(test, err)
        self.outcomes.append((test, "FAILED", ""))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.outcomes.append((test, "skipped", reason))

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.outcomes.append((test, "FAILED", "unexpected success"))


def case_for(case_name, ours):
    """CPython's test case, subclassed with SELECTOR set to `ours`."""
    case = getattr(cpython, case_name)
    namespace = {"SELECTOR": ours, "__unittest_skip__": False, "__module__": __name__}
    for test in PRIVATE:
        if hasattr(case, test):
            namespace[test] = unittest.skip(LISTED)(getattr(case, test))
    return type(case_name, (case,), namespace)


def main():
    verbose = "-v" in sys.argv[1:]
    print(
        f"test_selectors of CPython {platform.python_version()} "
        f"({cpython.__file__}), against selectors_rs"
    )
    for test, reason in PRIVATE.items():
        print(f"  listed, skipped: {test}: {reason}")
    passed = failed = 0
    started = time.monotonic()
    for case_name, class_name in CASES:
        ours = getattr(selectors_rs, class_name, None)
        if not hasattr(cpython, case_name):
            print(f"  {class_name:<16} not applicable: this CPython has no {case_name}")
            continue
        if ours is None:
            print(f"  {class_name:<16} not applicable: no {class_name} on {sys.platform}")
            continue
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(case_for(case_name, ours))
        stream = sys.stdout if verbose else open("/dev/null", "w")
        runner = unittest.TextTestRunner(
            stream=stream, resultclass=Result, verbosity=2 if verbose else 0
        )
        t0 = time.monotonic()
        result = runner.run(suite)
        counts = {"passed": 0, "FAILED": 0, "skipped": 0}
        for _, outcome, _ in result.outcomes:
            counts[outcome] += 1
        passed += counts["passed"]
        failed += counts["FAILED"]
        listed = [t._testMethodName for t, o, r in result.outcomes if r == LISTED]
        skips = [
            f"{test._testMethodName} ({reason})"
            for test, outcome, reason in result.outcomes
            if outcome == "skipped" and reason != LISTED
        ]
        note = f", {len(listed)} listed ({', '.join(listed)})" if listed else ""
        note += f"; skipped by CPython: {'; '.join(skips)}" if skips else ""
        name = f"{class_name} ({ours.__name__})" if ours.__name__ != class_name else class_name
        print(
            f"  {name:<16} {counts['passed']} passed, {counts['FAILED']} failed"
            f"{note} [{time.monotonic() - t0:.1f} s]"
        )
        for test, outcome, _ in result.outcomes:
            if outcome == "FAILED":
                print(f"    FAILED: {test.id()}")
    if hasattr(cpython, "tearDownModule"):
        cpython.tearDownModule()
    print(f"test_selectors: {passed} passed, {failed} failed ({time.monotonic() - started:.0f} s)")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    support.verbose = False
    sys.exit(main())
