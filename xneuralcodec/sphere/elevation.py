"""Surface elevation on any global regular grid, from the shipped 0.25 degree field.

Why: at 0.25 degrees most of 2 m temperature's small scales follow the terrain (about -4 to
-7 K per km), and they are what a wavelet coder at a few hundred x drops, so the largest errors
sit on mountains and coasts. Both encoder and decoder know the terrain, so the encoder may
subtract the part of a plane the terrain predicts (``coding/orographic_prediction.py``).

The field (``weights/static/elevation-0.25deg-v1.npz``, built by ``build_elevation.py`` from
data inside the pvlib and global-land-mask wheels and Debian's ferret-datasets) is int16
metres. A grid point gets the mean of the 0.25 degree points within half a grid step of it
(the nearest one on finer grids): the sums come from an integer summed-area table and one
division, and the band filters below use sequential cumulative sums, so every machine computes
the same values.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from ..network.registry import weights_dir
from .grid import LatLonGrid

FILE = "static/elevation-0.25deg-v1.npz"
# sha256 of the int16 array's little-endian bytes: a stream's decoded values depend on them
SHA256 = "5ee3264b453c74e23c271ab31d63866822e5a9aa87699cb019e7a8fbc2b2fea6"
STEP = 0.25        # degrees; rows from 90 to -90, columns from 0 east
_EPS = 1e-9        # in steps: a footprint edge on a source point counts it


@functools.lru_cache(maxsize=1)
def quarter_degree() -> np.ndarray:
    """The shipped (721, 1440) int16 field, checked against its sha256."""
    path = weights_dir() / FILE
    with np.load(path, allow_pickle=False) as f:
        field = f["elevation"]
    if field.shape != (721, 1440) or hashlib.sha256(np.ascontiguousarray(field, "<i2").tobytes()).hexdigest() != SHA256:
        raise ValueError(f"{path} is not the elevation this version of xneuralcodec shipped: reinstall the package")
    field.setflags(write=False)   # shared by every caller in the process
    return field


def _summed_area() -> np.ndarray:
    """int64 summed-area table of the field with its columns repeated three times (-360..720 east):
    25 MB, so built per new grid (~0.2 s) rather than kept."""
    tiled = np.tile(quarter_degree().astype(np.int64), (1, 3))
    table = np.zeros((tiled.shape[0] + 1, tiled.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = tiled.cumsum(0).cumsum(1)
    return table


def _ranges(centres: np.ndarray, half: float, n_source: int, periodic: bool) -> tuple[np.ndarray, np.ndarray]:
    """[first, last] source indices within ``half`` steps of each centre (given in source steps);
    the nearest one where none is."""
    first = np.ceil(centres - half - _EPS)
    last = np.floor(centres + half + _EPS)
    nearest = np.floor(centres + 0.5)
    empty = first > last
    first[empty] = last[empty] = nearest[empty]
    if not periodic:
        first, last = np.clip(first, 0, n_source - 1), np.clip(last, 0, n_source - 1)
    return first.astype(np.int64), last.astype(np.int64)


def on_grid(nlat: int, nlon: int, lat_first: float, lon_first: float) -> np.ndarray:
    """Elevation in metres (float64, (nlat, nlon)) on the global grid of that description
    (not cached: ``orographic_prediction`` keeps the bands it makes from it)."""
    grid = LatLonGrid(nlat, nlon, lat_first, lon_first)
    rows = (90.0 - grid.latitudes) / STEP
    cols = np.mod(grid.longitudes, 360.0) / STEP
    r0, r1 = _ranges(rows, 0.5 * (180.0 / (nlat - 1) if grid.geometry == "CC" else 180.0 / nlat) / STEP, 721, False)
    c0, c1 = _ranges(cols, 0.5 * (360.0 / nlon) / STEP, 1440, True)
    c0, c1 = c0 + 1440, c1 + 1440       # into the middle copy of the tiled columns
    if (c0 < 0).any() or (c1 >= 3 * 1440).any():
        raise ValueError(f"a {nlat} x {nlon} grid is too coarse for the elevation field")
    t = _summed_area()
    r0, r1 = r0[:, None], r1[:, None] + 1
    c0, c1 = c0[None, :], c1[None, :] + 1
    sums = t[r1, c1] - t[r0, c1] - t[r1, c0] + t[r0, c0]
    counts = (r1 - r0) * (c1 - c0)
    return sums / counts


def box_smooth(field: np.ndarray, radius: int) -> np.ndarray:
    """A box mean of half-width ``radius`` points, applied twice (close to a Gaussian of sigma
    ~sqrt(2 r (r + 1) / 3)): rows clamped at the poles, columns periodic; float64."""
    out = np.asarray(field, dtype=np.float64)
    for _ in range(2):
        out = _box(out, radius, axis=0, periodic=False)
        out = _box(out, radius, axis=1, periodic=True)
    return out


def _box(values: np.ndarray, r: int, axis: int, periodic: bool) -> np.ndarray:
    values = np.moveaxis(values, axis, 0)
    n = values.shape[0]
    index = np.arange(-r, n + r)
    padded = values[np.mod(index, n) if periodic else np.clip(index, 0, n - 1)]
    sums = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(padded, axis=0)])
    return np.moveaxis((sums[2 * r + 1:] - sums[:n]) / (2 * r + 1), 0, axis)
