"""The README's Python lines, run as written (issue 18): on a real ERA5 file opened from
netCDF, and again on dask chunks that split the globe in half."""

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from xneuralcodec.cli import sample

README = Path(__file__).resolve().parents[1] / "README.md"

# xarray writes consolidated metadata by default and zarr warns that Zarr 3 does not specify
# it: a user running these lines sees that warning too, whatever the codec
pytestmark = pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")


def python_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2, "the README lost its xarray lines"
    return blocks[:2]


@pytest.fixture()
def era5_nc(tmp_path, monkeypatch):
    try:
        day, _ = sample.sample_day()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    day.to_netcdf(tmp_path / "era5.nc")  # with the netCDF encodings a user's file carries
    monkeypatch.chdir(tmp_path)
    return day


def test_readme_encoding_lines_run_as_written(era5_nc, tmp_path):
    helper, _ = python_blocks()
    namespace = {}
    exec(compile(helper, "README.md", "exec"), namespace)
    for store in ("era5.zarr", "era5_v2.zarr", "era5_paper.zarr"):
        back = xr.open_zarr(tmp_path / store)
        assert np.abs(back.t2m.values - era5_nc.t2m.values).mean() < 1.0
    paper = xr.open_zarr(tmp_path / "era5_paper.zarr")
    weights = np.cos(np.deg2rad(era5_nc.lat.values))[:, None]
    for name, target in (("t2m", 0.4), ("u10", 0.5), ("msl", 100.0)):  # each variable meets its own target
        err = np.abs(paper[name].values - era5_nc[name].values)
        mae = (err * weights).sum(axis=(-2, -1)) / (weights.sum() * err.shape[-1])
        assert mae.max() <= target, (name, mae)
    assert len(list((tmp_path / "era5.zarr" / "t2m").rglob("c/*/*/*"))) == 1  # one shard for the day's planes


@pytest.mark.parametrize("split", [None, {"lat": 91}], ids=["from netCDF", "half-globe dask chunks"])
def test_readme_card_lines_run_as_written(era5_nc, tmp_path, split):
    helper, card = python_blocks()
    ds = xr.open_dataset(tmp_path / "era5.nc")
    ds = ds if split is None else ds.chunk(split)
    exec(compile(card, "README.md", "exec"), {"ds": ds})
    for store in ("t2m_v2.zarr", "t2m_v3.zarr"):
        back = xr.open_zarr(tmp_path / store)
        assert back.t2m.encoding["chunks"] == (1, 181, 360)
        assert np.abs(back.t2m.values - era5_nc.t2m.values).mean() < 1.0


def test_readme_layout_names_the_current_bitstream_version():
    """The layout table says which bitstream version this release writes and which it reads: a
    user picking a release to read old archives goes by it (it still said v15 when the code wrote v17)."""
    from xneuralcodec.format.bitstream import VERSION

    row = next(line for line in README.read_text().splitlines() if line.startswith("| `xneuralcodec/format/`"))
    assert f"bitstream v{VERSION}, reads v1 to v{VERSION - 1}" in row
