"""Train hyperprior-v5 (``model_v5.py``) in the background: ``python -m xneuralcodec.training.train_v5``.

Long, resumable CPU run. Every step is either one whole sphere (a global training plane at
its default nside, capped at 128, HEALPix padding, augmented as ``train.py`` does) or,
with probability ``--patch-prob``, a batch of regional 0.25 degree patches at nside-256
pixel size (``patches.py``, replicate padding). Loss, for quality q (8 rate points)::

    lambda[q] * [(1 - beta) * MSE + beta * sqrt(mean(e^4) / 3)] + bits per pixel

The tail term is the L4 error norm, squared so it is in MSE units and divided by
sqrt(3) so that for Gaussian errors it *equals* the MSE (E e^4 = 3 sigma^4): lambda keeps
its meaning, and the term grows with the kurtosis of the error, i.e. exactly with how
heavy the tails are (its ratio to MSE is sqrt(kurtosis / 3)). A smooth power mean gives
every large error a gradient proportional to e^3 instead of handing the whole weight to a
hard top-k/quantile set, which is noisy on one plane per step.

``--train-only decoder`` trains g_s alone on the parent's latents; ``--train-only entropy``
trains the entropy model alone (h_a, h_s, context, ep, z's scales) on the rate alone, with the
synthesis skipped (``step_pass``): its decoded values are the parent's whatever it learns.

Validation (``--val-minutes``) runs only on held-out planes (``split.is_validation``):
G01 2026-03-30T03 t2m/msl/u10 (1 deg, nside 64), G08 t/u/gh at 500 hPa (2.5 deg, nside
32) and the whole G04 0.25 deg t2m plane at nside 256; per plane and quality it logs
bits per lat/lon pixel, the compression ratio against float32, the area-weighted MAE in
the variable's units on the lat/lon grid, and the share of grid points whose error
exceeds 5x that MAE (rates are the ideal rates of the rounded symbols under the model
with the codec's rounding of the mean, not range-coded bytes, and before ``calibrate_means``:
judge a candidate by its exported, calibrated file's coded curves). Checkpoints (``checkpoint.pt``, loadable with
``weights_only=True``) are replaced atomically every ``--checkpoint-minutes``; rerunning
with the same ``--out`` resumes model, optimiser, step and both random states.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..codec.planes import standardise
from ..evaluation.metrics import weighted_errors
from ..network.conditioning import condition_vector, level_of_index
from ..network.model_v5 import PATCH, SPHERE, HyperpriorV5, ModelV5Config, parameter_counts
from ..sphere.faces import faces_to_ring, ring_to_faces
from ..sphere.projection import Projector
from ..variables import UNKNOWN, kind_of
from .data import iter_planes
from .orographic import predicted_fields, predicted_planes
from .patches import load_regional, reference_stats, sample_patch
from .split import is_validation
from .train import TRAIN_MAX_NSIDE, augment, descend, load_training_planes, plane_condition, random_tilt, sphere_tensor

log = logging.getLogger("xneuralcodec.train_v5")

# 8 rate points, log-spaced (x3.29): v4's 6 (8 .. 2500) reached ~430x on 0.25 deg t2m at
# best; two more below aim at >= 2000x.
LAMBDAS = (0.6, 2.0, 6.5, 21.0, 70.0, 230.0, 760.0, 2500.0)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m xneuralcodec.training.train_v5", description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["../shared/data/global"], help="global netCDF/Zarr files or dirs")
    p.add_argument("--regional", nargs="*", default=["../shared/data/regional/R01_era5_t2m_uk_hourly_2019-03_0.25deg.nc",
                                                      "../shared/data/regional/R04_era5_conus_sfc_1995-07-14T12_0.25deg.nc"])
    p.add_argument("--out", default="/work/runs/v5")
    p.add_argument("--steps", type=int, default=60000)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--patch-prob", type=float, default=0.5, help="share of steps that train on 0.25 deg patches")
    p.add_argument("--patch-pixels", type=int, default=16384, help="pixels per patch batch")
    p.add_argument("--patch-norm", choices=("global", "field"), default="global")
    p.add_argument("--tail-beta", type=float, default=0.5, help="weight of the L4 tail term (0: plain MSE)")
    p.add_argument("--train-only", choices=("all", "decoder", "entropy"), default="all",
                   help="decoder: train g_s and its FiLM only; the encoder, entropy model and gains stay as "
                        "loaded, so every plane codes to the same latents and bits and only the decoding changes. "
                        "entropy: train h_a, h_s, the context conv, ep and z's scales only, on the rate alone; "
                        "every plane keeps its latents and decoded values and only the bits change")
    p.add_argument("--distortion", choices=("mse", "mae"), default="mse",
                   help="the main error term: MSE, or the MAE in MSE units (pi/2 MAE^2), the codec's own measure")
    p.add_argument("--drop-condition", type=float, default=0.25)
    p.add_argument("--tilt-degrees", type=float, default=0.0)
    p.add_argument("--sphere-mix", default="32:0.3,64:0.35,128:0.35",
                   help="share of sphere steps per training nside (v4's (grid points)^0.25 weights gave 68%% nside 32, "
                        "where y is 2x2 and z 1x1 per face: too little for the deep stages to learn large scales)")
    p.add_argument("--snapshot-hours", type=float, default=2.0, help="keep a copy checkpoint-<step>.pt this often")
    p.add_argument("--checkpoint-minutes", type=float, default=12.0)
    p.add_argument("--val-minutes", type=float, default=20.0)
    p.add_argument("--latent", type=int, default=ModelV5Config.latent, help="channels of y (a new run only)")
    p.add_argument("--dec", default=None,
                   help="g_s widths at n/16, n/8, n/4, n/2 (default %s; a new run, or a decoder-only fine-tune; a "
                        "resumed run keeps its checkpoint's)" % ",".join(map(str, ModelV5Config.dec)))
    p.add_argument("--entropy-widths", default=None,
                   help="h_s hidden, psi, context, ep hidden widths (default %s) for a new run or an entropy-only "
                        "fine-tune (those layers then start fresh)" % ",".join(
                       str(getattr(ModelV5Config, k)) for k in ENTROPY_WIDTHS))
    p.add_argument("--ema", type=float, default=0.999, help="decay of the weight average that is validated too")
    p.add_argument("--no-g04", action="store_true", help="validate without the whole nside-256 G04 plane")
    p.add_argument("--minutes", type=float, default=0.0, help="stop (with a checkpoint) after this wall time")
    p.add_argument("--codec-means", action="store_true",
                   help="rate latents under the codec's fixed-point rounding of the mean (not the float mean's)")
    p.add_argument("--orographic", action="store_true",
                   help="train and validate on what the codec's network gets since format v15: planes (and regional "
                        "0.25 degree states) minus their orographic prediction where the terrain explains them well "
                        "(training/orographic.py)")
    p.add_argument("--init-from", default=None,
                   help="fine-tune: start a new run (fresh optimiser and schedule, step 0) from this checkpoint's "
                        "EMA weights and architecture, or from a v5 weights file's float weights (.safetensors); "
                        "ignored when --out already holds a checkpoint. With --train-only decoder, --dec may give "
                        "new g_s widths: that decoder starts fresh on the parent's latents")
    return p.parse_args(argv)


DECODER_PARAMETERS = ("g_s.", "film_s.")   # --train-only decoder
ENTROPY_PARAMETERS = ("h_a.", "h_s.", "context.", "ep.", "z_log_scale")   # --train-only entropy
ENTROPY_WIDTHS = ("hyper_up", "psi", "ctx", "ep_hidden")                  # --entropy-widths
TRAINED = {"decoder": DECODER_PARAMETERS, "entropy": ENTROPY_PARAMETERS}


def load_parent(path: str) -> dict:
    """A fine-tune's parent as a checkpoint dict (config, model, step): a training checkpoint,
    or a shipped v5 weights file, whose float tensors are the network's state (export refreezes
    the integer entropy path from them, or copies the parent's with ``--entropy-from``)."""
    if not str(path).endswith(".safetensors"):
        return torch.load(path, weights_only=True)
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        meta = f.metadata() or {}
        if "model_config" not in meta or "enc" not in meta["model_config"]:
            raise ValueError(f"{path} is not a v5 weights file (no v5 model_config in its metadata)")
        state = {k[len("float."):]: torch.from_numpy(f.get_tensor(k).copy()) for k in f.keys() if k.startswith("float.")}
    return {"config": json.loads(meta["model_config"]), "model": state, "step": 0}


