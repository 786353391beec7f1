"""The training and export scripts run end to end (a few steps) and produce loadable weights."""

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from xneuralcodec.codec.engine import Engine
from xneuralcodec.network.weights import _build
from xneuralcodec.options import CodecOptions
from xneuralcodec.training import export, train

from .conftest import DATA, FILES, load_plane


def test_train_resume_export_and_code(tmp_path):
    src = DATA / FILES["era5_3deg_z500"][0]
    if not src.is_file():
        import pytest
        pytest.skip(f"{src} not available")
    run = tmp_path / "run"
    assert train.main(["--data", str(src), "--out", str(run), "--steps", "3", "--checkpoint-every", "2", "--seed", "1"]) == 0
    first = torch.load(run / "checkpoint.pt", weights_only=True)
    assert first["step"] == 3
    # rerunning with more steps resumes from the checkpoint instead of starting over
    assert train.main(["--data", str(src), "--out", str(run), "--steps", "5", "--seed", "1"]) == 0
    assert "resumed from step 3" in (run / "train.log").read_text()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 5

    # a second stage (fine-tuning after pre-training) starts from the first run's checkpoint
    tuned = tmp_path / "tuned"
    assert train.main(["--data", str(src), "--out", str(tuned), "--steps", "1", "--init", str(run / "checkpoint.pt")]) == 0
    assert "initialised from" in (tuned / "train.log").read_text()
    start = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    after = torch.load(tuned / "checkpoint.pt", weights_only=True)["model"]
    assert after.keys() == start.keys()
    # one small step moves the weights a little: they began at the checkpoint, not at random
    assert all(torch.allclose(after[k].float(), start[k].float(), atol=1e-2) for k in start)

    wdir = tmp_path / "weights"
    assert export.main(["--checkpoint", str(run / "checkpoint.pt"), "--name", "tiny", "--weights-dir", str(wdir)]) == 0
    reg = json.loads((wdir / "registry.json").read_text())
    card = json.loads((wdir / "tiny.card.json").read_text())
    assert card["sha256"] == reg["models"]["tiny"]["sha256"] and card["training"]["steps"] == 5
    tensors = load_file(str(wdir / "tiny.safetensors"))
    assert tensors["y_tables"].dtype == np.int32 and tensors["scale_index"][2] == 64

    model = _build("tiny", reg["models"]["tiny"]["sha256"], wdir / "tiny.safetensors", torch.device("cpu"))
    engine = Engine(model)
    rng = np.random.default_rng(0)
    plane = np.cumsum(rng.normal(size=(61, 120)), axis=1).astype(np.float32)
    back = engine.decode(engine.encode(plane, CodecOptions(quality=2)))
    assert back.shape == plane.shape and np.isfinite(back).all()


def test_conditioned_training_from_unconditioned_weights_exports_a_conditioned_model(tmp_path):
    src = DATA / FILES["era5_3deg_z500"][0]
    if not src.is_file():
        import pytest
        pytest.skip(f"{src} not available")
    plain, film = tmp_path / "plain", tmp_path / "film"
    assert train.main(["--data", str(src), "--out", str(plain), "--steps", "1"]) == 0
    assert train.main(["--data", str(src), "--out", str(film), "--steps", "2", "--conditioned", "--tilt-degrees", "20",
                       "--init", str(plain / "checkpoint.pt")]) == 0
    ckpt = torch.load(film / "checkpoint.pt", weights_only=True)
    assert ckpt["config"]["conditioned"] and any(k.startswith("film_s.") for k in ckpt["model"])
    wdir = tmp_path / "weights"
    assert export.main(["--checkpoint", str(film / "checkpoint.pt"), "--name", "tiny-film", "--weights-dir", str(wdir)]) == 0
    reg = json.loads((wdir / "registry.json").read_text())
    model = _build("tiny-film", reg["models"]["tiny-film"]["sha256"], wdir / "tiny-film.safetensors", torch.device("cpu"))
    assert model.config.conditioned
    engine = Engine(model)
    plane = np.cumsum(np.random.default_rng(0).normal(size=(61, 120)), axis=1).astype(np.float32)
    for told in ({}, {"variable": "z", "level": 500.0}):
        back = engine.decode(engine.encode(plane, CodecOptions(quality=2, **told)))
        assert back.shape == plane.shape and np.isfinite(back).all()


