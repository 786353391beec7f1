"""AV1 intra coding of a plane (format v16, conventional coder 6 "avif"): libavif through imagecodecs.

Why: at the paper's MAE targets the large, smooth planes were coded best by EBCC's JPEG 2000
layer, and AV1's intra coder (directional prediction, transforms up to 64 x 64, deblocking and
CDEF) writes less for the same error. Measured on the plane the codec hands its coders (minus
the orographic prediction, latitude-weighted; /work/exp/s21/avif_speed.py, 0.21.0), ratio at the
target MAE, J2K beside it from avif_groups.py: ERA5 0.25 degree t2m at 0.4 K 840x (J2K 753x),
1 degree t2m 63.9x (52.0x), 1 degree msl at 100 Pa 711x. In the codec, where an AV1 record
may not add error tails (``conventional.best_candidate``), the 0.25 degree plane codes to 744.3x
(0.22.0) against JPEG 2000's 672.5x (``benchmarks/results/paper-targets.md``). At tight targets on small
planes (GFS 2.5 degree gh at 3 m, w) it loses: the other coders keep those.

The plane is mapped to 12-bit codes, ``round((x - min) / unit)``, coded as a monochrome image at
one quality (QUALITY) and speed (SPEED), and ``unit`` is the knob the encoder's search turns: a
larger unit spans fewer codes, so the fixed quantiser is coarser in the plane's units. At 12 bits
the finest unit is the plane's range / 4095; a finer knob raises the quality instead,
QUALITY_PER_OCTAVE levels per halving of the knob (MAE fell ~2% a level on ERA5 0.25 degree t2m),
with the unit moving within 2^(1/QUALITY_PER_OCTAVE) of the finest between levels (``codes_of``),
so targets that need a finer quantiser are reached too. Measured
(``avif_knob.py``, ``avif_grid.py``, ``avif_speed.py``): a fixed quality with the unit as the knob
coded 2-15% smaller than the quality as the knob at the finest unit (10 bits: 0.25 degree
t2m 713-770x against 725x; 1 degree msl 645-677x against 460x), 12 bits as 10 or better, and
speed 5 reached 840x at 0.71 s a probe on a 0.25 degree plane where speed 6 reached 765x at
0.16 s and speed 3 828x at 1.5 s.

From 0.24.0 the encoder also writes with libaom's ``tune=ssim`` (``libavif_options``, TUNES): at equal
MAE it wrote 3-13% smaller records than the default tune on most planes, and the encoder searches
both and keeps the smaller record (0.25 degree t2m at 0.4 K: 807.8x against 744.3x, 1.28% of the
points off by over 2 K against 1.32%). The decoder does not know the tune: any AV1 stream decodes.

Stream: ``min f64 | unit f64 | seq_level u8 | the AV1 payload``. The AVIF container around the
payload (269 bytes, 4% of a 0.25 degree t2m plane at 800x) depends only on the shape, the
payload's length and AV1's sequence level, so the decoder rebuilds it (``_container``), and the
encoder keeps a stream only where libavif wrote exactly that container. Rebuilt from the
chunk's checked shape, the container's sizes cannot be forged, and a payload whose sequence
header names another frame size is refused (``_frame_size``). AV1 decoding is specified to the
bit, so every machine decodes the same codes.
"""

from __future__ import annotations

import struct

import numpy as np

BITS = 12
CODES = (1 << BITS) - 1
QUALITY = 62   # libavif's 0-100 (quantiser 24 of 63)
QUALITY_PER_OCTAVE = 30
MAX_QUALITY = 99   # 100 is lossless
SPEED = 5
# The encoder searches the unit at this speed, then writes the record at SPEED (``conventional``): at
# a given unit speed 8 coded ERA5 0.25 degree t2m minus its prediction to an MAE within 1-2% of speed
# 5's, with a similar tail share, in 0.06 s instead of 0.72 s, but ~40% larger (/work/exp/s21/speed_search.py)
PROBE_SPEED = 8
# libaom's tunes the encoder writes with (``libavif_options``; the decoder needs none), in the order it
# searches them. tune=ssim wrote 3-13% smaller records than libaom's default (psnr) at equal MAE with
# the same or lighter tails on ERA5 0.25 and 1 degree t2m, u10 and v10; on 1 degree msl at 100 Pa its
# tails were heavier, and psnr's record (395 bytes) beat SPERR's step mode (416) where ssim's did not
# (/work/exp/s24/tune_ssim_planes.py, codec_tuned.py): the encoder searches both and keeps the smaller.
TUNES = {"ssim": (("tune", "ssim"),), "psnr": ()}
MIN_SIDE = 32    # as EBCC's floor: smaller planes were not measured (they are a few hundred bytes at most)

