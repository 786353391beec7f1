"""Bitstream format v17 (reads v1 to v16 too): one self-describing, checksummed record per Zarr chunk.

Little-endian throughout; the full layout is in docs/format.md. v17 (written since 0.23.0) is
v16 with one more conventional coder, 7 (the interpolation coder with its predictions clipped to
the plane's range, ``coding/interpolation_coder.py``). v16 (0.21.0, 0.22.0) is
v15 with one more conventional coder, 6 (AV1 intra, ``coding/avif_coder.py``). v15 (0.19.0, 0.20.0) is
v14 with one more bit in a plane record's kind byte: bit 3 on a network record, the network
holds the plane minus its orographic prediction, whose parameters (v14's 11 bytes) follow the
record's fixed fields, before its lengths. v14 (0.17.0, 0.18.0) is
v13 with one more bit in a conventional record's coder byte: bit 3, the coder holds the plane
minus its orographic prediction (``coding/orographic_prediction.py``), whose parameters (grid
layout u8, first longitude f32, band radii u8 x 2, coefficients f16 x 2) follow the latitude
weighting's; coder ids keep bits 0-2. v13 (0.16.0) is
v12 with one more bit in a conventional record's coder byte: bit 4, the coder holds the plane
latitude-weighted (``coding/latitude_weighting.py``), whose parameters (first latitude f64,
profile f32 x 3) follow the clip range; coder ids keep bits 0-3. v12 (0.15.0) is
v11 with one more conventional coder, 5 (``coding/interpolation_coder.py``), and one more bit in
a conventional record's coder byte: bit 5, the coder holds the plane's 16/17 power
(``conventional.to_power``; decoded values y become y * y^(1/16)). v11 (0.14.0) is
v10 with smaller conventional planes: their record is ``coder u8 (id in bits 0-5; 0-4 in v12) | (bit 6:)
min, max in the chunk dtype | varints mask_len, words_len`` (no bound: the coders' decoders never read it); bit 7
of the coder byte marks a short frame (the coder's stream without what
``coding/coder_framing.py`` rebuilds from the dtype and shape), bit 6 a clip of the decoded
values to the plane's range (``conventional.clip_range``); ``target_mae`` is written only beside network planes. v10 (0.13.0) is
v9 with one more header flag, FLAG_SINGLE (4): the Jacobi back projection of the network planes
runs in single precision (written for chunks without ``max_abs_error``). v9 (0.11.0, 0.12.0) has
v8's layout; its back projection byte says more (bit 7: 0 LSMR, 1 Jacobi; bits 0-6: the
iterations or steps) and conventional planes may name coder 4 (SPERR's step mode). v8 (written
by 0.8.0 to 0.10.0)::

    header   magic "XNCB" | version u16 | flags u8 | dtype u8 | ndim u8 | shape: ndim varints |
             (flag NETWORK:) weights sha256 [:8] | variable kind u8 | projection iterations u8 |
                             nside u16 | lat_first f64 | lon_first f64 | level f32 |
             (flag TARGET:) target_mae f64
    planes   per plane: kind u8, then what that kind needs:
               network:      exponent i16 | mean f32 | std f32 | quality f32 | correction step f64 |
                             varints mask_len, words_len, escapes, correction_len
               constant:     exponent i16 | value f32 | varint mask_len
               all NaN:      nothing
               lossless:     varint words_len
               conventional: coder u8 | bound f64 | varints mask_len, words_len
    payload  per plane, as v7: NaN mask | words | escapes | correction
    trailer  crc32 of everything before it, u32

v8 changes only the layout: a chunk without network planes (SZ3 / SPERR, constant, lossless,
all NaN) carries no weights, sphere or condition fields, since it decodes without them; a
one-plane SPERR chunk has 37 bytes of overhead instead of v7's 99, which is ~10% of a 1
degree pressure plane at the paper's target. Versions 1 to 7::

    header   magic "XNCB" | version u16 | flags u16 | weights sha256 [32] | dtype u8 | ndim u8 |
             quality u8 (v1, v2; 0 since v3) | reserved u8 | nside u32 | nlat u32 | nlon u32 |
             lat_first f64 | lon_first f64 | shape u64 x ndim | (v3 on:) target_mae f64 |
             (v5:) variable kind u8 | (v7:) projection iterations u8, (v5, v6: reserved 0) |
             reserved u16 | level hPa f32 (conditioning.py; 0: unknown)
    planes   per plane: kind u8 | mean f32 | std f32 | mask_len u32 | words_len u32 | escapes u32 |
             (v2:) correction_len u32 | correction_step f64 | (v3 on:) quality f32 | (v6:) exponent i16 |
             (v7:) conventional coder u8
    payload  per plane: NaN mask (zlib of packed bits) | range-coder words u32 | escapes i32 |
             (v2:) error-bound correction (correction.py; v4 adds a predictor byte to it)
             (v6, lossless planes: zlib of the values in the chunk dtype, in the words section)
             (v7, conventional planes: the conventional coder's bytes, in the words section)
    trailer  crc32 of everything before it, u32

v7 adds the back projection's iteration count to the header (earlier versions decode with
``LEGACY_PROJECTION_ITERATIONS``) and conventional planes: a plane coded by an error-bounded
conventional coder (``coding/conventional.py``; the coder's id in the record, its absolute
bound in ``correction_step``) where that is smaller than the network's record. Decoding
checks magic, version, the checksum, every length and the claimed size (``limits.py``)
before allocating anything, and raises ``ValueError`` naming what is wrong.
"""

