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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