_HEAD = struct.Struct("<ddB")   # min, unit, seq_level
_U32 = struct.Struct(">I")
# libavif 1.4's container for one 12-bit monochrome image (ftyp, meta with hdlr, pitm, iloc,
# iinf, iprp: ispe, pixi, av1C, colr), then the mdat box's header; the fields patched in below
_CONTAINER = bytes.fromhex(
    "0000001c667479706176696600000000617669666d6966316d696166000000e96d657461000000000000002168646c72"
    "000000000000000070696374000000000000000000000000000000000e7069746d0000000000010000001e696c6f6300"
    "000000440000010001000000010000010d000000000000002869696e660000000000010000001a696e66650200000000"
    "01000061763031436f6c6f72000000006869707270000000496970636f00000014697370650000000000000000000000"
    "000000000e7069786900000000010c0000000c6176314381407c0000000013636f6c726e636c78000200020006800000"
    "001769706d61000000000000000100010401028304000000006d646174")
_LENGTH_AT, _WIDTH_AT, _HEIGHT_AT, _LEVEL_AT, _MDAT_AT = 113, 185, 189, 216, 261


def _container(shape: tuple[int, int], seq_level: int, payload_len: int) -> bytes:
    """The AVIF container libavif writes around an AV1 payload of ``payload_len`` bytes."""
    out = bytearray(_CONTAINER)
    _U32.pack_into(out, _LENGTH_AT, payload_len)
    _U32.pack_into(out, _WIDTH_AT, shape[1])
    _U32.pack_into(out, _HEIGHT_AT, shape[0])
    out[_LEVEL_AT] = 0x40 | seq_level   # seq_profile 2 (12 bits) | seq_level_idx
    _U32.pack_into(out, _MDAT_AT, payload_len + 8)
    return bytes(out)


def _frame_size(payload: bytes) -> tuple[int, int] | None:
    """(height, width) from the payload's AV1 sequence header (a temporal delimiter, then a
    sequence header OBU with reduced_still_picture_header, as libaom writes a still image), or None.

    Why: libavif rescales a frame to the container's size where the two differ, so a payload of
    another shape would decode silently to a resampled plane; the decoder checks it instead."""
    if len(payload) < 8 or payload[:2] != b"\x12\x00" or payload[2] != 0x0A:
        return None
    bits = int.from_bytes(payload[4:4 + min(payload[3], 16)], "big")
    total = 8 * min(payload[3], 16)

    def take(n: int, at: list) -> int:
        at[0] += n
        return (bits >> (total - at[0])) & ((1 << n) - 1) if at[0] <= total else -1

    at = [0]
    _profile, still, reduced = take(3, at), take(1, at), take(1, at)
    if not (still == 1 and reduced == 1):
        return None
    take(5, at)   # seq_level_idx
    width_bits, height_bits = take(4, at) + 1, take(4, at) + 1
    width, height = take(width_bits, at) + 1, take(height_bits, at) + 1
    return (height, width) if at[0] <= total else None


def setting(plane: np.ndarray, knob: float) -> tuple[float, float, int]:
    """(min, unit, quality) for the knob: the unit it names where the codes span it, else a
    quality raised by how much finer the knob asks, and a unit between the finest and
    2^(1/QUALITY_PER_OCTAVE) x it that takes up the rest (the finest where the knob asks for
    more than MAX_QUALITY: every finer knob then codes the same stream).

    Why the unit moves too (0.22.0; before, it stayed at the finest): every knob within one
    quality's band then wrote the same stream, so two probes 2% apart often learnt nothing
    (ERA5 0.25 degree t2m at 0.2 K). With it the codec's records at targets finer than 12 bits
    allow were 1-3% smaller (1 degree t2m at 0.4 K 52.2x against 51.6x, at 0.2 K 25.0x against
    24.6x; 1 degree u10 at 0.25 m/s 24.7x against 24.0x; 0.25 degree t2m at 0.2 K 166.6x against
    164.9x; /work/exp/s22/cont_knob.py)."""
    low, high = float(plane.min()), float(plane.max())
    finest = max((high - low) / CODES * (1 + 1e-9), np.finfo(np.float64).tiny)
    unit, quality = float(knob), QUALITY
    if not unit >= finest:
        steps = int(np.ceil(QUALITY_PER_OCTAVE * np.log2(finest / max(unit, 1e-300))))
        quality = min(MAX_QUALITY, QUALITY + steps)
        within = unit * 2.0 ** ((quality - QUALITY) / QUALITY_PER_OCTAVE)   # < finest x 2^(1/QPO) by the ceil
        unit = min(max(finest, within), finest * 2.0 ** (1 / QUALITY_PER_OCTAVE))
    return low, unit, quality


