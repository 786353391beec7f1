"""Hostile chunks (issue 19): forged sizes are refused before allocating, reserved header
bytes are checked, and a bounded fuzz target mutates real chunks on every CI run."""

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from xneuralcodec import NeuralCodec, NeuralSerializer
from xneuralcodec.codec import planes as plane_records
from xneuralcodec.format import bitstream

from .conftest import load_plane

GRID = {"nlat": 73, "nlon": 144, "lat_first": 90.0, "lon_first": 0.0}


@pytest.fixture(scope="module")
def coded():
    plane, _ = load_plane("gfs_2.5deg_t500")
    codec = NeuralCodec(grid=GRID)
    return codec, plane, codec.encode(plane)


def forged_constant_chunk(codec, n_planes: int, dtype=np.float64) -> bytes:
    """A valid chunk of ``n_planes`` constant planes: 37 bytes each, claiming n x 73 x 144 values."""
    real = bitstream.unpack(codec.encode(np.full((73, 144), 1.5, dtype=dtype)))
    real.planes = real.planes * n_planes
    real.shape = (n_planes, 73, 144)
    return bitstream.pack(real)


def refuse_allocation(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the decoder allocated the output before checking the claimed size")

    monkeypatch.setattr(plane_records, "start_planes", fail)


def test_default_limit_refuses_a_small_chunk_claiming_gigabytes(coded):
    from xneuralcodec.format import limits

    codec, _, _ = coded
    n = limits.DEFAULT_MAX_CHUNK_BYTES // (73 * 144 * 8) + 1  # one plane over the default limit
    blob = forged_constant_chunk(codec, n)
    assert len(blob) < 40 * n + 200
    with pytest.raises(ValueError, match="XNEURALCODEC_MAX_CHUNK_BYTES"):
        bitstream.unpack(blob)


def test_the_limit_can_be_raised_and_lowered_by_the_user(coded, monkeypatch):
    codec, _, _ = coded
    blob = forged_constant_chunk(codec, 20)  # 1.7 MB of float64
    monkeypatch.setenv("XNEURALCODEC_MAX_CHUNK_BYTES", str(10 ** 6))
    refuse_allocation(monkeypatch)
    with pytest.raises(ValueError, match="larger than the decode limit of 1000000 bytes"):
        codec.decode(blob)
    monkeypatch.undo()
    monkeypatch.setenv("XNEURALCODEC_MAX_CHUNK_BYTES", str(2 * 10 ** 6))
    assert codec.decode(blob).shape == (20, 73, 144)
    monkeypatch.setenv("XNEURALCODEC_MAX_CHUNK_BYTES", "lots")
    with pytest.raises(ValueError, match="XNEURALCODEC_MAX_CHUNK_BYTES"):
        codec.decode(blob)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_planes=st.integers(1, 12), limit_planes=st.integers(1, 12), dtype=st.sampled_from([np.float32, np.float64]))
def test_any_claim_above_the_limit_is_refused_and_any_below_decodes(coded, monkeypatch, n_planes, limit_planes, dtype):
    codec, _, _ = coded
    blob = forged_constant_chunk(codec, n_planes, dtype)
    plane_bytes = 73 * 144 * np.dtype(dtype).itemsize
    with monkeypatch.context() as patch:  # one example's limit must not outlive it
        patch.setenv("XNEURALCODEC_MAX_CHUNK_BYTES", str(limit_planes * plane_bytes))
        if n_planes > limit_planes:
            with pytest.raises(ValueError, match="decode limit"):
                codec.decode(blob)
        else:
            assert codec.decode(blob).shape == (n_planes, 73, 144)


def test_out_buffer_capacity_is_checked_before_decoding(coded, monkeypatch):
    codec, _, _ = coded
    blob = forged_constant_chunk(codec, 3)
    refuse_allocation(monkeypatch)
    with pytest.raises(ValueError, match="out="):
        codec.decode(blob, out=np.empty((1, 73, 144)))


def test_zarr3_serializer_checks_the_chunk_spec_before_allocating(coded, monkeypatch):
    import asyncio

    from zarr.core.array_spec import ArrayConfig, ArraySpec
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.dtype import Float64

    codec, _, _ = coded
    blob = forged_constant_chunk(codec, 3)
    spec = ArraySpec(shape=(1, 73, 144), dtype=Float64(), fill_value=0.0,
                     config=ArrayConfig(order="C", write_empty_chunks=True), prototype=default_buffer_prototype())
    serializer = NeuralSerializer(grid=GRID)
    refuse_allocation(monkeypatch)
    with pytest.raises(ValueError, match=r"claims shape \(3, 73, 144\).*\(1, 73, 144\)"):
        asyncio.run(serializer._decode_single(default_buffer_prototype().buffer.from_bytes(blob), spec))


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def spliced(chunk: bytes, old: bytes, new: bytes) -> bytes:
    """The chunk with its one run of ``old`` bytes (a record's packed parameters, say) replaced by
    ``new``, checksum recomputed: what a forged but well-framed chunk looks like."""
    assert chunk.count(old) == 1
    at = chunk.index(old)
    return with_crc(chunk[:at] + new + chunk[at + len(old):-4])


def as_version(chunk: bytes, version: int) -> bytes:
    """A chunk this release wrote, relabelled as an older format ``version`` (checksum
    recomputed): whether that version's reader refuses the bits it did not have yet. The one
    place that knows the current version, so a format bump edits no test."""
    assert struct.unpack_from("<H", chunk, 4)[0] == bitstream.VERSION
    return with_crc(bytes(chunk[:4]) + struct.pack("<H", version) + bytes(chunk[6:-4]))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.sampled_from([42, 43]), value=st.integers(1, 255))
