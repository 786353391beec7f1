"""The benchmark harness: reference-compressor contract, and a tiny ``--quick`` run end to end.

No timing assertions: throughput on a shared 2-core machine says nothing about correctness.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from xneuralcodec.evaluation.baselines import (
    Compressor,
    TargetNotReached,
    bitround_zstd_compressor,
    evaluate_point,
    ratio_at_mae,
    reference_compressors,
    time_compressor,
    zstd_compressor,
)
from xneuralcodec.sphere.grid import LatLonGrid

from .conftest import DATA

GRID = LatLonGrid(nlat=61, nlon=120, lat_first=90.0, lon_first=0.0)


def smooth_planes(n: int = 2) -> np.ndarray:
    lat, lon = np.meshgrid(np.radians(GRID.latitudes), np.radians(GRID.longitudes), indexing="ij")
    rng = np.random.default_rng(0)
    return np.stack([280 + 30 * np.cos(lat) + 5 * np.sin(2 * lon + i) + 0.3 * rng.standard_normal(lat.shape)
                     for i in range(n)]).astype(np.float32)


# -- reference compressors -------------------------------------------------------------------

def test_every_available_reference_compressor_meets_a_target_mae():
    available, skipped = reference_compressors()
    assert set(available) | set(skipped) >= {"sz3", "zstd", "bitround_zstd", "quantize_pcodec", "zfp", "sperr", "ebcc"}
    assert all(isinstance(reason, str) and reason for reason in skipped.values())
    assert "zstd" in available and "bitround_zstd" in available  # numcodecs alone provides these
    planes = smooth_planes()
    for name, compressor in available.items():
        if name == "ebcc":  # correct but slow (~1 s per call): covered by the smoke test above
            continue
        point = ratio_at_mae(compressor, planes, GRID, 0.2, iterations=4)
        assert point["mae"] <= 0.2, name
        assert point["ratio"] > 1.0 and point["reconstruction"].shape == planes.shape, name


def test_error_bounded_compressors_respect_their_bound():
    available, _ = reference_compressors(["sz3", "quantize_pcodec", "zfp"])
    plane = smooth_planes(1)[0]
    for name, compressor in available.items():
        nbytes, back = compressor(plane, 0.05)
        assert nbytes > 0 and np.abs(back - plane).max() <= 0.05 * (1 + 1e-4) + 1e-4, name


def test_lossless_and_precision_compressors():
    planes = smooth_planes()
    exact = ratio_at_mae(zstd_compressor(), planes, GRID, 0.1)
    assert exact["mae"] == 0.0 and exact["method"] == "lossless"
    bitround = ratio_at_mae(bitround_zstd_compressor(), planes, GRID, 0.05)
    coarse, fine = bitround["bracket"]
    assert fine == coarse + 1 and bitround["method"] == "interpolated" and bitround["mae"] <= 0.05
    below = evaluate_point(bitround_zstd_compressor(), planes, GRID, coarse)
    assert below["mae"] > 0.05 and bitround["ratio_at_parameter"] <= bitround["ratio"] <= below["ratio"]


def test_a_continuous_quality_knob_is_bisected_to_a_measured_point():
    # a toy "quality" codec: rounds to a step that shrinks as the knob rises
    def encode(plane, q):
        return np.round(plane / 2.0 ** (1 - q)).astype(np.int32).tobytes()

    def decode(blob, shape, q):
        return (np.frombuffer(blob, np.int32).reshape(shape) * 2.0 ** (1 - q)).astype(np.float32)

    toy = Compressor("toy", "quality", encode, decode, parameter_range=(0.0, 5.0))
    point = ratio_at_mae(toy, smooth_planes(), GRID, 0.1, iterations=8)
    assert point["method"] == "bisection" and point["mae"] <= 0.1
    assert 0 < point["parameter"] < 5 and point["parameter"] != int(point["parameter"])
    coarser = evaluate_point(toy, smooth_planes(), GRID, point["parameter"] - 5.0 / 2 ** 8)
    assert coarser["mae"] > 0.1  # the bisection stopped at the edge, to its resolution


def test_unreachable_target_and_bad_input_are_reported():
    never_finer = Compressor("noisy", "precision", lambda p, q: p.tobytes(),
                             lambda b, shape, q: np.frombuffer(b, np.float32).reshape(shape) + 1.0,
                             parameter_range=(0, 2))
    with pytest.raises(TargetNotReached, match="finest setting 2"):
        ratio_at_mae(never_finer, smooth_planes(), GRID, 0.5)
    with pytest.raises(ValueError, match="positive"):
        ratio_at_mae(zstd_compressor(), smooth_planes(), GRID, 0.0)
    with pytest.raises(ValueError, match="61 x 120"):
        evaluate_point(zstd_compressor(), smooth_planes()[:, :-1], GRID)
    with pytest.raises(ValueError, match="expected compressor names"):
        reference_compressors(["gzip9000"])
    with pytest.raises(ValueError, match="kind"):
        Compressor("x", "lossy", None, None)


def test_timing_reports_throughput():
    timing = time_compressor(zstd_compressor(), smooth_planes(), repeats=2)
    assert timing["repeats"] == 2 and timing["encode_mb_s"] > 0 and timing["decode_mb_s"] > 0


# -- the quick benchmark end to end ------------------------------------------------------------

def benchmark_main():
    """``benchmarks.run.main``, or a skip naming what the bench extra lacks here."""
    for module in ("matplotlib", "scipy"):
        pytest.importorskip(module, reason=f"the benchmark needs {module} (pip install 'xneuralcodec[bench]')")
    from benchmarks.run import main

    return main


def strict_json(path):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant} in {path}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_quick_benchmark_writes_json_markdown_and_plots(tmp_path):
    if not (DATA / "global").is_dir():
        pytest.skip(f"shared data {DATA / 'global'} is not available (set XNEURALCODEC_DATA)")
    main = benchmark_main()

    groups = ["G01:msl", "G03:t", "G09:z500_height"]  # pressure (cyclones), temperature (tail), south-first grid
    assert main(["--quick", "--data", str(DATA / "global"), "--groups", *groups, "--max-planes", "1",
                 "--compressors", "sz3", "zstd", "bitround_zstd", "quantize_pcodec",
                 "--repeats", "1", "--no-progress", "--out", str(tmp_path)]) == 0

    report = strict_json(tmp_path / "benchmark-quick.json")
    assert report["mode"] == "quick" and report["wall_s"] > 0
    assert report["machine"]["cpu_model"] and report["machine"]["cpu_count"] >= 1
    assert report["machine"]["libraries"]["numpy"] == np.__version__
    assert report["neural"]["weights_sha256"]
    assert sorted(g["key"] for g in report["groups"]) == sorted(groups)
    for group in report["groups"]:
        assert group["planes"] == 1 and group["target_mae"] > 0 and not group["failed"]
        assert set(group["compressors"]) | set(report["skipped_compressors"]) >= {"neural", "sz3", "zstd", "bitround_zstd", "quantize_pcodec"}
        neural = group["compressors"]["neural"]
        assert [p["parameter"] for p in neural["sweep"]] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        for name, result in group["compressors"].items():
            assert result["sweep"] and result["matched"]["ratio"] > 1, name
            assert result["timing"]["encode_mb_s"] > 0 and result["timing"]["decode_mb_s"] > 0, name
            if name != "zstd":
                assert 0 <= result["metrics"]["exceedance_percent"] <= 100, name
        spectra = group["spectra"]
        assert len(spectra["original"]) == len(spectra["l"]) and "neural" in spectra["ratio"]
        for plot in (group["rd_plot"], group["spectra_plot"]):
            assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if group["variable"] == "msl":
            assert group["compressors"]["sz3"]["metrics"]["cyclones"][0]["cores"]
        if group["variable"] == "t":
            assert group["compressors"]["sz3"]["metrics"]["upper_tail"][0]["points"] >= 1
        assert set(group["neural_vs_sz3"]) == {"encode_time_ratio", "decode_time_ratio", "ratio_at_target",
                                               "ratio_at_half_target"}
        for name in ("neural", "sz3"):
            half = group["compressors"][name]["matched_half_target"]
            assert half["target_mae"] == group["target_mae"] / 2
            assert not half["reached"] or half["mae"] <= half["target_mae"], name
        assert set(neural["timing_by_threads"]) >= {"1"}
        assert neural["matched"]["method"] in ("bisection", "coarsest setting meets the target", "finest setting")

    table = (tmp_path / "benchmark-quick.md").read_text()
    assert "## Compression ratio at matched MAE" in table and "## Throughput at the matched point" in table
    assert "## Compression ratio at half the target MAE" in table and "## Targets (issue 4)" in table
    for key in groups:
        assert f"| {key} |" in table


def test_benchmark_refuses_bad_arguments(tmp_path):
    main = benchmark_main()

    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path)])  # neither --quick nor --full
    with pytest.raises(ValueError, match="PREFIX:VARIABLE"):
        main(["--quick", "--groups", "G01-msl", "--data", str(tmp_path), "--out", str(tmp_path)])


def test_paper_targets_table_on_one_group(tmp_path):
    """benchmarks.paper_targets end to end on one small held-out group: every coder it lists
    met the target, the tails and spectra are numbers, and the table says who is ahead."""
    from benchmarks import paper_targets

    if not (DATA / "global").is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    assert paper_targets.main(["--groups", "G08:t", "--factors", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "paper-targets.json").read_text())["results"][0]
    row = result["rows"][0]
    assert result["group"] == "G08:t" and row["target"] == 0.4
    cells = {n: c for n, c in row["cells"].items() if "ratio" in c}
    fine = paper_targets.registry()["auto"]["fine"]
    assert set(paper_targets.our_columns(fine)) | {"sz3", "sperr"} <= set(cells)
    for name, c in cells.items():
        assert c["mae"] <= row["target"] * (1 + 1e-9), name
        assert c["ratio"] > 1 and np.isfinite(c["spectrum_top_quarter"]) and 0 <= c["over_5x_target_pct"] <= 100
    # the codec keeps the network record (v4 on this 2.5 degree grid) or a smaller one
    assert cells["codec"]["ratio"] >= 0.97 * cells["v4 network"]["ratio"]
    assert cells["codec max"]["ratio"] >= 0.97 * cells["codec"]["ratio"]
    assert "codec / best peer" in (tmp_path / "paper-targets.md").read_text()
    assert (tmp_path / "paper-targets.png").stat().st_size > 0


def test_tail_frontier_on_one_group(tmp_path):
    """benchmarks.tail_frontier end to end on one small held-out group: every point met its MAE
    goal, tails count against the paper's target, the bounded codec has none, and the summary
    agrees with the points."""
    from benchmarks import tail_frontier

    if not (DATA / "global").is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    assert tail_frontier.main(["--groups", "G08:t", "--factors", "1", "1.5", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "tail-frontier.json").read_text())["results"][0]
    assert result["group"] == "G08:t" and result["target"] == 0.4
    curves = result["curves"]
    assert [round(p["mae_goal"], 9) for p in curves["codec"]] == [0.4, 0.6]
    assert [round(p["mae_goal"], 9) for p in curves[tail_frontier.BOUNDED]] == [0.4]   # goals above the target: no row
    for name, points in curves.items():
        for p in points:
            assert p["mae"] <= p["mae_goal"] * (1 + 1e-9), name
            assert p["ratio"] > 1 and 0 <= p["tails_pct"] <= 100, name
    bounded = curves[tail_frontier.BOUNDED][0]
    assert bounded["tails_pct"] == 0 and bounded["max_abs"] <= 5 * 0.4
    for name, s in result["summary"].items():
        light = [p["ratio"] for p in curves[name] if p["mae"] <= 0.4 * (1 + 1e-9) and p["tails_pct"] < 0.5]
        assert s["best_light_ratio"] == max(light, default=None), name
    table = (tmp_path / "tail-frontier.md").read_text()
    assert "largest ratio with MAE <= 0.4" in table and "nearest 1000x" not in table   # a 0.25 degree goal only
    assert (tmp_path / "tail-frontier.png").stat().st_size > 0


def test_entropy_ab_compares_the_shipped_entropy_only_fine_tune(tmp_path):
    """hyperprior-v5.3 is an entropy-only fine-tune of v5.2: on a real held-out plane both
    decode to the same values at every rate point (entropy_ab stops otherwise), and only the
    bytes differ. v5.1 has another decoder, so the comparison refuses it."""
    from benchmarks import entropy_ab

    src = DATA / "global"
    if not src.is_dir():
        pytest.skip(f"{src} not available")
    assert entropy_ab.main(["--models", "hyperprior-v5.2", "hyperprior-v5.3", "--groups", "G08:t",
                            "--data", str(src), "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "entropy-ab.json").read_text())["rows"]
    assert [r["q"] for r in rows] == list(range(8))
    assert all(r["hyperprior-v5.2"] > 0 and r["hyperprior-v5.3"] > 0 for r in rows)
    assert any(r["hyperprior-v5.2"] != r["hyperprior-v5.3"] for r in rows)
    with pytest.raises(SystemExit, match="decode to different values"):
        entropy_ab.main(["--models", "hyperprior-v5.2", "hyperprior-v5.1", "--groups", "G08:t",
                         "--data", str(src), "--out", str(tmp_path)])


def test_network_curves_compares_models_at_equal_mae(tmp_path):
    """benchmarks.network_curves on one small held-out group: the base model is 1.0 against itself
    wherever its curve is defined, and every point really round-tripped (finite, positive)."""
    from benchmarks import network_curves

    if not (DATA / "global").is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    assert network_curves.main(["--models", "hyperprior-v5.3", "hyperprior-v5.2", "--groups", "G08:t",
                                "--out", str(tmp_path)]) == 0
    curves = json.loads((tmp_path / "network-curves.json").read_text())["results"]["G08:t"]
    base, other = curves["hyperprior-v5.3"], curves["hyperprior-v5.2"]
    assert len(base) == len(other) == 8
    assert all(p["ratio_over_base_at_equal_mae"] == pytest.approx(1.0) for p in base)
    assert all(p["ratio"] > 1 and p["mae"] > 0 and 0 <= p["over_5x_mae_pct"] <= 100 for p in base + other)
    # v5.2 and v5.3 decode to the same values at every rate point; v5.3 spends fewer bytes overall
    assert [p["mae"] for p in base] == pytest.approx([p["mae"] for p in other], rel=1e-9)
    assert sum(p["ratio"] for p in base) > sum(p["ratio"] for p in other)
