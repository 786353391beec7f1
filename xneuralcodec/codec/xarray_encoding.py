"""``xneuralcodec.encoding(ds)``: the Zarr encoding dict that switches the codec on.

It finds every data variable whose last two dims are latitude and longitude, checks that
the grid is global and regular (from the coordinates, so the codec config records the
real orientation), and that chunks hold whole lat x lon planes (any leading dims, such as
time, level or member, may be chunked freely). Anything else raises a clear error rather
than writing a store the codec cannot serve. Each variable's codec is told its name (or CF
standard name) and, when the variable sits on a single pressure level, that level, so that
a conditioned model knows what it codes (``conditioning.py``).

    ds.to_zarr(store, encoding=xneuralcodec.encoding(ds))                 # Zarr format 3
    ds.to_zarr(store, zarr_format=2, encoding=xneuralcodec.encoding(ds, zarr_format=2))
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..network.conditioning import level_of_index
from ..sphere.coordinates import LAT_NAMES, LON_NAMES, lat_lon_dims
from ..sphere.grid import LatLonGrid
from ..variables import UNKNOWN, kind_of
from .numcodecs_codec import NeuralCodec
from .planes import SUPPORTED_DTYPES
from .zarr3 import NeuralSerializer


def _chunks(da: xr.DataArray) -> tuple[int, ...]:
    nlat, nlon = da.shape[-2:]
    if da.chunks is None:
        return (1,) * (da.ndim - 2) + (nlat, nlon)
    for dim, chunks in zip(da.dims[-2:], da.chunks[-2:]):
        if len(chunks) != 1:
            raise ValueError(
                f"variable {da.name!r}: expected whole {nlat} x {nlon} planes per chunk, got dim {dim!r} split "
                f"into chunks {chunks} instead; rechunk with ds.chunk({{{dim!r}: -1}})"
            )
    return tuple(int(c[0]) for c in da.chunks)


def _condition_options(name, da: xr.DataArray) -> dict:
    """``variable`` and ``level`` for the codec: the name, or the CF standard name where only
    that is recognised; the level of a scalar or length-1 pressure coordinate."""
    variable = str(name)
    standard_name = da.attrs.get("standard_name")
    if kind_of(variable) == UNKNOWN and isinstance(standard_name, str) and kind_of(standard_name) != UNKNOWN:
        variable = standard_name
    single = {str(n): c.values.ravel()[0].item() for n, c in da.coords.items() if c.size == 1}
    units = {str(n): c.attrs["units"] for n, c in da.coords.items() if isinstance(c.attrs.get("units"), str)}
    level = level_of_index(single, units) or None
    return {"variable": variable[:200] if variable.strip() else None, "level": level}


def encoding(ds: xr.Dataset, *, zarr_format: int = 3, variables=None, **codec_options) -> dict:
    """Encoding dict for ``ds.to_zarr``; ``codec_options`` go to the codec (quality, device, ...)."""
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"expected an xarray.Dataset, got {type(ds).__name__} instead")
    if zarr_format not in (2, 3):
        raise ValueError(f"expected zarr_format 2 or 3, got {zarr_format!r} instead")
    if variables is not None:
        missing = set(variables) - set(ds.data_vars)
        if missing:
            raise ValueError(f"variables {sorted(missing)} are not data variables of the dataset")
    out = {}
    for name, da in ds.data_vars.items():
        if variables is not None and name not in variables:
            continue
        dims = lat_lon_dims(da)
        if dims is None:
            if any(d in LAT_NAMES for d in da.dims) and any(d in LON_NAMES for d in da.dims):
                raise ValueError(
                    f"variable {name!r} has dims {da.dims}: expected latitude and longitude as the last two "
                    "dims; transpose it first, e.g. ds.transpose(..., 'lat', 'lon')"
                )
            if variables is not None:
                raise ValueError(f"variable {name!r} has no (lat, lon) trailing dims, so it cannot use the codec")
            continue
        if np.dtype(da.dtype).newbyteorder("=") not in SUPPORTED_DTYPES:  # either byte order
            raise TypeError(f"variable {name!r}: expected float32 or float64 data, got {da.dtype} instead")
        try:
            grid = LatLonGrid.from_coords(ds[dims[0]].values, ds[dims[1]].values, names=dims)
        except ValueError as exc:
            raise ValueError(f"variable {name!r}: {exc}") from None
        options = {**_condition_options(name, da), **codec_options, "grid": grid.to_config()}
        entry = {"chunks": _chunks(da)}
        if not np.dtype(da.dtype).isnative:  # netCDF / GRIB big-endian: store native order (Zarr 2 needs it)
            entry["dtype"] = np.dtype(da.dtype).newbyteorder("=")
        if zarr_format == 3:
            entry.update(serializer=NeuralSerializer(**options), compressors=None)
        else:
            entry.update(compressors=[NeuralCodec(**options)], filters=None)
        out[name] = entry
    if not out:
        raise ValueError(f"no data variable has latitude and longitude as its last two dims (looked at {list(ds.data_vars)})")
    return out