def test_reserved_header_bytes_of_v6_chunks_must_be_zero(offset, value):
    """Versions 1 to 6 had reserved header bytes (offsets 42, 43); v7 has none."""
    path = Path(__file__).parent / "golden" / "v0.6.0" / "2.5deg_q0.bin"
    codec = NeuralCodec.from_config(json.loads(path.with_suffix(".json").read_text()))
    body = bytearray(path.read_bytes()[:-4])
    body[offset] = value
    with pytest.raises(ValueError, match="reserved"):
        codec.decode(with_crc(bytes(body)))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.integers(1, 0xFF).filter(lambda v: v & ~7))
def test_unknown_flags_are_refused(coded, value):
    """v10's flags byte (offset 6) knows bits 0 (network fields), 1 (target_mae) and 2
    (single-precision back projection, only beside a Jacobi one) only."""
    codec, _, blob = coded
    body = bytearray(blob[:-4])
    body[6] |= value
    with pytest.raises(ValueError, match="unknown flags"):
        codec.decode(with_crc(bytes(body)))
    body = bytearray(blob[:-4])
    body[6] |= 4
    if body[6] & 1:   # these chunks back-project by LSMR, which has no single-precision form
        with pytest.raises(ValueError, match="flagged with an LSMR one"):
            codec.decode(with_crc(bytes(body)))
    else:
        with pytest.raises(ValueError, match="without network planes"):
            codec.decode(with_crc(bytes(body)))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.integers(1, 0xFFFF))
def test_unknown_flags_of_v7_chunks_are_refused(value):
    path = Path(__file__).parent / "golden" / "v0.7.0" / "2.5deg_q0.bin"
    codec = NeuralCodec.from_config(json.loads(path.with_suffix(".json").read_text()))
    body = bytearray(path.read_bytes()[:-4])
    struct.pack_into("<H", body, 6, value)
    with pytest.raises(ValueError, match="unknown flags"):
        codec.decode(with_crc(bytes(body)))


def test_network_fields_and_network_planes_go_together(coded):
    """A v8 chunk that drops its network flag but keeps a network plane (or the reverse) is refused."""
    codec, _, blob = coded
    body = bytearray(blob[:-4])
    assert body[6] & 1
    body[6] &= ~1
    with pytest.raises(ValueError, match="not a valid xneuralcodec chunk"):
        codec.decode(with_crc(bytes(body)))


# -- the fuzz target: real chunks, mutated past the checksum --------------------------------

@pytest.fixture(scope="module")
def seeds():
    """(codec, chunk) pairs covering the plane kinds (network, all NaN, constant, lossless, scaled)."""
    plane, _ = load_plane("gfs_2.5deg_t500")
    holed = plane.copy()
    holed[5:20, 30:60] = np.nan
    mixed = np.stack([plane, np.full_like(plane, np.nan), np.full_like(plane, 250.0), holed])
    cases = [
        (NeuralCodec(grid=GRID, quality=0), mixed),
        (NeuralCodec(grid=GRID, quality=2, max_abs_error=0.3), plane.astype(np.float64)),
        (NeuralCodec(grid=GRID, max_abs_error=1e-12), plane.astype(np.float64)[None]),  # lossless (v6)
        (NeuralCodec(grid=GRID), plane.astype(np.float64) * 1e-50),                     # scaled (v6)
        (NeuralCodec(grid=GRID, target_mae=0.3), holed),             # SPERR / SZ3, no network fields (v8)
    ]
    return [(codec, codec.encode(arr)) for codec, arr in cases]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_decoder_on_mutated_real_chunks(seeds, data, monkeypatch):
    """Any mutation decodes to the claimed shape or raises ValueError / TypeError: never another
    exception, and never an allocation above the (lowered) limit."""
    which = data.draw(st.integers(0, len(seeds) - 1))
    codec, original = seeds[which]
    blob = bytearray(original)
    head = 72 + 8 * blob[41] if blob[4] < 7 else 48   # legacy header, or v7 / v8's (<= 46 bytes)
    for _ in range(data.draw(st.integers(1, 4))):
        # header and plane records, or anywhere in the payloads (the magic is tested elsewhere)
        pos = data.draw(st.one_of(st.integers(4, head + 40 * 4), st.integers(head, len(blob) - 5)))
        blob[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.integers(0, 3)) == 0:
        blob = blob[:len(blob) - data.draw(st.integers(1, len(blob)))]
    damaged = bytes(blob) if data.draw(st.integers(0, 3)) == 0 else with_crc(bytes(blob[:-4]))  # mostly past the CRC
    try:
        with monkeypatch.context() as patch:
            patch.setenv("XNEURALCODEC_MAX_CHUNK_BYTES", str(64 * 2 ** 20))
            back = codec.decode(damaged)
    except (ValueError, TypeError) as exc:
        event(f"refused: {str(exc)[:40]}")
        return
    event("decoded")
    claimed = bitstream.unpack(damaged)
    assert back.shape == claimed.shape and back.dtype == claimed.dtype
    assert back.nbytes <= 64 * 2 ** 20


def test_v8_records_that_run_out_are_refused():
    """Two planes claimed, the first record (a constant) uses every byte left: the reader stops
    at the end of the records instead of reading the checksum as the next plane's kind."""
    body = (bitstream._HEAD8.pack(bitstream.MAGIC, 8, 0, 1, 3) + bitstream.varints(2, 4, 4)
            + bytes([bitstream.KIND_CONSTANT]) + bitstream._CONSTANT8.pack(0, 1.5) + bitstream.varints(0))
    with pytest.raises(ValueError, match="plane records cut short"):
        bitstream.unpack(with_crc(body))