def parent_config(parent: dict, args) -> ModelV5Config:
    """The parent's architecture; a decoder-only run may replace the g_s widths (``--dec``),
    an entropy-only run the entropy model's (``--entropy-widths``)."""
    config = ModelV5Config.from_dict(parent["config"])
    if args.dec is not None:
        if args.train_only != "decoder":
            raise ValueError("--dec with --init-from needs --train-only decoder (the rest of the network is the parent's)")
        config = dataclasses.replace(config, dec=decoder_widths(args.dec))
    if args.entropy_widths is not None:
        if args.train_only != "entropy":
            raise ValueError("--entropy-widths with --init-from needs --train-only entropy")
        config = dataclasses.replace(config, **entropy_widths(args.entropy_widths))
    return config


def decoder_widths(text: str) -> tuple:
    widths = tuple(int(c) for c in text.split(","))
    if len(widths) != 4 or min(widths) < 1:
        raise ValueError(f"expected --dec as 4 positive widths (n/16, n/8, n/4, n/2), got {text!r} instead")
    return widths


def entropy_widths(text: str) -> dict:
    widths = tuple(int(c) for c in text.split(","))
    if len(widths) != len(ENTROPY_WIDTHS) or min(widths) < 1:
        raise ValueError(f"expected --entropy-widths as {len(ENTROPY_WIDTHS)} positive widths "
                         f"({', '.join(ENTROPY_WIDTHS)}), got {text!r} instead")
    return dict(zip(ENTROPY_WIDTHS, widths))


