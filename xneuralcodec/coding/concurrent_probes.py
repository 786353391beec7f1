"""Run a bound search's probes two at a time on a spare thread.

Why: the WebAssembly coders are single-threaded, release the GIL while they run, and a probe
(encode, decode, measure) of a 0.25 degree plane takes 0.1-0.3 s, so a search that probes one
bound at a time leaves the second core idle. Two JPEG 2000 probes of ERA5 0.25 degree t2m took
0.26-0.30 s side by side against 0.51-0.52 s one after the other (/work/exp/gil_probe.py).

Records do not depend on it: the caller chooses which bounds to probe, the same on any number
of threads, and reads the results in its own order. The spare thread is lent to one probe at a
time: with torch on one thread, or while another chunk's probe holds it, the probes run one
after the other in the caller's thread (dask's workers each coding chunks keep to their core).
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Callable, Sequence, TypeVar

A = TypeVar("A")
R = TypeVar("R")

_spare = threading.Lock()
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_made = threading.Lock()


def _spare_thread() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_made:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="xneuralcodec-probe")
        return _pool


def run_all(probe: Callable[[A], R], items: Sequence[A]) -> list[R]:
    """[probe(item) for item in items]; the last item on the spare thread when torch has two
    threads or more and the spare is free. ``probe`` must not raise (its exception would be
    raised here after both finished)."""
    import torch   # (here: importing the package loads no torch)

    if len(items) < 2 or torch.get_num_threads() < 2 or not _spare.acquire(blocking=False):
        return [probe(item) for item in items]
    try:
        later = _spare_thread().submit(probe, items[-1])
        try:
            first = [probe(item) for item in items[:-1]]
        finally:
            concurrent.futures.wait([later])   # the spare is free again only when its probe is done
        return first + [later.result()]
    finally:
        _spare.release()
