"""Python's selectors module, implemented in Rust by selectors-rs.

The same API as the standard library's selectors: register file objects (an
int or an object with a fileno() method) for EVENT_READ and EVENT_WRITE with
any data, and select() returns the ready keys as a list of (key, events).
SelectorKey is selectors.SelectorKey, every selector is a
selectors.BaseSelector, and DefaultSelector is the most efficient class of
the platform, chosen as the standard library chooses it.
"""

from ._selectors_rs import *  # noqa: F403 (the names of __all__)
from ._selectors_rs import __all__, _BaseSelectorImpl, _opened, _SelectorMapping  # noqa: F401
