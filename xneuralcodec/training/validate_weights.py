"""train_v5's ideal-rate validation of a v5 weights file, and a side-by-side with a run's last
validation: ``python -m xneuralcodec.training.validate_weights --weights FILE [--against val.jsonl]``.

Why: a decoder-only run (``train_v5 --train-only decoder``) keeps its parent's latents and
bits, so its validation rows are comparable with the parent's file row by row, MAE against
MAE at the same rate; the parent's own run logs may be long gone.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from ..network.model_v5 import HyperpriorV5, ModelV5Config
from .train_v5 import load_parent, validate, validation_set


def validate_weights(path: str, data: list[str]) -> list[dict]:
    parent = load_parent(path)
    model = HyperpriorV5(ModelV5Config.from_dict(parent["config"]))
    model.load_state_dict(parent["model"])
    return validate(model.eval(), validation_set(data, True), range(model.config.qualities))


def side_by_side(reference: list[dict], run: list[dict]) -> str:
    """Markdown: per plane and quality, the reference's MAE and tail share against the run's last EMA pass."""
    ref = {(r["plane"], r["q"]): r for r in reference}
    rows = [r for r in run if r.get("weights") == "ema"]
    last = max(r["step"] for r in rows)
    lines = [f"Run: EMA weights at step {last}.", "",
             "| plane | q | ratio (same bits) | reference MAE | run MAE | change | reference > 5x MAE | run > 5x MAE |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a = ref.get((r["plane"], r["q"]))
        if r["step"] != last or a is None:
            continue
        lines.append(f"| {r['plane']} | {r['q']} | {r['ratio']:.1f} | {a['mae']:.4g} | {r['mae']:.4g} | "
                     f"{100 * (r['mae'] / a['mae'] - 1):+.1f}% | {100 * a['share_gt5mae']:.2f}% | "
                     f"{100 * r['share_gt5mae']:.2f}% |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xneuralcodec.training.validate_weights",
                                description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="a v5 weights file (.safetensors)")
    p.add_argument("--data", nargs="+", default=["../shared/data/global"])
    p.add_argument("--against", default=None, help="a train_v5 run's val.jsonl: print the side-by-side table")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = validate_weights(args.weights, args.data)
    if args.against is None:
        for r in rows:
            print(json.dumps(r))
        return 0
    with open(args.against) as f:
        run = [json.loads(line) for line in f]
    sys.stdout.write(side_by_side(rows, run))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
