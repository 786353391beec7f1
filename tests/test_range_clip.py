"""Format v11 range clip (v12 likewise): a conventional plane written for a ``target_mae`` may have its decoded
values clipped to the plane's own (min, max), which moves no value away from the original; the
record stores the range only where the target holds only with it."""

import numpy as np
import pytest

from xneuralcodec import NeuralCodec
from xneuralcodec.codec import planes
from xneuralcodec.coding import conventional
from xneuralcodec.coding.rate_control import PlaneMAE
from xneuralcodec.evaluation.metrics import area_weights
from xneuralcodec.format import bitstream

from .conftest import load_plane
from .test_hostile_chunks import with_crc


def _clipped_tp_chunk():
    """ERA5 1 degree tp at the paper's target (7.28e-6 m) as SPERR / SZ3 without the 16/17 power
    (which the encoder prefers for this field: test_power_transform.py), in a v12 chunk."""
    plane, grid = load_plane("era5_1deg_tp")
    codec = NeuralCodec(grid=grid.to_config(), target_mae=7.28e-6, variable="tp")
    chunk = bitstream.unpack(codec.encode(plane))
    mae = PlaneMAE(plane, area_weights(grid))
    clipped = conventional.best_candidate(plane, np.isfinite(plane), mae, None, 7.28e-6,
                                          conventional.coders_for("default"), try_power=False)
    chunk.planes[0] = planes.conventional(clipped, plane)
    return plane, grid, codec, clipped, bitstream.pack(chunk)


@pytest.mark.usefixtures("without_avif", "plain_interpolation")
def test_precipitation_decodes_without_negative_values_in_fewer_bytes():
    """The coders' ringing around dry areas goes below zero; clipped, the target holds at a
    coarser bound, so the record is smaller than the same search without the clip, and no
    decoded value leaves the original's range."""
    plane, grid, codec, clipped, data = _clipped_tp_chunk()
    assert clipped.clip == (float(plane.min()), float(plane.max()))
    assert bitstream.unpack(data).planes[0].clip == clipped.clip
    back = codec.decode(data)
    assert back.min() >= plane.min() and back.max() <= plane.max()
    mae = PlaneMAE(plane, area_weights(grid))
    assert mae(back) <= 7.28e-6
    unclipped = conventional.best_candidate(plane, np.isfinite(plane), mae, None, 7.28e-6,
                                            conventional.coders_for("default"), clip_to_range=False, try_power=False)
    assert unclipped.clip is None
    assert len(clipped.blob) < 0.95 * len(unclipped.blob)


def test_smooth_fields_store_no_range():
    """Where the target holds without the clip (ERA5 1 degree t2m), the record carries no range."""
    plane, grid = load_plane("era5_1deg_t2m")
    data = NeuralCodec(grid=grid.to_config(), target_mae=0.2).encode(plane)
    record = bitstream.unpack(data).planes[0]
    assert record.kind == bitstream.KIND_CONVENTIONAL and record.clip is None


def test_no_clip_with_a_bound_only():
    plane, grid = load_plane("era5_1deg_tp")
    data = NeuralCodec(grid=grid.to_config(), max_abs_error=1.5e-5).encode(plane)
    assert all(p.clip is None for p in bitstream.unpack(data).planes)


@pytest.mark.usefixtures("without_avif")
@pytest.mark.parametrize("low, high", [(1.0, 0.0), (np.nan, 1.0), (0.0, np.inf)])
def test_forged_ranges_are_value_errors(low, high):
    plane, grid, codec, clipped, data = _clipped_tp_chunk()
    good = clipped.clip
    at = data.index(np.asarray(good, np.float32).tobytes())
    body = bytearray(data[:-4])
    body[at:at + 8] = np.asarray([low, high], np.float32).tobytes()
    with pytest.raises(ValueError, match="clip range"):
        codec.decode(with_crc(bytes(body)))


@pytest.mark.usefixtures("without_avif")
def test_a_range_cut_short_is_a_value_error():
    plane, grid, codec, clipped, data = _clipped_tp_chunk()
    chunk = bitstream.unpack(data)
    body = bytearray(data[:-4])
    # drop the two range values (and the chunk's bytes after the record no longer line up)
    at = data.index(np.asarray(chunk.planes[0].clip, np.float32).tobytes())
    del body[at:at + 8]
    with pytest.raises(ValueError, match="not a valid xneuralcodec chunk"):
        codec.decode(with_crc(bytes(body)))
