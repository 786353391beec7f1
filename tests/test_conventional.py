"""Conventional planes (format v7, EBCC since v8): SZ3 / SPERR / EBCC records where they beat
the network's record under the same promise (issue 16)."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from xneuralcodec import NeuralCodec
from xneuralcodec.coding import avif_coder, coder_framing, conventional, latitude_weighting, orographic_prediction
from xneuralcodec.evaluation.metrics import weighted_errors
from xneuralcodec.format import bitstream

from .conftest import load_plane


def _mae(plane, back, grid):
    return weighted_errors(plane, back, grid)["mae"]


def test_tight_target_picks_a_conventional_plane_no_larger_than_its_coder_alone():
    """At half the paper's t2m target on ERA5 1 degree the network record loses (issue 16):
    the chunk holds a conventional plane, meets the target, and is no larger than the
    network-only chunk."""
    plane, grid = load_plane("era5_1deg_t2m")
    codec = NeuralCodec(grid=grid.to_config(), target_mae=0.2, variable="t2m")
    data = codec.encode(plane)
    record = bitstream.unpack(data).planes[0]
    assert record.kind == bitstream.KIND_CONVENTIONAL and record.coder in conventional.NAMES
    # within 10%: JPEG 2000's rate control is a staircase here (0.17.0: ratio 21.17 gave 0.1937 K, 21.70
    # missed the target), AV1's quality steps too where the unit is finer than 12 bits allow (0.24.0,
    # tune=ssim: 23.46x at 0.1874 K, where psnr's record was 23.38x at 0.1929 K), and the search stops
    # after its probes
    assert 0.9 * 0.2 < _mae(plane, codec.decode(data), grid) <= 0.2
    neural_only = NeuralCodec(grid=grid.to_config(), target_mae=0.2, variable="t2m", conventional=False).encode(plane)
    assert bitstream.unpack(neural_only).planes[0].kind == bitstream.KIND_NEURAL
    assert len(data) < len(neural_only)
    if record.coder == conventional.AVIF:
        # format v16: AV1's payload without the AVIF container the decoder rebuilds (avif_coder.py)
        assert not record.short_frame
        alone = record.words
        assert avif_coder.decode(alone, plane.shape, plane.dtype).shape == plane.shape
    else:
        # format v11: the record keeps the coder's stream without the frame the chunk header makes
        # redundant, so the whole chunk is smaller than the coder's own stream (coder_framing.py)
        assert record.short_frame
        alone = coder_framing.rebuild(record.coder, record.words, plane.shape, plane.dtype)
    back = conventional.decode(record.coder, alone, plane.shape, plane.dtype, power=record.power, latitude=record.latitude,
                               orography=record.orography)
    back = np.clip(back, *record.clip) if record.clip else back
    assert np.array_equal(back.astype(plane.dtype), codec.decode(data))
    # (a v13 latitude weighting adds its 20 parameter bytes to the record, a v14 orographic prediction
    # its 11, not to the frame)
    if record.coder != conventional.AVIF:
        assert (len(data) - (latitude_weighting.SIZE if record.latitude else 0)
                - (orographic_prediction.SIZE if record.orography else 0)) < len(alone)


@pytest.mark.parametrize("key, bound", [("gfs_2.5deg_t500", 0.4), ("era5_1deg_msl", 100.0)])
def test_max_abs_error_holds_with_nan_holes(key, bound):
    plane, grid = load_plane(key)
    plane = plane.copy()
    plane[10:20, 30:60] = np.nan
    codec = NeuralCodec(grid=grid.to_config(), max_abs_error=bound)
    data = codec.encode(plane)
    back = codec.decode(data)
    assert np.array_equal(np.isnan(back), np.isnan(plane))
    finite = ~np.isnan(plane)
    assert np.abs(back[finite].astype(np.float64) - plane[finite]).max() <= bound
    assert bitstream.unpack(data).planes[0].kind in (bitstream.KIND_CONVENTIONAL, bitstream.KIND_NEURAL)


def test_switched_off_writes_no_conventional_plane():
    plane, grid = load_plane("gfs_2.5deg_t500")
    data = NeuralCodec(grid=grid.to_config(), max_abs_error=0.2, conventional=False).encode(plane)
    assert all(p.kind != bitstream.KIND_CONVENTIONAL for p in bitstream.unpack(data).planes)


def test_option_is_validated_and_stored():
    with pytest.raises(TypeError, match="conventional"):
        NeuralCodec(conventional="yes")
    codec = NeuralCodec(conventional=False)
    assert codec.get_config()["conventional"] is False
    assert NeuralCodec.from_config(codec.get_config()) == codec


def _rebuild(chunk) -> bytes:
    return bitstream.pack(chunk)


def test_forged_conventional_records_are_value_errors():
    plane, grid = load_plane("gfs_2.5deg_t500")
    codec = NeuralCodec(grid=grid.to_config(), target_mae=0.1)
    chunk = bitstream.unpack(codec.encode(plane))
    assert chunk.planes[0].kind == bitstream.KIND_CONVENTIONAL
    rec = chunk.planes[0]
    rec.coder = 9                                           # unknown coder id
    with pytest.raises(ValueError, match="unknown conventional coder|conventional plane record|orographic prediction"):
        codec.decode(_rebuild(chunk))
    rec.coder = conventional.SZ3 if rec.coder != conventional.SZ3 else conventional.SPERR
    rec.words = bytes(64)                                    # damaged payload
    with pytest.raises(ValueError, match="not a valid xneuralcodec chunk"):
        codec.decode(_rebuild(chunk))
    rec.coder = 0                                            # a conventional kind needs a coder
    data = _rebuild(chunk)
    with pytest.raises(ValueError, match="conventional plane record"):
        codec.decode(data)


def test_older_versions_cannot_hold_conventional_planes():
    """A v6 chunk (0.6.0) with kind 4 is refused: the kind did not exist."""
    plane, grid = load_plane("gfs_2.5deg_t500")
    data = bytearray(NeuralCodec(grid=grid.to_config(), target_mae=0.1).encode(plane)[:-4])
    struct.pack_into("<H", data, 4, 6)
    with pytest.raises(ValueError, match="not a valid xneuralcodec chunk"):
        bitstream.unpack(bytes(data) + struct.pack("<I", zlib.crc32(bytes(data))))


def test_v7_chunks_cannot_hold_ebcc_planes():
    """EBCC (coder 3) came with format v8: a 0.7.0 chunk naming it is refused."""
    path = Path(__file__).parent / "golden" / "v0.7.0" / "2.5deg_conventional_target_mae.bin"
    data = bytearray(path.read_bytes()[:-4])
    coder_at = bitstream._HEAD7.size + 4 * 2 + bitstream._TAIL7.size + 1      # first record: kind, then coder
    assert data[coder_at] in (conventional.SZ3, conventional.SPERR)
    data[coder_at] = conventional.EBCC
    with pytest.raises(ValueError, match="conventional plane record"):
        bitstream.unpack(bytes(data) + struct.pack("<I", zlib.crc32(bytes(data))))


def test_each_effort_adds_coders_and_never_a_larger_record():
    """On ERA5 1 degree t2m at the paper's target: effort="fast" codes with SPERR's step mode (and
    the interpolation coder, SZ3); "default" adds EBCC's JPEG 2000 layer alone, searched by its
    compression ratio, which won there (0.16.0: 43.9x against 40.4x for the latitude-weighted
    SPERR record), and from 0.21.0 AV1's intra coder, which wins on this plane (51.6x against
    49.8x for JPEG 2000); "max" adds EBCC with a bound and latent refinement and is never larger.
    Every target holds and every chunk decodes."""
    plane, grid = load_plane("era5_1deg_t2m")
    plane = plane.astype(np.float32)
    sizes = {}
    for effort in ("fast", "default", "max"):
        codec = NeuralCodec(grid=grid.to_config(), target_mae=0.4, effort=effort)
        data = codec.encode(plane)
        assert _mae(plane, codec.decode(data), grid) <= 0.4
        sizes[effort] = len(data), bitstream.unpack(data).planes[0].coder
    assert sizes["fast"][1] not in (conventional.EBCC, conventional.AVIF), sizes
    assert sizes["default"][1] in (conventional.EBCC, conventional.AVIF), sizes
    assert sizes["default"][0] < 0.95 * sizes["fast"][0], sizes
    assert sizes["max"][0] <= sizes["default"][0], sizes
    with pytest.raises(ValueError, match="effort"):
        NeuralCodec(effort="extreme")
    with pytest.raises(TypeError, match="effort"):
        NeuralCodec(effort=2)
    assert NeuralCodec(effort="max").get_config()["effort"] == "max"


def test_the_jpeg2000_layer_is_searched_only_without_a_bound(monkeypatch):
    """EBCC's JPEG 2000 layer alone bounds no value: with a max_abs_error it is not among the
    coders, with a target_mae only it follows SPERR's step mode (whose record gives its first
    ratio), and float64 or small planes are not even probed with it (EBCC codes float32 of at
    least 32 x 32)."""
    assert conventional.J2K not in conventional.coders_for("default", 1.0)
    assert conventional.J2K not in conventional.coders_for("fast")
    coders = conventional.coders_for("default")
    assert coders.index(conventional.J2K) == coders.index(conventional.SPERR_Q) + 1
    plane, grid = load_plane("era5_1deg_t2m")
    data = NeuralCodec(grid=grid.to_config(), target_mae=0.4).encode(plane.astype(np.float64))
    assert bitstream.unpack(data).planes[0].coder != conventional.EBCC
    probed = []
    real_encode = conventional.encode
    monkeypatch.setattr(conventional, "encode", lambda coder, *a: probed.append(coder) or real_encode(coder, *a))
    for values in (np.ascontiguousarray(plane[:31, :64]), plane[:64, :64].astype(np.float64)):   # small; float64
        found = conventional.best_candidate(values, np.isfinite(values), lambda d: float(np.abs(d - values).mean()),
                                            None, 0.4, conventional.coders_for("default"))
        assert found is not None and found.coder != conventional.EBCC
    assert conventional.SPERR_Q in probed and conventional.J2K not in probed
    conventional.best_candidate(plane[:64, :64], np.isfinite(plane[:64, :64]),
                                lambda d: float(np.abs(d - plane[:64, :64]).mean()), None, 0.4,
                                conventional.coders_for("default"))
    assert conventional.J2K in probed   # a float32 plane of 64 x 64 is


def test_shared_coders_are_safe_across_threads():
    """Zarr and dask call one codec from many threads; the cached SZ3 / SPERR instances must
    give the same bytes and values as one thread does."""
    import concurrent.futures

    plane, _ = load_plane("gfs_2.5deg_t500")
    planes = [(plane + 0.37 * i).astype(np.float32) for i in range(8)]
    jobs = [(coder, p) for coder in (conventional.SPERR, conventional.SZ3, conventional.EBCC) for p in planes]
    alone = [conventional.encode(coder, p, 0.3) for coder, p in jobs]

    def job(k):
        coder, p = jobs[k]
        blob = conventional.encode(coder, p, 0.3)
        return blob, float(np.abs(conventional.decode(coder, blob, p.shape, p.dtype) - p).max())

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(job, range(len(jobs))))
    assert [blob for blob, _ in together] == alone
    assert max(err for _, err in together) <= 0.3


def test_sperr_takes_its_step_mode_for_an_mae_target_and_its_bounded_mode_for_a_bound(monkeypatch):
    """Format v9: without max_abs_error SPERR runs in its quantisation-step mode (coder 4,
    1-4% smaller at equal MAE), which bounds no single value; with a bound it keeps the
    point-wise error mode. Both decode with SPERR's one decoder; a v8 chunk naming coder 4
    is refused (the id came with v9). (SPERR alone here: with the bound the interpolation
    coder's record is smaller still, test_interpolation_coder.py.)"""
    monkeypatch.setattr(conventional, "DEFAULT_CODERS", (conventional.SPERR,))
    plane, grid = load_plane("gfs_2.5deg_t500")
    mae_only = NeuralCodec(grid=grid.to_config(), target_mae=0.1, effort="fast").encode(plane)   # no JPEG 2000
    bounded = NeuralCodec(grid=grid.to_config(), target_mae=0.1, max_abs_error=0.4).encode(plane)
    assert bitstream.unpack(mae_only).planes[0].coder == conventional.SPERR_Q
    assert bitstream.unpack(bounded).planes[0].coder == conventional.SPERR
    pwe_alone = conventional.best_candidate(plane, np.isfinite(plane), lambda d: _mae(plane, d, grid), None, 0.1,
                                            (conventional.SPERR,))
    assert len(mae_only) < len(pwe_alone.blob)    # smaller than the bounded mode at the same target
    assert _mae(plane, NeuralCodec(grid=grid.to_config()).decode(mae_only), grid) <= 0.1
    back = NeuralCodec(grid=grid.to_config()).decode(bounded)
    assert np.abs(back - plane).max() <= 0.4 and _mae(plane, back, grid) <= 0.1
    data = bytearray(mae_only[:-4])
    struct.pack_into("<H", data, 4, 8)
    with pytest.raises(ValueError, match="conventional plane record"):
        bitstream.unpack(bytes(data) + struct.pack("<I", zlib.crc32(bytes(data))))


@pytest.mark.parametrize("coder", [conventional.SZ3, conventional.SPERR, conventional.EBCC],
                         ids=lambda c: conventional.NAMES[c])
def test_a_damaged_stream_does_not_break_later_decodes(coder):
    """A WebAssembly trap on damaged bytes (SZ3 aborts inside its decoder) left the shared
    instance unusable: in 0.13.0, after one damaged SZ3 stream most valid ones failed until the
    process restarted. Each failure now discards the instances, so the valid stream after every
    damaged one decodes."""
    plane, _ = load_plane("gfs_2.5deg_t500")
    good = conventional.encode(coder, plane, 0.3)
    expected = conventional.decode(coder, good, plane.shape, plane.dtype)
    rng = np.random.default_rng(1)
    failures = 0
    for _ in range(60):
        bad = bytearray(good)
        for _ in range(3):
            bad[int(rng.integers(len(bad)))] = int(rng.integers(256))
        try:
            conventional.decode(coder, bytes(bad), plane.shape, plane.dtype)
        except ValueError:
            failures += 1
        assert np.array_equal(conventional.decode(coder, good, plane.shape, plane.dtype), expected)
    assert failures > 0    # the damage did reach the decoder


def test_the_whole_chunk_decides_between_a_network_and_a_conventional_record():
    """ERA5 1 degree msl at 50 Pa with effort="max": the refined network record's sections are
    smaller than the JPEG 2000 record's, but a chunk holding it also carries the network record's
    fields and the chunk's network header (measured in 0.16.0: 1237 bytes against 1217). The
    encoder keeps the smaller chunk, so here "max" writes no more than the default."""
    plane, grid = load_plane("era5_1deg_msl")
    sizes = {}
    for effort in ("default", "max"):
        codec = NeuralCodec(grid=grid.to_config(), target_mae=50.0, variable="msl", effort=effort)
        data = codec.encode(plane)
        assert _mae(plane, codec.decode(data), grid) <= 50.0
        sizes[effort] = len(data)
    assert sizes["max"] <= sizes["default"], sizes
