"""Moving fields from a Gaussian grid to a regular lat/lon grid the codec accepts.

Spectral models (SPEEDY/jcm, GFS T62, ERA T42 ...) write their fields on Gaussian grids,
which the codec refuses. Gaussian latitudes are nearly evenly spaced, so the regular grid
with as many rows and no pole rows lies within half a row of them: a linear interpolation
in latitude moves the fields with little smoothing. A spectral resampling would be exact
for the band-limited dynamical fields but rings around the physics fields that are not
band-limited (precipitation, sea-level pressure over mountains), and can turn
precipitation negative; linear interpolation never leaves the range of its inputs.
"""

from __future__ import annotations

import numpy as np

from .grid import LatLonGrid


def gaussian_latitudes(nlat: int) -> np.ndarray:
    """Gauss-Legendre latitudes in degrees, north to south."""
    nodes, _ = np.polynomial.legendre.leggauss(nlat)
    return np.degrees(np.arcsin(nodes[::-1]))


def gaussian_to_regular(values: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, LatLonGrid]:
    """Resample ``values`` (..., nlat, nlon) on Gaussian latitudes ``lat`` (either order) to the
    regular grid of ``nlat`` rows without pole rows, north first, same longitudes.

    Rows beyond the outermost Gaussian latitudes take the outermost values.
    """
    values = np.asarray(values, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    if values.ndim < 2 or values.shape[-2] != lat.size:
        raise ValueError(f"expected values (..., {lat.size}, nlon) for {lat.size} latitudes, got shape {values.shape} instead")
    nlat = lat.size
    expected = gaussian_latitudes(nlat)
    if np.allclose(lat, expected[::-1], atol=1e-3):
        values, lat = values[..., ::-1, :], lat[::-1]
    elif not np.allclose(lat, expected, atol=1e-3):
        raise ValueError(f"expected the {nlat} Gauss-Legendre latitudes (either order), got {lat[:3]}... instead")
    grid = LatLonGrid(nlat, values.shape[-1], lat_first=90.0 - 90.0 / nlat)
    target = grid.latitudes  # north to south, like ``lat`` now
    upper = np.clip(np.searchsorted(-lat, -target), 1, nlat - 1)  # first Gaussian row south of target
    weight = np.clip((lat[upper - 1] - target) / (lat[upper - 1] - lat[upper]), 0.0, 1.0)[:, None]
    out = (1.0 - weight) * values[..., upper - 1, :] + weight * values[..., upper, :]
    return out, grid