def codes_of(plane: np.ndarray, knob: float) -> tuple[np.ndarray, float, float, int]:
    """(12-bit codes, min, unit, quality) for the knob (``setting``)."""
    values = plane.astype(np.float64)
    low, unit, quality = setting(values, knob)
    codes = np.clip(np.round((values - low) / unit), 0, CODES).astype(np.uint16)
    return codes, low, unit, quality


def tunes() -> tuple[str, ...]:
    """The TUNES this machine can write: all where ``libavif_options`` passes libaom's options, else
    "psnr" alone (imagecodecs' encoder, which passes none)."""
    from . import libavif_options

    return tuple(TUNES) if libavif_options.available() else ("psnr",)


def avif_file(codes: np.ndarray, quality: int, speed: int = SPEED, tune: str = "psnr") -> bytes:
    """The AVIF file libavif writes for 12-bit ``codes`` at ``quality``, ``speed`` (one thread) and
    libaom's ``tune`` (one of ``tunes()``)."""
    options = TUNES[tune]
    if options:
        from . import libavif_options

        return libavif_options.encode(codes, quality, speed, options)
    import imagecodecs

    image = np.ascontiguousarray(np.broadcast_to(codes[..., None], (*codes.shape, 3)))   # Y = R = G = B
    return bytes(imagecodecs.avif_encode(image, level=quality, speed=speed, bitspersample=BITS,
                                         pixelformat=imagecodecs.AVIF.PIXEL_FORMAT.YUV400, numthreads=1))


def encode(plane: np.ndarray, knob: float, speed: int = SPEED, tune: str = "psnr") -> bytes:
    """A finite (nlat, nlon) plane -> the stream (module docstring) at ``knob`` (``codes_of``),
    libaom's ``speed`` and ``tune``; a plane libavif frames otherwise than ``_container`` rebuilds
    raises ValueError (not a candidate)."""
    codes, low, unit, quality = codes_of(plane, knob)
    blob = avif_file(codes, quality, speed, tune)
    payload = blob[len(_CONTAINER):]
    seq_level = blob[_LEVEL_AT] & 0x1F if len(blob) > len(_CONTAINER) else 0
    if (blob[:len(_CONTAINER)] != _container(codes.shape, seq_level, len(payload))
            or _frame_size(payload) != codes.shape):
        raise ValueError("libavif framed the image otherwise than the container this version rebuilds")
    return _HEAD.pack(low, unit, seq_level) + payload


def decode(blob: bytes, shape: tuple, dtype) -> np.ndarray:
    """The stream -> the plane's values in ``dtype``; damaged bytes raise ValueError."""
    import imagecodecs

    if len(blob) <= _HEAD.size:
        raise ValueError("not a valid xneuralcodec chunk: avif plane too short")
    low, unit, seq_level = _HEAD.unpack_from(blob)
    if not (np.isfinite(low) and np.isfinite(unit) and unit > 0 and seq_level < 32):
        raise ValueError(f"not a valid xneuralcodec chunk: bad avif plane parameters ({low}, {unit}, {seq_level})")
    payload = blob[_HEAD.size:]
    if _frame_size(payload) != tuple(shape):
        raise ValueError(f"not a valid xneuralcodec chunk: avif plane is not a still image of shape {tuple(shape)}")
    try:
        codes = np.asarray(imagecodecs.avif_decode(_container(tuple(shape), seq_level, len(payload)) + payload,
                                                   numthreads=1))
    except Exception as exc:   # imagecodecs reports damage as AvifError (a RuntimeError)
        raise ValueError(f"not a valid xneuralcodec chunk: avif plane does not decode ({exc})") from exc
    if codes.shape != tuple(shape) or codes.dtype != np.uint16 or int(codes.max(initial=0)) > CODES:
        raise ValueError(f"not a valid xneuralcodec chunk: avif plane decodes to {codes.dtype} {codes.shape}, "
                         f"expected 12-bit codes of shape {tuple(shape)}")
    with np.errstate(over="ignore"):
        return (codes * unit + low).astype(dtype)
