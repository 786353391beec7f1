"""What ``info`` and ``evaluate`` report: store contents, original/reconstruction pairs, tables.

``info`` reads only metadata and byte counts through the zarr API (works on formats 2 and 3,
decodes nothing, so it is instant on any size of store). ``evaluate`` pairs every variable
of a store with the same variable of the original file by coordinate values, so a store
written from a subset (``compress --isel time=0:4``) is compared with the right planes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..codec.numcodecs_codec import CODEC_ID
from ..codec.zarr3 import CODEC_NAME
from ..network.conditioning import LEVEL_KEYS
from ..sphere.coordinates import lat_lon_dims
from ..sphere.grid import LatLonGrid
from .files import CLIError, is_zarr_store

NEURAL_NAMES = (CODEC_NAME, CODEC_ID)


# -- info: what a store holds --------------------------------------------------------------

def directory_size(path: Path) -> int:
    """Bytes in the files under ``path`` (their sizes)."""
    path = Path(path)
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def disk_usage(path: Path) -> int:
    """Bytes ``path`` occupies on disk, as ``du`` counts them (whole blocks, folders too): a
    store of many tiny chunk files takes far more than its file sizes add up to."""
    path = Path(path)
    return sum(p.lstat().st_blocks * 512 for p in [path, *path.rglob("*")])


def _codec_list(metadata: dict) -> list[dict]:
    """The array's codecs as ``{"name", "configuration"}`` dicts, in pipeline order, for both formats."""
    if metadata.get("zarr_format") == 3:
        out = []
        for c in metadata.get("codecs") or ():
            c = {"name": c["name"], "configuration": dict(c.get("configuration") or {})} if isinstance(c, dict) \
                else {"name": str(c), "configuration": {}}
            if c["name"] == "sharding_indexed":  # the codecs that code each chunk inside a shard
                out += _codec_list({"zarr_format": 3, "codecs": c["configuration"].get("codecs")})
            else:
                out.append(c)
        return out
    out = []
    for c in list(metadata.get("filters") or ()) + [metadata.get("compressor")]:
        if c:
            c = dict(c)
            out.append({"name": c.pop("id"), "configuration": c})
    return out


def inspect_store(path) -> dict:
    """Per array: dims, shape, chunks, dtype, codecs, the neural codec config, bytes and ratio."""
    import zarr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"store {str(path)!r} does not exist")
    if not path.is_dir() or not is_zarr_store(path):
        raise CLIError(f"{str(path)!r} is not a Zarr store (no zarr.json or .zgroup in it)")
    group = zarr.open_group(str(path), mode="r")
    arrays = []
    for name, arr in sorted(group.arrays()):
        metadata = arr.metadata.to_dict()
        dims = metadata.get("dimension_names") or (metadata.get("attributes") or {}).get("_ARRAY_DIMENSIONS")
        dims = [str(d) for d in dims] if dims else None
        codecs = _codec_list(metadata)
        neural = next((c["configuration"] for c in codecs if c["name"] in NEURAL_NAMES), None)
        stored = int(arr.nbytes_stored())
        arrays.append({
            "name": name, "coordinate": dims == [name], "dims": dims, "shape": list(arr.shape),
            "chunks": list(arr.chunks), "shards": list(arr.shards) if getattr(arr, "shards", None) else None,
            "dtype": str(arr.dtype), "codecs": [c["name"] for c in codecs],
            "codec_config": neural, "uncompressed_bytes": int(arr.nbytes), "stored_bytes": stored,
            "ratio": arr.nbytes / stored if stored else None,
        })
    raw = sum(a["uncompressed_bytes"] for a in arrays)
    stored = directory_size(path)
    files = sum(1 for f in path.rglob("*") if f.is_file())
    return {"store": str(path), "zarr_format": int(group.metadata.zarr_format), "arrays": arrays,
            "uncompressed_bytes": raw, "stored_bytes": stored, "disk_bytes": disk_usage(path), "files": files,
            "ratio": raw / stored if stored else None}