def load_parent_state(model: HyperpriorV5, state: dict, train_only: str = "all") -> None:
    """Load the parent's weights; tensors of the trained part whose shapes changed (new
    ``--dec`` or ``--entropy-widths``) keep their fresh initialisation. Anything else
    missing or mismatched is an error."""
    own = model.state_dict()
    if set(own) != set(state):
        raise ValueError(f"parent tensors do not fit this architecture: missing {sorted(set(own) - set(state))}, "
                         f"unexpected {sorted(set(state) - set(own))}")
    fresh = [k for k, v in state.items() if own[k].shape != v.shape]
    if fresh and (train_only not in TRAINED or any(not k.startswith(TRAINED[train_only]) for k in fresh)):
        raise ValueError(f"parent tensors do not fit this architecture: {fresh}")
    model.load_state_dict({k: v for k, v in state.items() if k not in fresh}, strict=not fresh)
    if fresh:
        log.info("new %s widths: %d tensors start fresh: %s", train_only, len(fresh), fresh)


def distortion(x_hat, x, beta, kind="mse"):
    """(1 - beta) x main term + beta x tail term, all in MSE units, so lambda keeps its meaning.

    ``kind="mae"`` makes the main term pi/2 MAE^2: equal to the MSE for Gaussian errors, but
    its gradient is the L1 one (pi MAE sign(e) / N), i.e. it optimises the MAE that the codec's
    targets are set in. Encode-time refinement measured the gap: refining with the MAE gained
    +16% ratio at equal MAE where refining with this training loss gained ~2-6% (v5.1, G04).
    A 23k-step fine-tune of v5 with it did not beat v5.1 on G04 at 0.4 K (320x against 346x;
    benchmarks/results/v5-finetune/README.md)."""
    e = x_hat - x
    e2 = e * e
    mse = e2.mean()
    main = mse if kind == "mse" else (math.pi / 2) * e.abs().mean() ** 2
    tail = torch.sqrt((e2 * e2).mean() / 3.0 + 1e-20)
    return (1 - beta) * main + beta * tail, mse, tail


# -- validation -------------------------------------------------------------------------
VAL_PICK = {
    "G01_": lambda p: p.variable in ("t2m", "msl", "u10") and str(p.index.get("time", "")).startswith("2026-03-30T03"),
    "G08_": lambda p: p.variable in ("t", "u", "gh") and float(p.index.get("level", 0)) == 500.0,
    "G04_": lambda p: True,
}


