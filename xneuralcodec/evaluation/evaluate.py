"""Evaluate the shipped codec on the held-out split: ``python -m xneuralcodec.evaluation.evaluate``.

For every (file, variable) group of validation planes and every quality level it encodes
each plane as its own chunk (as ``xneuralcodec.encoding`` chunks a store), decodes it, and
reports the compression ratio, area-weighted MAE / RMSE, max error, encode and decode
seconds per plane, and SZ3's ratio at the same MAE (bisection on SZ3's absolute bound).
Results go to a JSON file and a markdown table; ``--card`` also records them in the model
card next to the weights.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..codec.engine import Engine
from ..network.conditioning import level_of_index
from ..network.weights import load_model
from ..options import CodecOptions
from ..training.data import iter_planes
from ..training.split import is_validation
from .baselines import ratio_at_mae, sz3_compressor
from .metrics import weighted_errors


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m xneuralcodec.evaluation.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["../shared/data/global"])
    p.add_argument("--qualities", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    p.add_argument("--model", default=None, help="shipped model name (default: the registry default)")
    p.add_argument("--all-planes", action="store_true", help="evaluate every plane, not only the validation split")
    p.add_argument("--no-sz3", action="store_true")
    p.add_argument("--no-condition", action="store_true",
                   help="do not tell the model the variable and level (what it does for unknown variables)")
    p.add_argument("--out", default="evaluation.json")
    p.add_argument("--card", default=None, help="model card JSON to record the results in")
    return p.parse_args(argv)


def evaluate_group(engine: Engine, planes, qualities, with_sz3=True, conditioned=True) -> list[dict]:
    grid = planes[0].grid
    stack = np.stack([p.values for p in planes])
    # what the network is told: the variable, and each plane's pressure level where the file has one
    told = [dict(variable=p.variable, level=level_of_index(p.index) or None) if conditioned else {} for p in planes]
    rows = []
    for q in qualities:
        size, enc_s, dec_s = 0, 0.0, 0.0
        back = np.empty_like(stack)
        for i, plane in enumerate(stack):
            t0 = time.perf_counter()
            # the engine's own model: left at "auto", 0.25 degree options resolve to the fine model and
            # its quality offset, which the engine's model may not have (v4: IndexError at q4, 0.21.0)
            data = engine.encode(plane, CodecOptions(quality=q, grid=grid, model=engine.model.name, **told[i]))
            t1 = time.perf_counter()
            back[i] = engine.decode(data, grid)
            t2 = time.perf_counter()
            size += len(data)
            enc_s += t1 - t0
            dec_s += t2 - t1
        row = {"quality": q, "planes": len(stack), "ratio": stack.nbytes / size, **weighted_errors(stack, back, grid),
               "encode_s_per_plane": enc_s / len(stack), "decode_s_per_plane": dec_s / len(stack)}
        if with_sz3:
            sz = ratio_at_mae(sz3_compressor(), stack, grid, row["mae"], iterations=18)
            row["sz3_ratio_at_same_mae"] = sz["ratio"]
            row["sz3_abs_bound"] = sz["parameter"]
            row["neural_over_sz3"] = row["ratio"] / sz["ratio"]
        rows.append(row)
    return rows


def markdown(results: list[dict]) -> str:
    lines = [
        "| data | variable | grid | planes | q | ratio | MAE | RMSE | max err | enc s/plane | dec s/plane | SZ3 ratio @ same MAE | neural/SZ3 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for group in results:
        for r in group["rows"]:
            lines.append(
                f"| {group['source'][:3]} | {group['variable']} | {group['grid']} | {r['planes']} | {r['quality']} | "
                f"{r['ratio']:.1f} | {r['mae']:.4g} | {r['rmse']:.4g} | {r['max_abs']:.4g} | {r['encode_s_per_plane']:.2f} | "
                f"{r['decode_s_per_plane']:.2f} | {r.get('sz3_ratio_at_same_mae', float('nan')):.1f} | "
                f"{r.get('neural_over_sz3', float('nan')):.2f} |"
            )
    return "\n".join(lines)


def header(report: dict, argv) -> str:
    return (
        "# Held-out validation of the shipped weights\n\n"
        f"Command: `python -m xneuralcodec.evaluation.evaluate {' '.join(argv or [])}`; model {report['model']} "
        f"(sha256 `{report['weights_sha256'][:12]}...`); machine {report['machine']['platform']}. Ratio = float32 "
        "bytes / chunk bytes, one plane per chunk; errors area-weighted on the lat/lon grid; SZ3 (pysz) at the "
        "same MAE by bisection on its absolute bound.\n\n"
    )


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    model = load_model(args.model)
    engine = Engine(model)
    groups = defaultdict(list)
    for plane in iter_planes(args.data):
        if args.all_planes or is_validation(plane):
            groups[(plane.source, plane.variable)].append(plane)
    if not groups:
        raise SystemExit(f"no validation planes found under {args.data}")
    results = []
    for (source, variable), planes in sorted(groups.items()):
        g = planes[0].grid
        rows = evaluate_group(engine, planes, args.qualities, with_sz3=not args.no_sz3,
                              conditioned=not args.no_condition)
        results.append({"source": source, "variable": variable, "grid": f"{g.nlat}x{g.nlon}", "rows": rows})
        print("\n".join(markdown([results[-1]]).splitlines()[2:]), flush=True)
    report = {
        "model": model.name, "weights_sha256": model.sha256, "data": args.data,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "python": platform.python_version()},
        "results": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    Path(args.out).with_suffix(".md").write_text(header(report, argv) + markdown(results) + "\n")
    if args.card:
        card_path = Path(args.card)
        card = json.loads(card_path.read_text())
        if card.get("sha256") != model.sha256:
            raise SystemExit(f"model card {card_path} is for weights {card.get('sha256')}, not {model.sha256}")
        card["validation"] = {"command": "python -m xneuralcodec.evaluation.evaluate " + " ".join(argv), "results": results}
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