def _dims(values) -> str:
    return " x ".join(str(v) for v in values) if values else "scalar"


def codec_label(entry: dict) -> str:
    """What the store says it was coded with: the error target or bound if any, else the quality."""
    config = entry["codec_config"]
    if config is not None:
        label = f"neural q{config.get('quality')}"
        if config.get("target_mae") is not None:
            label = f"neural MAE<={config['target_mae']:g}"
        if config.get("max_abs_error") is not None:
            label += f" max<={config['max_abs_error']:g}"
        return label
    names = [n for n in entry["codecs"] if n != "bytes"]
    return "+".join(names) if names else "uncompressed"


def format_config(config: dict) -> str:
    """``quality=3 model=hyperprior-v1 (456a4261...) grid=181x360 from (90, 0) nside=64 ...`` on one line."""
    parts = []
    for key, value in config.items():
        if key == "weights_sha256":
            continue
        if key == "model":
            sha = config.get("weights_sha256") or ""
            parts.append(f"model={value}" + (f" (sha256 {sha[:8]}...)" if sha else ""))
        elif key == "grid" and isinstance(value, dict):
            parts.append(f"grid={value.get('nlat')}x{value.get('nlon')} from ({value.get('lat_first'):g}, "
                         f"{value.get('lon_first', 0.0):g})")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def format_info(summary: dict) -> str:
    rows = [a for a in summary["arrays"] if not a["coordinate"]]
    coords = [a for a in summary["arrays"] if a["coordinate"]]
    lines = [f"store: {summary['store']} (Zarr format {summary['zarr_format']})",
             f"{'variable':<12}{'shape':<18}{'chunks':<18}{'shards':<18}{'codec':<20}{'raw MB':>9}{'stored KB':>11}"
             f"{'ratio':>9}"]
    for a in rows:
        ratio = f"{a['ratio']:9.1f}" if a["ratio"] else f"{'-':>9}"
        shards = _dims(a["shards"]) if a.get("shards") else "-"
        lines.append(f"{a['name']:<12}{_dims(a['shape']):<18}{_dims(a['chunks']):<18}{shards:<18}{codec_label(a):<20}"
                     f"{a['uncompressed_bytes'] / 1e6:9.2f}{a['stored_bytes'] / 1e3:11.1f}{ratio}")
    configs: dict[str, list[str]] = {}
    for a in rows:
        if a["codec_config"] is not None:
            configs.setdefault(format_config(a["codec_config"]), []).append(a["name"])
    if configs:
        lines.append("neural codec config:")
        lines += [f"  {', '.join(names)}: {config}" for config, names in configs.items()]
    lines.append(f"coordinates: {', '.join(a['name'] for a in coords) or 'none'}")
    ratio = f", ratio {summary['ratio']:.1f}" if summary["ratio"] else ""
    lines.append(f"total ({len(rows)} variables, coordinates and metadata): {summary['uncompressed_bytes'] / 1e6:.2f} MB "
                 f"-> {summary['stored_bytes'] / 1e3:.1f} KB in {summary['files']} files{ratio}; "
                 f"{summary['disk_bytes'] / 1e3:.1f} KB allocated on disk (as du counts whole blocks)")
    return "\n".join(lines)


# -- evaluate: pairing original and reconstruction -----------------------------------------

