"""Export-time calibration of the integer entropy model's means: ``python -m
xneuralcodec.training.calibrate_means --weights IN --out OUT``.

Why: at run time a latent's mean is the integer network's fixed-point output (1/256 steps)
rounded half up; training rounds the float mean instead. Trained models park the mean of
latent channels they do not use at almost exactly +-0.5 (hyperprior-v5 on the held-out 0.25
degree t2m plane: 44% of the anchors within 0.01 of +-0.5), where the two roundings disagree.
The latent is 0, the integer mean 1, and the symbol costs ~19 bits under the narrowest table:
7.9 of v5's 11.4 KB at its lowest rate on that plane, against 3.6 KB for the whole of y
under the float model.

The fix changes no code and no format: a constant offset per channel on the mean output of
the last integer layer (its bias), chosen from ``OFFSETS`` to minimise the coded bits of
training planes only (never the validation split), computed with the exact integer path and
the file's own tables. The result is a new weights file (its sha256 is a new model identity;
the old file keeps decoding what it wrote). The float twin's bias moves by the same amount.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from ..coding.entropy import TABLE_TOTAL
from ..coding.integer_context import anchor_mask
from ..coding.integer_hyper import (
    FRAC_ACT,
    FRAC_WEIGHTS,
    means_and_indices,
    round_means,
)
from ..network.conditioning import Condition, level_of_index
from ..network.registry import sha256_of
from ..network.transform import NeuralTransform
from ..network.weights import load_weights_file
from ..variables import kind_of
from .model_card import card_calibrated
from .orographic import predicted_planes
from .train import load_training_planes, sphere_tensor

OFFSETS = np.arange(-40, 41, 4)   # candidate mean offsets in 1/2**FRAC_ACT: -0.156..0.156
ESCAPE_BITS = 32                   # an escaped latent also travels verbatim as int32


class SymbolCost:
    """Bits of integer residuals under a weights file's y tables (escapes included)."""

    def __init__(self, tables: np.ndarray, radii: np.ndarray):
        self.radii = np.asarray(radii, np.int64)
        with np.errstate(divide="ignore"):
            self.bits = -np.log2(np.asarray(tables, np.float64) / TABLE_TOTAL)

    def __call__(self, residual: np.ndarray, index: np.ndarray) -> np.ndarray:
        residual = np.asarray(residual, np.int64)
        r = self.radii[index]
        outside = np.abs(residual) > r
        symbol = np.where(outside, 2 * r + 1, residual + r)
        return self.bits[index, symbol] + ESCAPE_BITS * outside


def streams(model, y: np.ndarray, z: np.ndarray):
    """(fixed-point mean, scale index, latent) triples, each (12, M, K), of every symbol
    stream the latent coder writes for one plane (v4: one pass; v5: anchors, then the rest)."""
    hyper = model.hyper
    if not model.checkerboard:
        a = hyper.fixed(z)
        _, index = means_and_indices(a, hyper.log_scale_min, hyper.log_scale_step, hyper.num_scales)
        m = y.shape[1]
        yield a[:, :m].reshape(12, m, -1), index.reshape(12, m, -1), y.reshape(12, m, -1)
        return
    anchors = anchor_mask(y.shape[-1])
    psi = hyper.psi(z)
    for positions, ctx in ((anchors, None), (~anchors, hyper.context(y * anchors, ~anchors))):
        a = hyper.fixed_parameters(psi, ctx, positions)
        _, index = means_and_indices(a, *hyper.scale_index)
        yield a[:, :y.shape[1]], index, y[..., positions]