def test_meaningless_augmentation_settings_are_refused(capsys):
    import pytest

    for argv in (["--drop-condition", "1.5"], ["--tilt-degrees", "-3"], ["--hidden", "4"]):
        with pytest.raises(SystemExit) as exc:
            train.main(argv)
        assert exc.value.code == 2 and "expected --" in capsys.readouterr().err


class _Planted:
    """A pickle that runs code when loaded: what a hostile checkpoint file could hold."""

    def __reduce__(self):
        return (print, ("this checkpoint ran code",))


def test_checkpoints_are_loaded_without_running_pickled_code(tmp_path, capsys):
    import pickle

    import pytest

    path = tmp_path / "checkpoint.pt"
    torch.save({"model": _Planted(), "step": 1}, path)
    with pytest.raises(pickle.UnpicklingError):
        export.main(["--checkpoint", str(path), "--name", "x", "--weights-dir", str(tmp_path / "w")])
    with pytest.raises(pickle.UnpicklingError):
        train._initial_float_state(path)
    assert "ran code" not in capsys.readouterr().out


def _train_v5_parent_and_child(tmp_path, *child_args):
    """Two 2-step train_v5 runs on GFS t500: a parent from scratch, then a child fine-tuned from
    the parent's checkpoint with ``child_args``; returns (parent dir, child dir)."""
    from xneuralcodec.training import train_v5

    src = DATA / FILES["gfs_2.5deg_t500"][0]
    if not src.is_file():
        import pytest
        pytest.skip(f"{src} not available")
    common = ["--data", str(src), "--regional", "--no-g04", "--steps", "2", "--threads", "1"]
    parent, child = tmp_path / "parent", tmp_path / "child"
    assert train_v5.main([*common, "--out", str(parent)]) == 0
    assert train_v5.main([*common, "--out", str(child), "--init-from", str(parent / "checkpoint.pt"),
                          *child_args]) == 0
    return parent, child


def _validation_rows(run) -> list[dict]:
    return [json.loads(line) for line in (run / "val.jsonl").read_text().splitlines()]


def test_train_v5_fine_tunes_from_a_checkpoints_ema_weights(tmp_path):
    """``train_v5 --init-from``: the new run starts from the parent's EMA weights (its step-0
    validation equals the parent's last EMA validation) with a fresh step count."""
    parent, child = _train_v5_parent_and_child(tmp_path)
    assert "fine-tuning from" in (child / "train.log").read_text()
    parent_ema = {(r["plane"], r["q"]): r for r in _validation_rows(parent) if r["step"] == 2 and r["weights"] == "ema"}
    child_start = {(r["plane"], r["q"]): r for r in _validation_rows(child) if r["step"] == 0}
    assert parent_ema and parent_ema.keys() == child_start.keys()
    for key, r in child_start.items():
        assert r["bpp"] == parent_ema[key]["bpp"] and r["mae"] == parent_ema[key]["mae"], key
    assert torch.load(child / "checkpoint.pt", weights_only=True)["step"] == 2


def test_train_v5_decoder_only_changes_the_decoder_alone(tmp_path):
    """``train_v5 --train-only decoder``: g_s and its FiLM move; the encoder, the entropy model
    and the gains stay as loaded, so every plane keeps its latents and its bits."""
    from xneuralcodec.training.train_v5 import DECODER_PARAMETERS

    parent, child = _train_v5_parent_and_child(tmp_path, "--train-only", "decoder", "--lr", "1e-2", "--warmup", "1")
    start = torch.load(parent / "checkpoint.pt", weights_only=True)["ema"]
    trained = torch.load(child / "checkpoint.pt", weights_only=True)["model"]
    decoder = [k for k in trained if k.startswith(DECODER_PARAMETERS)]
    assert decoder and any(not torch.equal(trained[k], start[k]) for k in decoder)
    assert all(torch.equal(trained[k], start[k]) for k in trained if not k.startswith(DECODER_PARAMETERS))
    first = {(r["plane"], r["q"]): r["bpp"] for r in _validation_rows(child) if r["step"] == 0}
    last = {(r["plane"], r["q"]): r["bpp"] for r in _validation_rows(child) if r["step"] == 2 and r["weights"] == "live"}
    assert first and first == last


