"""Training patches at native 0.25 degree resolution (nside 256) from regional fields.

The only global 0.25 degree state (G04) is held out, so the network would never see
0.25 degree detail in training. Regional ERA5 fields at 0.25 degree have it:
``R01`` (UK, 744 hourly t2m states, 33x49) and ``R04`` (CONUS, u10 v10 d2m t2m sp,
105x237). ``R06`` is *excluded*: it is G04's state (ERA5 2017-01-01T12) cut to Europe,
training on it would leak the validation plane.

Geometry: a patch is an (H, W) square grid whose spacing is the mean HEALPix pixel side
at nside 256 (sqrt(4 pi / (12 * 256^2)) rad = 0.229 deg = 25.5 km), at a random centre
and orientation, sampled from the lat/lon field by cubic interpolation; every sample
must fall inside the region. Face-aligned crops at the exact HEALPix pixel centres were
the first plan, but no 32x32 face crop fits in R01 (its 1,083 nside-256 pixels straddle
faces 0 and 3) and only ~120 overlapping ones fit in R04; a rotated local grid of the
same pixel size gives the network the same scale of detail in every orientation, which
the faces show it too (pixels on a face are rhombi of varying angle). R01 gets 32x16
patches (its 890 x ~780 km fits no 32x32 patch), R04 64x64.

Normalisation: the codec standardises a *whole global plane* by its mean and std
(``engine.standardise``), so a piece of a 0.25 degree global t2m plane reaches the
network with the global std (~20 K), not the UK's (~3 K). A patch is therefore
standardised with a *global reference* mean/std of the same variable, taken from the
training split's global planes (t2m, u10, v10 from ERA5 G01 training days; sp from the
TIGGE G11 surface pressures; d2m borrows t2m's). ``norm="field"`` uses the whole regional
field's own statistics instead (the fallback for variables without a global reference).
"""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.ndimage import map_coordinates

PIXEL_DEG = math.degrees(math.sqrt(4 * math.pi / (12 * 256 ** 2)))   # 0.2290
EXCLUDED = ("R06_",)   # same ERA5 state as the held-out G04

# region file prefix -> (patch rows, cols, max rotation in degrees)
PATCH_SHAPES = {"R01_": (32, 16, 4.0), "R04_": (64, 64, 180.0)}
REFERENCE_OF = {"t2m": "t2m", "d2m": "t2m", "u10": "u10", "v10": "v10", "sp": "sp"}


@dataclasses.dataclass
class RegionalField:
    source: str
    variable: str
    values: np.ndarray        # (T, nlat, nlon) float32, north first
    lat0: float               # latitude of row 0 (north)
    lon0: float
    step: float               # degrees
    shape: tuple              # patch (H, W)
    max_rotation: float
    mean: float               # normalisation
    std: float


def reference_stats(planes) -> dict:
    """variable -> (mean, std): averages of the per-plane statistics of global training planes."""
    groups: dict[str, list] = {}
    for p in planes:
        name = p.variable.lower()
        if name.startswith("sp_"):
            key = "sp"                                   # TIGGE surface pressures, any centre
        elif name in ("t2m", "u10", "v10") and p.source.startswith("G01_"):
            key = name                                   # ERA5, like the regional files
        else:
            continue
        groups.setdefault(key, []).append((float(p.values.mean()), float(p.values.std())))
    return {k: tuple(np.mean(v, axis=0)) for k, v in groups.items()}


def load_regional(paths, reference: dict, norm: str = "global") -> list[RegionalField]:
    fields = []
    for path in sorted(Path(p) for p in paths):
        prefix = path.name[:4]
        if path.name.startswith(EXCLUDED) or prefix not in PATCH_SHAPES:
            continue
        with xr.open_dataset(path) as ds:
            lat, lon = ds["lat"].values.astype(np.float64), ds["lon"].values.astype(np.float64)
            for name, da in ds.data_vars.items():
                values = da.values.astype(np.float32)
                values = values.reshape(-1, *values.shape[-2:])
                if lat[0] < lat[-1]:
                    values = values[:, ::-1]
                if not np.isfinite(values).all():
                    continue
                ref = reference.get(REFERENCE_OF.get(name, ""))
                mean, std = ref if (norm == "global" and ref) else (float(values.mean()), float(values.std()))
                h, w, rot = PATCH_SHAPES[prefix]
                fields.append(RegionalField(path.name, name, np.ascontiguousarray(values), float(lat.max()),
                                            float(lon[0]), float(abs(lat[1] - lat[0])), (h, w), rot, mean, std))
    return fields


def sample_patch(field: RegionalField, rng: random.Random, tries: int = 200) -> np.ndarray:
    """One standardised (H, W) float32 patch of a random state of ``field``."""
    h, w = field.shape
    t = rng.randrange(field.values.shape[0])
    nlat, nlon = field.values.shape[1:]
    lat_lo, lat_hi = field.lat0 - (nlat - 1) * field.step, field.lat0
    lon_lo, lon_hi = field.lon0, field.lon0 + (nlon - 1) * field.step
    v, u = np.meshgrid((np.arange(h) - (h - 1) / 2) * PIXEL_DEG, (np.arange(w) - (w - 1) / 2) * PIXEL_DEG, indexing="ij")
    margin = field.step  # keep the cubic stencil inside the field
    for _ in range(tries):
        angle = math.radians(rng.uniform(-field.max_rotation, field.max_rotation))
        if field.max_rotation < 90 and rng.random() < 0.5:
            angle += math.pi
        du = u * math.cos(angle) - v * math.sin(angle)       # east offset, degrees of arc
        dv = u * math.sin(angle) + v * math.cos(angle)       # north offset
        # centre drawn inside the box where the rotated grid can fit, then checked exactly
        lo, hi = lat_lo + margin + dv.max(), lat_hi - margin + dv.min()
        if lo > hi:
            continue
        clat = rng.uniform(lo, hi)
        lat = clat - dv
        east = du / np.cos(np.radians(lat))
        lo, hi = lon_lo + margin - east.min(), lon_hi - margin - east.max()
        if lo > hi:
            continue
        clon = rng.uniform(lo, hi)
        lon = clon + east
        if lat.min() >= lat_lo + margin and lat.max() <= lat_hi - margin and \
                lon.min() >= lon_lo + margin and lon.max() <= lon_hi - margin:
            rows = (field.lat0 - lat) / field.step
            cols = (lon - field.lon0) / field.step
            patch = map_coordinates(field.values[t].astype(np.float64), [rows, cols], order=3, mode="nearest")
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            return ((patch - field.mean) / field.std).astype(np.float32)
    raise RuntimeError(f"no {h}x{w} patch fits in {field.source}:{field.variable}")