from __future__ import annotations

import dataclasses
import math
import struct
import zlib

import numpy as np

from ..coding.latitude_weighting import SIZE as LATITUDE_SIZE, LatitudeWeighting
from ..coding.orographic_prediction import SIZE as OROGRAPHY_SIZE, OrographicPrediction
from ..sphere.grid import LatLonGrid
from ..variables import KINDS
from .limits import MAX_CHUNK_BYTES_ENV, max_chunk_bytes

MAGIC = b"XNCB"
VERSION = 17
# v1: release 0.1.0, no correction; v2: 0.2.0, one quality per chunk; v3: 0.3.0, corrections
# without a predictor; v4: 0.4.0, differs from v3 only inside the correction section;
# v5 (0.5.0) adds the condition (variable kind, level) to the header; v6 adds a per-plane
# power-of-two exponent and lossless planes (written by 0.6.0 only for chunks that need them);
# v7 (0.7.0, written for every chunk) adds the projection iterations and conventional planes;
# v8 (0.8.0): the same content, each field only where it is needed; v9 (0.11.0): v8 whose
# back projection byte also names the method (LSMR, or Jacobi steps from a weighted adjoint),
# and conventional planes may be SPERR in its quantisation-step mode (coder 4); v10 (0.13.0): v9
# with one more header flag, a single-precision back projection (FLAG_SINGLE); v11 (0.14.0): conventional
# records without the bound (their decoders never read it) and with the coder's short frame
# (coding/coder_framing.py), and target_mae only in chunks with network planes; v12 (0.15.0):
# conventional coder 5 (the interpolation coder) and bit 5 of the coder byte (the 16/17 power);
# v13 (0.16.0): bit 4 of the coder byte (latitude weighting); v14 (0.17.0): bit 3 (orographic prediction);
# v15 (0.19.0): bit 3 of a network record's kind byte (the network's orographic prediction);
# v16 (0.21.0): conventional coder 6 (AV1 intra); v17 (0.23.0): coder 7 (the interpolation coder, clamped)
SUPPORTED_VERSIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)
LEGACY_PROJECTION_ITERATIONS = 30   # the back projection's LSMR iterations before v7
MAX_PROJECTION_ITERATIONS = 100
MAX_JACOBI_STEPS = 8   # v9: bit 7 of the projection byte set = "jacobi" (sphere/projection.py), else "lsmr"
_JACOBI_BIT = 0x80

KIND_NEURAL, KIND_CONSTANT, KIND_ALL_NAN, KIND_LOSSLESS = 0, 1, 2, 3  # KIND_LOSSLESS since v6
KIND_CONVENTIONAL = 4  # since v7
KINDS_OF_VERSION = {1: 3, 2: 3, 3: 3, 4: 3, 5: 3, 6: 4, 7: 5, 8: 5, 9: 5, 10: 5, 11: 5, 12: 5, 13: 5, 14: 5, 15: 5, 16: 5, 17: 5}   # how many record kinds each version knows
CODERS_OF_VERSION = {7: 2, 8: 3, 9: 4, 10: 4, 11: 4, 12: 5, 13: 5, 14: 5, 15: 5, 16: 6, 17: 7}   # the highest conventional coder id each version knows (3 = EBCC, v8; 4 = SPERR q, v9; 5 = interp, v12; 6 = avif, v16; 7 = interp clamped, v17)
MAX_EXPONENT = 1100  # |exponent| of a v6 plane; float64 spans 2^-1074 .. 2^1024
DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f8")}
DTYPE_CODES = {v: k for k, v in DTYPES.items()}

_HEAD = struct.Struct("<4sHH32sBBBBIIIdd")
_PLANE = {1: struct.Struct("<BffIII"), 2: struct.Struct("<BffIIIId"), 3: struct.Struct("<BffIIIIdf")}
_PLANE[4] = _PLANE[5] = _PLANE[3]
_PLANE[6] = struct.Struct("<BffIIIIdfh")
_TARGET = struct.Struct("<d")
_CONDITION = struct.Struct("<BBHf")
_CRC = struct.Struct("<I")
_BYTE = struct.Struct("<B")
# v7: compact header (a one-plane chunk carries 99 bytes instead of v6's 147)
SHA_PREFIX = 8           # bytes of the weights sha256 a v7 chunk keeps: the store's config holds all 32
_HEAD7 = struct.Struct("<4sHH8sBBBBHIIdd")   # magic, version, flags, sha prefix, dtype, ndim, kind, iterations,
                                             # nside, nlat, nlon, lat_first, lon_first
