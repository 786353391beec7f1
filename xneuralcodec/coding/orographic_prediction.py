"""Orographic prediction of a plane (format v14: conventional records; v15: network records too):
y = x - a1 * b1 - a2 * b2.

Why: on a lat/lon grid of 1 degree or finer, much of 2 m temperature's small-scale structure
follows the terrain, and a wavelet coder at a few hundred x keeps too little of it: on ERA5 0.25
degree t2m at 0.4 K most points off by more than 2 K sit on mountains and coasts. Encoder and
decoder both know the terrain (``sphere/elevation.py``), so the coder is given the plane minus
what two band-passes of the terrain predict: b1 = E - S(E, r1) (the finest scales) and
b2 = S(E, r1) - S(E, r2), S a box mean of half-width r applied twice. The encoder fits a1 and
a2 (K per metre for temperature) by least squares on the plane's own band-pass, area-weighted.
The network (``codec/planes.py``, v15) gets y wherever the fit explains at least SURE_EXPLAINED.
For the conventional coders, how much of that variance the terrain explains decides what the encoder does (``conventional``):
at least SURE_EXPLAINED, it codes the predicted plane only; between MIN_EXPLAINED and that, both
planes, keeping the smaller record; below, the plane alone. Measured shares with the radii below:
t2m 0.36 (0.25 and 1 degree ERA5), msl 0.05, upper-air fields, winds and precipitation 0.026 at
most, and synthetic fields with no terrain in them up to 0.057 on a 2.5 degree grid, where the
wide band spans 40 degrees: chance alone reaches the low shares (``/work/exp/oro/explained.py``).

Measured with EBCC's JPEG 2000 layer at a fixed ratio on ERA5 0.25 degree t2m (2017-01-01T12,
ratio ~490x, ``/work/exp/oro/bands_fixed.py``): area-weighted MAE 0.394 -> 0.344 K, points off
by more than 2 K 1.44% -> 0.81%; fitted a1, a2 = -4.1, -5.2 K/km (the standard atmosphere's lapse
rate is -6.5). A third or fourth band (0.2-0.5% lower MAE), a land-fraction band and coefficients
varying with latitude explained more of the variance but coded no better (``g04_variants.py``,
``g04_land.py``).

The parameters travel in the record in 11 bytes (which of the grid layouts ``LatLonGrid`` takes:
north or south first, with or without pole rows; the first longitude as float32; the radii;
a1 and a2 as float16, as the encoder also uses them): on a plane coded ~570x at 1 degree, a
record of ~460 bytes, each byte is 0.2%. Both sides compute the bands with the same exact
steps (integer sums, sequential cumulative sums).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import struct
import threading

import numpy as np

from ..sphere import elevation
from ..sphere.grid import LatLonGrid, area_weights

_PARAMS = struct.Struct("<BfBBee")   # layout (bit 0: north first, bit 1: pole rows), lon_first, r1, r2, a1, a2
SIZE = _PARAMS.size
RADII = (2, 16)         # grid points: ~sigma 2 and 13.5 of a Gaussian
# Codec at the paper's target, one held-out plane each (ratio; /work/exp/oro/radii_ab.py): ERA5
# 0.25 degree t2m (2, 9) 642x, (2, 16) 651x, (1, 16) 661x, (2, 24) 654x, (3, 20) 651x; 1 degree t2m
# (1, 5) 50.1x, (2, 9) 49.7x, (3, 12) 50.1x, (2, 16) 52.0x, (4, 16) 52.0x, (1, 16) 51.8x; 1 degree msl
# (1, 5) 594x, (2, 9) 583x, (3, 12) 587x, (2, 16) 586x, (1, 16) 588x. 1-2% is the bound search's
# landing (MAE 0.396-0.400 K); (2, 16) was never the worst and left msl the fewest points off by
# more than 5x the target (0.39%; (2, 9) 0.70%).
MIN_EXPLAINED = 0.02    # shares of the plane's band-pass variance the terrain explains: below, never tried;
SURE_EXPLAINED = 0.2    # from here on, the plain plane is not searched


NORTH_FIRST, POLE_ROWS = 1, 2


@dataclasses.dataclass(frozen=True)
class OrographicPrediction:
    layout: int                          # NORTH_FIRST | POLE_ROWS bits
    lon_first: float                     # a float32 value
    radii: tuple[int, int]
    coefficients: tuple[float, float]    # float16 values, per metre of the band-passes

    def pack(self) -> bytes:
        return _PARAMS.pack(self.layout, self.lon_first, *self.radii, *self.coefficients)

    @classmethod
    def unpack(cls, buf, offset: int) -> "OrographicPrediction":
        """From a plane record; nonsense (unknown layout bits, non-finite numbers, radii out of
        order) raises ValueError."""
        layout, lon_first, r1, r2, a1, a2 = _PARAMS.unpack_from(buf, offset)
        if not (np.isfinite([lon_first, a1, a2]).all() and layout < 4 and 0 < r1 < r2):
            raise ValueError(f"not a valid xneuralcodec chunk: bad orographic prediction "
                             f"({layout}, {lon_first}, {r1}, {r2}, {a1}, {a2})")
        return cls(layout, lon_first, (r1, r2), (a1, a2))

    def grid(self, shape: tuple[int, int]) -> LatLonGrid:
        """The grid of a plane of ``shape`` in this layout; a shape no such grid has raises ValueError."""
        nlat, nlon = shape
        lat_first = 90.0 if self.layout & POLE_ROWS else 90.0 - 90.0 / nlat
        return LatLonGrid(nlat, nlon, lat_first if self.layout & NORTH_FIRST else -lat_first, self.lon_first)


@functools.lru_cache(maxsize=8)
def _bands(nlat: int, nlon: int, lat_first: float, lon_first: float, radii: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """The terrain's two band-passes on the grid (float64, read-only); a latitude or longitude no grid
    of that shape has raises ValueError."""
    terrain = elevation.on_grid(nlat, nlon, lat_first, lon_first)
    smooth1 = elevation.box_smooth(terrain, radii[0])
    bands = (terrain - smooth1, smooth1 - elevation.box_smooth(terrain, radii[1]))
    for band in bands:
        band.setflags(write=False)
    return bands


def terrain_bands(grid: LatLonGrid, radii: tuple[int, int] = RADII) -> tuple[np.ndarray, ...]:
    """(b1, b2) on a global grid, read-only float64 (training crops them for regional fields)."""
    return _bands(grid.nlat, grid.nlon, grid.lat_first, grid.lon_first, radii)


def prediction(p: OrographicPrediction, shape: tuple[int, int]) -> np.ndarray:
    """a1 * b1 + a2 * b2 on the plane's grid, float64."""
    grid = p.grid(shape)
    b1, b2 = _bands(grid.nlat, grid.nlon, grid.lat_first, grid.lon_first, p.radii)
    a1, a2 = (np.float64(a) for a in p.coefficients)
    return a1 * b1 + a2 * b2


