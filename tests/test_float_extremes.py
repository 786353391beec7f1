"""Float extremes (issue 19): huge and tiny magnitudes keep the relative error of the same
field at ordinary magnitude, and bounds finer than the float type resolves are kept by
storing the plane losslessly (cases 2, 3 and 6)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xneuralcodec import NeuralCodec
from xneuralcodec.coding.rate_control import plane_mae
from xneuralcodec.format import bitstream
from xneuralcodec.sphere.grid import area_weights

from .conftest import load_plane

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def field():
    """(grid, real plane scaled to |values| <= 1, its MAE at the default quality)."""
    plane, grid = load_plane("gfs_2.5deg_t500")
    unit = plane.astype(np.float64) / np.abs(plane).max()
    codec = NeuralCodec(grid=grid.to_config())
    back = codec.decode(codec.encode(unit))
    return grid, unit, float(np.abs(back - unit).mean())


@pytest.fixture(scope="module")
def signed_field(field):
    """The same plane centred, so that it spans both signs (like a wind component)."""
    grid, unit, _ = field
    signed = unit - unit.mean()
    signed /= np.abs(signed).max()
    codec = NeuralCodec(grid=grid.to_config())
    return grid, signed, float(np.abs(codec.decode(codec.encode(signed)) - signed).mean())


def relative_mae(back, original) -> float:
    return float((np.abs(back.astype(np.float64) - original.astype(np.float64)) / np.abs(original).max()).mean())


@SETTINGS
@given(scale=st.sampled_from([1.7e308, 1e300, 1e200, 3.3e38 * 1e3]), mode=st.sampled_from(["quality", "mae", "bound"]))
def test_float64_near_the_top_of_its_range_round_trips(field, scale, mode):
    grid, unit, unit_mae = field
    x = unit * scale
    options = {"quality": {}, "mae": {"target_mae": unit_mae * scale}, "bound": {"max_abs_error": 0.5 * scale}}[mode]
    codec = NeuralCodec(grid=grid.to_config(), **options)
    back = codec.decode(codec.encode(x))
    assert np.isfinite(back).all()
    if mode == "mae":
        assert plane_mae(x, back, area_weights(grid)) <= unit_mae * scale
    elif mode == "bound":
        assert np.abs(back - x).max() <= 0.5 * scale
    else:
        assert relative_mae(back, x) <= 1.01 * unit_mae


@SETTINGS
@given(scale=st.sampled_from([3.3e38, 3.4e38, 1.7e38]), mode=st.sampled_from(["quality", "mae", "bound"]),
       signed=st.booleans(), fraction=st.sampled_from([0.01, 0.1, 1.2]))
def test_float32_near_the_top_of_its_range_round_trips(field, signed_field, scale, mode, signed, fraction):
    grid, unit, unit_mae = signed_field if signed else field
    x = (unit * scale).astype(np.float32)
    target = fraction * unit_mae * scale  # below 1: the correction layer must make up the rest
    options = {"quality": {}, "mae": {"target_mae": target}, "bound": {"max_abs_error": fraction * scale}}[mode]
    codec = NeuralCodec(grid=grid.to_config(), **options)
    back = codec.decode(codec.encode(x))
    assert back.dtype == np.float32 and np.isfinite(back).all()
    if mode == "mae":
        assert plane_mae(x, back, area_weights(grid)) <= target
    elif mode == "bound":
        assert np.abs(back.astype(np.float64) - x).max() <= fraction * scale


@SETTINGS
@given(scale=st.sampled_from([1e-50, 1e-200, 1e-300, 1e-310]), constant=st.booleans())
def test_tiny_float64_fields_keep_their_relative_error(field, scale, constant):
    grid, unit, unit_mae = field
    x = np.full_like(unit, 0.7 * scale) if constant else unit * scale
    codec = NeuralCodec(grid=grid.to_config())
    back = codec.decode(codec.encode(x))
    if constant:
        assert np.abs(back - x).max() <= 1e-7 * np.abs(x).max()
    else:
        assert relative_mae(back, x) <= 1.01 * unit_mae


@SETTINGS
@given(scale=st.sampled_from([1e-39, 1e-41, 1e-43, 1e-44]), signed=st.booleans())
def test_denormal_float32_fields_are_not_flattened(field, signed_field, scale, signed):
    grid, unit, unit_mae = signed_field if signed else field
    x = (unit * scale).astype(np.float32)
    codec = NeuralCodec(grid=grid.to_config())
    back = codec.decode(codec.encode(x))
    resolution = float(np.finfo(np.float32).smallest_subnormal)  # what float32 can still say down there
    assert np.abs(back.astype(np.float64) - x).mean() <= 1.01 * unit_mae * np.abs(x).max() + resolution
    assert np.ptp(back) > 0  # a varying field never comes back as a constant


def test_ordinary_fields_write_the_current_format(field):
    """0.6.0 kept v5 for ordinary chunks; since 0.7.0 every chunk records its projection
    iterations, so every chunk is the current version, v17 since 0.23.0 (older chunks still
    decode: tests/test_golden.py)."""
    grid, unit, _ = field
    chunk = bitstream.unpack(NeuralCodec(grid=grid.to_config()).encode((unit * 250).astype(np.float32)))
    assert chunk.version == bitstream.VERSION == 17


@SETTINGS
@given(ulps=st.sampled_from([0.3, 2, 10, 40, 63, 100]), dtype=st.sampled_from([np.float32, np.float64]))
def test_bounds_near_or_below_float_resolution_hold(field, ulps, dtype):
    grid, unit, _ = field
    x = (unit * 250).astype(dtype)
    eps = float(ulps * np.spacing(dtype(250)))
    codec = NeuralCodec(grid=grid.to_config(), max_abs_error=eps)
    data = codec.encode(x)
    back = codec.decode(data)
    assert np.abs(back.astype(np.float64) - x.astype(np.float64)).max() <= eps
    chunk = bitstream.unpack(data)
    if chunk.planes[0].kind == bitstream.KIND_LOSSLESS:
        np.testing.assert_array_equal(back, x)


def test_constant_plane_finer_than_float32_is_stored_losslessly():
    constant = np.full((73, 144), 0.1, dtype=np.float64)
    codec = NeuralCodec(max_abs_error=1e-12)
    data = codec.encode(constant)
    assert bitstream.unpack(data).planes[0].kind == bitstream.KIND_LOSSLESS
    np.testing.assert_array_equal(codec.decode(data), constant)
