"""Inputs and outputs of the command line: opening fields, subsetting, atomic writes.

Every command opens netCDF, GRIB (through cfgrib, when installed) and Zarr the same way,
without dask, so that writing holds one variable in memory at a time. Every output is
first written under a temporary sibling name (``OUTPUT.partial-<random>``) and renamed into
place only when complete: a failed or interrupted run never leaves a store that looks
finished but is not, and never destroys the output it was asked to replace.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import secrets
import shutil
import warnings
from pathlib import Path

import xarray as xr

from ..sphere.coordinates import LAT_NAMES, LON_NAMES, lat_lon_dims
from .signals import check_interrupted, remove_for_good

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5")
GRIB_SUFFIXES = (".grib", ".grib2", ".grb", ".grb2")


class CLIError(Exception):
    """A problem the user can fix (missing optional package, wrong kind of path): one line, no traceback."""


# -- opening inputs ------------------------------------------------------------------------

def is_zarr_store(path: Path) -> bool:
    path = Path(path)
    return path.suffix == ".zarr" or (path / "zarr.json").is_file() or (path / ".zgroup").is_file()


def open_input(path, isel: dict | None = None) -> xr.Dataset:
    """Open a netCDF file, a GRIB file or a Zarr store (by suffix / layout), then apply ``isel``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {str(path)!r} does not exist")
    if path.is_dir() or path.suffix == ".zarr":
        ds = open_store(path)
    elif path.suffix.lower() in GRIB_SUFFIXES:
        if importlib.util.find_spec("cfgrib") is None:
            raise CLIError(f"reading GRIB ({path.name}) needs cfgrib: pip install cfgrib")
        ds = xr.open_dataset(path, engine="cfgrib")
    else:  # netCDF, or anything else xarray's installed backends recognise
        ds = xr.open_dataset(path)
    return apply_isel(ds, isel) if isel else ds


