"""Conditioning on variable and level: names, levels, the v5 header field and FiLM."""

import random
import struct
import zlib

import numpy as np
import pytest
import torch
import xarray as xr

import xneuralcodec
from xneuralcodec import NeuralCodec
from xneuralcodec.format import bitstream
from xneuralcodec.network.conditioning import (
    Condition,
    condition_vector,
    level_of_index,
    parse_level,
    parse_variable,
    pressure_hpa,
)
from xneuralcodec.network.model import HyperpriorModel, ModelConfig
from xneuralcodec.training.train import plane_condition, random_tilt
from xneuralcodec.variables import KIND_INDEX, UNKNOWN, kind_of


@pytest.mark.parametrize("name, kind", [
    ("t2m", "temperature"), ("T", "temperature"), ("air_temperature", "temperature"),
    ("u_1000hPa", "eastward_wind"), ("v10", "northward_wind"), ("msl", "pressure"), ("prmsl", "pressure"),
    ("z", "geopotential"), ("z500_height", "geopotential_height"), ("gh", "geopotential_height"),
    ("tp", "precipitation"), ("r", "humidity"), ("w", "vertical_velocity"),
])
def test_variable_names_of_the_shared_data_map_to_kinds(name, kind):
    assert kind_of(name) == KIND_INDEX[kind]


@pytest.mark.parametrize("name", [None, "pv", "tozne", "pwat", "sst_anomaly_index"])
def test_other_variables_are_unknown(name):
    assert kind_of(name) == UNKNOWN


def test_levels_in_hpa_and_pa():
    assert pressure_hpa(850) == 850.0
    assert pressure_hpa(85000.0) == 850.0               # no units: large values are Pa
    assert pressure_hpa(500.0, "Pa") == 5.0
    assert pressure_hpa(500.0, "millibars") == 500.0
    assert pressure_hpa(0) == 0.0 and pressure_hpa(float("nan")) == 0.0 and pressure_hpa("850") == 0.0
    assert level_of_index({"time": "2026-03-30", "level": 500.0}) == 500.0
    assert level_of_index({"time": "2026-03-30", "number": 9}) == 0.0


def test_condition_vector_is_one_hot_kind_plus_level():
    vec = condition_vector(KIND_INDEX["temperature"], 500.0)
    assert vec[KIND_INDEX["temperature"]] == 1 and vec[:len(KIND_INDEX)].sum() == 1
    assert vec[-2] == 1 and vec[-1] == pytest.approx(np.log(0.5))
    assert condition_vector(UNKNOWN, 0.0)[-2:].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("kwargs, error", [
    ({"variable": 3}, TypeError), ({"variable": ""}, ValueError), ({"variable": "x" * 201}, ValueError),
    ({"level": "850"}, TypeError), ({"level": True}, TypeError), ({"level": 0}, ValueError),
    ({"level": 2000.0}, ValueError), ({"level": float("nan")}, ValueError),
])
def test_bad_variable_or_level_is_refused(kwargs, error):
    with pytest.raises(error):
        NeuralCodec(**kwargs)
    assert parse_variable(None) is None and parse_level(None) is None


def test_condition_is_stored_in_the_header_and_the_config():
    rng = np.random.default_rng(0)
    plane = (250 + np.cumsum(rng.normal(size=(73, 144)), axis=1)).astype(np.float32)
    codec = NeuralCodec(quality=1, variable="t", level=850.3)
    chunk = bitstream.unpack(codec.encode(plane))
    assert chunk.version == bitstream.VERSION == 17
    assert chunk.variable_kind == KIND_INDEX["temperature"] and chunk.level == float(np.float32(850.3))
    assert codec.get_config()["variable"] == "t" and codec.get_config()["level"] == 850.3
    again = NeuralCodec.from_config(codec.get_config())
    assert again == codec


def _forge(data: bytes, offset: int, packed: bytes) -> bytes:
    body = bytearray(data[:-4])
    body[offset:offset + len(packed)] = packed
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


