"""Rate control in the user's units: ``target_mae`` per plane and fractional qualities."""

import numpy as np
import pytest
import xarray as xr

import xneuralcodec
from xneuralcodec import NeuralCodec
from xneuralcodec.coding import rate_control
from xneuralcodec.coding.rate_control import search_quality
from xneuralcodec.evaluation.metrics import weighted_errors
from xneuralcodec.format import bitstream
from xneuralcodec.sphere.grid import LatLonGrid

from .conftest import load_plane


def _mae(plane, back, grid):
    return weighted_errors(plane, back, grid)["mae"]


@pytest.mark.parametrize("key, loose, tight", [
    ("era5_1deg_t2m", 1.2, 0.7),        # K
    ("era5_1deg_msl", 120.0, 40.0),     # Pa
    ("gfs_2.5deg_t500", 1.0, 0.5),      # K
])
def test_target_mae_holds_and_a_looser_target_costs_fewer_bytes(key, loose, tight):
    plane, grid = load_plane(key)
    sizes = {}
    for target in (loose, tight):
        codec = NeuralCodec(grid=grid.to_config(), target_mae=target, conventional=False)
        data = codec.encode(plane)
        back = codec.decode(data)
        chunk = bitstream.unpack(data)
        assert chunk.target_mae == target
        assert _mae(plane, back, grid) <= target
        # not needlessly fine: the chosen rate lands within reach of the target
        assert _mae(plane, back, grid) > 0.5 * target or chunk.planes[0].quality == 0.0
        sizes[target] = len(data)
    assert sizes[loose] < sizes[tight]


@pytest.mark.parametrize("key", ["era5_1deg_t2m", "era5_1deg_u10"])
def test_unreachable_target_falls_back_to_the_smallest_rate_plus_correction(key, monkeypatch):
    plane, grid = load_plane(key)
    finest = NeuralCodec(quality=5, grid=grid.to_config())
    floor = _mae(plane, finest.decode(finest.encode(plane)), grid)
    target = 0.5 * floor
    codec = NeuralCodec(grid=grid.to_config(), target_mae=target, conventional=False)
    data = codec.encode(plane)
    record = bitstream.unpack(data).planes[0]
    assert record.quality in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0) and record.correction_step > 0 and record.correction
    assert _mae(plane, codec.decode(data), grid) <= target
    # no larger than the finest rate with its correction, the choice before release 0.4.0
    monkeypatch.setattr(rate_control.PlaneRateSearch, "_smallest_with_correction", lambda self, finest: 5.0)
    finest_corrected = NeuralCodec(grid=grid.to_config(), target_mae=target, conventional=False).encode(plane)
    assert bitstream.unpack(finest_corrected).planes[0].quality == 5.0
    assert len(data) < len(finest_corrected) if record.quality < 5.0 else len(data) == len(finest_corrected)


def test_target_mae_with_max_abs_error_keeps_both_promises():
    plane, grid = load_plane("gfs_2.5deg_t500")
    codec = NeuralCodec(grid=grid.to_config(), target_mae=0.6, max_abs_error=2.0)
    back = codec.decode(codec.encode(plane))
    assert _mae(plane, back, grid) <= 0.6
    assert np.abs(back.astype(np.float64) - plane).max() <= 2.0


def test_fractional_quality_lies_between_its_trained_neighbours():
    plane, grid = load_plane("era5_1deg_msl")
    results = {}
    for q in (2, 2.5, 3):
        codec = NeuralCodec(quality=q, grid=grid.to_config())
        data = codec.encode(plane)
        results[q] = (len(data), _mae(plane, codec.decode(data), grid))
    assert results[2][0] < results[2.5][0] < results[3][0]
    assert results[2][1] > results[2.5][1] > results[3][1]


def test_planes_of_one_chunk_get_their_own_rate(era5_1deg, tmp_path):
    ds = era5_1deg[["t2m"]]
    target = 0.9
    store = tmp_path / "target.zarr"
    ds.to_zarr(store, encoding=xneuralcodec.encoding(ds, target_mae=target), consolidated=False)
    back = xr.open_zarr(store, consolidated=False).t2m.load()
    grid = LatLonGrid.from_coords(ds.lat.values, ds.lon.values)
    for t in range(ds.sizes["time"]):
        assert _mae(ds.t2m.values[t], back.values[t], grid) <= target
    config = xr.open_zarr(store, consolidated=False).t2m.encoding["serializer"].to_dict()["configuration"]
    assert config["target_mae"] == target


def test_search_returns_a_measured_quality_even_when_error_is_not_monotone():
    calls = []

    def bumpy(q):  # falls overall, with a bump that misleads plain bisection
        calls.append(q)
        return 1.0 - 0.15 * q + (0.3 if 2.4 < q < 2.6 else 0.0)

    quality, mae = search_quality(bumpy, 0.6, 5.0)
    assert mae <= 0.6 and bumpy(quality) <= 0.6
    assert quality in calls and 0 < quality <= 5.0
    assert search_quality(lambda q: 2.0 - 0.1 * q, 1.0, 5.0) == (5.0, 1.5)   # unreachable: finest
    assert search_quality(lambda q: 0.1, 1.0, 5.0) == (0.0, 0.1)             # coarsest suffices


