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
    ok = ~np.isnan(expected)
    # decode-compatibility tier: same values up to float noise of another CPU's GEMM
    scale = max(1.0, float(np.nanstd(expected)))
    np.testing.assert_allclose(back[ok], expected[ok], rtol=0, atol=1e-4 * scale)
