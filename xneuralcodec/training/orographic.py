"""Training on what the codec's network sees since format v15: planes minus their orographic
prediction (``coding/orographic_prediction.py``) wherever the terrain explains at least
SURE_EXPLAINED of the plane's band-pass variance, as ``codec/planes.describe`` decides.

Global planes get exactly the codec's fit. Regional 0.25 degree fields (``patches.py``) are
not global grids: their bands are cut from the global 0.25 degree bands, and a1, a2 are fitted
per state on the crop against its own band-pass (box means clamped at the crop's edges instead
of the codec's periodic columns), an approximation the network only needs to see the same kind
of residual."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.ndimage import uniform_filter

from ..coding import orographic_prediction as op
from ..sphere.grid import LatLonGrid

QUARTER_DEGREE = LatLonGrid(721, 1440, 90.0, 0.0)


def predicted_planes(planes) -> tuple[list, int]:
    """The training planes with each well-explained one replaced by the plane minus its
    prediction; and how many were replaced."""
    out, count = [], 0
    for plane in planes:
        finite = np.isfinite(plane.values)
        fitted = op.fit(plane.values, finite, plane.grid) if finite.all() else None
        if fitted is not None and fitted.explained >= op.SURE_EXPLAINED:
            plane = dataclasses.replace(plane, values=fitted.values.astype(np.float32))
            count += 1
        out.append(plane)
    return out, count


def _smooth(values: np.ndarray, radius: int) -> np.ndarray:
    for _ in range(2):
        values = uniform_filter(values, size=2 * radius + 1, mode="nearest")
    return values


def predicted_states(values: np.ndarray, lat0: float, lon0: float, step: float) -> tuple[np.ndarray, int]:
    """(T, nlat, nlon) north-first regional states on the 0.25 degree lattice -> the same minus
    each well-explained state's prediction, float32; and how many states were replaced."""
    on_lattice = all(abs(v / step - round(v / step)) < 1e-6 for v in (lat0, lon0))
    if abs(step - 0.25) > 1e-9 or not on_lattice:   # not the 0.25 degree grid the bands are on
        return values, 0
    nlat, nlon = values.shape[1:]
    row = int(round((90.0 - lat0) / step))
    cols = (int(round((lon0 % 360.0) / step)) + np.arange(nlon)) % QUARTER_DEGREE.nlon
    b1, b2 = (b[row:row + nlat][:, cols] for b in op.terrain_bands(QUARTER_DEGREE))
    if b1.shape != (nlat, nlon):
        return values, 0
    out, count = values.copy(), 0
    design = np.stack([b1.ravel(), b2.ravel()], axis=1)
    for t, state in enumerate(values.astype(np.float64)):
        goal = (state - _smooth(state, op.RADII[1])).ravel()
        total = float(goal @ goal)
        if total <= 0:
            continue
        a, *_ = np.linalg.lstsq(design, goal, rcond=None)
        a = a.astype(np.float16).astype(np.float64)
        residual = goal - design @ a
        if 1.0 - float(residual @ residual) / total >= op.SURE_EXPLAINED:
            out[t] = (state - a[0] * b1 - a[1] * b2).astype(np.float32)
            count += 1
    return out, count


def predicted_fields(fields) -> tuple[list, int]:
    """Regional fields (``patches.RegionalField``) with their well-explained states predicted."""
    out, count = [], 0
    for field in fields:
        values, n = predicted_states(field.values, field.lat0, field.lon0, field.step)
        out.append(dataclasses.replace(field, values=values) if n else field)
        count += n
    return out, count
