"""Shipped weights: integrity checks, safetensors loading and the per-process model cache.

The registry (``registry.py``) names weights by identity, never by path. Weights
load only through safetensors (no pickle) after the file's sha256 is checked. A
loaded model is cached once per process, keyed on that hash: Zarr calls codecs from many
threads and dask unpickles a codec per task, and neither should rebuild the network.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import warnings
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file

from ..coding.entropy import TableSet
from ..coding.integer_hyper import IntegerHyperSynthesis
from .model import HyperpriorModel, ModelConfig
from .model_v5 import HyperpriorV5, ModelV5Config
from .registry import registry, registry_entry, sha256_of, weights_dir

ARCHITECTURE_V5 = "hyperprior-v5"   # weights-file metadata "architecture"; absent for v1-v4
LOAD_COUNT = 0  # models built in this process; tests use it to prove the cache works
_CACHE: dict[tuple[str, str], "LoadedModel"] = {}
_LOCK = threading.Lock()


def resolve_device(device: str) -> torch.device:
    """'auto' picks CUDA when present. A store written with device='cuda' must still open on
    a CPU-only machine (the device never changes what decodes), so 'cuda' falls back to the
    CPU with a warning instead of failing."""
    if device == "cuda" and not torch.cuda.is_available():
        warnings.warn("device='cuda' requested but torch sees no CUDA device: running on the CPU", RuntimeWarning,
                      stacklevel=3)
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclasses.dataclass
class LoadedModel:
    """Everything the engine needs from one weights file."""

    name: str
    sha256: str
    config: ModelConfig | ModelV5Config
    network: HyperpriorModel | HyperpriorV5   # float g_a, h_a, g_s and gains (entropy path kept for reference)
    hyper: "IntegerHyperSynthesis | IntegerContextModel"   # the exact integer entropy model
    z_tables: TableSet
    y_tables: TableSet
    device: torch.device

    @property
    def checkerboard(self) -> bool:
        """v5's two-pass context model (``coding.checkerboard``) instead of v4's one pass."""
        return isinstance(self.config, ModelV5Config)

    @cached_property
    def gains(self) -> np.ndarray:
        return self.network.log_gain.detach().exp().cpu().numpy().astype(np.float32)

    def gain(self, quality: float) -> np.ndarray:
        """(M,) gain vector of a rate point. Trained points give their own vector exactly;
        in between, log-gains are interpolated linearly (Cui et al. 2021), which moves
        the rate smoothly from one trained point to the next."""
        if quality == int(quality):
            return self.gains[int(quality)]
        log_gain = self.network.log_gain.detach().cpu().numpy().astype(np.float64)
        low = min(int(quality), len(log_gain) - 2)
        t = quality - low
        return np.exp((1.0 - t) * log_gain[low] + t * log_gain[low + 1]).astype(np.float32)


def _build(name: str, sha256: str, path: Path, device: torch.device) -> LoadedModel:
    global LOAD_COUNT
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} for model {name!r} is missing: reinstall xneuralcodec")
    actual = sha256_of(path)
    if actual != sha256:
        raise ValueError(f"weights file {path} has sha256 {actual}, expected {sha256}: the file is damaged or was replaced")
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
    fields = json.loads(meta["model_config"])
    if meta.get("architecture") == ARCHITECTURE_V5:
        from ..coding.integer_context import IntegerContextModel

        config = ModelV5Config.from_dict(fields)
        network, hyper = HyperpriorV5(config), IntegerContextModel(tensors)
    else:
        config = ModelConfig(**fields)
        network, hyper = HyperpriorModel(config), IntegerHyperSynthesis.from_tensors(tensors)
    state = {k[len("float."):]: torch.from_numpy(v.copy()) for k, v in tensors.items() if k.startswith("float.")}
    network.load_state_dict(state)
    network.eval().to(device)
    LOAD_COUNT += 1
    return LoadedModel(
        name=name, sha256=sha256, config=config, network=network, hyper=hyper,
        z_tables=TableSet(tensors["z_tables"], tensors["z_radii"]),
        y_tables=TableSet(tensors["y_tables"], tensors["y_radii"]),
        device=device,
    )


def load_weights_file(path: str | Path, device: str = "cpu") -> LoadedModel:
    """A weights file that is not (yet) registered, e.g. an export of a training checkpoint
    under evaluation. Not cached; streams it writes decode only with the same file."""
    path = Path(path)
    return _build(path.stem, sha256_of(path), path, resolve_device(device))


def load_model(name: str | None = None, sha256: str | None = None, device: str = "auto") -> LoadedModel:
    """The shipped model ``name`` (default: the registry's default); ``sha256``, when given,
    must match the registry."""
    name = registry()["default"] if name is None else name
    entry = registry_entry(name)
    if sha256 is not None and sha256 != entry["sha256"]:
        raise ValueError(
            f"data was written with {name} weights sha256 {sha256}, but this installation ships "
            f"{entry['sha256']}: install the xneuralcodec release that wrote it"
        )
    dev = resolve_device(device)
    key = (entry["sha256"], str(dev))
    with _LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = _build(name, entry["sha256"], weights_dir() / entry["file"], dev)
            _CACHE[key] = model
    return model
