"""Run a bound search's probes two at a time, on the spare core when it is free.

Why: the WebAssembly coders are single-threaded, release the GIL while they run, and a probe
(encode, decode, measure) of a 0.25 degree plane takes 0.1-0.3 s, so a search that probes one
bound at a time leaves the second core idle. Two JPEG 2000 probes of ERA5 0.25 degree t2m took
0.26-0.30 s side by side against 0.51-0.52 s one after the other (/work/exp/gil_probe.py).

Records do not depend on it: the caller chooses which bounds to probe, the same on any number
of threads, and reads the results in its own order. ``SPARE_CORE`` is held by whoever uses the
second core: a probe here, or the network's analysis running beside the search (``codec/beside.py``).
With torch on one thread the probes run one after the other in the caller's thread (dask's
workers each coding chunks keep to their core), and while the spare core is taken they do so
until it is freed.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from typing import Callable, Sequence, TypeVar

A = TypeVar("A")
R = TypeVar("R")

SPARE_CORE = threading.Lock()
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_made = threading.Lock()


def _spare_thread() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_made:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="xneuralcodec-probe")
        return _pool


def _forget_pool() -> None:
    """A forked child (dask's and multiprocessing's fork start method) has no copy of the
    parent's threads: it makes its own spare thread when it first needs one."""
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def run_all(probe: Callable[[A], R], items: Sequence[A], threads: int) -> list[R]:
    """[probe(item) for item in items]. With ``threads`` (torch's count as the chunk's caller set
    it: a worker thread reads its own) of two or more, a helper on the spare thread takes items
    from the end of the list as soon as it holds the spare core (the network's analysis beside
    the search may free it mid-round), while this thread takes them from the front. An
    exception of either is raised here once both are done."""
    if len(items) < 2 or threads < 2:
        return [probe(item) for item in items]
    results: list = [None] * len(items)
    pending = list(range(len(items)))
    taking = threading.Lock()

    def take(front: bool) -> int | None:
        with taking:
            return (pending.pop(0) if front else pending.pop()) if pending else None

    def helper() -> None:
        while not SPARE_CORE.acquire(timeout=WAIT_FOR_CORE):
            with taking:
                if not pending:
                    return
        try:
            while (k := take(front=False)) is not None:
                results[k] = probe(items[k])
        finally:
            SPARE_CORE.release()

    helping = _spare_thread().submit(helper)
    try:
        while (k := take(front=True)) is not None:
            results[k] = probe(items[k])
    finally:
        # not started yet (another chunk's helper runs): cancelled, it never will; else it
        # returns once the list is empty and its own probe done
        started = not helping.cancel()
        if started:
            concurrent.futures.wait([helping])
    if started:
        helping.result()   # the helper's probe's exception, if any
    return results


WAIT_FOR_CORE = 0.005   # s between the helper's looks at the spare core and the list