_TAIL7 = struct.Struct("<df")                # target_mae, level (after the u32 shape)
_PLANE7 = struct.Struct("<BBhfffd")          # kind, coder, exponent, mean, std, quality, correction step / bound
MAX_VARINT_BYTES = 5                         # lengths are below 2**35
# v8: fields by need
FLAG_NETWORK, FLAG_TARGET = 1, 2
FLAG_SINGLE = 4   # v10: the back projection runs in single precision (Jacobi only; sphere/projection.py)
_HEAD8 = struct.Struct("<4sHBBB")            # magic, version, flags, dtype, ndim (then the shape as varints)
_NETWORK8 = struct.Struct("<8sBBHddf")       # sha prefix, variable kind, iterations, nside, lat_first, lon_first, level
_NEURAL8 = struct.Struct("<hfffd")           # exponent, mean, std, quality, correction step
_CONSTANT8 = struct.Struct("<hf")            # exponent, value
_CONVENTIONAL8 = struct.Struct("<Bd")        # coder, bound
SHORT_FRAME = 0x80   # v11: bit 7 of a conventional record's coder byte (the bound is gone from the record)
CLIPPED = 0x40       # v11: bit 6: the plane's (min, max) follow in the chunk dtype; decoded values are clipped to them
POWERED = 0x20       # v12: bit 5: the coder holds the plane's 16/17 power (conventional.to_power)
LATITUDE = 0x10      # v13: bit 4: latitude weighting parameters follow (after the clip range, if any)
OROGRAPHY = 0x08     # v14: bit 3: orographic prediction parameters follow (after the latitude weighting's, if any);
                     # v15: the same bit of a network record's kind byte (its parameters follow the fixed fields)
CODER_BITS = {11: 0x3F, 12: 0x1F, 13: 0x0F, 14: 0x07, 15: 0x07, 16: 0x07, 17: 0x07}   # the coder id's bits (v11: 0-5, so a bit 5 there names no coder)


@dataclasses.dataclass
class PlaneRecord:
    kind: int
    mean: float
    std: float
    mask: bytes = b""      # zlib-compressed np.packbits of the NaN mask, empty if none
    words: bytes = b""     # range coder output, uint32 little-endian
    escapes: bytes = b""   # int32 little-endian latents outside the tables
    correction: bytes = b""  # error-bound correction section (v2), empty if none or all zero
    correction_step: float = 0.0  # 0: no correction layer
    quality: float = 0.0   # rate point of this plane (v3); v1 and v2 chunks take the header's
    exponent: int = 0      # v6: decoded values are (x * std + mean) * 2**exponent (planes.py)
    coder: int = 0         # v7, conventional planes: which coder (coding/conventional.py); 0 otherwise
    short_frame: bool = False  # v11, conventional planes: ``words`` lacks the frame coder_framing.py rebuilds
    clip: tuple | None = None  # v11, conventional planes: (min, max) the decoded values are clipped to
    power: bool = False        # v12, conventional planes: the coder holds x^(16/17) (conventional.to_power)
    latitude: LatitudeWeighting | None = None   # v13, conventional planes: the coder holds the weighted plane
    orography: OrographicPrediction | None = None   # v14, conventional planes (v15, network planes too): the coder holds x - the prediction


@dataclasses.dataclass
class Chunk:
    weights_sha256: bytes
    dtype: np.dtype
    quality: int          # v1/v2 header quality (every plane's); 0 in v3, where planes carry their own
    nside: int
    nlat: int
    nlon: int
    lat_first: float
    lon_first: float
    shape: tuple
    planes: list
    target_mae: float = 0.0  # v3: the latitude-weighted MAE each plane was held to, 0 if none
    version: int = VERSION   # format version the chunk was read from (correction.py reads v2 on)
    variable_kind: int = 0   # v5: kind of variable the network was told (conditioning.KINDS)
    level: float = 0.0       # v5: pressure level in hPa, 0 if unknown
    projection_iterations: int = LEGACY_PROJECTION_ITERATIONS   # v7: iterations (steps) of the back projection
    projection_method: str = "lsmr"   # v9: "lsmr" or "jacobi" (sphere/projection.py)
    projection_precision: str = "float64"   # v10: "float32" for a single-precision Jacobi back projection

    @property
    def n_planes(self) -> int:
        return int(np.prod(self.shape[:-2], dtype=np.int64))


