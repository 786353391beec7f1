"""Every chunk a released version wrote keeps decoding (tests/golden/v*/)."""

import json
from pathlib import Path

import numcodecs
import numpy as np
import pytest

import xneuralcodec  # noqa: F401  (registers the codec)

GOLDEN = sorted(Path(__file__).parent.glob("golden/v*/*.bin"))


def test_there_are_golden_fixtures():
    assert GOLDEN, "no golden fixtures: run python -m tests.golden.make_golden"


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_chunk_decodes(path):
    config = json.loads(path.with_suffix(".json").read_text())
    expected = np.load(path.with_name(path.stem + ".expected.npy"))
    codec = numcodecs.get_codec(config)
    back = codec.decode(path.read_bytes())
    assert back.shape == expected.shape and back.dtype == expected.dtype
    np.testing.assert_array_equal(np.isnan(back), np.isnan(expected))
    # decode-compatibility tier: same values up to float noise of another CPU's GEMM
    shape = expected.shape[-2:]
    for got, want in zip(back.reshape(-1, *shape), expected.reshape(-1, *shape)):
        ok = ~np.isnan(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=0, atol=1e-4 * plane_scale(want[ok]))


def plane_scale(values: np.ndarray) -> float:
    """A plane's spread, computed on scaled values (format v6 planes may sit near 1e300 or
    1e-50, where squares overflow or vanish); at least 1 for planes of ordinary magnitude."""
    peak = float(np.abs(values).max()) if values.size else 0.0
    if peak == 0.0:
        return 1.0
    spread = float(np.std(values / peak)) * peak
    return max(1.0, spread) if 1e-30 < peak < 1e30 else spread or peak