def open_store(path) -> xr.Dataset:
    """``xr.open_zarr`` without dask, reading consolidated metadata only where it exists.

    Asking for consolidated metadata that is absent makes xarray warn on every open, so
    the store's own layout decides (``.zmetadata`` for format 2, the ``consolidated_metadata``
    key of the root ``zarr.json`` for format 3).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"store {str(path)!r} does not exist")
    v3 = path / "zarr.json"
    if v3.is_file():
        try:
            consolidated = json.loads(v3.read_text()).get("consolidated_metadata") is not None
        except json.JSONDecodeError as exc:
            raise CLIError(f"{v3} is not valid JSON ({exc})") from None
    elif (path / ".zgroup").is_file():
        consolidated = (path / ".zmetadata").is_file()
    else:
        raise CLIError(f"{str(path)!r} is not a Zarr store (no zarr.json or .zgroup in it)")
    return xr.open_zarr(path, chunks=None, consolidated=consolidated)


# -- subsetting and chunking options -------------------------------------------------------

def _split_items(items) -> list[str]:
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected an integer in {what}, got {text!r} instead") from None


def parse_isel(items) -> dict:
    """``["time=0:4", "level=1"]`` (or ``"time=0:4,level=1"``) -> ``{"time": slice(0, 4), "level": 1}``."""
    out = {}
    for item in _split_items(items):
        dim, sep, spec = item.partition("=")
        dim, spec = dim.strip(), spec.strip()
        if not sep or not dim or not spec:
            raise ValueError(f"expected --isel DIM=INDEX or DIM=START:STOP[:STEP], got {item!r} instead")
        if ":" in spec:
            parts = spec.split(":")
            if len(parts) > 3:
                raise ValueError(f"expected --isel DIM=START:STOP[:STEP], got {item!r} instead")
            values = [None if p.strip() == "" else _int(p.strip(), f"--isel {item}") for p in parts]
            if len(values) == 3 and values[2] is not None and values[2] <= 0:
                raise ValueError(f"expected a positive step in --isel {item}")
            out[dim] = slice(*values)
        else:
            out[dim] = _int(spec, f"--isel {item}")
    return out


def apply_isel(ds: xr.Dataset, isel: dict) -> xr.Dataset:
    """``ds.isel(**isel)`` with checks that name the offending option instead of an IndexError."""
    for dim, index in isel.items():
        if dim not in ds.dims:
            raise ValueError(f"--isel: the input has no dimension {dim!r} (dimensions: {', '.join(map(str, ds.dims))})")
        size = ds.sizes[dim]
        if isinstance(index, int):
            if not -size <= index < size:
                raise ValueError(f"--isel: index {index} is out of range for dimension {dim!r} of size {size}")
        elif len(range(size)[index]) == 0:
            raise ValueError(f"--isel: {dim}={index.start}:{index.stop} selects nothing from dimension {dim!r} of size {size}")
    return ds.isel(isel)


def parse_chunks(items, flag: str = "--chunks") -> dict:
    """``"time=1,level=2"`` -> ``{"time": 1, "level": 2}`` (chunk or shard sizes of leading
    dims); latitude and longitude are refused (whole planes)."""
    out = {}
    for item in _split_items(items):
        dim, sep, spec = item.partition("=")
        dim = dim.strip()
        if not sep or not dim:
            raise ValueError(f"expected {flag} DIM=SIZE[,DIM=SIZE...], got {item!r} instead")
        if dim in LAT_NAMES or dim in LON_NAMES:
            raise ValueError(f"{flag}: {dim!r} cannot be split; every chunk holds whole lat x lon planes, "
                             "so size only the leading dims (e.g. time=1)")
        size = _int(spec.strip(), f"{flag} {item}")
        if size < 1:
            raise ValueError(f"{flag}: expected a size >= 1 for {dim!r}, got {size} instead")
        out[dim] = size
    return out


def shard_shape(dims, chunks: tuple, default: tuple | None, sizes: dict | None) -> tuple | None:
    """Zarr 3 shard shape for ``chunks``: ``sizes`` (from --shards) where given, else the
    encoding helper's ``default``, each rounded up to a whole number of chunks; None when a
    shard would hold a single chunk (no sharding)."""
    shards = []
    for i, (dim, chunk) in enumerate(zip(dims[:-2], chunks[:-2])):
        want = (sizes or {}).get(dim, default[i] if default is not None else chunk)
        shards.append(-(-max(want, chunk) // chunk) * chunk)
    if tuple(shards) == tuple(chunks[:-2]):
        return None
    return tuple(shards) + tuple(chunks[-2:])


def plane_count(da: xr.DataArray) -> int:
    """Number of lat x lon planes of a variable (1 for anything not on a lat/lon grid)."""
    if lat_lon_dims(da) is None:
        return 1
    return math.prod(da.shape[:-2])


def without_encoding(ds: xr.Dataset) -> xr.Dataset:
    """A shallow copy whose variables forget how the source stored them.

    Source encodings (netCDF chunk sizes and zlib, packing with ``scale_factor``, another
    store's codecs) would otherwise leak into the output, e.g. re-packing floats to int16
    before the neural codec sees them. Time units and calendars are kept.
    """
    out = ds.copy(deep=False)
    for var in out.variables.values():
        var.encoding = {k: v for k, v in var.encoding.items() if k in ("units", "calendar")}
    return out


# -- atomic outputs ------------------------------------------------------------------------

def remove_path(path: Path) -> None:
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def check_output(path, overwrite: bool) -> Path:
    """Refuse an existing output without ``overwrite`` and a missing parent directory, before any work."""
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise FileExistsError(f"output {str(path)!r} already exists; pass --overwrite to replace it")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise FileNotFoundError(f"output directory {str(parent)!r} does not exist")
    return path


@contextlib.contextmanager
def atomic_output(path, overwrite: bool = False):
    """Yield a temporary sibling path to write to; rename it to ``path`` only on success.

    On any exception (KeyboardInterrupt and SIGTERM included, see signals.py) the temporary
    path is removed, once zarr has stopped writing into it, and an existing ``path`` is left
    untouched. With ``overwrite``, the old output is moved aside
    first and deleted only after the new one is in place.
    """
    path = check_output(path, overwrite)
    tmp = path.with_name(f"{path.name}.partial-{secrets.token_hex(4)}")
    try:
        yield tmp
        check_interrupted()
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to {tmp}")
        if path.exists() or path.is_symlink():
            old = path.with_name(f"{path.name}.old-{secrets.token_hex(4)}")
            os.rename(path, old)
            try:
                os.rename(tmp, path)
            except BaseException:
                os.rename(old, path)
                raise
            remove_path(old)
        else:
            os.rename(tmp, path)
    except BaseException:
        remove_for_good(tmp, remove_path)
        raise


# -- writing datasets variable by variable -------------------------------------------------

def _encoding_for(subset: xr.Dataset, encoding: dict, skip=()) -> dict:
    return {k: v for k, v in encoding.items() if k in subset.variables and k not in skip}


def write_zarr(ds: xr.Dataset, path, encoding: dict, zarr_format: int, bar) -> None:
    """Write ``ds`` to a new Zarr store one data variable at a time, then consolidate metadata.

    One variable at a time keeps memory to one variable and lets the bar advance per
    variable; consolidated metadata lets plain ``xr.open_zarr(path)`` open it without warning.
    """
    coords = ds.drop_vars(list(ds.data_vars))
    coords.to_zarr(path, mode="w-", zarr_format=zarr_format, consolidated=False,
                   encoding=_encoding_for(coords, encoding))
    written = set(coords.variables)
    for name in ds.data_vars:
        subset = ds[[name]]
        subset.to_zarr(path, mode="a", zarr_format=zarr_format, consolidated=False,
                       encoding=_encoding_for(subset, encoding, skip=written))
        written.update(subset.variables)
        bar.update(plane_count(ds[name]))
        check_interrupted()
    consolidate(path)


def consolidate(path) -> None:
    import zarr

    with warnings.catch_warnings():  # format 3: "consolidated metadata is not part of the spec" (xarray relies on it)
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(str(path))


NETCDF_ZLIB = {"zlib": True, "complevel": 1}  # decoded floats are noisy: level 1 gets most of what zlib can


def write_netcdf(ds: xr.Dataset, path, bar, history: str = "") -> None:
    """Write ``ds`` to a new netCDF file one data variable at a time (append mode), data
    variables with zlib level 1, and ``history`` prepended to the global attribute (CF)."""
    if history:
        ds = ds.copy(deep=False)
        ds.attrs = {**ds.attrs, "history": "\n".join(filter(None, [history, str(ds.attrs.get("history", ""))]))}
    ds.drop_vars(list(ds.data_vars)).to_netcdf(path, mode="w")
    for name in ds.data_vars:
        encoding = {name: NETCDF_ZLIB} if ds[name].dtype.kind in "fiu" else None
        ds[[name]].to_netcdf(path, mode="a", encoding=encoding)
        bar.update(plane_count(ds[name]))
