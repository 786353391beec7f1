"""Training on what the v15 network sees: planes minus their orographic prediction
(``xneuralcodec/training/orographic.py``), global planes as the codec fits them, regional
0.25 degree states with bands cut from the global ones."""

import numpy as np

from xneuralcodec.codec.planes import standardise
from xneuralcodec.coding import orographic_prediction
from xneuralcodec.sphere import elevation
from xneuralcodec.training.data import Plane
from xneuralcodec.training.orographic import predicted_planes, predicted_states

from .conftest import load_plane


def test_global_planes_are_predicted_exactly_as_the_codec_predicts_them():
    """ERA5 1 degree t2m gets the codec's own predicted plane; msl (explained ~5%) is left alone."""
    t2m, grid = load_plane("era5_1deg_t2m")
    msl, _ = load_plane("era5_1deg_msl")
    planes = [Plane("G01_x.nc", "t2m", {}, grid, t2m), Plane("G01_x.nc", "msl", {}, grid, msl)]
    out, count = predicted_planes(planes)
    assert count == 1 and out[1] is planes[1]
    fitted = orographic_prediction.fit(t2m, np.isfinite(t2m), grid)
    assert np.array_equal(out[0].values, fitted.values.astype(np.float32))


def test_a_regional_crop_gets_the_terrain_it_lies_on():
    """A 0.25 degree crop over the Alps (43-49 N, 5-17 E) of a field that cools 6.5 K per km up
    the shipped terrain plus a smooth gradient: the fit on the crop finds the lapse rate, and
    what is left has far less small-scale variance; a field on another spacing or off the lattice is left alone."""
    terrain = elevation.on_grid(721, 1440, 90.0, 0.0).astype(np.float64)
    rows, cols = slice(4 * (90 - 49), 4 * (90 - 43) + 1), slice(4 * 5, 4 * 17 + 1)
    crop = terrain[rows, cols]
    lat = np.linspace(49, 43, crop.shape[0])[:, None]
    states = np.stack([280.0 - 0.0065 * crop + 0.5 * (lat - 46), 275.0 - 0.004 * crop]).astype(np.float32)
    out, count = predicted_states(states, 49.0, 5.0, 0.25)
    assert count == 2

    def small_scales(x):
        normed, _, _ = standardise(x.astype(np.float64))
        return float(np.var(normed - elevation.box_smooth(normed, 2)))

    for before, after in zip(states, out):
        assert small_scales(after) < 0.2 * small_scales(before)
    assert predicted_states(states, 49.0, 5.0, 0.5) == (states, 0)
    assert predicted_states(states, 49.1, 5.0, 0.25) == (states, 0)    # off the 0.25 degree lattice