def test_forged_condition_is_refused():
    plane = np.linspace(0, 1, 73 * 144, dtype=np.float32).reshape(73, 144) ** 2
    data = NeuralCodec(quality=0, variable="z").encode(plane)
    network_at = bitstream._HEAD8.size + 3                            # v8: after the header and the varint shape 73, 144
    kind_at, iterations_at = network_at + 8, network_at + 9           # after the weights prefix
    level_at = network_at + bitstream._NETWORK8.size - 4              # the network fields' last
    assert bitstream.unpack(data).variable_kind == KIND_INDEX["geopotential"]
    with pytest.raises(ValueError, match="unknown variable kind"):
        bitstream.unpack(_forge(data, kind_at, bytes([200])))
    with pytest.raises(ValueError, match="bad level"):
        bitstream.unpack(_forge(data, level_at, struct.pack("<f", float("inf"))))
    with pytest.raises(ValueError, match="bad level"):
        bitstream.unpack(_forge(data, level_at, struct.pack("<f", -5.0)))
    with pytest.raises(ValueError, match="projection iterations 0"):
        bitstream.unpack(_forge(data, iterations_at, bytes([0])))
    # v9: bit 7 names a Jacobi back projection, of at most MAX_JACOBI_STEPS steps
    assert bitstream.unpack(_forge(data, iterations_at, bytes([0x80 | 2]))).projection_method == "jacobi"
    with pytest.raises(ValueError, match="Jacobi back projection steps 9"):
        bitstream.unpack(_forge(data, iterations_at, bytes([0x80 | 9])))
    chunk = bitstream.unpack(data)
    chunk.projection_method, chunk.projection_iterations = "jacobi", 9
    with pytest.raises(ValueError, match="Jacobi one of 0..8 steps"):
        bitstream.pack(chunk)
    # v10: flag 4 asks for a single-precision back projection, which only a Jacobi one may take
    flags_at = 6
    single = _forge(_forge(data, iterations_at, bytes([0x80 | 1])), flags_at, bytes([data[flags_at] | 4]))
    assert bitstream.unpack(single).projection_precision == "float32"
    with pytest.raises(ValueError, match="flagged with an LSMR one"):
        bitstream.unpack(_forge(data, flags_at, bytes([data[flags_at] | 4])))
    with pytest.raises(ValueError, match="unknown flags"):
        bitstream.unpack(_forge(single, 4, struct.pack("<H", 9)))      # the flag is v10's
    chunk = bitstream.unpack(data)
    chunk.projection_precision = "float32"
    with pytest.raises(ValueError, match="float32 Jacobi one"):
        bitstream.pack(chunk)


def test_encoding_helper_tells_each_variable_its_name_and_single_level():
    lat, lon = np.linspace(90, -90, 73), np.arange(0, 360, 2.5)
    values = np.random.default_rng(1).normal(size=(2, 73, 144)).astype(np.float32)
    ds = xr.Dataset(
        {
            "t": (("level", "lat", "lon"), values),                                  # two levels: level unknown
            "field7": (("plev", "lat", "lon"), values[:1], {"standard_name": "geopotential_height"}),
            "foo": (("lat", "lon"), values[1]),
        },
        coords={"lat": lat, "lon": lon, "level": [850.0, 500.0], "plev": ("plev", [50000.0], {"units": "Pa"})},
    )
    enc = xneuralcodec.encoding(ds, zarr_format=2)
    configs = {name: e["compressors"][0].get_config() for name, e in enc.items()}
    assert (configs["t"]["variable"], configs["t"]["level"]) == ("t", None)
    assert (configs["field7"]["variable"], configs["field7"]["level"]) == ("geopotential_height", 500.0)
    assert (configs["foo"]["variable"], configs["foo"]["level"]) == ("foo", None)
    one_level = xneuralcodec.encoding(ds[["t"]].isel(level=[1]), zarr_format=2)
    assert one_level["t"]["compressors"][0].get_config()["level"] == 500.0
    # the user's own options win
    assert xneuralcodec.encoding(ds, variables=["t"], level=700)["t"]["serializer"].options.level == 700.0


def test_film_starts_as_the_identity_and_then_listens_to_the_condition():
    torch.manual_seed(0)
    plain = HyperpriorModel(ModelConfig())
    film = HyperpriorModel(ModelConfig(conditioned=True))
    missing, unexpected = film.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(("film_a.", "film_s.")) for k in missing)
    x = torch.randn(12, 1, 32, 32)
    cond = torch.from_numpy(condition_vector(KIND_INDEX["temperature"], 850.0))[None]
    with torch.no_grad():
        assert torch.equal(plain.analyse(x, None), film.analyse(x, cond))
        for layer in film.film_a:
            layer.linear.weight.normal_()
        other = torch.from_numpy(condition_vector(KIND_INDEX["precipitation"], 0.0))[None]
        assert not torch.allclose(film.analyse(x, cond), film.analyse(x, other))
    with pytest.raises(ValueError, match="needs a condition"):
        film.analyse(x, None)


def test_training_hides_conditions_and_tilts_half_the_spheres():
    rng = random.Random(0)
    plane = type("P", (), {"variable": "t", "index": {"level": 500.0}})()
    vectors = np.stack([plane_condition(plane, rng, 0.25)[0].numpy() for _ in range(400)])
    known_kind = vectors[:, KIND_INDEX["temperature"]].mean()
    known_level = vectors[:, -2].mean()
    assert 0.65 < known_kind < 0.85 and 0.65 < known_level < 0.85
    assert random_tilt(rng, 0.0) is None
    tilts = [random_tilt(rng, 20.0) for _ in range(400)]
    used = [t for t in tilts if t is not None]
    assert 150 < len(used) < 250
    assert all(abs(theta) <= np.radians(20.0) and phi == -psi for psi, theta, phi in used)


def test_condition_of_rounds_the_level_as_the_header_stores_it():
    assert Condition.of("t", 850.3).level == float(np.float32(850.3))
    assert Condition.of(None, None) == Condition()
