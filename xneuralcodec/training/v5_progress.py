"""Summarise a v5 run's validation log: ``python -m xneuralcodec.training.v5_progress /work/runs/v5/val.jsonl``.

``train_v5`` logs, per validation pass, plane and quality, the ratio and the MAE. Progress is
best read as the ratio *at a fixed MAE* (the paper's targets, as ``benchmarks.compare_models``
uses them), interpolated log-log between the two qualities that bracket the target along
the rate-distortion curve; "n.r." when no quality reaches it. Also the lowest-rate point
(does the ladder reach 2000x?) and the worst share of points off by more than 5x the MAE.
Reads only the log; needs no CPU to speak of, so it can run beside the training.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict

# plane -> MAE targets in the variable's units (paper targets and 3/4, 1/2 of them)
TARGETS = {"G04:t2m": (0.8, 0.4, 0.3, 0.2), "G01:t2m": (0.8, 0.4), "G01:msl": (100, 50), "G01:u10": (0.5,),
           "G08:t500": (0.4,), "G08:u500": (1.0,), "G08:gh500": (3.0,)}


def ratio_at(points, target):
    """points: [(mae, ratio)] of one pass; ratio at ``target`` MAE or None. Only the
    Pareto front counts (a point is dropped when a cheaper one already has a lower MAE)."""
    front, best = [], math.inf
    for mae, ratio in sorted(points, key=lambda mr: -mr[1]):     # cheapest (highest ratio) first
        if mae < best:
            front.append((mae, ratio))
            best = mae
    pts = sorted(front)
    for (m0, r0), (m1, r1) in zip(pts, pts[1:]):
        if m0 <= target <= m1 and m0 > 0 and m1 > m0:
            t = (math.log(target) - math.log(m0)) / (math.log(m1) - math.log(m0))
            return math.exp(math.log(r0) + t * (math.log(r1) - math.log(r0)))
    if pts and pts[0][0] <= target:   # even the finest point is better than the target
        return max(r for m, r in pts if m <= target)
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("log", nargs="?", default="/work/runs/v5/val.jsonl")
    p.add_argument("--last", type=int, default=6, help="show this many validation passes")
    p.add_argument("--weights", choices=("live", "ema"), default="ema",
                   help="which weights' rows (rows without the field are live weights)")
    args = p.parse_args(argv)
    runs = defaultdict(lambda: defaultdict(list))
    with open(args.log) as f:
        for line in f:
            r = json.loads(line)
            if r.get("weights", "live") != args.weights:
                continue
            runs[r["step"]][r["plane"]].append(r)
    steps = sorted(runs)[-args.last:]
    for plane, targets in TARGETS.items():
        cells = []
        for step in steps:
            rows = runs[step].get(plane, [])
            if not rows:
                continue
            pts = [(r["mae"], r["ratio"]) for r in rows]
            at = [ratio_at(pts, t) for t in targets]
            low = min(rows, key=lambda r: r["bpp"])
            tail = max(r["share_gt5mae"] for r in rows)
            cells.append(f"step {step}: " + " ".join(f"@{t:g}:{'n.r.' if a is None else f'{a:.0f}x'}" for t, a in zip(targets, at))
                         + f" | lowest rate {low['ratio']:.0f}x at MAE {low['mae']:.3g} | max >5MAE {100 * tail:.2f}%")
        print(plane)
        for c in cells:
            print("   ", c)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
