"""Compare models' rate-distortion curves on the whole validation split:
``python -m benchmarks.compare_curves BASE.json OTHER.json ...``.

Each file is the output of ``python -m xneuralcodec.evaluation.evaluate --model NAME --no-sz3``: for
every validation group, the ratio and area-weighted MAE at each trained quality, pooled
over all of the group's planes. For every group and every quality of the base model, the
other model's ratio at the same MAE is read off its own curve (linear in log ratio against
log MAE, only inside the MAE range it covers), and the mean ratio change (geometric, over
qualities) is printed. Positive: the other model stores the same error in fewer bytes.
Where ``benchmarks.compare_models`` bisects one plane per group, this uses every held-out
plane and the whole curve, so it is the steadier of the two for small differences.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np


def load_curves(path) -> tuple[str, dict]:
    data = json.loads(Path(path).read_text())
    curves = {}
    for group in data["results"]:
        key = f"{group['source'].split('_', 1)[0]}:{group['variable']}"
        points = sorted((row["mae"], row["ratio"]) for row in group["rows"] if row["mae"] > 0)
        curves[key] = np.log(np.array(points))
    return data["model"], curves


def ratio_change(base: np.ndarray, other: np.ndarray) -> float | None:
    """Geometric-mean ratio of ``other`` over ``base`` at base's MAEs (None: no overlap)."""
    inside = (base[:, 0] >= other[0, 0]) & (base[:, 0] <= other[-1, 0])
    if not inside.any():
        return None
    other_at = np.interp(base[inside, 0], other[:, 0], other[:, 1])
    return float(np.exp(np.mean(other_at - base[inside, 1])))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare_curves", description=__doc__.splitlines()[0])
    p.add_argument("base", help="evaluate JSON of the reference model")
    p.add_argument("others", nargs="+", help="evaluate JSONs of the models to compare with it")
    p.add_argument("--json", help="also write the table here")
    args = p.parse_args(argv)

    base_name, base = load_curves(args.base)
    others = [load_curves(path) for path in args.others]
    names = [name for name, _ in others]
    if len(set(names)) < len(names):  # one model evaluated two ways: tell the columns apart by file
        names = [f"{name} ({Path(path).stem})" for name, path in zip(names, args.others)]
    print(f"ratio at equal MAE, relative to {base_name}\n")
    print("| group | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    table = {}
    for key, curve in base.items():
        changes = [ratio_change(curve, curves[key]) if key in curves else None for _, curves in others]
        table[key] = dict(zip(names, changes))
        print(f"| {key} | " + " | ".join("n/a" if c is None else f"{100 * (c - 1):+.1f}%" for c in changes) + " |")
    means = {}
    for name in names:
        found = [c for row in table.values() if (c := row[name]) is not None]
        means[name] = math.exp(sum(map(math.log, found)) / len(found)) if found else None
    print("| all groups (geometric mean) | " + " | ".join("n/a" if m is None else f"{100 * (m - 1):+.1f}%" for m in means.values()) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"base": base_name, "groups": table, "geometric_mean": means,
                                               "inputs": [args.base, *args.others]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
