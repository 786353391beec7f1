"""Latitude weighting of a conventional plane (format v13): y = (x - profile(lat)) * scale(lat).

Why: the MAE a user asks for is weighted by grid-cell area (cos latitude), but a lat/lon grid
has as many points in a polar row as at the equator, and SZ3, SPERR and the interpolation
coder spread their error evenly over the points. Coding ``(x - profile) * scale`` with
``scale = (1 + cos lat) / 2`` lets the error grow towards the poles, where a point stands for
little area, by at most 2x, and spends the bytes saved on the rows that weigh most; the
network gets the same effect from HEALPix's equal-area pixels. Taking out a smooth zonal
profile first (a quadratic in sin latitude, fitted to the zonal means) keeps the scaling from
adding the field's pole-to-equator gradient to the coded values, which costs bytes.

At equal area-weighted MAE, SPERR's step mode reached 1.8-8.2% higher ratios on the 14 held-out
planes at the paper's targets (ERA5 0.25 degree t2m 370.5x -> 400.8x; ERA5 1 degree u10
45.2x -> 48.0x; GFS w 6.26x -> 6.37x; /work/exp/lat_shapes.py, 0.16.0). The price is in the
share of points with large errors, which the encoder guards (``conventional.TAIL_SHARE``).

Both sides compute the rows from the stored parameters with additions, multiplications and
one division only (sine and cosine as fixed polynomials), so every machine decodes the same
values: a libm's ``cos`` may differ in its last bit between platforms.
"""

from __future__ import annotations

import dataclasses
import struct

import numpy as np

from ..sphere.grid import LatLonGrid

PROFILE_DEGREE = 2
_PARAMS = struct.Struct("<d3f")   # latitude of row 0 (degrees), profile coefficients c0, c1, c2
SIZE = _PARAMS.size               # bytes in a plane record
# Taylor coefficients of sin(t) / t and cos(t) in t^2, to t^18: |error| < 1e-13 on |t| <= pi/2
_SIN = [(-1) ** k / float(np.prod(np.arange(1, 2 * k + 2, dtype=np.float64))) for k in range(10)]
_COS = [(-1) ** k / float(np.prod(np.arange(1, 2 * k + 1, dtype=np.float64))) for k in range(10)]


@dataclasses.dataclass(frozen=True)
class LatitudeWeighting:
    lat_first: float                       # the grid's first latitude (with nlat, it gives every row's)
    profile: tuple[float, float, float]    # float32 coefficients of the profile in sin(latitude)

    def pack(self) -> bytes:
        return _PARAMS.pack(self.lat_first, *self.profile)

    @classmethod
    def unpack(cls, buf, offset: int) -> "LatitudeWeighting":
        """From a plane record; nonsense (a latitude no grid has, non-finite coefficients) raises ValueError."""
        lat_first, *profile = _PARAMS.unpack_from(buf, offset)
        if not (np.isfinite(profile).all() and np.isfinite(lat_first) and abs(lat_first) <= 90.0):
            raise ValueError(f"not a valid xneuralcodec chunk: bad latitude weighting ({lat_first}, {profile})")
        return cls(lat_first, tuple(profile))


def _sin_cos(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sin and cos of radians in [-pi/2, pi/2] by Horner's rule in t^2 (exact IEEE operations only)."""
    t2 = t * t
    s = np.zeros_like(t)
    c = np.zeros_like(t)
    for a, b in zip(reversed(_SIN), reversed(_COS)):
        s = s * t2 + a
        c = c * t2 + b
    return s * t, c


def _row_sin_cos(lat_first: float, nlat: int) -> tuple[np.ndarray, np.ndarray]:
    """sin and cos of every row's latitude of the global grid starting at ``lat_first``; a
    latitude that fits no such grid of ``nlat`` rows raises ValueError (``LatLonGrid`` checks it)."""
    return _sin_cos(LatLonGrid(nlat, 4, lat_first, 0.0).latitudes * (np.pi / 180.0))


def rows(weighting: LatitudeWeighting, nlat: int) -> tuple[np.ndarray, np.ndarray]:
    """(profile, scale) per row, float64, shape (nlat, 1)."""
    sin, cos = _row_sin_cos(weighting.lat_first, nlat)
    c0, c1, c2 = (np.float64(c) for c in weighting.profile)
    profile = c0 + sin * (c1 + sin * c2)
    return profile[:, None], (0.5 + 0.5 * cos)[:, None]


def error_gain(weighting: LatitudeWeighting, nlat: int) -> float:
    """The area mean of 1 / scale: how much larger the area-weighted MAE gets at the same bound when
    the coder is given the weighted plane (the encoder's first guess of the bound divides by it)."""
    area = np.maximum(_row_sin_cos(weighting.lat_first, nlat)[1], 0.0)
    return float((area / rows(weighting, nlat)[1][:, 0]).sum() / area.sum())


def fit(plane: np.ndarray, grid: LatLonGrid) -> LatitudeWeighting | None:
    """The weighting for a finite (nlat, nlon) plane: its zonal means fitted by a quadratic in
    sin(latitude), area-weighted; None where the coefficients or the weighted plane would not be
    finite in float32 / the plane's dtype."""
    sin, cos = _row_sin_cos(grid.lat_first, grid.nlat)
    zonal = plane.astype(np.float64).mean(axis=1)
    coefficients = np.polynomial.polynomial.polyfit(sin, zonal, PROFILE_DEGREE, w=np.sqrt(np.maximum(cos, 0) + 1e-3))
    with np.errstate(over="ignore", invalid="ignore"):
        profile = tuple(float(c) for c in coefficients.astype(np.float32))
    if not np.isfinite(profile).all():
        return None
    weighting = LatitudeWeighting(float(grid.lat_first), profile)
    return weighting if np.isfinite(forward(plane, weighting)).all() else None


def forward(plane: np.ndarray, weighting: LatitudeWeighting) -> np.ndarray:
    """Encoder side: (x - profile) * scale, in the plane's dtype."""
    profile, scale = rows(weighting, plane.shape[0])
    with np.errstate(over="ignore", invalid="ignore"):
        return ((plane.astype(np.float64) - profile) * scale).astype(plane.dtype)


def inverse(values: np.ndarray, weighting: LatitudeWeighting) -> np.ndarray:
    """Decoder side: y / scale + profile, float64."""
    profile, scale = rows(weighting, values.shape[0])
    return values / scale + profile
