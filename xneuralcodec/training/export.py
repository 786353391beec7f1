"""Freeze a training checkpoint into shipped weights: ``python -m xneuralcodec.training.export``.

Writes ``<name>.safetensors`` (float g_a/h_a/g_s/gains, the integer h_s, the frozen entropy
tables and the scale-index constants; model config in the metadata), registers its sha256
in ``registry.json`` and writes a model card JSON (``model_card.py`` for v5). The card's validation metrics come from
running the real codec on the held-out split (``python -m xneuralcodec.evaluation.evaluate``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from ..coding import integer_context, integer_hyper
from ..coding.entropy import LOG_SCALE_MAX, LOG_SCALE_MIN, build_tables
from ..network.model import HyperpriorModel, ModelConfig
from ..network.model_v5 import HyperpriorV5, ModelV5Config
from ..network.registry import sha256_of
from ..network.weights import ARCHITECTURE_V5
from .model_card import card_v4, card_v5


def freeze(model: HyperpriorModel | HyperpriorV5) -> dict[str, np.ndarray]:
    """Float weights, the integer entropy path and the frozen tables of a weights file."""
    tensors = {f"float.{k}": v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    if isinstance(model, HyperpriorV5):
        tensors.update(integer_context.freeze(model))
        sigmas = integer_context.IntegerContextModel(tensors).scales()
    else:
        tensors.update(integer_hyper.freeze(model.h_s))
        sigmas = integer_hyper.IntegerHyperSynthesis.from_tensors(tensors).scales()
    tensors["y_tables"], tensors["y_radii"] = build_tables(sigmas)
    z_sigmas = np.exp(np.clip(model.z_log_scale.detach().numpy().astype(np.float64), LOG_SCALE_MIN, LOG_SCALE_MAX))
    tensors["z_tables"], tensors["z_radii"] = build_tables(z_sigmas)
    return tensors


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m xneuralcodec.training.export", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="runs/default/checkpoint.pt")
    p.add_argument("--name", required=True, help="model name, e.g. hyperprior-v3 (never reuse a shipped name)")
    p.add_argument("--weights-dir", default="weights")
    p.add_argument("--default", action="store_true", help="make this the registry's default model")
    p.add_argument("--weights", choices=("ema", "live"), default="ema",
                   help="v5 checkpoints: the weight average (default) or the live weights")
    p.add_argument("--entropy-from", default=None, metavar="WEIGHTS",
                   help="a decoder-only fine-tune (train_v5 --train-only decoder) of this v5 weights file: every "
                        "tensor but the decoder's is copied from it, so streams keep its latents and bits exactly "
                        "(its calibrated means included)")
    p.add_argument("--no-register", action="store_true",
                   help="write the weights file only (evaluation of a checkpoint; load with weights.load_weights_file)")
    return p.parse_args(argv)


def load_checkpoint(path: str, weights: str = "ema") -> tuple[HyperpriorModel | HyperpriorV5, dict]:
    """(model, checkpoint) of a v4 or v5 training checkpoint."""
    ckpt = torch.load(path, weights_only=True, map_location="cpu")  # no pickled code runs
    fields = ckpt.get("config", {})
    if "enc" in fields:   # train_v5's config
        config = ModelV5Config.from_dict(fields)
        model = HyperpriorV5(config)
        model.load_state_dict(ckpt["ema"] if weights == "ema" and "ema" in ckpt else ckpt["model"])
    else:
        model = HyperpriorModel(ModelConfig(**fields))
        model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def model_metadata(model: HyperpriorModel | HyperpriorV5) -> dict:
    """The weights file's metadata: the config, and the architecture for v5 (absent for v1-v4)."""
    meta = {"architecture": ARCHITECTURE_V5} if isinstance(model, HyperpriorV5) else {}
    meta["model_config"] = json.dumps(dataclasses.asdict(model.config))
    return meta


DECODER_TENSORS = ("float.g_s.", "float.film_s.")


def with_parent_entropy(tensors: dict[str, np.ndarray], parent_path: str | Path) -> dict[str, np.ndarray]:
    """``tensors`` (a decoder-only fine-tune, frozen) with everything but the decoder taken from
    its parent's weights file. The fine-tune's encoder must be the parent's, value for value."""
    parent = load_file(str(parent_path))
    for key, value in parent.items():
        if key.startswith("float.") and not key.startswith(DECODER_TENSORS):
            if key not in tensors or not np.array_equal(tensors[key], value):
                raise ValueError(f"{key} differs from {parent_path}: not a decoder-only fine-tune of it")
    return {**{k: v for k, v in tensors.items() if k.startswith(DECODER_TENSORS)},
            **{k: v for k, v in parent.items() if not k.startswith(DECODER_TENSORS)}}


def save_weights(model: HyperpriorModel | HyperpriorV5, path: Path, entropy_from: str | Path | None = None) -> str:
    """Write ``model`` frozen into a safetensors weights file; returns its sha256."""
    tensors = freeze(model)
    if entropy_from is not None:
        tensors = with_parent_entropy(tensors, entropy_from)
    save_file(tensors, str(path), metadata=model_metadata(model))
    return sha256_of(path)


def main(argv=None) -> int:
    args = parse_args(argv)
    model, ckpt = load_checkpoint(args.checkpoint, args.weights)
    config = model.config
    out_dir = Path(args.weights_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{args.name}.safetensors"
    meta = model_metadata(model)
    if args.entropy_from is not None and not isinstance(model, HyperpriorV5):
        raise ValueError("--entropy-from takes a v5 checkpoint (train_v5 --train-only decoder)")
    digest = save_weights(model, path, args.entropy_from)
    if args.no_register:
        print(f"wrote {path} sha256 {digest} (not registered)")
        return 0
    reg_path = out_dir / "registry.json"
    reg = json.loads(reg_path.read_text()) if reg_path.exists() else {"default": args.name, "models": {}}
    reg["models"][args.name] = {"file": path.name, "sha256": digest, "qualities": config.qualities}
    if args.default or "default" not in reg:
        reg["default"] = args.name
    reg_path.write_text(json.dumps(reg, indent=2, sort_keys=True) + "\n")
    if isinstance(model, HyperpriorV5):
        card = card_v5(args.name, digest, json.loads(meta["model_config"]), ckpt, Path(args.checkpoint).parent)
        if args.entropy_from is not None:
            card["training"]["entropy_model_from"] = {"file": Path(args.entropy_from).name,
                                                      "sha256": sha256_of(Path(args.entropy_from))}
    else:
        card = card_v4(args.name, digest, json.loads(meta["model_config"]), ckpt)
    card_path = out_dir / f"{args.name}.card.json"
    if card_path.exists():  # keep evaluation results written by a previous evaluate run for the same hash
        old = json.loads(card_path.read_text())
        if old.get("sha256") == digest and "validation" in old:
            card["validation"] = old["validation"]
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {path} sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