def pack(chunk: Chunk) -> bytes:
    """The chunk as format v17 (``docs/format.md``): each field only where a decoder needs it.
    ``target_mae`` is kept only beside network planes (SZ3 / SPERR records met it when written,
    and the store's codec config records it)."""
    projection = _projection_byte(chunk.projection_method, chunk.projection_iterations)
    network = any(p.kind == KIND_NEURAL for p in chunk.planes)
    single = _single_precision(chunk.projection_precision, chunk.projection_method)
    target = chunk.target_mae if network else 0.0
    flags = (FLAG_NETWORK if network else 0) | (FLAG_TARGET if target else 0) | (FLAG_SINGLE if network and single else 0)
    parts = [_HEAD8.pack(MAGIC, VERSION, flags, DTYPE_CODES[np.dtype(chunk.dtype).newbyteorder("<")], len(chunk.shape)),
             varints(*chunk.shape)]
    if network:
        parts.append(_NETWORK8.pack(chunk.weights_sha256[:SHA_PREFIX], chunk.variable_kind, projection,
                                    chunk.nside, chunk.lat_first, chunk.lon_first, chunk.level))
    if target:
        parts.append(_TARGET.pack(target))
    for p in chunk.planes:
        predicted = p.kind == KIND_NEURAL and p.orography is not None
        parts += [bytes([p.kind | (OROGRAPHY if predicted else 0)]), _record8(p, np.dtype(chunk.dtype).newbyteorder("<"))]
    for p in chunk.planes:
        parts += [p.mask, p.words, p.escapes, p.correction]
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body))


