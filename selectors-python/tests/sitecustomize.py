"""Puts selectors_rs's classes in place of the standard library's.

`cargo xtask python` installs this file as the `sitecustomize` module of the
virtual environment in which it runs CPython's test suites with our
selectors: the interpreter imports it at startup (even with -E or -I; not
with -S), before any module can capture a class (subprocess's
_PopenSelector, socketserver's _ServerSelector, multiprocessing's
_WaitSelector), in every process started with that interpreter.

With SELECTORS_RS_USAGE_DIR set, each process writes a record there when it
exits: how many selectors of each class of ours it opened, and which class
subprocess and socketserver use. The stage reads them to check that ours
were in use.
"""

import os
import selectors

import selectors_rs

CLASSES = (
    "SelectSelector",
    "PollSelector",
    "EpollSelector",
    "KqueueSelector",
    "DevpollSelector",
    "DefaultSelector",
)

# Every class this platform's standard library has (ours has the same ones).
for _name in CLASSES:
    if hasattr(selectors, _name):
        setattr(selectors, _name, getattr(selectors_rs, _name))


def _record(directory):
    import json
    import sys

    captured = {}
    for module, attr in (
        ("subprocess", "_PopenSelector"),
        ("socketserver", "_ServerSelector"),
        ("multiprocessing.connection", "_WaitSelector"),
    ):
        if module in sys.modules and hasattr(sys.modules[module], attr):
            cls = getattr(sys.modules[module], attr)
            captured[f"{module}.{attr}"] = f"{cls.__module__}.{cls.__qualname__}"
    record = {
        "default": f"{selectors.DefaultSelector.__module__}.{selectors.DefaultSelector.__name__}",
        "opened": selectors_rs._opened(),
        "captured": captured,
    }
    path = os.path.join(directory, f"{os.getpid()}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f)


if os.environ.get("SELECTORS_RS_USAGE_DIR"):
    import atexit

    atexit.register(_record, os.environ["SELECTORS_RS_USAGE_DIR"])
