"""The README's first command: ``python -m xneuralcodec`` on the shipped-data sample."""

import pytest

from xneuralcodec.cli import demo

from .conftest import DATA


def test_demo_prints_ratio_and_errors(capsys):
    if not (DATA / demo.SAMPLE).is_file():
        pytest.skip(f"sample {demo.SAMPLE} not available under {DATA}")
    assert demo.main(["--data", str(DATA), "--zarr-format", "2", "--max-abs-error", "2.0"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["t2m"], ["msl"])}
    assert float(rows["t2m"][3]) > 10  # ratio
    assert float(rows["t2m"][6]) <= 2.0  # max error under the bound


def test_demo_without_data_says_where_it_looked(tmp_path, capsys):
    assert demo.main(["--data", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
