"""Progress bars for the command line: tqdm on an interactive terminal, silence otherwise.

Encoding and decoding run at a fraction of a second per plane, so a store of a few
thousand planes takes minutes and deserves a bar; logs and pipes (stderr not a TTY),
``--no-progress`` and a missing tqdm (it lives in the ``io`` extra) all get a no-op bar
with the same interface, so callers never branch on it.
"""

from __future__ import annotations

import sys


class _NoBar:
    """The subset of tqdm's interface the commands use, doing nothing."""

    def __init__(self, iterable=None, **_):
        self._iterable = iterable

    def __iter__(self):
        return iter(self._iterable if self._iterable is not None else ())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def set_postfix_str(self, s="", refresh=True):
        pass

    def close(self):
        pass


def progress(iterable=None, *, enabled: bool = True, total=None, desc: str = "", unit: str = "it"):
    """A tqdm bar on stderr when ``enabled`` and stderr is a terminal, else a silent stand-in."""
    if enabled and sys.stderr.isatty():
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
    return _NoBar(iterable)
