"""The correction layer's entropy coding (format v4: a predictor byte before the v3 block classes; v2 and v3 still read)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xneuralcodec.coding import correction


@st.composite
def corrections(draw):
    nlat, nlon = draw(st.integers(1, 40)), draw(st.integers(1, 70))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    density, spread = draw(st.floats(0, 1)), draw(st.sampled_from([1, 2, 5, 300]))
    q = rng.integers(-spread, spread + 1, (nlat, nlon)) * (rng.random((nlat, nlon)) < density)
    if draw(st.booleans()):  # a few huge values: escapes
        q.flat[rng.integers(0, q.size, 3)] = rng.integers(-2 ** 31 + 1, 2 ** 31 - 1, 3)
    return q.astype(np.int64)


@settings(max_examples=150, deadline=None)
@given(corrections())
def test_any_correction_plane_round_trips(q):
    blob = correction.encode(q)
    assert (blob == b"") == (not q.any())
    np.testing.assert_array_equal(correction.decode(blob, q.shape), q)


def test_sparse_corrections_cost_little_and_zero_blocks_nothing():
    q = np.zeros((181, 360), np.int64)
    q[100:104, 200:204] = 1   # one unit block
    q[10, 10] = -3            # one wide block
    blob = correction.encode(q)
    # header, histograms and a few bytes of range code: nothing per zero block beyond its class
    assert len(blob) < 200
    np.testing.assert_array_equal(correction.decode(blob, q.shape), q)


def test_damaged_sections_raise_value_error():
    rng = np.random.default_rng(1)
    q = rng.integers(-2, 3, (73, 144)) * (rng.random((73, 144)) < 0.2)
    blob = correction.encode(q)
    for bad in (blob[:10], blob[:-4] + b"\x00", b"\x07\x00" + blob[2:], blob[:2] + b"\xff\xff\xff\xff" + blob[6:]):
        with pytest.raises(ValueError, match="not a valid xneuralcodec chunk"):
            correction.decode(bad, q.shape)
    with pytest.raises(ValueError, match="not a valid xneuralcodec chunk"):
        correction.decode(blob, (72, 144))  # another grid: block counts do not add up


def test_format_v2_sections_still_decode():
    # a v2 section by hand: radius 1, no escapes, counts of q = -1, 0, 1 and the escape slot
    import struct

    import constriction

    q = np.array([0, 1, 0, -1, 0, 0], np.int64)
    counts = np.array([1, 4, 1, 0], np.uint32)
    enc = constriction.stream.queue.RangeEncoder()
    enc.encode((q + 1).astype(np.int32), constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False))
    blob = struct.pack("<HI", 1, 0) + counts.astype("<u4").tobytes() + enc.get_compressed().astype("<u4").tobytes()
    np.testing.assert_array_equal(correction.decode(blob, (2, 3), version=2), q.reshape(2, 3))


def test_smooth_corrections_code_as_west_differences_and_shrink():
    lon = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    lat = np.linspace(-1, 1, 181)[:, None]
    q = np.round(6 * np.sin(lon)[None, :] * np.cos(lat) + 3 * lat).astype(np.int64)  # slowly varying
    blob = correction.encode(q)
    assert blob[0] == correction.PREDICT_WEST
    assert len(blob) < 0.8 * (1 + len(correction._encode_blocks(q)))
    np.testing.assert_array_equal(correction.decode(blob, q.shape), q)
    # rough corrections keep the plain layout
    rough = np.random.default_rng(0).integers(-1, 2, (181, 360)) * (np.random.default_rng(1).random((181, 360)) < 0.1)
    assert correction.encode(rough)[0] == correction.PREDICT_NONE


def test_format_v3_sections_still_decode():
    q = np.zeros((20, 30), np.int64)
    q[3:9, 4:12] = np.arange(48).reshape(6, 8) - 20
    v3 = correction._encode_blocks(q)  # what release 0.3.0 wrote: no predictor byte
    np.testing.assert_array_equal(correction.decode(v3, q.shape, version=3), q)


def test_bad_predictor_byte_and_overflowing_differences_raise_value_error():
    q = np.zeros((4, 8), np.int64)
    q[1, 2] = 5
    blob = correction.encode(q)
    with pytest.raises(ValueError, match="predictor"):
        correction.decode(bytes([7]) + blob[1:], q.shape)
    d = np.zeros((4, 8), np.int64)
    d[0, :3] = 2 ** 31 - 1  # their running sum leaves the i32 range a correction can have
    with pytest.raises(ValueError, match="out of range"):
        correction.decode(bytes([correction.PREDICT_WEST]) + correction._encode_blocks(d), d.shape)
