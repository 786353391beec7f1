"""The mean calibration of hyperprior-v5.1 (``training/calibrate_means.py``): the shipped file is
v5 with only the means' bias moved, it rebuilds exactly the same planes, and it codes the
held-out 0.25 degree plane in fewer bytes; the cost model it optimised is the coder's."""

import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

from xneuralcodec import NeuralCodec
from xneuralcodec.codec.engine import Engine
from xneuralcodec.coding.integer_hyper import round_means
from xneuralcodec.network.registry import weights_dir
from xneuralcodec.network.weights import load_model
from xneuralcodec.options import CodecOptions
from xneuralcodec.sphere.faces import ring_to_faces
from xneuralcodec.sphere.projection import Projector
from xneuralcodec.training.calibrate_means import (
    SymbolCost,
    apply_offsets,
    bias_keys,
    streams,
)

from .conftest import load_plane


def _tensors(name):
    path = weights_dir() / f"{name}.safetensors"
    with safe_open(str(path), framework="numpy") as f:
        return load_file(str(path)), f.metadata()


def test_v5_1_is_v5_with_the_recorded_mean_offsets():
    base, _ = _tensors("hyperprior-v5")
    calibrated, meta = _tensors("hyperprior-v5.1")
    offsets = np.array(json.loads(meta["mean_calibration"])["offsets_fixed_point"])
    assert (offsets != 0).any()
    rebuilt = apply_offsets(base, offsets)
    assert rebuilt.keys() == calibrated.keys()
    for key in calibrated:
        np.testing.assert_array_equal(rebuilt[key], calibrated[key], err_msg=key)
    moved = [k for k in base if not np.array_equal(base[k], calibrated[k])]
    assert sorted(moved) == sorted(bias_keys(base))


def test_v5_1_decodes_the_same_plane_as_v5_from_fewer_bytes():
    """Held-out ERA5 0.25 degree t2m at the default quality: identical reconstruction (the
    synthesis is untouched), and the ties at +-0.5 no longer cost ~19 bits each."""
    plane, grid = load_plane("era5_0.25deg")
    out = {}
    for model in ("hyperprior-v5", "hyperprior-v5.1"):
        codec = NeuralCodec(grid=grid.to_config(), variable="t2m", quality=3, model=model)
        blob = codec.encode(plane)
        out[model] = (len(blob), codec.decode(blob))
    np.testing.assert_array_equal(out["hyperprior-v5"][1], out["hyperprior-v5.1"][1])
    assert out["hyperprior-v5.1"][0] < 0.75 * out["hyperprior-v5"][0]


@pytest.mark.parametrize("name", ["hyperprior-v4", "hyperprior-v5.1"])
def test_symbol_cost_matches_the_range_coder(name):
    """The bits calibration minimises are the bits the range coder spends on y (to within
    the coder's overhead and z's share)."""
    model = load_model(name)
    plane, grid = load_plane("era5_1deg_t2m")
    faces = ring_to_faces(Projector(grid, 64).to_healpix((plane - plane.mean()) / plane.std()))
    engine = Engine(model)
    analysed = engine.transform.analyse(faces[None].astype(np.float32), CodecOptions().condition)
    y, z = engine.transform.latents(analysed, model.gain(3.0)[None])
    y, z = np.round(y[0]).astype(np.int64), z[0]
    tensors = load_file(str(weights_dir() / f"{name}.safetensors"))
    cost = SymbolCost(tensors["y_tables"], tensors["y_radii"])
    y_bytes = sum(cost(values - round_means(mu), index).sum() for mu, index, values in streams(model, y, z)) / 8
    coded = engine.latents.size(y.astype(np.float32), z)
    assert y_bytes < coded < y_bytes + 0.25 * coded


def test_the_base_card_must_be_the_calibrated_files_own(tmp_path):
    """OUT's card copies the base card's architecture and training, so another model's card
    (here v5.2's for v5.3's file, whose entropy widths differ) is refused before any work."""
    from xneuralcodec.training.calibrate_means import main

    weights = weights_dir()
    with pytest.raises(ValueError, match="expected --card to be the card of --weights"):
        main(["--weights", str(weights / "hyperprior-v5.3.safetensors"), "--out", str(tmp_path / "x.safetensors"),
              "--card", str(weights / "hyperprior-v5.2.card.json")])
    assert not (tmp_path / "x.safetensors").exists()
