"""Weights integrity: safetensors only, sha256 checked, clear errors naming the file."""

import json
import shutil

import pytest
import torch

from xneuralcodec.network import weights


def test_registry_matches_the_shipped_file():
    entry = weights.registry_entry(weights.registry()["default"])
    path = weights.weights_dir() / entry["file"]
    assert path.suffix == ".safetensors"
    assert weights.sha256_of(path) == entry["sha256"]


def test_tampered_weights_file_is_refused(tmp_path):
    entry = weights.registry_entry("hyperprior-v1")
    copy = tmp_path / entry["file"]
    shutil.copy(weights.weights_dir() / entry["file"], copy)
    with open(copy, "r+b") as f:  # flip one byte deep inside the tensors
        f.seek(-100, 2)
        byte = f.read(1)
        f.seek(-100, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValueError, match=rf"{copy.name}.*sha256.*damaged or was replaced"):
        weights._build("hyperprior-v1", entry["sha256"], copy, torch.device("cpu"))


def test_missing_weights_file_names_the_file(tmp_path):
    missing = tmp_path / "hyperprior-v1.safetensors"
    with pytest.raises(FileNotFoundError, match="hyperprior-v1.safetensors.*missing"):
        weights._build("hyperprior-v1", "0" * 64, missing, torch.device("cpu"))


def test_chunk_from_other_weights_is_refused():
    with pytest.raises(ValueError, match="install the xneuralcodec release that wrote it"):
        weights.load_model("hyperprior-v1", sha256="f" * 64)


def test_models_are_cached_per_process():
    first = weights.load_model()
    count = weights.LOAD_COUNT
    assert weights.load_model() is first and weights.LOAD_COUNT == count


def test_registry_is_plain_json_with_hashes():
    reg = json.loads((weights.weights_dir() / "registry.json").read_text())
    for entry in reg["models"].values():
        assert len(entry["sha256"]) == 64 and entry["file"].endswith(".safetensors")


def test_device_choice_follows_what_torch_sees(monkeypatch):
    # the CUDA branch cannot run here: check its decision logic with a GPU faked in and out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert weights.resolve_device("auto") == torch.device("cuda")
    assert weights.resolve_device("cuda") == torch.device("cuda")
    assert weights.resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert weights.resolve_device("auto") == torch.device("cpu")
    with pytest.warns(RuntimeWarning, match="no CUDA device"):
        assert weights.resolve_device("cuda") == torch.device("cpu")
