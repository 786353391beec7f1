"""Do new weights help? ``python -m benchmarks.compare_models --models hyperprior-v1 hyperprior-v2``.

For one plane per validation group (the first, as ``benchmarks.run`` loads them) it
bisects each shipped model's continuous quality to the paper's MAE target and to 3/4 and
1/2 of it, and prints the ratios side by side (markdown). This is the check a new model
must pass before it becomes the default: never judged on training or generated data.
"""

from __future__ import annotations

import argparse
import json
import sys

from xneuralcodec import NeuralCodec
from xneuralcodec.evaluation.baselines import Compressor, TargetNotReached, ratio_at_mae

from .run import default_data, group_key, load_groups
from .targets import mae_target

GROUPS = ("G01:t2m", "G01:msl", "G01:u10", "G04:t2m", "G08:t", "G08:gh", "G03:z", "G09:z500_height")
TARGET_FACTORS = (1.0, 0.75, 0.5)  # the paper target, and tighter: where models differ


def model_compressor(model: str, grid) -> Compressor:
    def codec(quality):
        return NeuralCodec(model=model, quality=float(quality), grid=grid.to_config())

    return Compressor(model, "quality", lambda plane, q: codec(q).encode(plane),
                      lambda blob, shape, q: codec(q).decode(blob).reshape(shape), parameter_range=(0.0, 5.0))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare_models", description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", required=True, help="shipped model names (weights/registry.json)")
    p.add_argument("--data", default=None, help="shared data directory (default ../shared/data/global)")
    p.add_argument("--groups", nargs="+", default=list(GROUPS))
    p.add_argument("--iterations", type=int, default=7)
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)

    groups = load_groups([args.data or default_data()], tuple(args.groups), max_planes=1)
    rows = []
    print("| group | plane | target MAE | " + " | ".join(args.models) + " |")
    print("|---|---|---|" + "---|" * len(args.models))
    for (source, variable), planes in groups.items():
        plane = planes[0]
        label = plane.label.split(":", 1)[-1]
        target, _ = mae_target(variable, [plane.values])
        for factor in TARGET_FACTORS:
            cells = {}
            for model in args.models:
                try:
                    point = ratio_at_mae(model_compressor(model, plane.grid), plane.values[None], plane.grid,
                                         factor * target, iterations=args.iterations)
                    cells[model] = {"ratio": point["ratio"], "quality": point["parameter"], "mae": point["mae"]}
                except TargetNotReached:
                    cells[model] = None
            rows.append({"group": group_key(source, variable), "plane": label, "target_mae": factor * target,
                         "models": cells})
            text = [f"{c['ratio']:.1f} (q {c['quality']:.2f})" if c else "n.r." for c in cells.values()]
            print(f"| {group_key(source, variable)} | {label} | {factor * target:.4g} | " + " | ".join(text) + " |",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": "python -m benchmarks.compare_models " + " ".join(sys.argv[1:] if argv is None else argv),
                       "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
