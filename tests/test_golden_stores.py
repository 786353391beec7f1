"""Stores a released version wrote keep opening, through xarray, in a process that never
imported xneuralcodec (entry points only): tests/golden/v*/stores/."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

STORES = sorted(Path(__file__).parent.glob("golden/v*/stores/zarr*"))

READER = """
import json, sys
import numpy as np, xarray as xr
ds = xr.open_zarr(sys.argv[1], consolidated=False)
np.savez(sys.argv[2], **{name: ds[name].values for name in ds.data_vars})
print(json.dumps(sorted(m for m in sys.modules if m.startswith("xneuralcodec"))))
"""


def test_there_are_golden_stores():
    assert STORES, "no golden stores: run python -m tests.golden.make_stores"


@pytest.mark.parametrize("store", STORES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_golden_store_opens_in_a_fresh_process(store, tmp_path):
    out = tmp_path / "values.npz"
    run = subprocess.run([sys.executable, "-c", READER, str(store), str(out)], capture_output=True, text=True,
                         check=True)
    assert json.loads(run.stdout.splitlines()[-1]), "the codec was not loaded through its entry point"
    values = np.load(out)
    for name in values.files:
        expected = np.load(store.parent / f"{name}.expected.npy")
        back = values[name]
        assert back.shape == expected.shape and back.dtype == expected.dtype
        np.testing.assert_array_equal(np.isnan(back), np.isnan(expected))
        ok = ~np.isnan(expected)
        scale = max(1.0, float(np.nanstd(expected)))  # decode-compatibility tier, as test_golden.py
        np.testing.assert_allclose(back[ok], expected[ok], rtol=0, atol=1e-4 * scale)
