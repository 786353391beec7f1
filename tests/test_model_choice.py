"""model="auto" (the default): each chunk is coded with the weights its grid calls for and
names them, and an "auto" codec decodes any shipped model's chunk by that name."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from xneuralcodec import NeuralCodec
from xneuralcodec.format import bitstream
from xneuralcodec.network.registry import auto_choice, registry, registry_entry

from .conftest import load_plane


def _chunk(data: bytes):
    return bitstream.unpack(data)


@pytest.mark.parametrize("key, fine", [("era5_0.25deg", True), ("gfs_2.5deg_t500", False)])
def test_auto_codes_each_grid_with_its_model_and_decodes_by_the_chunks_weights(key, fine):
    plane, _ = load_plane(key)
    rule = registry()["auto"]
    model = rule["fine"] if fine else rule["coarse"]
    data = NeuralCodec().encode(plane)
    chunk = _chunk(data)
    assert registry_entry(model)["sha256"].startswith(chunk.weights_sha256.hex())
    # quality 3 on v4's scale is the fine model's rate point 5 (trained at the same lambda)
    assert chunk.planes[0].quality == 3 + (rule["fine_quality_offset"] if fine else 0)
    explicit = NeuralCodec(model=model, quality=chunk.planes[0].quality)
    assert explicit.encode(plane) == data                      # "auto" is that model, nothing else
    back = NeuralCodec().decode(data)
    np.testing.assert_array_equal(back, explicit.decode(data))
    assert np.abs(back - plane).mean() < 1.0


def test_auto_rule_switches_at_the_fine_grid_sphere():
    rule = registry()["auto"]
    assert auto_choice(rule["fine_from_nside"]) == (rule["fine"], rule["fine_quality_offset"])
    assert auto_choice(rule["fine_from_nside"] // 2) == (rule["coarse"], 0)


def test_auto_decodes_chunks_of_any_shipped_model_and_refuses_unknown_weights():
    plane, _ = load_plane("gfs_2.5deg_t500")
    data = NeuralCodec(model="hyperprior-v5.1", quality=2).encode(plane)
    np.testing.assert_array_equal(NeuralCodec().decode(data), NeuralCodec(model="hyperprior-v5.1").decode(data))
    with pytest.raises(ValueError, match="weights sha256"):
        NeuralCodec(model="hyperprior-v4").decode(data)     # a named model still checks the chunk's weights
    body = bytearray(data[:-4])                                 # the CRC trailer is recomputed below
    prefix = _chunk(data).weights_sha256
    start = bytes(body).index(prefix)
    body[start:start + len(prefix)] = bytes(len(prefix))
    forged = bytes(body) + zlib.crc32(body).to_bytes(4, "little")
    with pytest.raises(ValueError, match="does not ship"):
        NeuralCodec().decode(forged)


def test_auto_with_a_known_grid_names_its_weights_in_the_config():
    plane, grid = load_plane("era5_0.25deg")
    rule = registry()["auto"]
    config = NeuralCodec(grid=grid.to_config()).get_config()
    assert (config["model"], config["quality"]) == (rule["fine"], 3 + rule["fine_quality_offset"])
    assert config["weights_sha256"] == registry_entry(rule["fine"])["sha256"]
    gridless = _chunk(NeuralCodec().encode(plane))
    assert _chunk(NeuralCodec(grid=grid.to_config()).encode(plane)).weights_sha256 == gridless.weights_sha256
    assert gridless.planes[0].quality == config["quality"]


def test_auto_options_are_checked_on_the_coarse_models_quality_scale():
    with pytest.raises(ValueError, match=r"0..5 for model='auto'"):
        NeuralCodec(quality=6)
    with pytest.raises(ValueError, match="picks them per chunk"):
        NeuralCodec(weights_sha256=registry_entry("hyperprior-v4")["sha256"])
    assert NeuralCodec(model=None).get_config()["model"] == "auto"


def test_a_quarter_degree_dataset_is_stored_with_v52_and_a_one_degree_one_with_v4(tmp_path):
    """Through xarray and Zarr 3: ``encoding(ds)`` knows each grid, so each store's config names
    the weights ``"auto"`` picked, and both read back."""
    import xarray as xr

    import xneuralcodec

    from .conftest import DATA, FILES

    rule = registry()["auto"]
    for key, model in (("era5_0.25deg", rule["fine"]), ("era5_1deg_t2m", rule["coarse"])):
        relpath, name, _ = FILES[key]
        if not (DATA / relpath).is_file():
            pytest.skip(f"{DATA / relpath} not available")
        with xr.open_dataset(DATA / relpath) as src:
            ds = src[[name]].isel({d: slice(0, 1) for d in src[name].dims[:-2]}).load()
        store = tmp_path / f"{key}.zarr"
        encoding = xneuralcodec.encoding(ds)
        config = encoding[name]["serializer"].options
        assert config.model == model and config.quality == 3 + (rule["fine_quality_offset"] if model == rule["fine"] else 0)
        ds.to_zarr(store, zarr_format=3, consolidated=False, encoding=encoding)
        back = xr.open_zarr(store, consolidated=False)[name].values
        assert np.abs(back - ds[name].values).mean() < 1.0, key


def test_gridless_serializer_stores_auto_and_reads_back_in_zarr3(tmp_path):
    import zarr

    from xneuralcodec import NeuralSerializer

    plane, _ = load_plane("gfs_2.5deg_t500")
    arr = zarr.create_array(tmp_path / "auto.zarr", shape=(2, *plane.shape), chunks=(1, *plane.shape),
                            dtype="float32", serializer=NeuralSerializer(), compressors=None)
    arr[:] = np.stack([plane, plane + 1.0])
    meta = (tmp_path / "auto.zarr" / "zarr.json").read_text()
    assert '"model": "auto"' in meta
    back = zarr.open_array(tmp_path / "auto.zarr")[:]
    assert np.abs(back - np.stack([plane, plane + 1.0])).mean() < 1.0


def test_the_held_out_evaluation_codes_a_fine_plane_with_the_model_it_was_given():
    """``python -m xneuralcodec.evaluation.evaluate`` evaluates one model on every group: on the
    0.25 degree plane its options name that model, rather than "auto", which resolved to the fine
    model's quality scale (q + 2) and crashed v4 at qualities 4 and 5 (IndexError, until 0.22.0)."""
    from xneuralcodec.codec.engine import Engine
    from xneuralcodec.evaluation.evaluate import evaluate_group
    from xneuralcodec.network.weights import load_model
    from xneuralcodec.training.data import Plane

    values, grid = load_plane("era5_0.25deg")
    engine = Engine(load_model("hyperprior-v4"))
    rows = evaluate_group(engine, [Plane("G04", "t2m", {}, grid, values)], [4, 5], with_sz3=False)
    assert [r["quality"] for r in rows] == [4, 5]
    assert rows[0]["ratio"] > rows[1]["ratio"] > 1 and rows[0]["mae"] > rows[1]["mae"] > 0