def channel_costs(model, cost: SymbolCost, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(len(OFFSETS), M) coded bits per mean offset and channel for one plane's latents."""
    out = np.zeros((OFFSETS.size, y.shape[1]))
    for mu_fixed, index, values in streams(model, y, z):
        for k, offset in enumerate(OFFSETS):
            out[k] += cost(values - round_means(mu_fixed + offset), index).sum(axis=(0, 2))
    return out


def plane_latents(model, transform: NeuralTransform, plane, qualities):
    """(quality, rounded y, z) of one training plane on the sphere training used for it."""
    faces = sphere_tensor(plane, plane.values)[:, 0].numpy()[None]
    analysed = transform.analyse(faces, Condition(kind_of(plane.variable), level_of_index(plane.index)))
    for q in qualities:
        y, z = transform.latents(analysed, model.gain(float(q))[None])
        yield q, np.round(y[0]).astype(np.int64), z[0]


def calibrate(model, planes, tables: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, dict]:
    """Per-channel mean offsets (in 1/2**FRAC_ACT) minimising the coded bits of ``planes``
    at every quality, and a summary (bits before and after)."""
    transform, cost = NeuralTransform(model), SymbolCost(tables, radii)
    total = np.zeros((OFFSETS.size, model.config.latent))
    for plane in planes:
        for _, y, z in plane_latents(model, transform, plane, range(model.config.qualities)):
            total += channel_costs(model, cost, y, z)
    zero = int(np.flatnonzero(OFFSETS == 0)[0])
    # ties go to the smallest offset: no change unless it saves bits
    order = np.argsort(np.abs(OFFSETS), kind="stable")
    best = order[np.argmin(total[order], axis=0)]
    offsets = OFFSETS[best]
    summary = {"planes": len(planes), "bits_before": float(total[zero].sum()),
               "bits_after": float(total[best, np.arange(total.shape[1])].sum()),
               "channels_moved": int((offsets != 0).sum())}
    return offsets, summary


def bias_keys(tensors: dict) -> tuple[str, str]:
    """(integer, float) bias of the layer whose first half of outputs are the means."""
    if "int_v5.ep_out.bias" in tensors:
        return "int_v5.ep_out.bias", "float.ep.2.conv.bias"
    last = max(int(k.split(".")[1]) for k in tensors if k.startswith("int_hs.") and k.endswith(".bias"))
    return f"int_hs.{last}.bias", f"float.h_s.{2 * last}.conv.bias"


def apply_offsets(tensors: dict, offsets: np.ndarray) -> dict:
    """A copy of the weights-file tensors with the mean biases moved by ``offsets``."""
    out = dict(tensors)
    int_key, float_key = bias_keys(tensors)
    m = offsets.size
    b = tensors[int_key].copy()
    b[:m] += offsets * 2.0 ** FRAC_WEIGHTS                 # the bias carries FRAC_WEIGHTS + FRAC_ACT bits
    fb = tensors[float_key].copy()
    fb[:m] += (offsets / 2.0 ** FRAC_ACT).astype(fb.dtype)
    out[int_key], out[float_key] = b, fb
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xneuralcodec.training.calibrate_means", description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="an exported weights file")
    p.add_argument("--out", required=True, help="the calibrated weights file to write")
    p.add_argument("--data", nargs="+", default=["../shared/data/global"])
    p.add_argument("--planes", type=int, default=200, help="training planes used, spread evenly over the list")
    p.add_argument("--orographic", action="store_true",
                   help="calibrate on what the v15 codec gives the network: well-explained planes minus their "
                        "orographic prediction (training/orographic.py)")
    p.add_argument("--card", default=None,
                   help="the card JSON of --weights (checked by sha256): OUT's card, built from it, is written beside OUT")
    args = p.parse_args(argv)
    base_card = json.loads(Path(args.card).read_text()) if args.card else None
    if base_card is not None and base_card.get("sha256") != sha256_of(Path(args.weights)):
        # OUT's card copies the base card's architecture and training: another model's would be wrong
        raise ValueError(f"expected --card to be the card of --weights {args.weights}, got the card of "
                         f"{base_card.get('name')!r} (sha256 {str(base_card.get('sha256'))[:12]}) instead")
    model = load_weights_file(args.weights)
    planes, _ = load_training_planes(args.data)
    if args.orographic:
        planes, _ = predicted_planes(planes)
    pick = [planes[i] for i in np.linspace(0, len(planes) - 1, min(args.planes, len(planes))).round().astype(int)]
    tensors = load_file(args.weights)
    offsets, summary = calibrate(model, pick, tensors["y_tables"], tensors["y_radii"])
    with safe_open(args.weights, framework="numpy") as f:
        metadata = dict(f.metadata() or {})
    metadata["mean_calibration"] = json.dumps({**summary, "offsets_fixed_point": offsets.tolist()})
    save_file(apply_offsets(tensors, offsets), str(Path(args.out)), metadata=metadata)
    if base_card is not None:
        out = Path(args.out)
        card = card_calibrated(base_card, out.stem, sha256_of(out), summary)
        out.with_name(f"{out.stem}.card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
