"""Format v11 short frames (coding/coder_framing.py): a conventional record drops the bytes of
the numcodecs-wasm frame that the chunk header already holds, and the decoder rebuilds them."""

import struct

import numpy as np
import pytest

from xneuralcodec import NeuralCodec
from xneuralcodec.coding import coder_framing, conventional, latitude_weighting
from xneuralcodec.format import bitstream

from .conftest import load_plane
from .test_hostile_chunks import with_crc

CODERS = (conventional.SZ3, conventional.SPERR, conventional.SPERR_Q, conventional.EBCC)


def _field(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 3, shape[0]), np.linspace(0, 6, shape[1]), indexing="ij")
    return (280 + 10 * np.sin(y) * np.cos(x) + rng.normal(0, 0.3, shape)).astype(dtype)


# (73, 144): one SPERR chunk; (300, 600): several, whose lengths stay in the short frame
@pytest.mark.parametrize("shape", [(73, 144), (300, 600), (40, 33)])
@pytest.mark.parametrize("coder, dtype", [(c, d) for c in CODERS for d in (np.float32, np.float64)
                                          if not (c == conventional.EBCC and d == np.float64)],   # EBCC: float32 only
                         ids=lambda v: conventional.NAMES[v] if isinstance(v, int) else np.dtype(v).name)
def test_short_frame_rebuilds_the_coders_exact_stream(coder, dtype, shape):
    plane = _field(shape, dtype)
    blob = conventional.encode(coder, plane, 0.5)
    short = coder_framing.shorten(coder, blob, shape, dtype)
    assert short is not None
    saved = len(blob) - len(short)
    assert saved >= {conventional.SZ3: 10, conventional.SPERR: 27, conventional.SPERR_Q: 27, conventional.EBCC: 100}[coder]
    assert coder_framing.rebuild(coder, short, shape, dtype) == blob
    assert np.array_equal(conventional.decode(coder, short, shape, dtype, short_frame=True),
                          conventional.decode(coder, blob, shape, dtype))


def test_a_stream_framed_otherwise_is_kept_whole():
    """shorten() gives None (the record then stores the stream as written) where the frame is
    not the one it rebuilds: another shape, another dtype, another coder, a damaged head."""
    plane = _field((73, 144), np.float32)
    blob = conventional.encode(conventional.SPERR_Q, plane, 0.5)
    assert coder_framing.shorten(conventional.SPERR_Q, blob, (72, 144), np.float32) is None
    assert coder_framing.shorten(conventional.SPERR_Q, blob, (73, 144), np.float64) is None
    assert coder_framing.shorten(conventional.SZ3, blob, (73, 144), np.float32) is None
    assert coder_framing.shorten(conventional.SPERR_Q, b"\x07" + blob[1:], (73, 144), np.float32) is None
    assert coder_framing.shorten(99, blob, (73, 144), np.float32) is None


@pytest.mark.usefixtures("without_avif")   # 0.22.0's AV1 search wins this plane
def test_v11_chunk_overhead_is_smaller_than_the_frame_it_drops():
    """GFS 2.5 degree t500 at 0.1 K (a SPERR plane without AV1): the v11 chunk carries 21 bytes besides its
    record's words (37 in v10; 8 more with a clip range, 20 more with a v13 latitude weighting),
    while the words are 27 or more bytes shorter than SPERR's own stream."""
    plane, grid = load_plane("gfs_2.5deg_t500")
    codec = NeuralCodec(grid=grid.to_config(), target_mae=0.1)
    data = codec.encode(plane)
    chunk = bitstream.unpack(data)
    record = chunk.planes[0]
    assert chunk.version >= 11 and record.kind == bitstream.KIND_CONVENTIONAL and record.short_frame
    assert chunk.target_mae == 0.0      # kept only beside network planes (the config holds it)
    assert len(data) - len(record.words) == 21 + (8 if record.clip else 0) + (
        latitude_weighting.SIZE if record.latitude else 0)
    alone = coder_framing.rebuild(record.coder, record.words, plane.shape, plane.dtype)
    assert len(alone) - len(record.words) >= 27