def validation_set(paths, with_g04=True, orographic=False):
    """The held-out planes, standardised as the codec does; with ``orographic``, a plane the terrain
    explains well minus its prediction, which ``validate`` adds back on the lat/lon grid."""
    out = []
    for plane in iter_planes(paths):
        rule = VAL_PICK.get(plane.source[:4])
        if rule is None or not is_validation(plane) or not rule(plane):
            continue
        if plane.source.startswith("G04_") and not with_g04:
            continue
        nside = plane.grid.default_nside()
        proj = Projector(plane.grid, nside)
        coded, prediction = plane.values.astype(np.float64), 0.0
        if orographic:
            (predicted,), n = predicted_planes([plane])
            if n:
                coded = predicted.values.astype(np.float64)
                prediction = plane.values.astype(np.float64) - coded
        normed, mean, std = standardise(coded)
        faces = ring_to_faces(proj.to_healpix(normed))
        cond = torch.from_numpy(condition_vector(kind_of(plane.variable), level_of_index(plane.index)))[None]
        name = f"{plane.source[:3]}:{plane.variable}" + (f"{int(plane.index['level'])}" if "level" in plane.index else "")
        out.append(dict(name=name, plane=plane, proj=proj, mean=mean, std=std, cond=cond, prediction=prediction,
                        x=torch.from_numpy(faces.astype(np.float32))[:, None]))
    return out


@torch.no_grad()
def validate(model, vset, qualities) -> list[dict]:
    """Rates under the codec's fixed-point rounding of the mean, whatever the run trains with.
    Under the float mean's rounding a fine-tune of v5.3 without ``--codec-means`` read 346x at
    q3 on G04 where its calibrated export reads 555x (measured after 0.19.0): channels it does
    not use park their means at +-0.5, and ``calibrate_means`` moves them."""
    model.eval()
    trained_means, model.codec_means = model.codec_means, True
    rows = []
    try:
        for v in vset:
            plane = v["plane"]
            npix = plane.grid.nlat * plane.grid.nlon
            for q in qualities:
                t0 = time.perf_counter()
                x_hat, y_bits, z_bits = model(v["x"], torch.tensor([q]), v["cond"], SPHERE)
                seconds = time.perf_counter() - t0
                nrmse = float(torch.sqrt(torch.mean((x_hat - v["x"]) ** 2)))
                ring = faces_to_ring(x_hat[:, 0].double().numpy())
                approx = v["proj"].to_latlon(ring) * np.float64(v["std"]) + np.float64(v["mean"]) + v["prediction"]
                err = weighted_errors(plane.values, approx, plane.grid)
                share = float(np.mean(np.abs(approx - plane.values) > 5 * err["mae"]))
                bpp = float(y_bits + z_bits) / npix
                rows.append(dict(plane=v["name"], q=q, bpp=bpp, ratio=32.0 / bpp, z_share=float(z_bits / (y_bits + z_bits)),
                                 mae=err["mae"], max_abs=err["max_abs"], share_gt5mae=share, nrmse_hpx=nrmse,
                                 forward_s=seconds))
    finally:
        model.train()
        model.codec_means = trained_means
    return rows


# -- training ---------------------------------------------------------------------------
def sphere_weights(planes, mix: str) -> list[float]:
    """Sampling weight per plane: the bucket's share (``"32:0.3,64:0.35,128:0.35"``) spread
    over its planes with v4's (grid points)^0.25 weights; buckets without a share get none."""
    shares = {int(k): float(v) for k, v in (item.split(":") for item in mix.split(","))}
    nside = [min(p.grid.default_nside(), TRAIN_MAX_NSIDE) for p in planes]
    base = [(p.grid.nlat * p.grid.nlon) ** 0.25 for p in planes]
    total = {n: sum(b for b, m in zip(base, nside) if m == n) for n in set(nside)}
    return [shares.get(n, 0.0) * b / total[n] for b, n in zip(base, nside)]


