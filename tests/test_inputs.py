"""Inputs the codec must take or refuse cleanly (issue 19): empty chunks, byte order."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xneuralcodec import NeuralCodec
from xneuralcodec.codec.model_choice import options_for_array
from xneuralcodec.codec.numcodecs_codec import engine_for
from xneuralcodec.options import CodecOptions

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
def test_big_endian_input_codes_like_native_and_decodes_to_native_order(dtype, quality):
    plane, _ = load_plane("gfs_2.5deg_t500")
    options = options_for_array(CodecOptions(grid=GRID, quality=quality), plane)
    engine = engine_for(options)
    native = plane.astype(np.dtype(dtype).newbyteorder("="))
    data = engine.encode(plane.astype(dtype), options)
    assert data == engine.encode(native, options)
    back = engine.decode(data)
    assert back.dtype == native.dtype and back.dtype.isnative


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_big_endian_variables_round_trip_through_xarray(tmp_path, zarr_format):
    import xarray as xr

    import xneuralcodec

    plane, _ = load_plane("gfs_2.5deg_t500")
    data = np.stack([plane, plane[::-1]]).astype(">f4")
    ds = xr.Dataset({"t": (("time", "lat", "lon"), data)},
                    coords={"lat": np.linspace(90, -90, 73), "lon": np.arange(144) * 2.5})
    ds.to_zarr(tmp_path / "x.zarr", zarr_format=zarr_format, consolidated=False,
               encoding=xneuralcodec.encoding(ds, zarr_format=zarr_format))
    back = xr.open_zarr(tmp_path / "x.zarr", consolidated=False)["t"].values
    assert back.dtype.isnative and np.abs(back.astype(np.float64) - data).max() < 10


def test_zarr2_codec_refuses_big_endian_data_it_could_not_return():
    with pytest.raises(TypeError, match="big-endian"):
        NeuralCodec(grid=GRID).encode(np.zeros((73, 144), dtype=">f4"))
