"""The shipped weights' registry: which models exist, their files and sha256.

Weights are named by identity (model name + sha256 of the safetensors file), never by path.
Reading the registry needs no torch, so a codec can be built, configured and pickled
without loading the network; ``weights.py`` loads it when a chunk is first coded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def weights_dir() -> Path:
    """``xneuralcodec/weights`` inside an installed wheel, else the repository's ``weights/``."""
    for candidate in (_PACKAGE_DIR / "weights", _PACKAGE_DIR.parent / "weights"):
        if (candidate / "registry.json").is_file():
            return candidate
    raise FileNotFoundError(
        f"xneuralcodec weights not found (looked for registry.json in {_PACKAGE_DIR / 'weights'} "
        f"and {_PACKAGE_DIR.parent / 'weights'}): reinstall the package"
    )


def registry() -> dict:
    return json.loads((weights_dir() / "registry.json").read_text())


def registry_entry(name: str) -> dict:
    entries = registry()["models"]
    if name not in entries:
        raise ValueError(f"expected a shipped model name ({', '.join(sorted(entries))}), got {name!r} instead")
    return entries[name]


AUTO = "auto"   # model="auto": the registry's "auto" rule picks the weights per chunk, by its sphere


def auto_choice(nside: int) -> tuple[str, int]:
    """(model, quality offset) that ``model="auto"`` codes a chunk on an ``nside`` sphere with.

    Why per sphere: on 0.25 degree grids (nside 256) the v5 family codes smaller and decodes
    faster than v4, which stays the better network on coarser grids. The offset maps the
    coarse model's quality scale onto the fine model's (v5's rate points 2..7 were trained at
    v4's six lambdas), so that a quality means the same trade-off on either."""
    rule = registry()[AUTO]
    if nside >= rule["fine_from_nside"]:
        return rule["fine"], int(rule["fine_quality_offset"])
    return rule["coarse"], 0


def model_of_prefix(prefix: bytes) -> str:
    """The shipped model whose weights sha256 starts with a chunk's ``prefix`` (its first 8
    bytes, format v7+), for stores written with ``model="auto"``."""
    hexed = prefix.hex()
    if not hexed:
        raise ValueError("chunk names no weights (it has no network fields)")
    for name, entry in registry()["models"].items():
        if entry["sha256"].startswith(hexed):
            return name
    raise ValueError(f"chunk was written with weights sha256 {hexed}..., which this installation does not ship: "
                     "install the xneuralcodec release that wrote it")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
