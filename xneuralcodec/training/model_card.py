"""The model card of an exported weights file: what it was trained on, how long, and its curves.

Why: a shipped model must say where it came from (issue 15: "a model card: data, steps, wall
time, curves"). Everything here is read from the run's own records (the checkpoint, its
``train.log`` and ``val.jsonl``), never typed in, so the card cannot drift from the run.
"""

from __future__ import annotations

import datetime
import json
import re
from collections import defaultdict
from pathlib import Path

from .v5_progress import TARGETS, ratio_at

SPLIT = "see xneuralcodec/training/split.py (G01 2026-03-30, G03 member 9, G04 whole, G08 250-500 hPa, G09 1970+)"
LICENCE = ("ERA5/ERA-Interim: Copernicus CC-BY-4.0 / ECMWF terms; NCEP/GFS: US public domain; "
           "see ../shared/data/README.md")
ARCHITECTURE_V5 = ("HEALPix hyperprior autoencoder v5: four stride-2 stages (y at nside/16, z at nside/32), "
                   "checkerboard context model (He et al. 2021), FiLM on variable kind and level, 8 rate points "
                   "(gain units), integer h_s / context / entropy-parameter path")
LOSS_V5 = ("lambda[q] * ((1 - beta) * MSE + beta * sqrt(mean(e^4) / 3)) + bits per pixel, over standardised "
           "HEALPix faces (sphere steps) or 0.25 degree regional patches (patch steps)")
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ (.*)$")


def wall_time_hours(train_log: Path) -> float:
    """Hours the run actually trained: each segment from its start line to its last line."""
    total, start, last = 0.0, None, None
    for line in train_log.read_text().splitlines():
        m = _STAMP.match(line)
        if not m:
            continue
        when = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
        if m.group(2).startswith("training:"):   # a (re)start
            if start is not None:
                total += (last - start).total_seconds()
            start = when
        last = when
    if start is not None:
        total += (last - start).total_seconds()
    return total / 3600.0


def validation_curves(val_jsonl: Path, weights: str = "ema") -> dict:
    """Per validation plane: ratio at each of its MAE targets along the run (``v5_progress``),
    and the final pass's rate points (quality, ratio, MAE, max error, share over 5x MAE)."""
    runs = defaultdict(lambda: defaultdict(list))
    with open(val_jsonl) as f:
        for line in f:
            row = json.loads(line)
            if row.get("weights", "live") == weights:
                runs[row["step"]][row["plane"]].append(row)
    steps = sorted(runs)
    curves = {}
    for plane, targets in TARGETS.items():
        along = []
        for step in steps:
            rows = runs[step].get(plane)
            if rows:
                pts = [(r["mae"], r["ratio"]) for r in rows]
                along.append({"step": step, **{f"ratio_at_{t:g}": ratio_at(pts, t) for t in targets}})
        final = sorted(runs[steps[-1]].get(plane, []), key=lambda r: r["q"]) if steps else []
        curves[plane] = {
            "along_training": along,
            "final": [{"quality": r["q"], "ratio": r["ratio"], "mae": r["mae"], "max_abs": r["max_abs"],
                       "share_over_5x_mae": r["share_gt5mae"]} for r in final],
        }
    return {"weights": weights, "metric": "ideal-rate validation inside train_v5 (HEALPix, no correction)",
            "planes": curves}


def card_v4(name: str, digest: str, config: dict, ckpt: dict) -> dict:
    """The card of a v1-v4 export (``train.py``'s checkpoint records its planes and lambdas)."""
    return {
        "name": name,
        "sha256": digest,
        "architecture": "HEALPix hyperprior autoencoder (Balle et al. 2018) with gain units; "
                        + ("FiLM on variable kind and level; " if config.get("conditioned") else "") + "integer h_s",
        "model_config": config,
        "training": {
            "steps": ckpt["step"], "args": ckpt["args"], "lambdas": list(ckpt["lambdas"]),
            "training_planes": ckpt["planes"],
            "loss": "lambda[q] * MSE(standardised HEALPix faces) + bits per HEALPix pixel",
        },
        "validation_split": SPLIT,
        "data_licence": LICENCE,
    }


def card_calibrated(base_card: dict, name: str, digest: str, summary: dict) -> dict:
    """The card of a mean-calibrated file (``calibrate_means``): the base model's card (its
    training and curves, measured before calibration) with the new identity and what the
    calibration did."""
    return {**base_card, "name": name, "sha256": digest, "derived_from": base_card["name"],
            "mean_calibration": {**summary, "method": "per-channel offsets on the integer mean bias, chosen on "
                                 "training planes (xneuralcodec.training.calibrate_means)"},
            "validation_curves_note": f"validation_curves are {base_card['name']}'s: ideal rates, measured before this calibration"}


def card_v5(name: str, digest: str, config: dict, ckpt: dict, run_dir: Path | None) -> dict:
    """The card of a v5 export; the curves and wall time when the run's logs are beside the checkpoint."""
    card = {
        "name": name,
        "sha256": digest,
        "architecture": ARCHITECTURE_V5,
        "model_config": config,
        "training": {
            "steps": int(ckpt["step"]), "args": ckpt["args"], "lambdas": list(ckpt["lambdas"]),
            "weights": "exponential moving average (0.999) of the trained weights",
            "data": "672 global planes of ../shared/data/global outside the validation split, and 0.25 degree "
                    "regional patches of R01 (744 hourly t2m states) and R04 (surface fields)",
            "loss": LOSS_V5,
        },
        "validation_split": SPLIT,
        "data_licence": LICENCE,
    }
    if run_dir is not None and (run_dir / "train.log").is_file():
        card["training"]["wall_time_hours"] = round(wall_time_hours(run_dir / "train.log"), 2)
        card["training"]["threads"] = ckpt["args"].get("threads")
    if run_dir is not None and (run_dir / "val.jsonl").is_file():
        card["validation_curves"] = validation_curves(run_dir / "val.jsonl")
    return card
