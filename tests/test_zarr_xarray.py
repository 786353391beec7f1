"""The xarray line in both Zarr formats, read back by a process that never imports us."""

import json
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest
import xarray as xr
import zarr

import xneuralcodec
from xneuralcodec import NeuralCodec, NeuralSerializer
from xneuralcodec.evaluation.metrics import weighted_errors
from xneuralcodec.sphere.grid import LatLonGrid

READER = """
import json, sys
import numpy as np, xarray as xr
ds = xr.open_zarr(sys.argv[1], consolidated=False)
out = {v: ds[v].values.tolist() for v in ds.data_vars}
print(json.dumps(out))
"""


def read_in_fresh_process(store) -> dict:
    code = "import sys; assert 'xneuralcodec' not in sys.modules\n" + READER
    result = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("zarr_format", [3, 2])
def test_to_zarr_and_open_zarr_in_a_fresh_process(era5_1deg, tmp_path, zarr_format):
    ds = era5_1deg.isel(time=slice(0, 2))
    store = tmp_path / "era5.zarr"
    ds.to_zarr(store, zarr_format=zarr_format, consolidated=False,
               encoding=xneuralcodec.encoding(ds, zarr_format=zarr_format))
    meta = (store / "t2m" / ("zarr.json" if zarr_format == 3 else ".zarray")).read_text()
    assert ("xneuralcodec.neural" if zarr_format == 3 else '"xneuralcodec"') in meta
    fresh = read_in_fresh_process(store)
    here = xr.open_zarr(store, consolidated=False).load()
    grid = LatLonGrid.from_coords(ds.lat.values, ds.lon.values)
    for name in ds.data_vars:
        np.testing.assert_array_equal(np.asarray(fresh[name], dtype=np.float32), here[name].values)
        err = weighted_errors(ds[name].values, here[name].values, grid)
        assert err["mae"] < 0.15 * float(ds[name].std()), (name, err)
    stored = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    assert ds.nbytes / stored > 4


def test_entry_points_are_installed():
    v2 = {ep.name: ep.value for ep in entry_points(group="numcodecs.codecs")}
    v3 = {ep.name: ep.value for ep in entry_points(group="zarr.codecs")}
    assert v2.get("xneuralcodec") == "xneuralcodec.codec:NeuralCodec"
    assert v3.get("xneuralcodec.neural") == "xneuralcodec.codec:NeuralSerializer"


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_dask_chunks_edge_chunks_and_leading_dims(era5_1deg, tmp_path, zarr_format):
    """Dask chunks of 2 planes over 3 times: in Zarr 2 they are the chunks, and the last one
    arrives NaN-padded; in Zarr 3 they are shards of one-plane chunks, the last one partial."""
    ds = era5_1deg[["msl"]].chunk({"time": 2})
    enc = xneuralcodec.encoding(ds, zarr_format=zarr_format)
    if zarr_format == 2:
        assert enc["msl"]["chunks"] == (2, 181, 360) and "shards" not in enc["msl"]
    else:
        assert enc["msl"]["chunks"] == (1, 181, 360) and enc["msl"]["shards"] == (2, 181, 360)
    ds.to_zarr(tmp_path / "s.zarr", zarr_format=zarr_format, encoding=enc, consolidated=False)
    back = xr.open_zarr(tmp_path / "s.zarr", consolidated=False).load()
    assert back.msl.shape == ds.msl.shape and not np.isnan(back.msl.values).any()
    assert np.abs(back.msl.values - ds.msl.values).mean() < 100


def test_a_half_globe_chunk_is_refused_not_coded_as_a_sphere(era5_1deg):
    codec = xneuralcodec.NeuralCodec()
    half = era5_1deg.t2m.values[0, :91]  # what Zarr's own chunking hands a codec given no chunks
    with pytest.raises(ValueError, match="not a whole global grid"):
        codec.encode(half)
    assert codec.decode(codec.encode(era5_1deg.t2m.values[0])).shape == (181, 360)


def test_serializer_config_round_trip():
    codec = NeuralSerializer(quality=1, grid={"nlat": 73, "nlon": 144, "lat_first": 90.0, "lon_first": 0.0})
    assert NeuralSerializer.from_dict(json.loads(json.dumps(codec.to_dict()))) == codec
    assert eval(repr(codec), {"NeuralSerializer": NeuralSerializer}) == codec
    assert zarr.registry.get_codec_class("xneuralcodec.neural") is NeuralSerializer


def test_zarr_refuses_split_planes_at_array_creation(tmp_path):
    with pytest.raises(ValueError, match="whole lat x lon planes"):
        zarr.create_array(tmp_path / "a.zarr", shape=(4, 73, 144), chunks=(1, 40, 144), dtype="float32",
                          serializer=NeuralSerializer(), compressors=None)
    with pytest.raises(TypeError, match="float32 or float64"):
        zarr.create_array(tmp_path / "b.zarr", shape=(4, 73, 144), chunks=(1, 73, 144), dtype="int32",
                          serializer=NeuralSerializer(), compressors=None)


def test_plain_zarr_v2_array_with_compressor(tmp_path):
    rng = np.random.default_rng(0)
    data = np.cumsum(rng.normal(size=(2, 73, 144)), axis=2).astype(np.float32)
    arr = zarr.create_array(tmp_path / "v2.zarr", shape=data.shape, chunks=(1, 73, 144), dtype="float32",
                            zarr_format=2, compressors=NeuralCodec(), filters=None)
    arr[:] = data
    back = zarr.open_array(tmp_path / "v2.zarr")[:]
    assert back.shape == data.shape and np.isfinite(back).all()


def test_encoding_helper_errors(era5_1deg):
    with pytest.raises(ValueError, match=r"whole 181 x 360 planes"):
        xneuralcodec.encoding(era5_1deg.chunk({"lat": 90}))
    with pytest.raises(ValueError, match="last two dims"):
        xneuralcodec.encoding(era5_1deg.transpose("lat", "lon", "time"))
    with pytest.raises(ValueError, match="t2m.*global regular latitude"):
        xneuralcodec.encoding(era5_1deg.isel(lat=slice(10, 100)))
    with pytest.raises(TypeError, match="int16"):
        xneuralcodec.encoding(era5_1deg.astype("int16"))
    with pytest.raises(ValueError, match="no data variable"):
        xneuralcodec.encoding(xr.Dataset({"x": ("n", np.arange(3.0))}))
    with pytest.raises(TypeError, match="xarray.Dataset"):
        xneuralcodec.encoding(era5_1deg.t2m)
    with pytest.raises(ValueError, match="quality in 0..5"):
        xneuralcodec.encoding(era5_1deg, quality=7)


def test_installed_wheel_ships_the_weights():
    """A non-editable install must carry weights inside the package (no download, no repo)."""
    from importlib.metadata import distribution

    dist = distribution("xneuralcodec")
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct.get("dir_info", {}).get("editable"):
        pytest.skip("editable install: weights come from the source tree")
    names = {str(f) for f in dist.files or []}
    assert "xneuralcodec/weights/registry.json" in names
    assert any(n.startswith("xneuralcodec/weights/") and n.endswith(".safetensors") for n in names)