def _fine_tune_shipped(tmp_path, model: str, steps: str, *args):
    """A short train_v5 run on GFS t500 from a shipped v5 weights file; returns (data file,
    weights file, run dir, its checkpoint, the file's tensors)."""
    from safetensors.numpy import load_file

    from xneuralcodec.network.registry import registry_entry, weights_dir
    from xneuralcodec.training import train_v5

    src = DATA / FILES["gfs_2.5deg_t500"][0]
    if not src.is_file():
        pytest.skip(f"{src} not available")
    weights = weights_dir() / registry_entry(model)["file"]
    out = tmp_path / "fine-tune"
    assert train_v5.main(["--data", str(src), "--regional", "--no-g04", "--steps", steps, "--threads", "1",
                          "--out", str(out), "--init-from", str(weights), *args]) == 0
    return src, weights, out, torch.load(out / "checkpoint.pt", weights_only=True), load_file(str(weights))


def _assert_only_trained_moved(ckpt, parent, trained_prefixes) -> None:
    """Every tensor outside the trained part is the parent file's float tensor, value for value."""
    for k, v in ckpt["model"].items():
        if not k.startswith(trained_prefixes):
            assert torch.equal(v, torch.from_numpy(parent[f"float.{k}"])), k


def test_train_v5_new_decoder_widths_start_from_a_shipped_weights_file(tmp_path):
    """``--init-from <v5 weights>.safetensors --train-only decoder --dec ...``: a lighter g_s
    learns to decode the shipped model's latents; everything else is the file's float weights."""
    from xneuralcodec.network.registry import registry_entry, weights_dir
    from xneuralcodec.training import train_v5

    src, weights, out, ckpt, parent = _fine_tune_shipped(tmp_path, "hyperprior-v5.1", "2", "--train-only", "decoder",
                                                         "--dec", "32,16,8,4")
    assert tuple(ckpt["config"]["dec"]) == (32, 16, 8, 4)
    _assert_only_trained_moved(ckpt, parent, train_v5.DECODER_PARAMETERS)
    with pytest.raises(ValueError, match="--train-only decoder"):
        train_v5.main(["--data", str(src), "--regional", "--no-g04", "--steps", "1", "--out", str(tmp_path / "x"),
                       "--init-from", str(weights), "--dec", "32,16,8,4"])
    # exported onto the parent's entropy model: the same latents and bits, decoded by the new g_s
    from xneuralcodec.codec.engine import Engine
    from xneuralcodec.format import bitstream
    from xneuralcodec.network.weights import load_model, load_weights_file
    from xneuralcodec.options import CodecOptions
    from xneuralcodec.training import export

    assert export.main(["--checkpoint", str(out / "checkpoint.pt"), "--name", "light", "--weights-dir",
                        str(tmp_path / "w"), "--entropy-from", str(weights), "--no-register"]) == 0
    light = load_weights_file(tmp_path / "w" / "light.safetensors")
    plane, grid = load_plane("gfs_2.5deg_t500")
    options = CodecOptions(grid=grid.to_config(), quality=4, model="hyperprior-v5.1")
    ours, theirs = (bitstream.unpack(Engine(m).encode(plane, options)) for m in (light, load_model("hyperprior-v5.1")))
    assert ours.planes[0].words == theirs.planes[0].words and ours.weights_sha256 != theirs.weights_sha256
    with pytest.raises(ValueError, match="not a decoder-only fine-tune"):
        export.main(["--checkpoint", str(out / "checkpoint.pt"), "--name", "x", "--weights-dir", str(tmp_path / "w"),
                     "--entropy-from", str(weights_dir() / registry_entry("hyperprior-v5")["file"]), "--no-register"])