def align_pair(original: xr.DataArray, reconstructed: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """The original's values at the reconstruction's coordinates, in the reconstruction's dim order."""
    name = reconstructed.name
    for dim in original.dims:
        if dim not in reconstructed.dims:  # selected away with an integer index when compressing
            if dim in reconstructed.coords and dim in original.coords and reconstructed[dim].ndim == 0:
                original = _select(original, dim, reconstructed[dim].values, name)
            else:
                raise ValueError(f"variable {name!r}: the original has dimension {dim!r}, the store does not")
    for dim in reconstructed.dims:
        if dim not in original.dims:
            raise ValueError(f"variable {name!r}: the store has dimension {dim!r}, the original does not")
        if dim in reconstructed.coords and dim in original.coords:
            if original.sizes[dim] != reconstructed.sizes[dim] or not _same(original[dim], reconstructed[dim]):
                original = _select(original, dim, reconstructed[dim].values, name)
        elif original.sizes[dim] != reconstructed.sizes[dim]:
            raise ValueError(f"variable {name!r}: dimension {dim!r} has {original.sizes[dim]} values in the original "
                             f"and {reconstructed.sizes[dim]} in the store, and no coordinate to match them by")
    return original.transpose(*reconstructed.dims), reconstructed


def _same(a: xr.DataArray, b: xr.DataArray) -> bool:
    a, b = np.asarray(a.values), np.asarray(b.values)
    if a.shape != b.shape:
        return False
    if np.issubdtype(a.dtype, np.number) and np.issubdtype(b.dtype, np.number):
        return bool(np.allclose(a, b, rtol=0, atol=1e-6))
    return bool((a == b).all())


def _select(da: xr.DataArray, dim: str, values, name) -> xr.DataArray:
    try:
        return da.sel({dim: values})
    except KeyError:
        raise ValueError(f"variable {name!r}: the store's {dim} values are not all in the original; "
                         "is this the file the store was made from?") from None


def grid_of(da: xr.DataArray) -> LatLonGrid:
    dims = lat_lon_dims(da)
    if dims is None:
        raise ValueError(f"variable {da.name!r} has dims {da.dims}: expected latitude and longitude as the last two")
    return LatLonGrid.from_coords(da[dims[0]].values, da[dims[1]].values)


def _level_dim(dims) -> str | None:
    return next((d for d in dims if str(d).lower().startswith(LEVEL_KEYS)), None)


def plane_index(da: xr.DataArray, time: int, level: int | None = None) -> tuple[dict, str]:
    """``isel`` picking the plane to plot: index ``time`` along ``time`` (else the first
    leading dim that is not a level), ``level`` along the pressure-level dim, 0 elsewhere."""
    leading = list(da.dims[:-2])
    level_dim = _level_dim(leading)
    if level is not None and level_dim is None:
        raise ValueError(f"--level {level}: variable {da.name!r} has no pressure-level dimension (dims {da.dims})")
    others = [d for d in leading if d != level_dim]
    if not others and time not in (0, -1):
        raise ValueError(f"--time {time}: variable {da.name!r} has no time dimension")
    along = ("time" if "time" in others else others[0]) if others else None
    index = {d: 0 for d in leading}
    for dim, position, flag in ((along, time, "--time"), (level_dim, level, "--level")):
        if dim is None or position is None:
            continue
        size = da.sizes[dim]
        if not -size <= position < size:
            raise ValueError(f"{flag} {position} is out of range for {dim!r} of size {size} (variable {da.name!r})")
        index[dim] = position
    labels = []
    for d, i in index.items():
        value = da[d].values[i] if d in da.coords else i
        if isinstance(value, np.datetime64):
            value = np.datetime_as_string(value, unit="m")
        labels.append(f"{d}={value}")
    return index, ", ".join(labels)


def format_evaluate(rows: list[dict], store: str, original: str) -> str:
    lines = [f"{original} vs {store}",
             f"{'variable':<12}{'codec':<16}{'planes':>7}{'ratio':>8}{'MAE':>11}{'RMSE':>11}{'max err':>11}  units"]
    for r in rows:
        ratio = f"{r['ratio']:8.1f}" if r.get("ratio") else f"{'-':>8}"
        lines.append(f"{r['variable']:<12}{r['codec']:<16}{r['planes']:>7}{ratio}{r['mae']:11.4g}{r['rmse']:11.4g}"
                     f"{r['max_abs']:11.4g}  {r['units']}")
    lines.append("errors are area-weighted (cos latitude) on the lat/lon grid; max err is pointwise")
    plots = [p for r in rows for p in r.get("plots", [])]
    if plots:
        lines.append(f"plots: {', '.join(plots)}")
    return "\n".join(lines)
