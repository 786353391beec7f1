"""A dask.distributed LocalCluster with two worker processes writes and reads a store."""

import numpy as np
import pytest
import xarray as xr

import xneuralcodec

distributed = pytest.importorskip("distributed")


def _load_count():
    from xneuralcodec.network import weights

    return weights.LOAD_COUNT


def test_local_cluster_two_processes_write_and_read(era5_1deg, tmp_path):
    ds = era5_1deg[["t2m", "u10"]].chunk({"time": 1})
    store = tmp_path / "dask.zarr"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        ds.to_zarr(store, encoding=xneuralcodec.encoding(ds), consolidated=False)
        back = xr.open_zarr(store, consolidated=False).mean(dim=("lat", "lon")).compute()
        counts = client.run(_load_count)
    assert set(counts.values()) <= {0, 1}, f"model built more than once per worker: {counts}"
    assert sum(counts.values()) >= 1
    local = xr.open_zarr(store, consolidated=False).load()
    np.testing.assert_allclose(back.t2m.values, local.t2m.mean(dim=("lat", "lon")).values, rtol=1e-5)
    assert np.abs(local.t2m - ds.t2m).mean() < 0.1 * float(ds.t2m.std())
