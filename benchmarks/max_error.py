"""Error-bounded mode against the pointwise-bounded compressors: ``python -m benchmarks.max_error``.

For every group of the validation split and bounds of 2x and 5x the group's MAE target
(``benchmarks/targets.py``), it compresses each plane with ``NeuralCodec(max_abs_error=eps)``
at qualities 0, 2 and 4 (the correction makes quality a free knob: the best ratio is kept)
and with SZ3, SPERR and EBCC at absolute bound eps, and reports each one's compression ratio
and its measured maximum error, which must not exceed eps. Results go to
``<out>/max-error.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from xneuralcodec import NeuralCodec
from xneuralcodec.evaluation.baselines import evaluate_point, reference_compressors
from xneuralcodec.variables import units_of

from .run import default_data, load_groups
from .targets import mae_target

MULTIPLES = (2.0, 5.0)
QUALITIES = (0, 2, 4)
REFERENCES = ("sz3", "sperr", "ebcc")


def neural_point(stack: np.ndarray, grid, eps: float, variable: str | None = None) -> dict:
    best = None
    for q in QUALITIES:
        codec = NeuralCodec(quality=q, grid=grid.to_config(), max_abs_error=eps, variable=variable)
        size, worst = 0, 0.0
        for plane in stack:
            data = codec.encode(plane)
            size += len(data)
            worst = max(worst, float(np.abs(codec.decode(data).astype(np.float64) - plane).max()))
        point = {"ratio": stack.nbytes / size, "max_abs": worst, "quality": q}
        if best is None or point["ratio"] > best["ratio"]:
            best = point
    return best


def markdown(rows, names) -> str:
    head = "| group | grid | planes | bound | " + " | ".join(f"{n} ratio (max err)" for n in names) + " |"
    lines = [head, "|" + "---|" * (4 + len(names))]
    for r in rows:
        cells = []
        for n in names:
            p = r["results"].get(n)
            if p is None:
                cells.append("–")
                continue
            flag = "" if p["max_abs"] <= r["bound"] else " **over bound**"
            extra = f", q{p['quality']}" if "quality" in p else ""
            cells.append(f"{p['ratio']:.3g} ({p['max_abs']:.3g}{extra}){flag}")
        lines.append(f"| {r['group']} | {r['grid']} | {r['planes']} | {r['bound']:.3g} {r['units']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.max_error", description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=None)
    p.add_argument("--groups", nargs="+", default=None, metavar="PREFIX:VAR")
    p.add_argument("--max-planes", type=int, default=None)
    p.add_argument("--multiples", type=float, nargs="+", default=list(MULTIPLES))
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    groups = load_groups(args.data or [default_data()], args.groups, args.max_planes)
    references, skipped = reference_compressors(list(REFERENCES))
    names = ["neural", *references]
    rows = []
    for (source, variable), planes in tqdm(groups.items(), desc="max-error benchmark"):
        stack = np.stack([pl.values for pl in planes]).astype(np.float32)
        grid = planes[0].grid
        target, _ = mae_target(variable, stack)
        for k in args.multiples:
            eps = k * target
            results = {"neural": neural_point(stack, grid, eps, variable)}
            for name, compressor in references.items():
                point = evaluate_point(compressor, stack, grid, eps)
                results[name] = {"ratio": point["ratio"], "max_abs": point["max_abs"]}
            rows.append({"group": f"{source[:3]}:{variable}", "grid": f"{grid.nlat}x{grid.nlon}", "planes": len(stack),
                         "bound": eps, "multiple_of_mae_target": k, "units": units_of(variable), "results": results})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"command": "python -m benchmarks.max_error " + " ".join(sys.argv[1:] if argv is None else argv),
              "skipped": skipped, "rows": rows}
    (out / "max-error.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "max-error.md").write_text(
        "# Ratio at equal maximum error\n\nCommand: `" + report["command"] + "`. Bounds are 2x and 5x each group's MAE "
        "target; every cell shows the ratio and, in brackets, the measured max error (and the neural quality used).\n\n"
        + markdown(rows, names))
    print(markdown(rows, names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