def test_train_v5_entropy_only_with_new_widths_keeps_every_decoded_value(tmp_path):
    """``--init-from <v5 weights> --train-only entropy --entropy-widths ...``: a lighter entropy
    model starts fresh and learns on the rate alone; the encoder, decoder and gains are the
    file's, so every validation plane decodes to the same values while its bits change."""
    from xneuralcodec.training import train_v5

    src, weights, out, ckpt, parent = _fine_tune_shipped(tmp_path, "hyperprior-v5.2", "3", "--train-only", "entropy",
                                                         "--entropy-widths", "16,24,8,32", "--lr", "1e-2",
                                                         "--warmup", "1")
    assert (ckpt["config"]["hyper_up"], ckpt["config"]["psi"], ckpt["config"]["ctx"], ckpt["config"]["ep_hidden"]) == \
        (16, 24, 8, 32)
    _assert_only_trained_moved(ckpt, parent, train_v5.ENTROPY_PARAMETERS)
    assert not torch.equal(ckpt["model"]["h_a.0.conv.weight"], torch.from_numpy(parent["float.h_a.0.conv.weight"]))
    rows = _validation_rows(out)
    first = {(r["plane"], r["q"]): r for r in rows if r["step"] == 0}
    last = {(r["plane"], r["q"]): r for r in rows if r["step"] == 3 and r["weights"] == "live"}
    assert first and first.keys() == last.keys()
    assert all(last[k]["mae"] == first[k]["mae"] for k in first)
    assert any(last[k]["bpp"] != first[k]["bpp"] for k in first)
    for bad, match in ((["--entropy-widths", "16,24,8", "--train-only", "entropy"], "--entropy-widths as 4"),
                       (["--entropy-widths", "16,24,8,32", "--train-only", "decoder"], "needs --train-only entropy")):
        with pytest.raises(ValueError, match=match):
            train_v5.main(["--data", str(src), "--regional", "--no-g04", "--steps", "1", "--out", str(tmp_path / "x"),
                           "--init-from", str(weights), *bad])


def test_validate_weights_lines_up_a_runs_last_ema_pass_with_the_reference():
    from xneuralcodec.training.validate_weights import side_by_side

    reference = [{"plane": "G04:t2m", "q": 4, "mae": 0.40, "share_gt5mae": 0.015}]
    run = [{"step": 5, "weights": "ema", "plane": "G04:t2m", "q": 4, "ratio": 300.0, "mae": 0.50, "share_gt5mae": 0.02},
           {"step": 9, "weights": "live", "plane": "G04:t2m", "q": 4, "ratio": 300.0, "mae": 0.30, "share_gt5mae": 0.0},
           {"step": 9, "weights": "ema", "plane": "G04:t2m", "q": 4, "ratio": 300.0, "mae": 0.41, "share_gt5mae": 0.01}]
    table = side_by_side(reference, run)
    assert "step 9" in table and "| G04:t2m | 4 | 300.0 | 0.4 | 0.41 | +2.5% | 1.50% | 1.00% |" in table


def test_train_v5_validates_under_the_codecs_rounding_of_the_mean():
    """A run's validation rates its latents as the codec will (the fixed-point mean, rounded half
    up), whatever the run trains with: a mean parked at 0.4999 is 1 in the codec and 0 under the
    float mean's rounding, and only the former is what the stream costs."""
    from xneuralcodec.network.model_v5 import HyperpriorV5, ModelV5Config
    from xneuralcodec.training.train_v5 import validate, validation_set

    src = DATA / FILES["gfs_2.5deg_t500"][0]
    if not src.is_file():
        pytest.skip(f"shared data not found: {src}")
    vset = [v for v in validation_set([str(src)], with_g04=False) if v["name"] == "G08:t500"]
    assert len(vset) == 1
    torch.manual_seed(0)
    model = HyperpriorV5(ModelV5Config())
    latent = model.config.latent
    with torch.no_grad():   # park every mean at 0.4999: the two roundings disagree on all of them
        model.ep[-1].conv.weight[:latent] = 0.0
        model.ep[-1].conv.bias[:latent] = 0.4999
    model.codec_means = False
    rows = validate(model, vset, [0, 4])
    assert model.codec_means is False and model.training
    model.codec_means = True
    codec_rows = validate(model, vset, [0, 4])
    assert model.codec_means is True
    assert [r["bpp"] for r in rows] == [r["bpp"] for r in codec_rows]
    # what the float mean's rounding would have logged: cheaper than what the codec pays
    import xneuralcodec.network.model_v5 as model_v5

    codec_round, model_v5._ste_codec_round = model_v5._ste_codec_round, model_v5._ste_round
    try:
        float_rows = validate(model, vset, [0, 4])
    finally:
        model_v5._ste_codec_round = codec_round
    assert all(f["bpp"] < c["bpp"] for f, c in zip(float_rows, codec_rows))
