"""The conventional search runs beside the network's first analysis (codec/beside.py): both
results come back, errors surface, torch's thread count is lent and given back, and the
chunk's bytes are those of the same steps run one after the other."""

import threading

import numpy as np
import pytest
import torch

from xneuralcodec import NeuralCodec
from xneuralcodec.codec import beside, engine
from xneuralcodec.coding.concurrent_probes import SPARE_CORE

from .conftest import load_plane


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_both_results_come_back_and_the_foreground_runs_on_one_thread_fewer(two_threads):
    seen = {}

    def background():
        seen["background"] = threading.current_thread() is not threading.main_thread()
        return "search"

    def foreground():
        seen["threads"] = torch.get_num_threads()
        return "analysis"

    assert beside.side_by_side(background, foreground) == ("search", "analysis")
    assert seen == {"background": True, "threads": 1}
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("failing", ["background", "foreground"])
def test_an_error_on_either_side_is_raised_and_the_thread_is_given_back(two_threads, failing):
    def fail():
        raise ValueError(f"{failing} failed")

    work = {"background": lambda: 1, "foreground": lambda: 2, failing: fail}
    with pytest.raises(ValueError, match=f"{failing} failed"):
        beside.side_by_side(work["background"], work["foreground"])
    assert torch.get_num_threads() == 2
    assert not SPARE_CORE.locked()   # released


def test_only_one_chunk_at_a_time_lends_a_thread(two_threads):
    """A second chunk coded meanwhile (dask's threads) runs its two steps in turn and keeps
    torch's count as it is, so the first one gives back the count it found."""
    inner = {}

    def foreground():
        inner["result"] = beside.side_by_side(lambda: threading.current_thread(), lambda: torch.get_num_threads())
        return torch.get_num_threads()

    _, outer_threads = beside.side_by_side(lambda: None, foreground)
    assert outer_threads == 1 and inner["result"] == (threading.current_thread(), 1)   # in turn, nothing lent
    assert torch.get_num_threads() == 2


def test_on_one_torch_thread_nothing_runs_beside():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        order = []
        assert beside.side_by_side(lambda: order.append(("background", threading.current_thread())) or 1,
                                   lambda: order.append(("foreground", threading.current_thread())) or 2) == (1, 2)
        assert order == [("background", threading.current_thread()), ("foreground", threading.current_thread())]
    finally:
        torch.set_num_threads(before)


def test_the_chunk_is_the_same_as_with_the_steps_in_turn(monkeypatch, two_threads):
    plane, grid = load_plane("era5_1deg_t2m")
    planes = np.stack([plane, plane[::-1].copy()])
    codec = NeuralCodec(grid=grid.to_config(), target_mae=0.3, variable="t2m")
    overlapped = codec.encode(planes)
    monkeypatch.setattr(engine, "side_by_side", lambda background, foreground: (background(), foreground()))
    assert codec.encode(planes) == overlapped
