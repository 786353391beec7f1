"""The bytes a numcodecs-wasm stream repeats that the chunk already holds (format v11).

Why: every numcodecs-wasm codec wraps its coder's output in a frame of its own: a dtype code,
the array's shape, the codec's format version string and the payload's length. SPERR's stream
then repeats the plane's dimensions, and the payload's length once more when the plane is one
SPERR chunk. The chunk header already holds the dtype and the shape, and the record holds the
length, so a v11 conventional record may keep only the rest (the "short frame") and the
decoder rebuilds the frame. EBCC's own header likewise repeats the dimensions (twice, as its
one chunk's too), the element count and the payload's length, and its JPEG 2000 codestream
opens with a main header that depends on nothing but the plane's shape. That is 10-12 bytes
a plane for SZ3, 27-31 for SPERR and ~240 for EBCC: on a 2.5 degree plane at the paper's
targets (400-2,500 bytes of SPERR) 1-7% of it.

For EBCC the rebuilt header is also a guard (``check_ebcc``): a forged JPEG 2000 size or
coding marker made its WebAssembly decoder allocate up to its 4 GB limit and run for seconds
(``benchmarks.fuzz``, 0.14.0). Rebuilt from the chunk's checked shape, those fields cannot be
forged, and a whole EBCC stream (format v8 to v10) is decoded only if its header is exactly
the one rebuilt.

The frames below are those of numcodecs-wasm-sz3 0.8 and numcodecs-wasm-sperr 0.2 (format
version "0.2.0") and numcodecs-wasm-ebcc ("0.1.1"). The encoder keeps a short frame only
where ``rebuild(shorten(blob)) == blob`` (``shorten`` checks it on every plane), so a future
build that frames differently just stores its stream whole.
"""

from __future__ import annotations

import struct

import numpy as np

from ..format.bitstream import varints
from .conventional import EBCC, SPERR, SPERR_Q, SZ3

# coder -> (numcodecs-wasm dtype code by numpy dtype, format version string, leading unit dims,
#           whether the payload's length follows the version)
_FRAMES = {
    SZ3: ({np.dtype("<f4"): 8, np.dtype("<f8"): 9}, b"0.2.0", 0, False),
    SPERR: ({np.dtype("<f4"): 0, np.dtype("<f8"): 1}, b"0.2.0", 0, True),
    SPERR_Q: ({np.dtype("<f4"): 0, np.dtype("<f8"): 1}, b"0.2.0", 0, True),
    EBCC: ({np.dtype("<f4"): 0}, b"0.1.1", 1, True),   # EBCC codes (1, nlat, nlon)
}
_SPERR_HEAD = 2                 # SPERR's version byte and flag byte, kept in the short frame
_SPERR_MULTI_CHUNK = 0x10       # flag bit: the plane was cut into SPERR chunks (their lengths follow)
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_EBCC_MAGIC = b"EBCK" + _U32.pack(1)   # EBCC's container, version 1


def _wrapper(coder: int, shape: tuple, dtype, payload_len: int) -> bytes | None:
    """numcodecs-wasm's frame head for a payload of ``payload_len`` bytes, or None where this
    coder has no known frame for ``dtype``."""
    codes, version, unit_dims, with_length = _FRAMES[coder]
    code = codes.get(np.dtype(dtype).newbyteorder("<"))
    if code is None:
        return None
    dims = (1,) * unit_dims + tuple(shape)
    return (bytes([code, len(dims)]) + varints(*dims, len(version)) + version
            + (varints(payload_len) if with_length else b""))


def _sperr_dims(shape: tuple) -> bytes:
    nlat, nlon = shape
    return _U32.pack(nlon) + _U32.pack(nlat) + _U32.pack(1)


def _ebcc_head(shape: tuple, rest_len: int) -> bytes:
    """EBCC's container head for one chunk spanning the (1, nlat, nlon) array: magic and version,
    the array's dims, the chunk's dims, the chunk count, its element count, its byte length."""
    dims = (1, *shape)
    return (_EBCC_MAGIC + _U64.pack(len(dims)) + b"".join(_U64.pack(n) for n in dims * 2) + _U64.pack(1)
            + _U64.pack(shape[0] * shape[1]) + _U64.pack(rest_len))


_EBCC_CHUNK_HEAD = 48   # EBCC's own chunk fields (kept in the short frame); the u64 at 32 is the length of
_EBCC_TABLE_LEN = 32    # a section between them and the JPEG 2000 codestream (0 on 1 degree planes)
# The JPEG 2000 main header after SIZ, as EBCC 0.1 (OpenJPEG 2.5.3) writes it for every plane:
# COD (one layer, 5 decomposition levels, 64 x 64 code blocks, 9/7 wavelet), QCD, and a comment
_J2K_AFTER_SIZ = bytes.fromhex(
    "ff52000c00000001000504040000"
    "ff5c002342b720b6f0b6f0b6c0af00af00aee0a750a750a76890059005904797d397d39762"
    "ff640025000143726561746564206279204f70656e4a5045472076657273696f6e20322e352e33")


