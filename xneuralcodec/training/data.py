"""Reading training and evaluation planes from any directory of netCDF or Zarr fields.

Every data variable whose last two dimensions are latitude and longitude on a global
regular grid is cut into 2-D planes (one per time, level, member ...). Planes on grids the
codec does not support (Gaussian, regional), planes holding NaN and constant planes are
skipped with a count, never silently altered. Training may ask for Gaussian-grid planes
too (``gaussian=True``): they are moved to the regular grid with as many rows by
``regrid.gaussian_to_regular`` and counted, so the spectral models' files in the archive
(T42, T62, TL31 ...) add their states. The validation split lives in ``split.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Iterator

import numpy as np
import xarray as xr

from ..sphere.coordinates import lat_lon_dims
from ..sphere.grid import LatLonGrid
from ..sphere.regrid import gaussian_to_regular


@dataclasses.dataclass
class Plane:
    source: str            # file name
    variable: str
    index: dict            # leading coordinate values, e.g. {"time": "2026-03-30T03", "level": 500.0}
    grid: LatLonGrid
    values: np.ndarray     # (nlat, nlon) float32

    @property
    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.index.items())
        return f"{self.source}:{self.variable}[{extra}]"


def find_fields(paths) -> list[Path]:
    """netCDF files and Zarr stores under the given files or directories, sorted."""
    found = []
    for path in map(Path, paths):
        if path.is_dir() and path.suffix != ".zarr":
            found += sorted(p for p in path.rglob("*") if p.suffix in (".nc", ".nc4", ".zarr"))
        elif path.exists():
            found.append(path)
        else:
            raise ValueError(f"expected an existing file or directory, got {str(path)!r} instead")
    return found


def open_fields(path: Path) -> xr.Dataset:
    if path.suffix == ".zarr" or path.is_dir():
        return xr.open_zarr(path)
    return xr.open_dataset(path)


def _coord_value(value) -> object:
    value = np.asarray(value)
    if np.issubdtype(value.dtype, np.datetime64):
        return str(value.astype("datetime64[s]"))
    return value.item()


def iter_planes(paths, skipped: dict | None = None, gaussian: bool = False) -> Iterator[Plane]:
    """Yield every usable global plane under ``paths``; reasons for skips (and, with
    ``gaussian``, regridded Gaussian planes) are counted in ``skipped``."""
    skipped = {} if skipped is None else skipped
    for path in find_fields(paths):
        with open_fields(path) as ds:
            for name, da in ds.data_vars.items():
                dims = lat_lon_dims(da)
                if dims is None:
                    continue
                n_planes = da.size // (da.shape[-1] * da.shape[-2])
                lat, lon = ds[dims[0]].values, ds[dims[1]].values
                values = da.values.astype(np.float32)
                try:
                    grid = LatLonGrid.from_coords(lat, lon)
                except ValueError:
                    regridded = _from_gaussian(values, lat, lon) if gaussian else None
                    if regridded is None:
                        skipped["unsupported grid"] = skipped.get("unsupported grid", 0) + n_planes
                        continue
                    values, grid = regridded
                    skipped["Gaussian grid, regridded"] = skipped.get("Gaussian grid, regridded", 0) + n_planes
                lead = da.dims[:-2]
                for idx in itertools.product(*(range(da.sizes[d]) for d in lead)):
                    plane = values[idx]
                    if not np.isfinite(plane).all():
                        skipped["non-finite values"] = skipped.get("non-finite values", 0) + 1
                        continue
                    if plane.std() == 0:
                        skipped["constant plane"] = skipped.get("constant plane", 0) + 1
                        continue
                    index = {
                        d: (_coord_value(ds[d].values[i]) if d in ds.coords else i) for d, i in zip(lead, idx)
                    }
                    yield Plane(path.name, str(name), index, grid, plane)


def _from_gaussian(values: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, LatLonGrid] | None:
    """Planes on a global Gaussian grid moved to the regular grid with as many rows, and that
    grid (None if ``lat`` is not Gaussian or ``lon`` not a global regular axis). NaN stays
    NaN through the interpolation, so such planes are still skipped."""
    try:
        regular, grid = gaussian_to_regular(values, lat)
        return regular.astype(np.float32), LatLonGrid.from_coords(grid.latitudes, lon)
    except ValueError:
        return None
