"""Property tests (hypothesis) for the stated guarantees: NaN positions survive exactly,
and damaged chunks always raise ValueError instead of decoding to garbage."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xneuralcodec import NeuralCodec

from .conftest import load_plane

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def coded():
    plane, grid = load_plane("gfs_2.5deg_t500")
    codec = NeuralCodec(grid=grid.to_config())
    return codec, plane, codec.encode(plane)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), fraction=st.sampled_from([0.0005, 0.01, 0.3, 0.97]))
def test_nan_positions_are_preserved_exactly(coded, seed, fraction):
    codec, plane, _ = coded
    rng = np.random.default_rng(seed)
    holed = plane.copy()
    holed[rng.random(plane.shape) < fraction] = np.nan
    back = codec.decode(codec.encode(holed))
    np.testing.assert_array_equal(np.isnan(back), np.isnan(holed))
    assert np.isfinite(back[~np.isnan(holed)]).all()


@SETTINGS
@given(data=st.data())
def test_truncated_chunks_raise_value_error(coded, data):
    codec, _, blob = coded
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(ValueError):
        codec.decode(blob[:cut])


@SETTINGS
@given(data=st.data())
def test_mutated_chunks_raise_value_error(coded, data):
    codec, _, blob = coded
    pos = data.draw(st.integers(0, len(blob) - 1))
    flip = data.draw(st.integers(1, 255))
    damaged = bytearray(blob)
    damaged[pos] ^= flip
    with pytest.raises(ValueError):
        codec.decode(bytes(damaged))


def test_header_claiming_a_huge_shape_is_refused_before_allocating(coded):
    import struct
    import zlib

    from xneuralcodec.format import bitstream

    codec, plane, _ = coded
    blob = codec.encode(plane[None])  # shape (1, 73, 144): claim 2**31 planes instead
    body = bytearray(blob[:-4])
    first = bitstream._HEAD8.size      # v8: the leading dim, a one-byte varint (1); 2**31 takes five
    assert body[first] == 1
    body[first:first + 1] = bytes([0x80, 0x80, 0x80, 0x80, 0x08])
    damaged = bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))
    with pytest.raises(ValueError, match="larger than|do not fit"):
        codec.decode(damaged)


@SETTINGS
@given(
    eps=st.sampled_from([0.02, 0.3, 2.0]),
    kind=st.sampled_from(["real", "grid-scale step", "spikes", "nan holes", "constant"]),
    seed=st.integers(0, 2**16),
)
def test_max_abs_error_bound_holds_on_real_and_adversarial_fields(coded, eps, kind, seed):
    codec, plane, _ = coded
    rng = np.random.default_rng(seed)
    x = plane.copy()
    if kind == "grid-scale step":
        x[:, int(rng.integers(1, x.shape[1] - 1)):] += np.float32(rng.uniform(-30, 30))
    elif kind == "spikes":
        idx = rng.integers(0, x.size, 25)
        x.flat[idx] += rng.normal(0, 80, 25).astype(np.float32)
    elif kind == "nan holes":
        x[rng.random(x.shape) < 0.1] = np.nan
    elif kind == "constant":
        x[:] = np.float32(250.5)
    config = {k: v for k, v in codec.get_config().items() if k != "id"}
    bounded = NeuralCodec(**{**config, "max_abs_error": eps})
    back = bounded.decode(bounded.encode(x))
    finite = ~np.isnan(x)
    np.testing.assert_array_equal(np.isnan(back), ~finite)
    assert np.abs(back[finite].astype(np.float64) - x[finite]).max() <= eps
