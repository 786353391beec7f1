"""Inputs the codec must take or refuse cleanly (issue 19): empty chunks, byte order."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xneuralcodec import NeuralCodec

from .conftest import load_plane

GRID = {"nlat": 73, "nlon": 144, "lat_first": 90.0, "lon_first": 0.0}


@settings(max_examples=10, deadline=None)
@given(shape=st.sampled_from([(0, 73, 144), (2, 0, 73, 144), (0, 3, 73, 144)]), dtype=st.sampled_from(["f4", "f8"]))
def test_chunks_with_an_empty_leading_dim_round_trip(shape, dtype):
    codec = NeuralCodec(grid=GRID)
    back = codec.decode(codec.encode(np.zeros(shape, dtype=dtype)))
    assert back.shape == shape and back.dtype == np.dtype(dtype)


@pytest.mark.parametrize("shape", [(0, 144), (73, 0), (2, 0, 0)])
def test_chunks_with_an_empty_lat_or_lon_dim_are_refused_at_encode(shape):
    with pytest.raises(ValueError, match="empty"):
        NeuralCodec().encode(np.zeros(shape, dtype=np.float32))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dtype=st.sampled_from([">f4", ">f8"]), quality=st.sampled_from([0, 3]))
def test_big_endian_input_is_accepted_and_decodes_to_native_order(dtype, quality):
    plane, _ = load_plane("gfs_2.5deg_t500")
    codec = NeuralCodec(grid=GRID, quality=quality)
    native = plane.astype(np.dtype(dtype).newbyteorder("="))
    assert codec.encode(plane.astype(dtype)) == codec.encode(native)
    back = codec.decode(codec.encode(plane.astype(dtype)))
    assert back.dtype == native.dtype and back.dtype.isnative
