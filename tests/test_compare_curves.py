"""benchmarks.compare_curves reads two models' evaluate outputs and reports the ratio change at equal MAE."""

import json

import pytest

from benchmarks import compare_curves


def _evaluation(path, model, points):
    rows = [{"quality": q, "mae": mae, "ratio": ratio} for q, (mae, ratio) in enumerate(points)]
    path.write_text(json.dumps({"model": model, "results": [
        {"source": "G01_era5.nc", "variable": "t2m", "rows": rows},
        {"source": "G08_gfs.nc", "variable": "w", "rows": rows[:2]},
    ]}))
    return path


def test_ratio_change_at_equal_mae(tmp_path, capsys):
    base = [(2.0, 300.0), (1.0, 180.0), (0.5, 60.0), (0.3, 20.0)]
    _evaluation(tmp_path / "a.json", "base", base)
    _, base_curves = compare_curves.load_curves(tmp_path / "a.json")
    # identical curves: no change
    assert compare_curves.ratio_change(base_curves["G01:t2m"], base_curves["G01:t2m"]) == pytest.approx(1.0)
    # a power law ratio = c * mae^k scaled by 1.1, sampled at other MAEs (so the comparison must
    # interpolate), reads +10% wherever the curves overlap
    law = [(mae, 100.0 * mae ** 1.5) for mae in (0.25, 0.5, 1.0, 2.0, 4.0)]
    _evaluation(tmp_path / "law.json", "law", law)
    _evaluation(tmp_path / "law11.json", "law11", [(mae * 0.8, 1.1 * 100.0 * (mae * 0.8) ** 1.5) for mae, _ in law])
    assert compare_curves.main([str(tmp_path / "law.json"), str(tmp_path / "law11.json"),
                                "--json", str(tmp_path / "out.json")]) == 0
    table = json.loads((tmp_path / "out.json").read_text())
    assert table["groups"]["G01:t2m"]["law11"] == pytest.approx(1.1, rel=1e-9)
    assert "+10.0%" in capsys.readouterr().out
    # no overlap in MAE: no number rather than an extrapolated one
    _evaluation(tmp_path / "far.json", "far", [(mae * 100, ratio) for mae, ratio in base])
    _, far = compare_curves.load_curves(tmp_path / "far.json")
    assert compare_curves.ratio_change(base_curves["G01:t2m"], far["G01:t2m"]) is None
