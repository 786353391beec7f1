"""Train the HEALPix hyperprior on real fields: ``python -m xneuralcodec.training.train``.

Every step takes one whole plane of the training split, augments it in ways that keep its
statistics real (a random rotation about the polar axis, a north-south mirror and, with
``--tilt-degrees``, a rotation of the sphere by spherical harmonics that moves the pole by
up to that angle), normalises it per plane exactly as the codec does, projects it to
HEALPix faces at the codec's default nside for its grid, draws a quality level and
minimises ``lambda[q] * MSE + bits per pixel``. ``--conditioned`` trains FiLM layers on the
plane's kind of variable and level (``conditioning.py``), each dropped at random so that
unknown variables and levels are trained too. Checkpoints are written every
``--checkpoint-every`` steps and a rerun with the same ``--out`` resumes from the last one
(model, optimiser, step and random state).
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
from tqdm import tqdm

from ..codec.planes import standardise  # the codec's own normalisation
from ..network.conditioning import condition_vector, level_of_index
from ..network.model import HyperpriorModel, ModelConfig
from ..sphere.faces import ring_to_faces
from ..sphere.projection import Projector
from ..variables import UNKNOWN, kind_of
from .data import iter_planes
from .split import is_validation

log = logging.getLogger("xneuralcodec.training.train")

# Rate-distortion trade-off per quality level (MSE of the per-plane standardised field):
# about 0.7 / target MSE, spanning relative RMSE ~3% (q=5) to ~30% (q=0).
LAMBDAS = (8.0, 25.0, 80.0, 250.0, 800.0, 2500.0)
TRAIN_MAX_NSIDE = 128


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m xneuralcodec.training.train", description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["../shared/data/global"], help="netCDF/Zarr files or directories")
    p.add_argument("--out", default="runs/default", help="run directory (checkpoints, log); resumes if present")
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--init", help="start from these weights instead of random ones: an exported .safetensors "
                   "file or another run's checkpoint.pt (e.g. pre-training on generated states)")
    p.add_argument("--hidden", type=int, default=ModelConfig.hidden, help="hidden channels of g_a, g_s, h_a, h_s")
    p.add_argument("--latent", type=int, default=ModelConfig.latent, help="latent channels of y")
    p.add_argument("--conditioned", action="store_true", help="FiLM conditioning on variable kind and level")
    p.add_argument("--drop-condition", type=float, default=0.25,
                   help="probability of hiding the kind (and, independently, the level) in a step")
    p.add_argument("--tilt-degrees", type=float, default=0.0,
                   help="rotate half of the spheres so that the pole moves by up to this angle (0: off)")
    p.add_argument("--gaussian-grids", action="store_true",
                   help="also train on Gaussian-grid files (T42, T62, TL31 ...), regridded to regular grids")
    p.add_argument("--minutes", type=float, default=0.0, help="stop (with a checkpoint) after this wall time")
    args = p.parse_args(argv)
    if not 0.0 <= args.drop_condition <= 1.0:
        p.error(f"expected --drop-condition in 0..1, got {args.drop_condition}")
    if not (8 <= args.hidden <= 512 and 8 <= args.latent <= 512):
        p.error(f"expected --hidden and --latent in 8..512, got {args.hidden} and {args.latent}")
    if not 0.0 <= args.tilt_degrees <= 180.0:
        p.error(f"expected --tilt-degrees in 0..180, got {args.tilt_degrees}")
    return args


def load_training_planes(paths, gaussian: bool = False):
    skipped = {}
    planes = [p for p in iter_planes(paths, skipped, gaussian) if not is_validation(p)]
    if not planes:
        raise ValueError(f"no usable training planes under {paths}")
    return planes, skipped


def augment(values: np.ndarray, rng: random.Random) -> np.ndarray:
    """Random rotation about the polar axis (a longitude roll) and optional N-S mirror."""
    values = np.roll(values, rng.randrange(values.shape[1]), axis=1)
    if rng.random() < 0.5:
        values = values[::-1]
    return np.ascontiguousarray(values)


def random_tilt(rng: random.Random, max_degrees: float) -> tuple[float, float, float] | None:
    """Euler angles that move the pole by up to ``max_degrees`` towards a random longitude
    (half of the time; None otherwise). Small tilts keep the fields plausible (the cold
    poles stay near the poles) while showing the network new positions and orientations
    of every structure relative to the HEALPix faces."""
    if max_degrees <= 0 or rng.random() < 0.5:
        return None
    psi = rng.uniform(0.0, 2.0 * math.pi)
    return psi, math.radians(rng.uniform(-max_degrees, max_degrees)), -psi


def sphere_tensor(plane, values, rotation=None) -> torch.Tensor:
    normed, _, _ = standardise(values.astype(np.float64))
    nside = min(plane.grid.default_nside(), TRAIN_MAX_NSIDE)
    faces = ring_to_faces(Projector(plane.grid, nside).to_healpix(normed, rotation))
    return torch.from_numpy(faces.astype(np.float32))[:, None]


def plane_condition(plane, rng: random.Random, drop: float) -> torch.Tensor:
    """(1, CONDITION_SIZE) condition of a training plane, kind and level each hidden with
    probability ``drop``."""
    kind = UNKNOWN if rng.random() < drop else kind_of(plane.variable)
    level = 0.0 if rng.random() < drop else level_of_index(plane.index)
    return torch.from_numpy(condition_vector(kind, level))[None]


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(out / "train.log"), logging.StreamHandler(sys.stderr)]
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        return _train(args, out)
    finally:
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()


def _train(args, out: Path) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    planes, skipped = load_training_planes(args.data, args.gaussian_grids)
    log.info("training planes: %d (skipped %s)", len(planes), skipped)

    config = ModelConfig(hidden=args.hidden, latent=args.latent, conditioned=args.conditioned)
    torch.manual_seed(args.seed)
    model = HyperpriorModel(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    rng = random.Random(args.seed)
    step = 0
    ckpt_path = out / "checkpoint.pt"
    if args.init and not ckpt_path.exists():
        _load_initial(model, _initial_float_state(args.init))
        log.info("initialised from %s", args.init)
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=True)  # no pickled code runs
        model.load_state_dict(ckpt["model"])
        optimiser.load_state_dict(ckpt["optimiser"])
        step = ckpt["step"]
        rng.setstate(ckpt["rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        log.info("resumed from step %d", step)

    def save():
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({
            "model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
            "rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
            "config": dataclasses.asdict(config),
            "args": vars(args), "lambdas": LAMBDAS, "planes": len(planes),
        }, tmp)
        tmp.replace(ckpt_path)

    # favour detailed grids a little over the many coarse ones (10 deg G06 has 240 planes)
    weights = [(p.grid.nlat * p.grid.nlon) ** 0.25 for p in planes]
    start = time.time()
    model.train()
    running = None
    bar = tqdm(total=args.steps, initial=step, desc="train", mininterval=5)
    while step < args.steps:
        # cosine decay of the learning rate over the planned steps
        for group in optimiser.param_groups:
            group["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        plane = rng.choices(planes, weights)[0]
        x = sphere_tensor(plane, augment(plane.values, rng), random_tilt(rng, args.tilt_degrees))
        condition = plane_condition(plane, rng, args.drop_condition) if config.conditioned else None
        q = rng.randrange(config.qualities)
        x_hat, y_bits, z_bits = model(x, torch.tensor([q]), condition)
        mse = torch.mean((x_hat - x) ** 2)
        bpp = (y_bits + z_bits) / x.numel()
        loss = LAMBDAS[q] * mse + bpp
        descend(model, optimiser, loss)
        step += 1
        bar.update(1)
        stats = np.array([loss.item(), mse.item(), bpp.item()])
        running = stats if running is None else 0.98 * running + 0.02 * stats
        if step % 50 == 0:
            log.info("step %d q %d loss %.4f mse %.5f bpp %.4f (running loss %.4f mse %.5f bpp %.4f)",
                     step, q, *stats, *running)
        if step % args.checkpoint_every == 0 or step == args.steps:
            save()
        if args.minutes and time.time() - start > args.minutes * 60:
            save()
            log.info("stopping at step %d after %.1f minutes (resume by rerunning)", step, args.minutes)
            break
    bar.close()
    save()
    (out / "train_summary.json").write_text(json.dumps({"step": step, "planes": len(planes), "skipped": skipped,
                                                         "lambdas": LAMBDAS, "args": vars(args)}, indent=2))
    return 0


def descend(model, optimiser, loss, max_norm: float = 5.0) -> None:
    """One optimiser step on ``loss``, gradients clipped (a rare huge plane must not derail training)."""
    optimiser.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimiser.step()


def _load_initial(model: HyperpriorModel, state: dict) -> None:
    """Load starting weights; a conditioned model may start from an unconditioned one (its
    FiLM layers then start as the identity), but nothing else may be missing or extra."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("film_a.", "film_s."))]
    if missing or unexpected:
        raise ValueError(f"initial weights do not fit the model: missing {missing}, unexpected {unexpected}")


def _initial_float_state(path) -> dict:
    """The float network of an exported weights file (export.py stores it under 'float.')
    or of a training checkpoint."""
    from safetensors.torch import load_file

    if str(path).endswith(".pt"):
        return torch.load(path, weights_only=True)["model"]
    tensors = load_file(str(path))
    state = {k[len("float."):]: v for k, v in tensors.items() if k.startswith("float.")}
    if not state:
        raise ValueError(f"{path} holds no float network tensors (not an xneuralcodec weights file?)")
    return state


if __name__ == "__main__":
    raise SystemExit(main())
