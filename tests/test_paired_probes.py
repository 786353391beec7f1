"""Bound searches on large planes probe two bounds a round on a spare thread
(``coding/concurrent_probes.py``, ``conventional._next_round``)."""

import threading
import time

import numpy as np
import pytest

from xneuralcodec.coding import concurrent_probes, conventional
from xneuralcodec.coding.rate_control import PlaneMAE
from xneuralcodec.sphere.grid import area_weights

from .conftest import load_plane


def _slow_probe(k):
    time.sleep(0.2)   # long beside the helper's 5 ms looks at the core
    return k * k, threading.current_thread().name


def test_probes_come_back_in_order_and_use_the_spare_thread_only_with_two_threads():
    results = concurrent_probes.run_all(_slow_probe, [3, 4], threads=2)
    assert [r for r, _ in results] == [9, 16]
    assert results[0][1] == threading.current_thread().name and results[1][1].startswith("xneuralcodec-probe")
    names = {name for _, name in concurrent_probes.run_all(_slow_probe, [3, 4], threads=1)}
    assert names == {threading.current_thread().name}


def test_the_spare_core_is_taken_up_as_soon_as_it_is_freed():
    """The network's analysis beside the search holds the spare core: the probes start one after
    the other here, and the helper takes the last one once the core is freed."""
    concurrent_probes.SPARE_CORE.acquire()
    threading.Timer(0.05, concurrent_probes.SPARE_CORE.release).start()
    results = concurrent_probes.run_all(_slow_probe, [1, 2, 3], threads=2)
    assert [r for r, _ in results] == [1, 4, 9]
    assert [name.startswith("xneuralcodec-probe") for _, name in results] == [False, False, True]
    assert not concurrent_probes.SPARE_CORE.locked()


def test_an_exception_on_the_spare_thread_is_raised_to_the_caller():
    def probe(k):
        time.sleep(0.2)
        if threading.current_thread().name.startswith("xneuralcodec-probe"):
            raise RuntimeError("probe failed on the spare thread")
        return k

    with pytest.raises(RuntimeError, match="spare thread"):
        concurrent_probes.run_all(probe, [1, 2], threads=2)
    assert not concurrent_probes.SPARE_CORE.locked()


def test_a_taken_spare_core_leaves_the_probes_to_the_caller():
    with concurrent_probes.SPARE_CORE:   # another chunk's probe, say, for the whole round
        names = [name for _, name in concurrent_probes.run_all(_slow_probe, [1, 2], threads=2)]
    assert names == [threading.current_thread().name] * 2


def _probe_names_in_a_forked_child(queue):
    queue.put([name.startswith("xneuralcodec-probe") for _, name in concurrent_probes.run_all(_slow_probe, [1, 2], 2)])


def test_a_forked_child_makes_its_own_spare_thread():
    import multiprocessing

    concurrent_probes.run_all(_slow_probe, [1, 2], threads=2)   # the parent's spare thread exists
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_probe_names_in_a_forked_child, args=(queue,))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0 and queue.get(timeout=5) == [False, True]


def _rounds_to_land(curve, start: float, target: float, ceiling: float = np.inf) -> tuple[int, list]:
    """Rounds of ``_next_round`` until a probe's MAE lands in [CLOSE_ENOUGH x target, target]."""
    tried = [(b, curve(b)) for b in (start, start * conventional.SECOND_PROBE)]
    for rounds in range(1, 8):
        if any(conventional.CLOSE_ENOUGH * target <= m <= target for _, m in tried):
            return rounds, tried
        met = [b for b, m in tried if m <= target]
        missed = [b for b, m in tried if m > target]
        bounds = conventional._next_round(tried, target, ceiling, 1.0, paired=True)
        assert 1 <= len(bounds) <= 2 and bounds == sorted(bounds)
        assert all((not met or b > max(met)) and (not missed or b < min(missed)) and b <= ceiling for b in bounds)
        tried += [(b, curve(b)) for b in bounds]
    return 99, tried


@pytest.mark.parametrize("exponent, bend", [(1.0, 0.0), (0.65, 0.08), (0.9, 0.15), (0.5, -0.05)])
@pytest.mark.parametrize("start", [0.3, 2.0, 9.0])
def test_paired_rounds_land_on_the_target_within_four_rounds(exponent, bend, start):
    """MAE curves like the coders' (log MAE a bent line in log bound, JPEG 2000's slope falling
    from ~0.62 to ~0.41 over its ratios), from first guesses 3x too small to 4x too large."""
    def curve(bound):
        x = np.log(bound)
        return float(np.exp(exponent * x - bend * x * x))

    target = curve(2.3)
    rounds, tried = _rounds_to_land(curve, start, target)
    assert rounds <= 4, tried


def test_a_bracket_already_narrow_is_split_in_three():
    bounds = conventional._next_round([(1.0, 0.9), (1.02, 1.1)], 1.0, np.inf, 1.0, paired=True)
    assert bounds == pytest.approx([1.02 ** (1 / 3), 1.02 ** (2 / 3)])


def test_one_at_a_time_keeps_the_secant_through_the_last_two_probes():
    tried = [(1.0, 0.5), (4.0, 2.0), (2.0, 0.9)]
    expected = conventional._bracketed(conventional._next_bound(tried[-2:], 1.0), tried, 1.0)
    assert conventional._next_round(tried, 1.0, np.inf, 1.0, paired=False) == [expected]


def test_a_large_plane_gives_the_same_record_on_one_thread_and_two():
    """The bounds probed do not depend on the threads, so neither does the record (ERA5 0.25
    degree t2m, the paper's 0.4 K: JPEG 2000 and AV1 after SPERR's step mode, all probing in pairs;
    AV1 wins, 0.22.0: 744.3x against JPEG 2000's ~672x)."""
    plane, grid = load_plane("era5_0.25deg")
    plane = plane.astype(np.float32)
    assert plane.size >= conventional.PAIRED_FROM_POINTS
    finite = np.isfinite(plane)
    found = []
    for threads in (1, 2):
        found.append(conventional.best_candidate(plane, finite, PlaneMAE(plane, area_weights(grid)), None, 0.4,
                                                 conventional.coders_for("default"), grid=grid, threads=threads))
    assert found[0].blob == found[1].blob and found[0].bound == found[1].bound
    assert found[0].coder == conventional.AVIF and plane.nbytes / found[0].stored_bytes(plane.dtype) > 700


def test_chunks_searched_from_several_threads_at_once_get_the_records_they_get_alone():
    """Zarr and dask encode chunks from many threads: their paired searches share one spare
    core (whoever holds it, the others probe in their own thread) and none waits forever."""
    import concurrent.futures

    from tests.golden.make_golden import synthetic_plane

    planes = [synthetic_plane(512, 512, seed) for seed in (31, 32, 33)]
    assert planes[0].size >= conventional.PAIRED_FROM_POINTS

    def search(plane):
        mae = lambda decoded: float(np.mean(np.abs(decoded - plane)))   # noqa: E731
        return conventional.best_candidate(plane, np.isfinite(plane), mae, None, 0.05,
                                           conventional.coders_for("default"), threads=2)

    alone = [search(p) for p in planes]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        together = list(pool.map(search, planes, timeout=300))
    assert [c.blob for c in together] == [c.blob for c in alone]
    assert not concurrent_probes.SPARE_CORE.locked()
