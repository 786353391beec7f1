"""Run the conventional coders' search beside the network's first analysis of a chunk.

Why: the wasm builds of SPERR and SZ3 are single-threaded, so while they search a plane's
error bound one core would sit idle, and the network's projection and analysis transform
need nothing the search finds. Measured on 2 threads (ERA5 0.25 degree t2m, target_mae=0.4,
/work/exp/overlap2.py): SPERR's four probes 0.63-0.77 s and the analysis 0.17-0.20 s one
after the other, 0.68 s side by side with torch on one thread; side by side with torch
keeping both threads, the three threads fight over two cores (0.78-0.84 s).

Bytes do not change: the analysis gives the same values on any number of torch threads (the
rare first-chunk difference between processes in docs/format.md, "Portability", shows without
this path too). torch's thread count is process-wide, so only one chunk at a time lends a
thread (the others run as before) and it is given back afterwards, when the search's probes
may pair up on it (``coding/concurrent_probes.py``); a call to
``torch.set_num_threads`` made by other code during those few hundred milliseconds is undone.
With torch on one thread nothing runs beside: the chunk keeps to the one core it was given
(dask's workers each coding chunks, say).
"""

from __future__ import annotations

import concurrent.futures
from typing import Callable, TypeVar

import torch

from ..coding.concurrent_probes import SPARE_CORE

A = TypeVar("A")
B = TypeVar("B")

def side_by_side(background: Callable[[], A], foreground: Callable[[], B]) -> tuple[A, B]:
    """(background(), foreground()). With torch on two threads or more, the first runs in a
    worker thread while torch, in this one, runs the second on one thread fewer, so the chunk
    never uses more threads than torch was given; on one thread, or while the spare core is
    taken (``concurrent_probes.SPARE_CORE``: another chunk lending, or probing), they run one
    after the other here. Once the second is done the core is spare again, and the search's
    probes may pair up on it. Either one's exception is raised here, after both have finished."""
    threads = torch.get_num_threads()
    if threads < 2 or not SPARE_CORE.acquire(blocking=False):
        return background(), foreground()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="xneuralcodec-conventional") as pool:
        try:
            future = pool.submit(background)
            torch.set_num_threads(threads - 1)
            front = foreground()
        finally:
            torch.set_num_threads(threads)
            SPARE_CORE.release()
        return future.result(), front
