"""Write and read a neural-compressed store on dask.distributed with 1 and 2 worker processes:
``python -m benchmarks.dask_throughput``.

Uses the ERA5 1 degree surface fields of ../shared/data (20 times x 4 variables), one plane per
chunk, and reports MB/s of float32 data written (encode) and read back (decode) for each
cluster size, with the number of model loads per worker (each process builds the model once).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import xarray as xr

import xneuralcodec

SAMPLE = "global/G01_era5_sfc_1deg_t2m_u10_v10_msl_tp_2026-03-25_30.nc"


def _warm() -> None:
    from xneuralcodec.network import weights

    weights.load_model()


def _load_count():
    from xneuralcodec.network import weights

    return weights.LOAD_COUNT


def run(ds: xr.Dataset, workers: int) -> dict:
    import distributed

    store = Path(tempfile.mkdtemp()) / "dask.zarr"
    try:
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
            client.run(_warm)  # model loads are not timed
            t0 = time.perf_counter()
            ds.to_zarr(store, encoding=xneuralcodec.encoding(ds), consolidated=False)
            t1 = time.perf_counter()
            xr.open_zarr(store, consolidated=False).sum().compute()
            t2 = time.perf_counter()
            loads = client.run(_load_count)
        mb = ds.nbytes / 1e6
        return {"workers": workers, "mb": mb, "write_mb_s": mb / (t1 - t0), "read_mb_s": mb / (t2 - t1),
                "model_loads_per_worker": sorted(loads.values())}
    finally:
        shutil.rmtree(store.parent, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.dask_throughput", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--out", default="benchmarks/results/dask-throughput.json")
    args = p.parse_args(argv)
    ds = xr.open_dataset(Path(args.data) / SAMPLE)[["t2m", "u10", "v10", "msl"]].load().chunk({"time": 1})
    rows = [run(ds, n) for n in (1, 2)]
    for r in rows:
        print(f"{r['workers']} worker(s): write {r['write_mb_s']:.2f} MB/s, read {r['read_mb_s']:.2f} MB/s "
              f"({r['mb']:.1f} MB float32), model loads per worker {r['model_loads_per_worker']}")
    Path(args.out).write_text(json.dumps({"command": "python -m benchmarks.dask_throughput", "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