def patch_batch(fields, rng, pixels, drop):
    """A batch of patches from one region (one patch shape), with their conditions."""
    region = rng.choice(sorted({f.source for f in fields}))
    pool = [f for f in fields if f.source == region]
    h, w = pool[0].shape
    xs, conds = [], []
    for _ in range(max(1, pixels // (h * w))):
        f = rng.choice(pool)
        xs.append(sample_patch(f, rng))
        kind = UNKNOWN if rng.random() < drop else kind_of(f.variable)
        conds.append(condition_vector(kind, 0.0))
    return torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(conds))


def step_pass(model, x, quality, cond, mode, train_only):
    """One training forward pass; an entropy-only run skips the synthesis (x_hat None): its
    distortion is the parent's whatever it learns, so the rate is its whole loss."""
    if train_only == "entropy":
        return (None, *model.latents_and_bits(x, quality, cond, mode)[2:])
    return model(x, quality, cond, mode)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.addHandler(logging.StreamHandler(sys.stderr))
    log.setLevel(logging.INFO)
    log.propagate = False
    return _train(args, out)


def _rng_tensor(state) -> tuple[torch.Tensor, float | None]:
    version, internal, gauss = state
    return torch.tensor([version, *internal, -1 if gauss is None else 1], dtype=torch.int64), gauss


def _train(args, out: Path) -> int:
    torch.set_num_threads(args.threads)
    planes, skipped = load_training_planes(args.data)
    if args.orographic:
        planes, count = predicted_planes(planes)
        log.info("orographic: %d of %d global planes minus their prediction", count, len(planes))
    fields = load_regional(args.regional, reference_stats(planes), args.patch_norm)
    if args.orographic:
        fields, count = predicted_fields(fields)
        log.info("orographic: %d regional states minus their prediction", count)
    assert not any(f.source.startswith(("R06_", "G04_")) for f in fields)
    log.info("training: %d global planes (skipped %s); %d regional fields: %s", len(planes), skipped, len(fields),
             [(f.source[:3], f.variable, f.values.shape[0], f.shape, round(f.std, 3)) for f in fields])
    vset = validation_set(args.data, not args.no_g04, args.orographic)
    log.info("validation: %s", [v["name"] for v in vset])
    log.info("sphere mix %s; args %s", args.sphere_mix, vars(args))

    ckpt_path = out / "checkpoint.pt"
    ckpt = torch.load(ckpt_path, weights_only=True) if ckpt_path.exists() else None
    init = load_parent(args.init_from) if ckpt is None and args.init_from else None
    if ckpt is not None:   # a resumed run keeps its architecture; a fine-tune takes its parent's (but --dec)
        config = ModelV5Config.from_dict(ckpt["config"])
    elif init is not None:
        config = parent_config(init, args)
    else:
        config = ModelV5Config(latent=args.latent, dec=decoder_widths(args.dec) if args.dec else ModelV5Config.dec,
                               **(entropy_widths(args.entropy_widths) if args.entropy_widths else {}))
    torch.manual_seed(args.seed)
    model = HyperpriorV5(config)
    log.info("config %s; parameters: %s", dataclasses.asdict(config), parameter_counts(model))
    if args.train_only in TRAINED:
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith(TRAINED[args.train_only]))
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    ema = HyperpriorV5(config)       # exponential moving average of the weights (what export should take)
    ema.requires_grad_(False)
    rng = random.Random(args.seed)
    step = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimiser.load_state_dict(ckpt["optimiser"])
        step = int(ckpt["step"])
        st = ckpt["py_rng"].tolist()
        rng.setstate((st[0], tuple(st[1:-1]), ckpt["py_gauss"] if st[-1] == 1 else None))
        torch.set_rng_state(ckpt["torch_rng"])
        log.info("resumed from step %d", step)
    elif init is not None:
        load_parent_state(model, init.get("ema", init["model"]), args.train_only)
        log.info("fine-tuning from %s (its step %d, %s)", args.init_from, int(init["step"]),
                 "EMA weights" if "ema" in init else "its weights")
    ema.load_state_dict(ckpt["ema"] if ckpt is not None and "ema" in ckpt else model.state_dict())
    model.codec_means = ema.codec_means = args.codec_means

    def save():
        py_rng, gauss = _rng_tensor(rng.getstate())
        tmp = ckpt_path.with_name("checkpoint.tmp")
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
                    "py_rng": py_rng, "py_gauss": 0.0 if gauss is None else float(gauss),
                    "torch_rng": torch.get_rng_state(), "config": dataclasses.asdict(config),
                    "args": {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in vars(args).items()},
                    "lambdas": list(LAMBDAS)}, tmp)
        tmp.replace(ckpt_path)

    def run_validation():
        t0 = time.time()
        rows = [{"weights": "live", **r} for r in validate(model, vset, range(config.qualities))]
        if step > 0:
            rows += [{"weights": "ema", **r} for r in validate(ema, vset, range(config.qualities))]
        with open(out / "val.jsonl", "a") as f:
            for r in rows:
                f.write(json.dumps({"step": step, **r}) + "\n")
        for r in rows:
            log.info("val step %d %-4s %-10s q%d ratio %8.1f bpp %.4f mae %.4g >5mae %.3f%% nrmse %.4f z %.0f%%",
                     step, r["weights"], r["plane"], r["q"], r["ratio"], r["bpp"], r["mae"], 100 * r["share_gt5mae"],
                     r["nrmse_hpx"], 100 * r["z_share"])
        log.info("validation took %.1f s", time.time() - t0)

    weights = sphere_weights(planes, args.sphere_mix)
    start = last_ckpt = last_snap = time.time()
    last_val = start if step > 0 else 0.0
    running = {}
    first_step = step
    model.train()
    while step < args.steps:
        if time.time() - last_val > args.val_minutes * 60:
            run_validation()
            last_val = time.time()
        warm = min(1.0, (step + 1) / args.warmup)
        for group in optimiser.param_groups:
            group["lr"] = warm * args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        q = rng.randrange(config.qualities)
        if fields and rng.random() < args.patch_prob:
            kind = "patch"
            x, cond = patch_batch(fields, rng, args.patch_pixels, args.drop_condition)
            quality = torch.full((x.shape[0],), q)
            x_hat, y_bits, z_bits = step_pass(model, x, quality, cond, PATCH, args.train_only)
        else:
            kind = "sphere"
            plane = rng.choices(planes, weights)[0]
            x = sphere_tensor(plane, augment(plane.values, rng), random_tilt(rng, args.tilt_degrees))
            cond = plane_condition(plane, rng, args.drop_condition)
            x_hat, y_bits, z_bits = step_pass(model, x, torch.tensor([q]), cond, SPHERE, args.train_only)
        dist, mse, tail = distortion(x_hat, x, args.tail_beta, args.distortion) if x_hat is not None else (
            torch.zeros(()),) * 3
        bpp = (y_bits + z_bits) / x.numel()
        loss = LAMBDAS[q] * dist + bpp
        descend(model, optimiser, loss)
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), model.parameters()):
                pe.lerp_(p, 1.0 - args.ema)
        step += 1
        stats = np.array([loss.item(), mse.item(), tail.item() / max(mse.item(), 1e-12), bpp.item()])
        running[kind] = stats if kind not in running else 0.98 * running[kind] + 0.02 * stats
        if step % 100 == 0:
            log.info("step %d lr %.2e %.2f steps/s %s", step, optimiser.param_groups[0]["lr"],
                     (step - first_step) / max(time.time() - start, 1e-9), "  ".join(
                f"{k}: loss {v[0]:.4f} mse {v[1]:.2e} tail/mse {v[2]:.2f} bpp {v[3]:.4f}" for k, v in sorted(running.items())))
        if time.time() - last_ckpt > args.checkpoint_minutes * 60:
            save()
            last_ckpt = time.time()
            if time.time() - last_snap > args.snapshot_hours * 3600:
                (out / f"checkpoint-{step}.pt").write_bytes(ckpt_path.read_bytes())
                last_snap = time.time()
        if args.minutes and time.time() - start > args.minutes * 60:
            log.info("stopping at step %d after %.1f minutes (resume by rerunning)", step, args.minutes)
            break
    save()
    if step >= args.steps:
        run_validation()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