def _j2k_main_header(shape: tuple) -> bytes:
    """SOC, then SIZ for one 16-bit component of nlon x nlat in one tile, then the rest."""
    nlat, nlon = shape
    siz = struct.pack(">HHHIIIIIIIIHBBB", 0xFF51, 41, 0, nlon, nlat, 0, 0, nlon, nlat, 0, 0, 1, 0x0F, 1, 1)
    return b"\xff\x4f" + siz + _J2K_AFTER_SIZ


def _ebcc_codestream_at(chunk: bytes) -> int | None:
    """Where EBCC's JPEG 2000 codestream starts in its chunk (after its fields and the section
    whose length they give), or None if the chunk is too short for that."""
    if len(chunk) < _EBCC_CHUNK_HEAD:
        return None
    (table,) = _U64.unpack_from(chunk, _EBCC_TABLE_LEN)
    at = _EBCC_CHUNK_HEAD + table
    return at if at <= len(chunk) else None


def check_ebcc(blob: bytes, shape: tuple, dtype) -> None:
    """Refuse an EBCC stream whose headers are not exactly those of a ``shape`` plane (see above)."""
    if shorten(EBCC, blob, shape, dtype) is None:
        raise ValueError(f"not a valid xneuralcodec chunk: the EBCC stream's header does not describe a "
                         f"{shape[0]} x {shape[1]} {np.dtype(dtype)} plane")


def rebuild(coder: int, short: bytes, shape: tuple, dtype) -> bytes:
    """The coder's whole stream from its short frame; a short frame that cannot be one raises
    ValueError (the wasm decoder then never sees it)."""
    if coder not in _FRAMES:
        raise ValueError(f"not a valid xneuralcodec chunk: coder {coder} has no short frame")
    if coder in (SPERR, SPERR_Q):
        if len(short) < _SPERR_HEAD:
            raise ValueError("not a valid xneuralcodec chunk: SPERR short frame cut short")
        head, body = short[:_SPERR_HEAD], short[_SPERR_HEAD:]
        single = not head[1] & _SPERR_MULTI_CHUNK
        payload = head + _sperr_dims(shape) + (_U32.pack(len(body)) if single else b"") + body
    elif coder == EBCC:
        at = _ebcc_codestream_at(short)
        if at is None:
            raise ValueError("not a valid xneuralcodec chunk: EBCC short frame cut short")
        main = _j2k_main_header(shape)
        payload = _ebcc_head(shape, len(short) + len(main)) + short[:at] + main + short[at:]
    else:
        payload = short
    wrapper = _wrapper(coder, shape, dtype, len(payload))
    if wrapper is None:
        raise ValueError(f"not a valid xneuralcodec chunk: coder {coder} has no short frame for {np.dtype(dtype)}")
    return wrapper + payload


def shorten(coder: int, blob: bytes, shape: tuple, dtype) -> bytes | None:
    """``blob`` without what ``rebuild`` gives back, or None where the stream is not framed as
    this module expects (the record then keeps it whole)."""
    if coder not in _FRAMES:
        return None
    blob = bytes(blob)
    with_length = _FRAMES[coder][3]
    fixed = _wrapper(coder, shape, dtype, 0)
    if fixed is None:
        return None
    base = len(fixed) - (1 if with_length else 0)   # the head without the payload length's varint
    short = None
    for n in range(1, 6) if with_length else (0,):   # that varint's bytes
        payload_len = len(blob) - base - n
        if payload_len < 0:
            break
        head = _wrapper(coder, shape, dtype, payload_len)
        if len(head) == base + n and blob.startswith(head):
            short = blob[len(head):]
            break
    if short is None:
        return None
    if coder in (SPERR, SPERR_Q) and len(short) > _SPERR_HEAD:
        single = not short[1] & _SPERR_MULTI_CHUNK
        skip = _SPERR_HEAD + 12 + (_U32.size if single else 0)
        short = short[:_SPERR_HEAD] + short[skip:]
    elif coder == EBCC:
        head = _ebcc_head(shape, 0)
        head = _ebcc_head(shape, len(short) - len(head))
        main = _j2k_main_header(shape)
        at = _ebcc_codestream_at(short[len(head):])
        if not (short.startswith(head) and at is not None and short[len(head) + at:].startswith(main)):
            return None
        short = short[len(head):len(head) + at] + short[len(head) + at + len(main):]
    try:
        return short if rebuild(coder, short, shape, dtype) == blob else None
    except ValueError:
        return None
