"""Coded sizes of two v5 weights files that share an encoder and a decoder: ``python -m
benchmarks.entropy_ab --models hyperprior-v5.2 hyperprior-v5.3``.

Why: an entropy-only fine-tune (``train_v5 --train-only entropy``) changes the bits and
nothing else, so at every rate point both files decode a plane to the same values and the
one question is how many bytes each spends. This codes one held-out plane per validation
group (the first, as ``benchmarks.run`` loads it; 2.5 to 0.25 degrees at their default nside)
at every rate point with both files, checks that the decoded arrays are identical (it stops
if they are not), and lines up the coded sizes: real range-coded chunks, not ideal rates.
Results: ``<out>/entropy-ab.json`` and ``.md``.
"""

from __future__ import annotations

import argparse

import numpy as np

from .output import command_line, write_results
from .run import default_data, group_key, load_groups

GROUPS = ("G04:t2m", "G01:t2m", "G01:msl", "G01:u10", "G08:t", "G08:u", "G08:gh")


def measure(models: list[str], data: str, groups) -> list[dict]:
    from xneuralcodec import NeuralCodec
    from xneuralcodec.evaluation.metrics import weighted_errors
    from xneuralcodec.network.registry import registry_entry

    qualities = registry_entry(models[0]).get("qualities", 6)
    rows = []
    for (source, variable), planes in load_groups([data], groups, max_planes=1).items():
        plane = planes[0]
        values = plane.values.astype(np.float32)
        for q in range(qualities):
            row = {"group": group_key(source, variable), "q": q}
            decoded = []
            for model in models:
                codec = NeuralCodec(model=model, quality=q, grid=plane.grid.to_config(), variable=variable)
                blob = codec.encode(values)
                row[model] = len(blob)
                decoded.append(codec.decode(blob))
            if not all(np.array_equal(decoded[0], d, equal_nan=True) for d in decoded[1:]):
                raise SystemExit(f"{row['group']} q{q}: the models decode to different values, so they do not share "
                                 "an encoder and a decoder")
            row["ratio"] = {m: values.nbytes / row[m] for m in models}
            row["mae"] = weighted_errors(values, np.asarray(decoded[0]).reshape(values.shape), plane.grid)["mae"]
            rows.append(row)
    return rows


def markdown(rows: list[dict], models: list[str]) -> str:
    base = models[0]
    head = " | ".join(f"{m} bytes (ratio)" for m in models)
    lines = [f"| group | rate point | area-weighted MAE (both) | {head} | size / {base} |",
             "|---|---|---|" + "---|" * len(models) + "---|"]
    for r in rows:
        sizes = " | ".join(f"{r[m]} ({r['ratio'][m]:.1f}x)" for m in models)
        change = " ".join(f"{r[m] / r[base]:.3f}" for m in models[1:])
        lines.append(f"| {r['group']} | {r['q']} | {r['mae']:.4g} | {sizes} | {change} |")
    totals = {m: sum(r[m] for r in rows) for m in models}
    lines.append(f"| all | | | " + " | ".join(str(totals[m]) for m in models) + " | "
                 + " ".join(f"{totals[m] / totals[base]:.3f}" for m in models[1:]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.entropy_ab", description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", required=True, help="v5 models that share an encoder and a decoder")
    p.add_argument("--data", default=default_data())
    p.add_argument("--groups", nargs="+", default=list(GROUPS))
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    if len(args.models) < 2:
        p.error("--models needs at least two models to compare")
    rows = measure(args.models, args.data, args.groups)
    table = markdown(rows, args.models)
    write_results(args.out, "entropy-ab", command_line("benchmarks.entropy_ab", argv), {"models": args.models, "rows": rows},
                  "Coded sizes, same decoded values", "one held-out plane per group, every rate point.", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