@dataclasses.dataclass(frozen=True)
class Fit:
    prediction: OrographicPrediction
    explained: float          # share of the plane's band-pass variance the prediction explains
    values: np.ndarray        # ``forward(plane, prediction)``: what the coders get


# The last few fits by plane content: a target_mae encode fits the same plane twice, for the
# network's record (codec/planes.py) and for the conventional search (conventional.py, in a
# worker thread); hashing it costs ~6 ms, a fit ~56 ms on a 0.25 degree plane.
_FITTED: collections.OrderedDict = collections.OrderedDict()
_FITTED_LOCK = threading.Lock()
_FITTED_KEEP = 4


def fit(plane: np.ndarray, finite: np.ndarray, grid: LatLonGrid) -> Fit | None:
    """The prediction for a (nlat, nlon) plane (NaN filled, ``finite`` where it was not NaN), or None
    where it explains less than MIN_EXPLAINED of the plane's band-pass variance or the predicted
    plane would not be finite."""
    if min(plane.shape) <= 2 * RADII[1]:
        return None
    x = plane.astype(np.float64)
    key = (hashlib.blake2b(x.tobytes(), digest_size=16).digest(), np.packbits(finite).tobytes(), x.shape,
           grid.lat_first, grid.lon_first)
    with _FITTED_LOCK:
        found = _FITTED.get(key)
    if found is None:
        found = _fit_coefficients(x, finite, grid)
        with _FITTED_LOCK:
            _FITTED[key] = found
            while len(_FITTED) > _FITTED_KEEP:
                _FITTED.popitem(last=False)
    if not found:
        return None
    p, explained = found
    values = forward(plane, p)
    return Fit(p, explained, values) if np.isfinite(values).all() else None


def _fit_coefficients(x: np.ndarray, finite: np.ndarray, grid: LatLonGrid) -> tuple:
    """(prediction, explained) for a float64 plane, or () where none is kept (see ``fit``)."""
    layout = (NORTH_FIRST if grid.north_first else 0) | (POLE_ROWS if grid.geometry == "CC" else 0)
    stored = OrographicPrediction(layout, float(np.float32(grid.lon_first)), RADII, (0.0, 0.0))
    grid = stored.grid(x.shape)      # the grid the decoder will see (first longitude in float32)
    b1, b2 = _bands(grid.nlat, grid.nlon, grid.lat_first, grid.lon_first, RADII)
    target = x - elevation.box_smooth(x, RADII[1])
    w = np.sqrt(np.broadcast_to(area_weights(grid), x.shape) * finite)
    design = np.stack([(b1 * w).ravel(), (b2 * w).ravel()], axis=1)
    goal = (target * w).ravel()
    total = float(goal @ goal)
    if total <= 0.0 or not np.isfinite(total) or not (design ** 2).sum() > 0:
        return ()
    coefficients, *_ = np.linalg.lstsq(design, goal, rcond=None)
    with np.errstate(over="ignore", invalid="ignore"):
        a = tuple(float(c) for c in np.asarray(coefficients, dtype=np.float16))
    if not np.isfinite(a).all():
        return ()
    residual = goal - design @ np.asarray(a, dtype=np.float64)
    explained = 1.0 - float(residual @ residual) / total
    if explained < MIN_EXPLAINED:
        return ()
    return dataclasses.replace(stored, coefficients=a), explained


def forward(plane: np.ndarray, p: OrographicPrediction) -> np.ndarray:
    """Encoder side: x - prediction, in the plane's dtype."""
    with np.errstate(over="ignore", invalid="ignore"):
        return (plane.astype(np.float64) - prediction(p, plane.shape)).astype(plane.dtype)


def inverse(values: np.ndarray, p: OrographicPrediction) -> np.ndarray:
    """Decoder side: y + prediction, float64."""
    return values + prediction(p, values.shape)
