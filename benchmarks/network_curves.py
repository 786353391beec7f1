"""Do new v5 weights code better? ``python -m benchmarks.network_curves --models hyperprior-v5.3 CANDIDATE``.

What decides a fine-tune (``docs/training.md``): a run's own validation rates latents under its
float model before ``calibrate_means``, so it can misjudge a candidate; this codes one held-out
plane per group with each registered model, network records only (``conventional=False``; the
v15 orographic prediction as the codec applies it), at every rate point, range-coded and
decoded, and prints each model's ratio at equal area-weighted MAE against the first model's
curve (log-log interpolation; ``nan`` outside it) with the share of points off by more than 5x
the point's own MAE. Results: ``<out>/network-curves.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from xneuralcodec import NeuralCodec
from xneuralcodec.evaluation.metrics import weighted_errors
from xneuralcodec.options import model_qualities

from .run import default_data, group_key, load_groups

GROUPS = ("G04:t2m", "G01:t2m", "G01:msl", "G01:u10", "G08:t", "G08:u")


def curve(plane: np.ndarray, grid, variable: str, model: str) -> list[dict]:
    points = []
    for q in range(model_qualities(model)):
        codec = NeuralCodec(model=model, grid=grid.to_config(), variable=variable, quality=float(q), conventional=False)
        data = codec.encode(plane)
        back = codec.decode(data).astype(np.float64)
        mae = weighted_errors(plane, back, grid)["mae"]
        err = np.abs(back - plane)
        points.append({"quality": q, "ratio": plane.nbytes / len(data), "mae": mae, "max_abs": float(err.max()),
                       "over_5x_mae_pct": float(100 * np.mean(err > 5 * mae))})
    return points


def ratio_at_equal_mae(mae: float, curve: list[dict]) -> float | None:
    """The curve's ratio at this MAE (log-log interpolation between its points; None outside them)."""
    maes = np.log([p["mae"] for p in curve])
    order = np.argsort(maes)
    maes, ratios = maes[order], np.log([p["ratio"] for p in curve])[order]
    if not maes[0] <= np.log(mae) <= maes[-1]:
        return None
    return float(np.exp(np.interp(np.log(mae), maes, ratios)))


def equal_mae_gains(points: list[dict], base: list[dict]) -> list[float]:
    """Each point's ratio over the base curve's ratio at the same MAE (nan outside its range)."""
    at = [ratio_at_equal_mae(p["mae"], base) for p in points]
    return [p["ratio"] / r if r is not None else float("nan") for p, r in zip(points, at)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.network_curves", description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", required=True, help="registered models; the first is the base")
    p.add_argument("--groups", nargs="+", default=list(GROUPS), metavar="PREFIX:VAR")
    p.add_argument("--data", nargs="+", default=None)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    results = {}
    for (source, variable), planes in load_groups(args.data or [default_data()], args.groups, 1).items():
        key = group_key(source, variable)
        plane = planes[0].values.astype(np.float32)
        curves = {m: curve(plane, planes[0].grid, variable, m) for m in args.models}
        for m in args.models:
            for point, gain in zip(curves[m], equal_mae_gains(curves[m], curves[args.models[0]])):
                point["ratio_over_base_at_equal_mae"] = gain
            print(f"{key:9s} {m:18s} " + " ".join(f"{pt['ratio_over_base_at_equal_mae']:.3f}" for pt in curves[m])
                  + "   % > 5x MAE " + " ".join(f"{pt['over_5x_mae_pct']:.2f}" for pt in curves[m]), flush=True)
        results[key] = curves
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.network_curves " + " ".join(sys.argv[1:] if argv is None else argv)
    (out / "network-curves.json").write_text(json.dumps({"command": command, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