def _forge(data: bytes, at: int, value: int) -> bytes:
    body = bytearray(data[:-4])
    body[at] = value
    return with_crc(bytes(body))


@pytest.mark.usefixtures("without_avif")   # (a SPERR record, as above)
def test_forged_short_frames_are_value_errors():
    """A short-frame bit on a whole stream, a short frame cut to nothing, or a SPERR flag byte
    flipped to 'several chunks' all end as ValueError, never a crash."""
    plane, grid = load_plane("gfs_2.5deg_t500")
    codec = NeuralCodec(grid=grid.to_config(), target_mae=0.1)
    chunk = bitstream.unpack(codec.encode(plane))
    record = chunk.planes[0]
    whole = coder_framing.rebuild(record.coder, record.words, plane.shape, plane.dtype)
    record.words = whole                      # the whole stream, flagged as a short frame
    with pytest.raises(ValueError, match="not a valid xneuralcodec chunk"):
        codec.decode(bitstream.pack(chunk))
    record.words = b"\x00"
    with pytest.raises(ValueError, match="not a valid xneuralcodec chunk"):
        codec.decode(bitstream.pack(chunk))
    record.words = coder_framing.shorten(record.coder, whole, plane.shape, plane.dtype)
    good = bitstream.pack(chunk)
    flag_at = good.index(record.words) + 1    # SPERR's flag byte, second of the short frame
    with pytest.raises(ValueError, match="not a valid xneuralcodec chunk"):
        codec.decode(_forge(good, flag_at, good[flag_at] | 0x10))


def test_v10_and_v11_conventional_records_are_not_interchangeable():
    """The record layouts differ: a v9 conventional record holds a positive bound after its
    coder byte, a v11 one none. A v9 chunk relabelled 11, or a v11 chunk relabelled 10 or 8,
    is refused."""
    import pathlib

    old = (pathlib.Path(__file__).parent / "golden" / "v0.11.0" / "2.5deg_conventional_target_mae.bin").read_bytes()
    assert bitstream.unpack(old).version == 9 and bitstream.unpack(old).planes[0].correction_step > 0
    plane, grid = load_plane("gfs_2.5deg_t500")
    new = NeuralCodec(grid=grid.to_config(), target_mae=0.1).encode(plane)
    for data, version in ((old, 11), (new, 10), (new, 8)):
        body = bytearray(data[:-4])
        struct.pack_into("<H", body, 4, version)
        with pytest.raises(ValueError, match="not a valid xneuralcodec chunk"):
            bitstream.unpack(with_crc(bytes(body)))


def test_ebcc_short_frame_with_a_section_before_its_codestream():
    """On the whole ERA5 0.25 degree t2m plane EBCC writes a section between its own fields and
    the JPEG 2000 codestream (1,841 bytes at this bound; none on the smaller planes above): the
    short frame finds the codestream after it, and the plane decodes the same (one EBCC encode
    of this plane takes ~10 s)."""
    plane, _ = load_plane("era5_0.25deg")
    blob = conventional.encode(conventional.EBCC, plane, 0.5)
    at = blob.index(b"EBCC")
    assert struct.unpack_from("<Q", blob, at + 32)[0] > 0
    short = coder_framing.shorten(conventional.EBCC, blob, plane.shape, plane.dtype)
    assert short is not None and len(blob) - len(short) >= 236
    assert coder_framing.rebuild(conventional.EBCC, short, plane.shape, plane.dtype) == blob
    coder_framing.check_ebcc(blob, plane.shape, plane.dtype)
    with pytest.raises(ValueError, match="EBCC stream's header"):
        coder_framing.check_ebcc(blob, (plane.shape[0] - 1, plane.shape[1]), plane.dtype)
