"""Interrupted runs: SIGINT and SIGTERM end a command cleanly, leaving no partial output.

SIGINT already raises ``KeyboardInterrupt``; SIGTERM (what ``kill``, batch schedulers and
container runtimes send) would end the process on the spot, so it is turned into
``Terminated``, a ``KeyboardInterrupt`` the same cleanup handles. Either way the exception
reaches the main thread while zarr's own thread may still be coding and writing chunks into
the temporary output: ``remove_for_good`` cancels that work, waits for it and removes the
temporary output so that it stays removed. Where library code swallows the exception, the
writer's checkpoints (``check_interrupted``, after each variable and before the output is
renamed into place) raise it again. A second signal during the cleanup is ignored; SIGKILL
cannot be caught at all and leaves the ``OUTPUT.partial-*`` directory behind (never a
finished-looking output).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal number, as shells report it
SETTLE_SECONDS = 30.0
GRACE_SECONDS = 0.1  # a chunk file write takes milliseconds


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C."""


def exit_code(exc: KeyboardInterrupt) -> int:
    return EXIT_CODES[signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT]


_received: list[int] = []  # the signal that arrived, for check_interrupted


def _exception(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _raise(signum, frame):
    _received.append(signum)
    for sig in EXIT_CODES:  # the cleanup that follows must not be cut short
        signal.signal(sig, signal.SIG_IGN)
    raise _exception(signum)


def check_interrupted() -> None:
    """Raise again for a signal that arrived before: library code that catches everything
    (measured: about one run in five) can swallow the exception the handler raised."""
    if _received:
        raise _exception(_received[0])


@contextlib.contextmanager
def interrupts_as_exceptions():
    """SIGINT and SIGTERM raise in the main thread for the duration (elsewhere, do nothing)."""
    _received.clear()
    try:
        previous = {sig: signal.signal(sig, _raise) for sig in EXIT_CODES}
    except ValueError:  # not the main thread: leave signals to whoever owns it
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def settle_zarr(timeout: float = SETTLE_SECONDS) -> None:
    """Cancel the tasks still running on zarr's event loop (chunks being coded or written
    after the main thread gave up) and wait until they have ended."""
    sync = sys.modules.get("zarr.core.sync")  # not imported: zarr never ran, nothing to settle
    loop = (getattr(sync, "loop", None) or [None])[0]
    if loop is None or loop.is_closed() or not loop.is_running():
        return

    async def cancel_all():
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout)


def remove_for_good(path: Path, remove, grace: float = GRACE_SECONDS, timeout: float = SETTLE_SECONDS) -> None:
    """``remove(path)`` once zarr has settled; a chunk write already inside a worker thread
    when its task was cancelled still lands (and recreates the directory), so remove again
    until the path stays gone for ``grace`` seconds."""
    settle_zarr(timeout)
    deadline = time.monotonic() + timeout
    while True:
        remove(path)
        time.sleep(grace)
        if not (path.exists() or path.is_symlink()) or time.monotonic() > deadline:
            return
