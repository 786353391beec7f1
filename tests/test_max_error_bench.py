"""The equal-max-error benchmark runs on a tiny subset and every bound it reports holds."""

import json

import pytest

from benchmarks import max_error

from .conftest import DATA


def test_max_error_benchmark_tiny(tmp_path):
    if not (DATA / "global").is_dir():
        pytest.skip(f"shared data not available under {DATA}")
    assert max_error.main(["--data", str(DATA / "global"), "--groups", "G03:z", "--max-planes", "1",
                           "--multiples", "5", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "max-error.json").read_text())
    (row,) = report["rows"]
    assert row["bound"] == pytest.approx(150.0)
    neural = row["results"]["neural"]
    assert neural["max_abs"] <= row["bound"] and neural["ratio"] > 1
    assert "| G03:z |" in (tmp_path / "max-error.md").read_text()
