"""Write golden Zarr stores for this release: ``python -m tests.golden.make_stores``.

A chunk fixture (make_golden.py) proves the bitstream decodes; a store fixture proves more:
the array metadata this release wrote (codec ids, entry-point names, stored options) still
opens through ``xr.open_zarr`` in later releases, in both Zarr formats. The data are the
synthetic fields of make_golden.py, written through ``xneuralcodec.encoding``. Never
regenerate existing stores: add new ones next to them.
"""

from __future__ import annotations

import sys

import numpy as np
import xarray as xr

import xneuralcodec
from tests.golden.make_golden import HERE, synthetic_plane


def dataset() -> xr.Dataset:
    """Two times of a 2.5 degree temperature at 850 hPa and a sea-level pressure, one NaN patch."""
    t = np.stack([synthetic_plane(73, 144, 20), synthetic_plane(73, 144, 21)])
    t[1, 30:34, 10:20] = np.nan
    msl = 100000.0 + 40.0 * (np.stack([synthetic_plane(73, 144, 22), synthetic_plane(73, 144, 23)]) - 260.0)
    coords = {"time": np.array(["2020-01-01T00", "2020-01-01T06"], dtype="datetime64[ns]"),
              "lat": np.linspace(90.0, -90.0, 73), "lon": np.arange(144) * 2.5}
    return xr.Dataset({"t": (("time", "lat", "lon"), t, {"units": "K"}),
                       "msl": (("time", "lat", "lon"), msl.astype(np.float32), {"units": "Pa"})},
                      coords=coords).assign_coords(level=850.0).chunk({"time": 1})


def main(argv=None) -> int:
    out = HERE / f"v{xneuralcodec.__version__}" / "stores"
    ds = dataset()
    for fmt in (2, 3):
        path = out / f"zarr{fmt}"
        if path.exists():
            print(f"keeping existing {path}", file=sys.stderr)
            continue
        since_v5 = tuple(int(v) for v in xneuralcodec.__version__.split(".")[:2]) >= (0, 8)
        enc = xneuralcodec.encoding(ds, zarr_format=fmt, quality=2, **({"model": "hyperprior-v5"} if since_v5 else {}))
        ds.to_zarr(path, zarr_format=fmt, encoding=enc, consolidated=False)
        back = xr.open_zarr(path, consolidated=False).load()
        for name in ds.data_vars:  # both formats hold the same chunk bytes, so one expected array
            expected = out / f"{name}.expected.npy"
            if expected.exists():
                np.testing.assert_array_equal(np.load(expected), back[name].values)
            else:
                np.save(expected, back[name].values)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