@pytest.mark.parametrize("key, target, expected_nside", [
    ("era5_1deg_msl", 120.0, 32),    # smooth: the coarser sphere is far cheaper
    ("era5_1deg_u10", 0.5, 64),      # detailed: the default sphere stays
])
def test_auto_nside_keeps_the_shortest_of_the_default_and_coarser_spheres(key, target, expected_nside):
    plane, grid = load_plane(key)
    codec = NeuralCodec(grid=grid.to_config(), target_mae=target, nside="auto", conventional=False)   # network records
    data = codec.encode(plane)
    chunk = bitstream.unpack(data)
    assert chunk.nside == expected_nside
    assert _mae(plane, codec.decode(data), grid) <= target
    both = [codec._engine(codec.options).encode_at(plane, grid, nside, codec.options) for nside in (64, 32)]
    assert len(data) == min(map(len, both))
    # without "auto" the sphere is the grid's default, whatever the target
    fixed = NeuralCodec(grid=grid.to_config(), target_mae=target, conventional=False).encode(plane)
    assert bitstream.unpack(fixed).nside == 64


def test_auto_nside_is_stored_in_the_config_and_needs_a_target():
    import numcodecs

    codec = NeuralCodec(target_mae=0.5, nside="auto")
    config = codec.get_config()
    assert config["nside"] == "auto"
    assert numcodecs.get_codec(config).get_config() == config
    with pytest.raises(ValueError, match="target_mae"):
        NeuralCodec(quality=2, nside="auto")
    with pytest.raises(TypeError, match="'auto'"):
        NeuralCodec(target_mae=0.5, nside="coarse")


def test_size_limit_keeps_the_search_below_a_record_in_hand():
    """With a rival record of N bytes, rates whose latents alone reach N are never replayed,
    and a network that cannot get under N at all says so."""
    original = np.zeros((4, 8))
    weights = np.ones((4, 1))
    replayed = []

    def replay(q):           # MAE falls with quality: 1.0 at q0 .. 0.0 at q5
        replayed.append(q)
        return original + (1.0 - q / 5.0)

    def coded_size(q):       # latents grow with quality
        return int(1000 * 2 ** q)

    def search(target, limit):
        return rate_control.PlaneRateSearch(original, weights, np.float64, target, None, 5, replay, coded_size,
                                            size_limit=limit)

    finest = search(0.3, 6000)._finest_under_limit()
    near_miss = (1.0 - finest / 5.0) / 1.03     # the finest rate under the limit misses this by 3%
    quality, _ = search(near_miss, 6000).quality()
    assert coded_size(quality) < 6000 and all(coded_size(q) < 6000 for q in replayed)
    assert quality < 3.0     # the unlimited answer is out of reach: a corrected record under the limit
    with pytest.raises(rate_control.NetworkCannotWin):
        search(0.3, 900).quality()


def test_a_wide_miss_under_the_rival_gives_up_before_any_correction():
    """Where the finest rate under the rival's size misses the target by more than
    CORRECTABLE_MISS, no corrected record is tried (one replay, no correction search);
    without a rival the corrected records are still searched."""
    original = np.zeros((4, 8))
    weights = np.ones((4, 1))
    replayed = []

    def replay(q):
        replayed.append(q)
        return original + (1.0 - q / 5.0)

    def coded_size(q):
        return int(1000 * 2 ** q)

    search = rate_control.PlaneRateSearch(original, weights, np.float64, 0.3, None, 5, replay, coded_size,
                                          size_limit=6000)
    with pytest.raises(rate_control.NetworkCannotWin):
        search.quality()       # MAE at the finest rate under 6000 bytes is ~0.5, 1.6x the target
    assert len(replayed) == 1 and not search.sizes
    replayed.clear()
    free = rate_control.PlaneRateSearch(original, weights, np.float64, 0.3, None, 2, replay, coded_size)
    quality, _ = free.quality()   # finest trained rate 2 (MAE 0.6): corrected records, smallest kept
    assert len(replayed) == 3 and set(free.sizes) == {0.0, 1.0, 2.0} and quality in free.sizes


@pytest.mark.parametrize("model", ["hyperprior-v4", "hyperprior-v5.1"])
def test_estimated_latent_size_tracks_the_range_coder(model):
    """The rate search caps the rate with sizes from the float entropy model and the tables'
    code lengths (no integer network, no range coding); they must stay close to the bytes."""
    from xneuralcodec.codec.engine import Engine
    from xneuralcodec.network.weights import load_model
    from xneuralcodec.options import CodecOptions
    from xneuralcodec.sphere.faces import ring_to_faces
    from xneuralcodec.sphere.projection import Projector

    plane, grid = load_plane("era5_1deg_t2m")
    loaded = load_model(model)
    engine = Engine(loaded)
    standard = (plane - plane.mean()) / plane.std()
    faces = ring_to_faces(Projector(grid, grid.default_nside()).to_healpix(standard)).astype(np.float32)[None]
    analysed = engine.transform.analyse(faces, CodecOptions(variable="t2m").condition)
    for quality in (0.0, 1.5, 3.0, float(loaded.config.qualities - 1)):
        y, z = engine.transform.latents(analysed, loaded.gain(quality)[None])
        exact, estimate = engine.latents.size(y[0], z[0]), engine.latents.estimated_size(y[0], z[0])
        assert abs(estimate / exact - 1) < 0.03, (quality, exact, estimate)   # measured within 2.1%
