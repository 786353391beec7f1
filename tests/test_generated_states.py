"""The pieces of the SPEEDY state generator that do not need jcm: moving Gaussian-grid
fields to a regular grid, and sigma levels to pressure levels."""

import numpy as np
import pytest

from xneuralcodec.sphere.regrid import gaussian_latitudes, gaussian_to_regular
from xneuralcodec.training.data import iter_planes
from xneuralcodec.training.generate_states import to_pressure_levels


def test_gaussian_latitudes_match_the_t31_grid():
    # the first rows of SPEEDY's 48-row grid, as jcm writes them (south first)
    lat = gaussian_latitudes(48)
    np.testing.assert_allclose(lat[-3:], [-79.77704565, -83.47893667, -87.15909456], atol=1e-7)
    np.testing.assert_allclose(lat, -lat[::-1], atol=1e-12)


@pytest.mark.parametrize("south_first", [False, True])
def test_regrid_is_exact_for_fields_linear_in_latitude(south_first):
    lat = gaussian_latitudes(48)
    if south_first:
        lat = lat[::-1]
    lon = np.arange(96) * 3.75
    field = 2.0 * lat[:, None] + np.cos(np.radians(lon))[None, :]
    out, grid = gaussian_to_regular(field[None], lat)
    assert grid.nlat == 48 and grid.nlon == 96 and grid.geometry == "F1" and grid.north_first
    target = np.clip(grid.latitudes, lat.min(), lat.max())  # rows beyond the outermost copy it
    np.testing.assert_allclose(out[0], 2.0 * target[:, None] + np.cos(np.radians(lon))[None, :], atol=1e-9)


def test_regrid_never_leaves_the_input_range():
    # precipitation-like: mostly zero with isolated spikes; a spectral resampling would ring negative
    rng = np.random.default_rng(0)
    field = np.where(rng.random((48, 96)) > 0.97, rng.random((48, 96)), 0.0)
    out, _ = gaussian_to_regular(field, gaussian_latitudes(48))
    assert out.min() >= 0.0 and out.max() <= field.max()
    assert abs(out.mean() - field.mean()) < 0.1 * field.mean()


def test_regrid_refuses_other_latitudes():
    with pytest.raises(ValueError, match="Gauss-Legendre"):
        gaussian_to_regular(np.zeros((48, 96)), np.linspace(88, -88, 48))
    with pytest.raises(ValueError, match="expected values"):
        gaussian_to_regular(np.zeros((47, 96)), gaussian_latitudes(48))


def test_pressure_levels_interpolate_in_log_pressure_and_clamp_below_ground():
    sigma = np.array([0.95, 0.835, 0.685, 0.51, 0.34, 0.2, 0.095, 0.025])
    ps = np.array([[[1.0e5, 6.0e4]]])  # (time, lat, lon): sea level and high ground
    log_p = np.log(sigma[None, :, None, None] * ps[:, None])
    out = to_pressure_levels(3.0 * log_p + 1.0, sigma, ps, np.array([85000.0, 50000.0]))
    # a field linear in log p is reproduced exactly where the level lies between model levels
    np.testing.assert_allclose(out[0, :, 0, 0], 3.0 * np.log([85000.0, 50000.0]) + 1.0)
    np.testing.assert_allclose(out[0, 1, 0, 1], 3.0 * np.log(50000.0) + 1.0)
    # 850 hPa lies below 600 hPa ground: it takes the lowest model level's value
    np.testing.assert_allclose(out[0, 0, 0, 1], 3.0 * np.log(0.95 * 6.0e4) + 1.0)


def test_generated_files_read_as_training_planes(tmp_path):
    import xarray as xr

    values, grid = gaussian_to_regular(np.random.default_rng(1).normal(size=(2, 5, 48, 96)), gaussian_latitudes(48))
    ds = xr.Dataset({"t": (("time", "level", "lat", "lon"), values.astype(np.float32))},
                    coords={"time": np.array(["2000-01-01", "2000-01-02"], dtype="datetime64[ns]"),
                            "level": [850.0, 700.0, 500.0, 300.0, 200.0],
                            "lat": grid.latitudes, "lon": grid.longitudes})
    ds.to_netcdf(tmp_path / "speedy_t31_chunk000.nc")
    skipped = {}
    planes = list(iter_planes([tmp_path], skipped))
    assert len(planes) == 10 and not skipped and planes[0].grid == grid


@pytest.mark.parametrize("argv", [["--days", "0"], ["--spinup-days", "-1"], ["--save-every", "45"]])
def test_generator_refuses_meaningless_durations_before_importing_jcm(argv, capsys):
    from xneuralcodec.training import generate_states

    with pytest.raises(SystemExit) as exc:
        generate_states.main(["--out", "unused", *argv])
    assert exc.value.code == 2 and "expected --days > 0" in capsys.readouterr().err


def test_gaussian_grid_files_of_the_archive_join_training_only_when_asked():
    from .conftest import DATA

    path = DATA / "global" / "G16_uvt_jan1988_monthly_T42_14lev.nc"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    skipped = {}
    assert list(iter_planes([path], skipped)) == [] and skipped == {"unsupported grid": 42}
    skipped = {}
    planes = list(iter_planes([path], skipped, gaussian=True))
    assert len(planes) == 42 and skipped == {"Gaussian grid, regridded": 42}
    import xarray as xr

    raw = xr.open_dataset(path)["T"].values
    for plane in planes:
        assert plane.grid.nlat == 64 and plane.grid.nlon == 128 and plane.grid.north_first
    t = [p for p in planes if p.variable == "T"]
    # linear interpolation in latitude never leaves the range of the level it came from
    for level, plane in enumerate(t):
        assert raw[level].min() - 1e-3 <= plane.values.min() and plane.values.max() <= raw[level].max() + 1e-3
