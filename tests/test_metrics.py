"""Metrics against cases that can be worked out by hand (no shared data needed)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from xneuralcodec.evaluation.metrics import (
    EARTH_RADIUS_KM,
    area_weights,
    cyclone_cores,
    error_threshold,
    exceedance_percent,
    great_circle_km,
    local_minima,
    power_spectrum,
    spectrum_ratio,
    upper_tail,
    variable_kind,
    weighted_errors,
)
from xneuralcodec.sphere.grid import LatLonGrid

ducc0 = pytest.importorskip("ducc0")
needs_scipy = pytest.mark.skipif(
    importlib.util.find_spec("scipy") is None, reason="local minima need scipy (pip install 'xneuralcodec[bench]')"
)

ONE_DEGREE = LatLonGrid(nlat=181, nlon=360, lat_first=90.0, lon_first=0.0)
GRIDS = {
    "CC north first": LatLonGrid(nlat=61, nlon=120, lat_first=90.0, lon_first=0.0),
    "CC south first": LatLonGrid(nlat=61, nlon=120, lat_first=-90.0, lon_first=0.0),
    "F1 from -180": LatLonGrid(nlat=60, nlon=120, lat_first=88.5, lon_first=-180.0),
}


def smooth_field(grid: LatLonGrid) -> np.ndarray:
    lat, lon = np.meshgrid(np.radians(grid.latitudes), np.radians(grid.longitudes), indexing="ij")
    return (280 + 30 * np.cos(lat) + 5 * np.sin(2 * lon) * np.cos(lat)).astype(np.float32)


def pressure_with_lows(grid: LatLonGrid, lows) -> np.ndarray:
    """1010 hPa with Gaussian lows (lat, lon, depth Pa, radius km)."""
    lat, lon = np.meshgrid(grid.latitudes, grid.longitudes, indexing="ij")
    field = np.full(lat.shape, 101000.0)
    for la, lo, depth, radius in lows:
        field -= depth * np.exp(-((great_circle_km(lat, lon, la, lo) / radius) ** 2))
    return field


# -- errors and thresholds -----------------------------------------------------------------

def test_constant_error_gives_that_error_for_mae_rmse_and_max():
    original = smooth_field(ONE_DEGREE)
    errors = weighted_errors(original, original + 0.25, ONE_DEGREE)
    assert errors == pytest.approx({"mae": 0.25, "rmse": 0.25, "max_abs": 0.25}, rel=1e-5)


def test_exceedance_is_the_area_share_above_the_threshold():
    original = smooth_field(ONE_DEGREE)
    error = np.zeros_like(original)
    error[:, :180] = 2.0  # half of every latitude circle
    assert exceedance_percent(original, original + error, ONE_DEGREE, 1.0) == pytest.approx(50.0)
    assert exceedance_percent(original, original + error, ONE_DEGREE, 3.0) == 0.0
    north = np.zeros_like(original)
    north[:90] = 2.0  # rows 90N..1N
    lat = np.radians(ONE_DEGREE.latitudes)
    expected = 100 * np.cos(lat[:90]).sum() / np.cos(lat).sum()
    assert exceedance_percent(original, original + north, ONE_DEGREE, 1.0) == pytest.approx(expected)
    assert expected < 50  # the equator row is not counted, and polar rows weigh little


def test_thresholds_by_variable_name_kind_and_override():
    assert [error_threshold(v) for v in ("t2m", "T", "air", "u10", "v", "msl", "sp", "z", "gh", "z500_height", "q")] == [
        1.0, 1.0, 1.0, 1.0, 1.0, 100.0, 100.0, 100.0, 10.0, 10.0, 1e-4]
    assert variable_kind("u_1000hPa") == "wind" and variable_kind("sp_ammc") == "pressure"
    assert error_threshold("tp") is None
    assert error_threshold("t2m", {"t2m": 0.5}) == 0.5
    assert error_threshold("u10", {"wind": 2}) == 2.0
    assert error_threshold("u10", {"u10": 3, "wind": 2}) == 3.0
    with pytest.raises(ValueError, match="positive"):
        error_threshold("t2m", {"t2m": -1})
    with pytest.raises(TypeError, match="dict"):
        error_threshold("t2m", [("t2m", 1)])


def test_bad_inputs_are_refused_clearly():
    plane = smooth_field(ONE_DEGREE)
    with pytest.raises(ValueError, match="181 x 360"):
        exceedance_percent(plane, plane[:, :-1], ONE_DEGREE, 1.0)
    with pytest.raises(TypeError, match="LatLonGrid"):
        power_spectrum(plane, {"nlat": 181})
    with pytest.raises(TypeError, match="number"):
        exceedance_percent(plane, plane, ONE_DEGREE, "1")


# -- spectra -------------------------------------------------------------------------------

def single_harmonic(grid: LatLonGrid, l: int, m: int, coefficient: complex) -> np.ndarray:
    """The real field of one a_lm (and its a_l,-m partner), on ``grid``'s row order."""
    lmax = grid.lmax
    alm = np.zeros((lmax + 1) * (lmax + 2) // 2, np.complex128)
    alm[m * (2 * lmax + 1 - m) // 2 + l] = coefficient  # healpy / ducc0 order
    field = ducc0.sht.synthesis_2d(alm=alm[None], spin=0, lmax=lmax, geometry=grid.geometry,
                                   ntheta=grid.nlat, nphi=grid.nlon, phi0=math.radians(grid.lon_first % 360))[0]
    return field if grid.north_first else field[::-1]


@pytest.mark.parametrize("name", list(GRIDS))
@pytest.mark.parametrize("l, m", [(7, 3), (12, 0), (20, 20)])
def test_single_spherical_harmonic_has_all_its_power_at_its_degree(name, l, m):
    grid = GRIDS[name]
    coefficient = 2.0 + 1.0j if m else 3.0
    power = power_spectrum(single_harmonic(grid, l, m, coefficient), grid)
    assert power.shape == (grid.lmax + 1,)
    expected = (2 if m else 1) * abs(coefficient) ** 2 / (2 * l + 1)
    assert power[l] == pytest.approx(expected, rel=1e-9)
    assert np.delete(power, l).max() < 1e-12 * expected


def test_spectrum_ratio_of_a_scaled_field_is_the_squared_scale():
    grid = GRIDS["CC north first"]
    field = smooth_field(grid).astype(np.float64)
    same = spectrum_ratio(field, field, grid)
    assert np.allclose(same["ratio"][same["original"] > 0], 1.0)
    half = spectrum_ratio(field, 0.5 * field, grid)
    assert np.allclose(half["ratio"][half["original"] > 1e-20 * half["original"].max()], 0.25)
    stack = np.stack([field, 2 * field])
    assert np.allclose(power_spectrum(stack, grid), 2.5 * power_spectrum(field, grid))


# -- extremes ------------------------------------------------------------------------------

LOWS = [(50.0, 359.0, 3000.0, 500.0), (-40.0, 120.0, 2000.0, 400.0), (10.0, 200.0, 1000.0, 300.0)]


@needs_scipy
def test_planted_pressure_minima_are_found_where_planted_deepest_first():
    field = pressure_with_lows(ONE_DEGREE, LOWS)
    found = local_minima(field, ONE_DEGREE, k=5)
    assert [(m["lat"], m["lon"]) for m in found] == [(50.0, 359.0), (-40.0, 120.0), (10.0, 200.0)]
    assert found[0]["value"] == pytest.approx(98000.0)


@needs_scipy
def test_a_minimum_across_the_date_line_and_a_quantised_plateau_count_once():
    field = pressure_with_lows(ONE_DEGREE, [(50.0, 0.0, 3000.0, 500.0)])
    quantised = np.round(field / 400.0) * 400.0  # flat core and terraces on the slopes
    found = local_minima(quantised, ONE_DEGREE, k=5)
    assert len(found) == 1
    assert great_circle_km(found[0]["lat"], found[0]["lon"], 50.0, 0.0) < 150.0


@needs_scipy
def test_cyclone_cores_report_displacement_and_depth_error():
    field = pressure_with_lows(ONE_DEGREE, LOWS)
    moved = np.roll(field, 2, axis=1) + 50.0  # every core 2 degrees east, 50 Pa shallower
    result = cyclone_cores(field, moved, ONE_DEGREE, k=3)
    two_degrees_at = [2 * EARTH_RADIUS_KM * math.asin(math.cos(math.radians(lat)) * math.sin(math.radians(1.0)))
                      for lat, *_ in LOWS]
    assert [c["distance_km"] for c in result["cores"]] == pytest.approx(two_degrees_at, rel=1e-9)
    assert [c["value_error"] for c in result["cores"]] == pytest.approx([50.0] * 3)
    assert result["matched"] == 3 and result["in_reconstruction_top_k"] == 3
    assert result["cores"][0]["reconstructed_lon"] == 1.0  # 359 + 2 wraps round


@needs_scipy
def test_local_minima_refuses_an_even_neighbourhood():
    with pytest.raises(ValueError, match="odd"):
        local_minima(smooth_field(ONE_DEGREE), ONE_DEGREE, size=4)


def test_great_circle_quarter_meridian():
    assert great_circle_km(90, 0, 0, 123) == pytest.approx(math.pi / 2 * EARTH_RADIUS_KM)
    assert great_circle_km(10, 359.5, 10, -0.5) == pytest.approx(0.0, abs=1e-9)


def test_upper_tail_counts_kept_points_and_their_error():
    original = np.arange(10_000, dtype=np.float64).reshape(100, 100)
    tail = upper_tail(original, original - 1.0, fraction=0.001)  # 10 points, all kept
    assert tail["points"] == 10 and tail["kept"] == 10 and tail["kept_fraction"] == 1.0
    assert tail["original_max"] == 9999.0 and tail["reconstructed_max"] == 9998.0
    assert tail["original_threshold"] == 9990.0 and tail["max_abs_error_on_tail"] == pytest.approx(1.0)
    cooled = original.copy()
    cooled.flat[9990:9995] -= 20.0  # five of the ten hottest drop below 9980..9989
    tail = upper_tail(original, cooled, fraction=0.001)
    assert tail["kept"] == 5 and tail["max_abs_error_on_tail"] == pytest.approx(20.0)
    assert tail["reconstructed_threshold"] == 9985.0
    with pytest.raises(ValueError, match="below 1"):
        upper_tail(original, original, fraction=1.5)


def test_area_weights_are_unchanged():
    w = area_weights(ONE_DEGREE)
    assert w.shape == (181, 1) and w.sum() * 360 == pytest.approx(1.0)
