"""Format v15: the network codes 2 m temperature minus its orographic prediction (the terrain's
two band-passes, ``coding/orographic_prediction.py``), which the decoder adds back on the lat/lon
grid. The record's kind byte carries bit 3 and the 11 parameter bytes follow its fixed fields.
Everything the encoder measures (rate search, corrections) is against the plane itself."""

import struct

import numpy as np
import pytest

from xneuralcodec import NeuralCodec
from xneuralcodec.codec import planes as plane_records
from xneuralcodec.coding import orographic_prediction
from xneuralcodec.coding.rate_control import PlaneMAE
from xneuralcodec.evaluation.metrics import area_weights
from xneuralcodec.format import bitstream

from .conftest import load_plane
from .test_hostile_chunks import as_version, spliced


def _with_and_without(plane, grid, monkeypatch, **options):
    """(bytes, decoded) with the prediction, then without it (PREDICT_OROGRAPHY off)."""
    codec = NeuralCodec(grid=grid.to_config(), variable="t2m", **options)
    data = codec.encode(plane)
    monkeypatch.setattr(plane_records, "PREDICT_OROGRAPHY", False)
    plain = codec.encode(plane)
    monkeypatch.undo()
    return (data, codec.decode(data)), (plain, codec.decode(plain))


@pytest.mark.parametrize("key", ["era5_0.25deg", "era5_1deg_t2m"])
def test_the_default_codec_codes_2m_temperature_smaller_and_closer(key, monkeypatch):
    """ERA5 t2m at the default quality (3), held-out planes: the network record holds the
    prediction, and the chunk is both smaller and closer to the plane than without it (measured
    for 0.19.0: 0.25 degree 211.9x at 0.314 K -> 239.5x at 0.297 K; 1 degree 91.7x at 0.675 K ->
    102.2x at 0.613 K)."""
    plane, grid = load_plane(key)
    (data, back), (plain, plain_back) = _with_and_without(plane, grid, monkeypatch)
    record = bitstream.unpack(data).planes[0]
    assert record.kind == bitstream.KIND_NEURAL and record.orography is not None
    assert bitstream.unpack(plain).planes[0].orography is None
    a1, a2 = record.orography.coefficients
    assert -0.01 < a1 < 0 and -0.01 < a2 < 0          # K per metre: colder up the mountains
    mae = PlaneMAE(plane, area_weights(grid))
    assert len(data) < 0.95 * len(plain)
    assert mae(back) < 0.97 * mae(plain_back)


def test_a_network_target_is_met_against_the_plane_itself():
    """target_mae with the network alone (conventional=False): the rate search replays the decoder,
    prediction included, so the area-weighted MAE of what a reader gets holds."""
    plane, grid = load_plane("era5_1deg_t2m")
    codec = NeuralCodec(grid=grid.to_config(), variable="t2m", target_mae=0.4, conventional=False)
    data = codec.encode(plane)
    record = bitstream.unpack(data).planes[0]
    assert record.kind == bitstream.KIND_NEURAL and record.orography is not None
    assert PlaneMAE(plane, area_weights(grid))(codec.decode(data)) <= 0.4


def test_max_abs_error_holds_at_every_point_with_a_nan_hole():
    """The correction layer codes what the reconstruction *with* the prediction misses, so every
    finite point is within the bound and the hole stays NaN."""
    plane, grid = load_plane("era5_1deg_t2m")
    plane = plane.copy()
    plane[60:70, 100:140] = np.nan
    codec = NeuralCodec(grid=grid.to_config(), quality=2, max_abs_error=0.5, conventional=False)
    back = codec.decode(codec.encode(plane))
    record = bitstream.unpack(codec.encode(plane)).planes[0]
    assert record.orography is not None and record.correction_step > 0
    hole = np.isnan(plane)
    assert np.array_equal(np.isnan(back), hole)
    assert np.abs(back[~hole].astype(np.float64) - plane[~hole]).max() <= 0.5


def test_fields_the_terrain_explains_little_are_coded_as_before(monkeypatch):
    """ERA5 1 degree msl: the terrain explains ~5% of its band-pass variance, under SURE_EXPLAINED,
    so the network record has no prediction and the bytes are those written without it."""
    plane, grid = load_plane("era5_1deg_msl")
    fitted = orographic_prediction.fit(plane, np.isfinite(plane), grid)
    assert fitted is None or fitted.explained < orographic_prediction.SURE_EXPLAINED
    (data, _), (plain, _) = _with_and_without(plane, grid, monkeypatch)
    assert data == plain


def test_a_v15_record_round_trips_and_forgeries_are_refused():
    """pack(unpack(chunk)) is the chunk; forged parameters, an exponent beside the prediction and
    a v14 label (bit 3 of a kind byte names no kind there) raise ValueError."""
    plane, grid = load_plane("era5_1deg_t2m")
    data = NeuralCodec(grid=grid.to_config(), variable="t2m").encode(plane)
    chunk = bitstream.unpack(data)
    record = chunk.planes[0]
    assert bitstream.pack(chunk) == data
    packed = record.orography.pack()
    for forged in (struct.pack("<BfBBee", 4, 0.0, 2, 16, -0.003, -0.004),
                   struct.pack("<BfBBee", 3, 0.0, 16, 2, -0.003, -0.004),
                   struct.pack("<BfBBee", 3, 0.0, 2, 16, np.nan, -0.004)):
        with pytest.raises(ValueError, match="orographic prediction"):
            bitstream.unpack(spliced(data, packed, forged))
    fixed = struct.pack("<hfffd", 0, record.mean, record.std, record.quality, record.correction_step)
    scaled = struct.pack("<hfffd", 5, record.mean, record.std, record.quality, record.correction_step)
    with pytest.raises(ValueError, match="orographic prediction with exponent 5"):
        bitstream.unpack(spliced(data, fixed, scaled))
    with pytest.raises(ValueError, match="kind 8"):
        bitstream.unpack(as_version(data, 14))
    record.exponent = 5
    with pytest.raises(ValueError, match="cannot carry an orographic prediction"):
        bitstream.pack(chunk)