def _record8(p: PlaneRecord, dtype: np.dtype) -> bytes:
    """A v8 (v11) plane record after its kind byte: only the fields that kind uses (the rest must be empty)."""
    unused = {KIND_NEURAL: (), KIND_CONSTANT: ("words", "escapes", "correction"), KIND_ALL_NAN: (
        "mask", "words", "escapes", "correction"), KIND_LOSSLESS: ("mask", "escapes", "correction"),
        KIND_CONVENTIONAL: ("escapes", "correction")}[p.kind]
    if any(getattr(p, name) for name in unused):
        raise ValueError(f"a kind-{p.kind} plane record carries sections it cannot store ({unused})")
    if p.kind != KIND_CONVENTIONAL and p.orography is not None and (p.kind != KIND_NEURAL or p.exponent):
        raise ValueError(f"a kind-{p.kind} plane record with exponent {p.exponent} cannot carry an orographic prediction")
    if p.kind == KIND_NEURAL:
        head = _NEURAL8.pack(p.exponent, p.mean, p.std, p.quality, p.correction_step)
        return head + (p.orography.pack() if p.orography else b"") + varints(
            len(p.mask), len(p.words), len(p.escapes) // 4, len(p.correction))
    if p.kind == KIND_CONSTANT:
        return _CONSTANT8.pack(p.exponent, p.mean) + varints(len(p.mask))
    if p.kind == KIND_LOSSLESS:
        return varints(len(p.words))
    if p.kind == KIND_CONVENTIONAL:
        head = bytes([p.coder | (SHORT_FRAME if p.short_frame else 0) | (CLIPPED if p.clip else 0)
                      | (POWERED if p.power else 0) | (LATITUDE if p.latitude else 0)
                      | (OROGRAPHY if p.orography else 0)])
        if p.clip:
            head += np.asarray(p.clip, dtype).tobytes()
        if p.latitude:
            head += p.latitude.pack()
        if p.orography:
            head += p.orography.pack()
        return head + varints(len(p.mask), len(p.words))
    return b""


def varints(*values: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, low first; lengths below 128 take one byte. (Also the
    numcodecs-wasm frames' integers, rebuilt by coding/coder_framing.py.)"""
    out = bytearray()
    for v in values:
        while True:
            byte, v = v & 0x7F, v >> 7
            out.append(byte | (0x80 if v else 0))
            if not v:
                break
    return bytes(out)


def read_varint(buf, offset: int, end: int, what: str = "plane record") -> tuple[int, int]:
    """One unsigned LEB128 (``varints``' format) from ``buf[offset:end]`` and the offset after
    it; a cut or overlong one raises ValueError naming ``what`` it was part of. (Also the
    interpolation coder's section lengths, coding/interpolation_coder.py.)"""
    value = shift = 0
    for _ in range(MAX_VARINT_BYTES):
        if offset >= end:
            _fail(f"{what} cut short")
        byte = buf[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
    _fail(f"{what} length too long")


def _fail(why: str):
    raise ValueError(f"not a valid xneuralcodec chunk: {why}")


@dataclasses.dataclass
class _Header:
    sha: bytes
    dtype_code: int
    ndim: int
    quality: int
    nside: int
    nlat: int
    nlon: int
    lat_first: float
    lon_first: float
    shape: tuple = ()
    target_mae: float = 0.0
    kind: int = 0
    level: float = 0.0
    iterations: int = LEGACY_PROJECTION_ITERATIONS
    offset: int = 0
    network: bool = True     # v8: whether the network fields are present (network planes may follow)
    method: str = "lsmr"     # v9: the back projection's method (bit 7 of the iterations byte)
    precision: str = "float64"   # v10: "float32" with FLAG_SINGLE


def _need(buf, end: int, what: str = "header cut short") -> None:
    if len(buf) - _CRC.size < end:
        _fail(what)


def _header_v7(buf) -> _Header:
    _need(buf, _HEAD7.size)
    _, _, flags, sha, dtype_code, ndim, kind, iterations, nside, nlat, nlon, lat_first, lon_first = \
        _HEAD7.unpack_from(buf, 0)
    if flags != 0:
        _fail(f"unknown flags {flags:#x}")
    if not 2 <= ndim <= 32:
        _fail(f"ndim {ndim}")
    offset = _HEAD7.size
    _need(buf, offset + 4 * ndim + _TAIL7.size)
    shape = struct.unpack_from(f"<{ndim}I", buf, offset)
    target_mae, level = _TAIL7.unpack_from(buf, offset + 4 * ndim)
    if not 1 <= iterations <= MAX_PROJECTION_ITERATIONS:
        _fail(f"projection iterations {iterations} outside 1..{MAX_PROJECTION_ITERATIONS}")
    return _Header(bytes(sha), dtype_code, ndim, 0, nside, nlat, nlon, lat_first, lon_first, shape, target_mae,
                   kind, level, iterations, offset + 4 * ndim + _TAIL7.size)


def _projection_byte(method: str, iterations: int) -> int:
    """v9's back projection byte: LSMR with 1..MAX_PROJECTION_ITERATIONS iterations, or a
    weighted adjoint with 0..MAX_JACOBI_STEPS Jacobi steps (bit 7 set)."""
    if method == "lsmr" and 1 <= iterations <= MAX_PROJECTION_ITERATIONS:
        return iterations
    if method == "jacobi" and 0 <= iterations <= MAX_JACOBI_STEPS:
        return _JACOBI_BIT | iterations
    raise ValueError(f"expected an LSMR back projection of 1..{MAX_PROJECTION_ITERATIONS} iterations or a Jacobi one "
                     f"of 0..{MAX_JACOBI_STEPS} steps, got {method!r} with {iterations} instead")


def _single_precision(precision: str, method: str) -> bool:
    if precision == "float64":
        return False
    if precision == "float32" and method == "jacobi":
        return True
    raise ValueError(f"expected a float64 back projection, or a float32 Jacobi one, got {precision!r} with "
                     f"{method!r} instead")


def _read_projection(byte: int, version: int) -> tuple[str, int]:
    if version >= 9 and byte & _JACOBI_BIT:
        steps = byte & ~_JACOBI_BIT
        if steps > MAX_JACOBI_STEPS:
            _fail(f"Jacobi back projection steps {steps} outside 0..{MAX_JACOBI_STEPS}")
        return "jacobi", steps
    if not 1 <= byte <= MAX_PROJECTION_ITERATIONS:
        _fail(f"projection iterations {byte} outside 1..{MAX_PROJECTION_ITERATIONS}")
    return "lsmr", byte


def _header_v8(buf, version: int) -> _Header:
    _need(buf, _HEAD8.size)
    _, _, flags, dtype_code, ndim = _HEAD8.unpack_from(buf, 0)
    if flags & ~(FLAG_NETWORK | FLAG_TARGET | (FLAG_SINGLE if version >= 10 else 0)):
        _fail(f"unknown flags {flags:#x}")
    if not 2 <= ndim <= 32:
        _fail(f"ndim {ndim}")
    offset, shape = _HEAD8.size, []
    for _ in range(ndim):
        value, offset = read_varint(buf, offset, len(buf) - _CRC.size)
        if value >= 2 ** 32:
            _fail(f"dimension {value} too large")
        shape.append(value)
    head = _Header(b"", dtype_code, ndim, 0, 0, shape[-2], shape[-1], 0.0, 0.0, tuple(shape))
    if flags & FLAG_NETWORK:
        _need(buf, offset + _NETWORK8.size)
        sha, head.kind, head.iterations, head.nside, head.lat_first, head.lon_first, head.level = \
            _NETWORK8.unpack_from(buf, offset)
        head.sha = bytes(sha)
        offset += _NETWORK8.size
        head.method, head.iterations = _read_projection(head.iterations, version)
        if flags & FLAG_SINGLE:
            if head.method != "jacobi":
                _fail("a single-precision back projection flagged with an LSMR one")
            head.precision = "float32"
    elif flags & FLAG_SINGLE:
        _fail("a single-precision back projection flagged without network planes")
    if flags & FLAG_TARGET:
        _need(buf, offset + _TARGET.size)
        (head.target_mae,) = _TARGET.unpack_from(buf, offset)
        offset += _TARGET.size
        if head.target_mae == 0:
            _fail("target_mae flagged but 0")
    head.network = bool(flags & FLAG_NETWORK)
    head.offset = offset
    return head


def _header_legacy(buf, version: int) -> _Header:
    """Versions 1 to 6: the 72-byte header, u64 shape, then (v3 on) target_mae, (v5 on) condition."""
    _need(buf, _HEAD.size)
    _, _, flags, sha, dtype_code, ndim, quality, reserved, nside, nlat, nlon, lat_first, lon_first = \
        _HEAD.unpack_from(buf, 0)
    if flags != 0:
        _fail(f"unknown flags {flags:#x}")
    if reserved or (version >= 3 and quality):
        _fail(f"reserved header bytes are not zero ({quality}, {reserved})")
    if not 2 <= ndim <= 32:
        _fail(f"ndim {ndim}")
    head = _Header(bytes(sha), dtype_code, ndim, quality, nside, nlat, nlon, lat_first, lon_first)
    offset = _HEAD.size
    _need(buf, offset + 8 * ndim)
    head.shape = struct.unpack_from(f"<{ndim}Q", buf, offset)
    offset += 8 * ndim
    if version >= 3:
        _need(buf, offset + _TARGET.size)
        (head.target_mae,) = _TARGET.unpack_from(buf, offset)
        offset += _TARGET.size
    if version >= 5:
        _need(buf, offset + _CONDITION.size)
        head.kind, reserved8, reserved16, head.level = _CONDITION.unpack_from(buf, offset)
        offset += _CONDITION.size
        if reserved8 or reserved16:
            _fail(f"reserved condition bytes are not zero ({reserved8}, {reserved16})")
    head.offset = offset
    return head


def _records_v7(buf, offset: int, n_planes: int) -> tuple[list, int]:
    end = len(buf) - _CRC.size
    if offset + n_planes * (_PLANE7.size + 4) > end:
        _fail(f"{n_planes} plane records do not fit in {len(buf)} bytes")
    records = []
    for _ in range(n_planes):
        kind, coder, exponent, mean, std, quality, step = _PLANE7.unpack_from(buf, offset)
        offset += _PLANE7.size
        lengths = []
        for _ in range(4):
            value, offset = read_varint(buf, offset, end)
            lengths.append(value)
        mask_len, words_len, n_esc, correction_len = lengths
        records.append((kind, mean, std, mask_len, words_len, n_esc * 4, correction_len, step, quality, exponent,
                        coder, False, None, False, None, None))
    return records, offset


def _records_v8(buf, offset: int, n_planes: int, network: bool, version: int, dtype) -> tuple[list, int]:
    end = len(buf) - _CRC.size
    if offset + n_planes > end:
        _fail(f"{n_planes} plane records do not fit in {len(buf)} bytes")

    def fields(layout: struct.Struct):
        nonlocal offset
        if offset + layout.size > end:
            _fail("plane record cut short")
        values = layout.unpack_from(buf, offset)
        offset += layout.size
        return values

    def lengths(n: int) -> list[int]:
        nonlocal offset
        out = []
        for _ in range(n):
            value, offset = read_varint(buf, offset, end)
            out.append(value)
        return out

    records = []
    for _ in range(n_planes):
        if offset >= end:
            _fail("plane records cut short")
        kind = buf[offset]
        offset += 1
        mean = std = step = quality = 0.0
        exponent = coder = mask_len = words_len = n_esc = correction_len = 0
        short, clip, power, latitude, orography = False, None, False, None, None
        network_predicted = version >= 15 and kind == KIND_NEURAL | OROGRAPHY
        if network_predicted:
            kind = KIND_NEURAL
        if kind == KIND_NEURAL:
            if not network:
                _fail("a network plane in a chunk without the network fields")
            exponent, mean, std, quality, step = fields(_NEURAL8)
            if network_predicted:
                if offset + OROGRAPHY_SIZE > end:
                    _fail("plane record cut short")
                orography = OrographicPrediction.unpack(buf, offset)
                offset += OROGRAPHY_SIZE
            mask_len, words_len, n_esc, correction_len = lengths(4)
        elif kind == KIND_CONSTANT:
            exponent, mean = fields(_CONSTANT8)
            (mask_len,) = lengths(1)
        elif kind == KIND_LOSSLESS:
            (words_len,) = lengths(1)
        elif kind == KIND_CONVENTIONAL:
            if version >= 11:
                (coder,) = fields(_BYTE)
                power = version >= 12 and bool(coder & POWERED)
                weighted = version >= 13 and bool(coder & LATITUDE)
                predicted = version >= 14 and bool(coder & OROGRAPHY)
                short, clipped, coder = bool(coder & SHORT_FRAME), bool(coder & CLIPPED), coder & CODER_BITS[version]
                if clipped:
                    if dtype is None:
                        _fail("unknown dtype")
                    if offset + 2 * dtype.itemsize > end:
                        _fail("plane record cut short")
                    clip = tuple(float(v) for v in np.frombuffer(buf, dtype, 2, offset))
                    offset += 2 * dtype.itemsize
                if weighted:
                    if offset + LATITUDE_SIZE > end:
                        _fail("plane record cut short")
                    latitude = LatitudeWeighting.unpack(buf, offset)
                    offset += LATITUDE_SIZE
                if predicted:
                    if offset + OROGRAPHY_SIZE > end:
                        _fail("plane record cut short")
                    orography = OrographicPrediction.unpack(buf, offset)
                    offset += OROGRAPHY_SIZE
            else:
                coder, step = fields(_CONVENTIONAL8)
            mask_len, words_len = lengths(2)
        elif kind != KIND_ALL_NAN:
            _fail(f"bad plane record (kind {kind})")
        records.append((kind, mean, std, mask_len, words_len, n_esc * 4, correction_len, step, quality, exponent,
                        coder, short, clip, power, latitude, orography))
    if network and not any(r[0] == KIND_NEURAL for r in records):
        _fail("network fields in a chunk without network planes")
    return records, offset


def _records_legacy(buf, offset: int, n_planes: int, version: int, header_quality: int) -> tuple[list, int]:
    record = _PLANE[version]
    if offset + n_planes * record.size > len(buf) - _CRC.size:
        _fail(f"{n_planes} plane records do not fit in {len(buf)} bytes")
    records = []
    for _ in range(n_planes):
        kind, mean, std, mask_len, words_len, n_esc, *extra = record.unpack_from(buf, offset)
        offset += record.size
        correction_len, step = extra[:2] if extra else (0, 0.0)
        quality = extra[2] if version >= 3 else float(header_quality)
        exponent = extra[3] if version >= 6 else 0
        records.append((kind, mean, std, mask_len, words_len, n_esc * 4, correction_len, step, quality, exponent, 0,
                        False, None, False, None, None))
    return records, offset


def _check_record(version: int, kind, mean, std, mask_len, words_len, esc_len, correction_len, step, quality,
                  exponent, coder, short, clip, power, latitude, orography, nlat: int = 0, nlon: int = 0) -> None:
    if not np.isfinite(quality):
        _fail(f"bad plane quality {quality}")
    if kind >= KINDS_OF_VERSION[version] or (words_len % 4 and kind not in (KIND_LOSSLESS, KIND_CONVENTIONAL)):
        _fail(f"bad plane record (kind {kind}, words {words_len})")
    if abs(exponent) > MAX_EXPONENT or (exponent and kind in (KIND_ALL_NAN, KIND_LOSSLESS, KIND_CONVENTIONAL)):
        _fail(f"bad plane exponent {exponent} (kind {kind})")
    if not (step == 0.0 or (np.isfinite(step) and step > 0)) or (correction_len and step == 0.0):
        _fail(f"bad correction step {step}")
    bound_stored = version < 11   # v11 conventional records hold no bound
    if (kind == KIND_CONVENTIONAL) != (coder != 0) or (kind == KIND_CONVENTIONAL and (
            (step == 0.0) == bound_stored or correction_len)) or coder > CODERS_OF_VERSION.get(version, 0):
        _fail(f"bad conventional plane record (kind {kind}, coder {coder}, bound {step})")
    if clip is not None and not (np.isfinite(clip).all() and clip[0] <= clip[1]):
        _fail(f"bad conventional plane record (clip range {clip})")
    if latitude is not None:
        try:
            LatLonGrid(nlat, max(nlon, 4), latitude.lat_first, 0.0)
        except ValueError as exc:
            _fail(f"bad conventional plane record (latitude weighting for {nlat} rows: {exc})")
    if orography is not None:
        if kind == KIND_NEURAL and exponent:
            _fail(f"bad network plane record (orographic prediction with exponent {exponent})")
        try:
            orography.grid((nlat, nlon))
        except ValueError as exc:
            _fail(f"bad plane record (orographic prediction for a {nlat} x {nlon} grid: {exc})")


def unpack(data, shape: tuple | None = None, max_bytes: int | None = None) -> Chunk:
    """Parse and check a chunk. ``shape``: the chunk shape the caller knows (Zarr 3), which the
    claimed shape must equal; ``max_bytes``: the most the caller can hold (``out=``). Both,
    and the process limit (``limits.py``), are checked before anything is allocated."""
    expected_shape = None if shape is None else tuple(int(n) for n in shape)
    buf = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    if len(buf) < 6 + _CRC.size:
        _fail(f"only {len(buf)} bytes")
    magic, version = struct.unpack_from("<4sH", buf, 0)
    if magic != MAGIC:
        _fail(f"magic {bytes(magic)!r} is not {MAGIC!r} (data not written by xneuralcodec?)")
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"xneuralcodec chunk has format version {version}; this release reads versions "
            f"{SUPPORTED_VERSIONS}: upgrade xneuralcodec"
        )
    (crc,) = _CRC.unpack_from(buf, len(buf) - _CRC.size)
    if zlib.crc32(buf[:-_CRC.size]) != crc:
        _fail("checksum mismatch (truncated or damaged)")
    head = _header_v8(buf, version) if version >= 8 else _header_v7(buf) if version == 7 else _header_legacy(buf, version)
    if head.dtype_code not in DTYPES:
        _fail(f"unknown dtype code {head.dtype_code}")
    if not (np.isfinite(head.target_mae) and head.target_mae >= 0):
        _fail(f"bad target_mae {head.target_mae}")
    if head.kind >= len(KINDS):
        _fail(f"unknown variable kind {head.kind}")
    if not (np.isfinite(head.level) and 0 <= head.level <= 1100):
        _fail(f"bad level {head.level}")
    dtype, shape, nlat, nlon = DTYPES[head.dtype_code], tuple(head.shape), head.nlat, head.nlon
    if shape[-2:] != (nlat, nlon):
        _fail(f"shape {shape} does not end with the grid {nlat} x {nlon}")
    if nlat == 0 or nlon == 0:
        _fail(f"empty grid {nlat} x {nlon}")
    if expected_shape is not None and shape != expected_shape:
        _fail(f"it claims shape {shape}, but the array's chunk shape is {expected_shape}")
    n_bytes = math.prod(shape) * dtype.itemsize
    limit = max_chunk_bytes()
    if n_bytes > limit:
        _fail(f"claimed shape {shape} is {n_bytes} bytes, larger than the decode limit of {limit} bytes "
              f"(raise it with the environment variable {MAX_CHUNK_BYTES_ENV})")
    if max_bytes is not None and n_bytes > max_bytes:
        _fail(f"claimed shape {shape} is {n_bytes} bytes, more than out= holds ({max_bytes} bytes)")
    n_planes = math.prod(shape[:-2])
    if version >= 8:
        records, offset = _records_v8(buf, head.offset, n_planes, head.network, version, DTYPES.get(head.dtype_code))
    elif version == 7:
        records, offset = _records_v7(buf, head.offset, n_planes)
    else:
        records, offset = _records_legacy(buf, head.offset, n_planes, version, head.quality)
    planes = []
    end = len(buf) - _CRC.size
    for fields in records:
        _check_record(version, *fields, nlat=nlat, nlon=nlon)
        (kind, mean, std, mask_len, words_len, esc_len, correction_len, step, quality, exponent, coder, short, clip,
         power, latitude, orography) = fields
        if offset + mask_len + words_len + esc_len + correction_len > end:
            _fail("section lengths run past the end of the chunk")
        mask = bytes(buf[offset:offset + mask_len]); offset += mask_len
        words = bytes(buf[offset:offset + words_len]); offset += words_len
        escapes = bytes(buf[offset:offset + esc_len]); offset += esc_len
        correction = bytes(buf[offset:offset + correction_len]); offset += correction_len
        planes.append(PlaneRecord(kind, mean, std, mask, words, escapes, correction, step, quality, exponent, coder,
                                  short, clip, power, latitude, orography))
    if offset != end:
        _fail(f"{end - offset} unexplained trailing bytes")
    return Chunk(head.sha, dtype, head.quality, head.nside, nlat, nlon, head.lat_first, head.lon_first, shape, planes,
                 head.target_mae, version, head.kind, float(head.level), head.iterations, head.method, head.precision)


def _inflate(blob: bytes, expected: int, what: str) -> bytes:
    """zlib-decompress exactly ``expected`` bytes: never more than the plane needs."""
    d = zlib.decompressobj()
    try:
        raw = d.decompress(blob, expected)
    except zlib.error as exc:
        _fail(f"damaged {what} ({exc})")
    if len(raw) != expected or d.unconsumed_tail:
        _fail(f"{what} has the wrong size")
    return raw


def pack_mask(mask: np.ndarray) -> bytes:
    return zlib.compress(np.packbits(mask.ravel()).tobytes(), 9)


def unpack_mask(blob: bytes, shape: tuple) -> np.ndarray:
    n = int(np.prod(shape))
    raw = _inflate(blob, (n + 7) // 8, "NaN mask")
    return np.unpackbits(np.frombuffer(raw, np.uint8))[:n].reshape(shape).astype(bool)


def pack_values(plane: np.ndarray) -> bytes:
    """A lossless plane (v6): its values, NaN included, little-endian in their own dtype, zlib'd."""
    return zlib.compress(plane.astype(plane.dtype.newbyteorder("<")).tobytes(), 9)


def unpack_values(blob: bytes, dtype: np.dtype, shape: tuple) -> np.ndarray:
    n = int(np.prod(shape))
    raw = _inflate(blob, n * dtype.itemsize, "lossless plane")
    return np.frombuffer(raw, dtype).reshape(shape)
