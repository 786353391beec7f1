"""``xneuralcodec.encoding(ds)``: the Zarr encoding dict that switches the codec on.

It finds every data variable whose last two dims are latitude and longitude, checks that
the grid is global and regular (from the coordinates, so the codec config records the
real orientation), and that chunks hold whole lat x lon planes (any leading dims, such as
time, level or member, may be chunked freely). Zarr 3 stores get one plane per chunk and
many chunks per shard (``SHARD_BYTES`` of raw data, or the dask chunks), so an hourly year
of a 1 degree variable is 9 files, not 8,760. Anything else raises a clear error rather
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
from ..options import check_per_variable, options_for
from ..sphere.coordinates import LAT_NAMES, LON_NAMES, lat_lon_dims
from ..sphere.grid import LatLonGrid
from ..variables import UNKNOWN, kind_of
from .numcodecs_codec import NeuralCodec
from .planes import SUPPORTED_DTYPES
from .zarr3 import NeuralSerializer

SHARD_BYTES = 256 * 2 ** 20  # raw data per Zarr 3 shard: few files per variable, each well inside memory


def _whole_planes(da: xr.DataArray) -> None:
    """Dask chunks must not split a lat x lon plane: a chunk is coded as a whole sphere."""
    nlat, nlon = da.shape[-2:]
    for dim, chunks in zip(da.dims[-2:], (da.chunks or ((nlat,), (nlon,)))[-2:]):
        if len(chunks) != 1:
            raise ValueError(
                f"variable {da.name!r}: expected whole {nlat} x {nlon} planes per chunk, got dim {dim!r} split "
                f"into chunks {chunks} instead; rechunk with ds.chunk({{{dim!r}: -1}})"
            )


def _chunks(da: xr.DataArray, zarr_format: int) -> tuple[int, ...]:
    """Zarr chunks: one plane each (random access to any time or level), except dask chunks
    in Zarr 2, which has no shards and so keeps them as its chunks."""
    _whole_planes(da)
    if da.chunks is not None and zarr_format == 2:
        return tuple(int(c[0]) for c in da.chunks)
    return (1,) * (da.ndim - 2) + tuple(da.shape[-2:])


def _shards(da: xr.DataArray) -> tuple[int, ...] | None:
    """Zarr 3 shards: many planes per file. Dask chunks become shards as they are (each
    task writes whole shards, the only safe way); otherwise the leading dims are filled from
    the innermost out up to ``SHARD_BYTES`` of raw data. None when a shard would be one plane."""
    if da.chunks is not None:
        shards = tuple(int(c[0]) for c in da.chunks)
    else:
        plane_bytes = da.dtype.itemsize * da.shape[-2] * da.shape[-1]
        room = max(1, SHARD_BYTES // plane_bytes)
        leading = []
        for n in reversed(da.shape[:-2]):
            take = min(n, room)
            leading.insert(0, take)
            room = max(1, room // take) if take == n else 1
        shards = tuple(leading) + tuple(da.shape[-2:])
    return None if all(s == 1 for s in shards[:-2]) else shards


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
    """Encoding dict for ``ds.to_zarr``; ``codec_options`` go to the codec (quality, device, ...).

    ``target_mae`` and ``max_abs_error`` may differ per variable: a number applies to every
    variable, ``{"t2m": 0.3, "msl": 80}`` to the variables it names (the others keep the
    default quality), and ``target_mae="paper"`` gives each variable the paper's target
    from the variable table (0.4 K, 0.5 m/s, 100 Pa, ...; none for the others)."""
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"expected an xarray.Dataset, got {type(ds).__name__} instead")
    if zarr_format not in (2, 3):
        raise ValueError(f"expected zarr_format 2 or 3, got {zarr_format!r} instead")
    if variables is not None:
        missing = set(variables) - set(ds.data_vars)
        if missing:
            raise ValueError(f"variables {sorted(missing)} are not data variables of the dataset")
    check_per_variable(codec_options, ds.data_vars if variables is None else variables)
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
        told = _condition_options(name, da)
        options = {**told, **options_for(codec_options, told["variable"] or str(name), name), "grid": grid.to_config()}
        entry = {"chunks": _chunks(da, zarr_format)}
        if not np.dtype(da.dtype).isnative:  # netCDF / GRIB big-endian: store native order (Zarr 2 needs it)
            entry["dtype"] = np.dtype(da.dtype).newbyteorder("=")
        if zarr_format == 3:
            entry.update(serializer=NeuralSerializer(**options), compressors=None)
            shards = _shards(da)
            if shards is not None:
                entry["shards"] = shards
        else:
            entry.update(compressors=[NeuralCodec(**options)], filters=None)
        out[name] = entry
    if not out:
        raise ValueError(f"no data variable has latitude and longitude as its last two dims (looked at {list(ds.data_vars)})")
    return out
