"""The error-bound correction layer: residual quantisation and its entropy coding.

``NeuralCodec(max_abs_error=eps)`` adds, after the neural reconstruction on the original
lat/lon grid, a correction ``q * step`` with integer q and ``step = 2 * eps * (1 - margin)``,
so every finite value ends within eps (issue 5; Mirowski et al. 2024 leave a few pixels far
off, scientists archiving data want a worst case). The margin absorbs float rounding and the
last-bit differences another machine's decoder may have.

Most q are zero, and the non-zero ones cluster where the network smooths (coasts, fronts,
mountains). So (format v3) the plane is cut into 8 x 8 blocks, each block gets a class, and
the classes go first: *zero* blocks cost nothing more, *unit* blocks (every |q| <= 1) code
their q against a 3-symbol histogram, *wide* blocks against a histogram over -K..K plus an
escape slot for the rare larger values, stored verbatim. Every histogram is integers in the
section, so the decoder's models are identical on every machine; all symbols go through one
constriction range coder. An all-zero plane has an empty section.

Where the network misses a smooth part of the field, neighbouring corrections are alike, so
(format v4) the encoder may code each q as its difference from its western neighbour (the
first column as it is) and keeps whichever of the two is shorter: on ERA5 0.25 degree t2m
with ``max_abs_error=0.8`` K at quality 3 the correction shrinks from 67.2 to 54.2 kB.

Section layout v4: predictor u8 (0: q itself, 1: west differences) | the v3 layout of the
predicted values. Section layout v3 (little-endian): block size u16 | zero, unit, wide block counts 3 x u32 |
radius K u16 | escapes E u32 | unit counts 3 x u32 | wide counts (2K+2) x u32 (K = 0 and none
when there is no wide block) | escaped values E x i32 | range-coder words u32.
Symbols in coding order: the block classes (block rows north to south, blocks west to east),
then the q of unit blocks, then those of wide blocks, each block by block, row-major inside.

Format v2 (release 0.2.0) coded every q against one histogram: radius K u16 | escapes E u32 |
counts (2K+2) x u32 | escaped values E x i32 | words u32; ``decode`` still reads it.
"""

from __future__ import annotations

import functools
import struct

import constriction
import numpy as np

from .output import to_dtype

MARGIN = 2.0 ** -6      # fraction of the bound kept back for rounding and other machines
MAX_RADIUS = 1024
_HEAD = struct.Struct("<HI")           # v2: radius, escapes
_HEAD3 = struct.Struct("<HIIIHI")      # v3: block, zero / unit / wide blocks, radius, escapes
BLOCK = 8
ZERO, UNIT, WIDE = 0, 1, 2
PREDICT_NONE, PREDICT_WEST = 0, 1      # v4: the section's first byte


class BoundUnreachable(ValueError):
    """No correction step holds this bound for this plane in its dtype (the bound is below what
    the dtype resolves there, or needs corrections beyond i32): the engine stores the plane
    losslessly instead, so the promise holds and the ratio shows what it cost."""


def step_for(max_abs_error: float) -> float:
    return 2.0 * max_abs_error * (1.0 - MARGIN)


def _fit(x: np.ndarray, approx: np.ndarray, step: float, bound: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(q, points still over the bound) for one step, nudging q by +-1 where the cast to the
    output dtype pushes a value over the edge."""
    finite = ~np.isnan(x)
    with np.errstate(over="ignore", invalid="ignore"):
        q = np.where(finite, np.rint((x - approx) / step), 0.0)

        def error(qq):
            return np.abs(to_dtype(approx + qq * step, dtype).astype(np.float64) - x)

        bad = finite & ~(error(q) <= bound)
        for dq in (-1.0, 1.0):
            if bad.any():
                fixed = bad & (error(q + dq) <= bound)
                q = np.where(fixed, q + dq, q)
                bad &= ~fixed
    return q, bad


def quantise(original: np.ndarray, approx: np.ndarray, max_abs_error: float, dtype) -> tuple[np.ndarray, float]:
    """(q, step): integer corrections that bring every finite value of ``original`` within
    the bound once ``approx + q * step`` is cast to ``dtype`` (NaN positions get 0).

    Raises ``BoundUnreachable`` where no step can (see there)."""
    step = step_for(max_abs_error)
    # step / 2 < bound < max_abs_error: room for the output dtype's rounding below the
    # bound, and for another machine's last-bit differences above it
    bound = max_abs_error * (1.0 - MARGIN / 2)
    x = original.astype(np.float64)
    q, bad = _fit(x, approx, step, bound, dtype)
    if bad.any():
        # within about 64 ulps of the values the dtype's own rounding (up to half an ulp) no
        # longer fits in the margin: a finer step leaves it room (the step travels in the record)
        ulp = float(np.spacing(np.asarray(np.nanmax(np.abs(x)), dtype=dtype)))
        if bound > ulp:
            step = 2.0 * (bound - ulp)
            q, bad = _fit(x, approx, step, bound, dtype)
    if bad.any() or not np.abs(q).max() < 2 ** 31:
        raise BoundUnreachable(f"max_abs_error={max_abs_error} cannot be held by a correction of this "
                               f"{np.dtype(dtype)} plane (values up to {np.nanmax(np.abs(x)):g})")
    return q.astype(np.int64), step


def corrected(original: np.ndarray, approx: np.ndarray, max_abs_error: float, dtype) -> np.ndarray:
    """The plane as the decoder will return it (before the NaN mask) with this bound's correction."""
    q, step = quantise(original, approx, max_abs_error, dtype)
    return approx + q * step


@functools.lru_cache(maxsize=8)
def _blocks(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(order, starts): flat pixel indices block by block (row-major inside each block), and
    where each block begins in that order."""
    nlat, nlon = shape
    per_row = -(-nlon // BLOCK)
    ids = ((np.arange(nlat) // BLOCK)[:, None] * per_row + (np.arange(nlon) // BLOCK)[None, :]).ravel()
    order = np.argsort(ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(ids[order]) != 0])
    return order, starts


def _radius(magnitudes: np.ndarray) -> int:
    """Table radius K: each step of K costs two 4-byte counts, each value beyond K a 4-byte
    escape; pick the cheapest (the rare large corrections then travel verbatim)."""
    ordered = np.sort(magnitudes)
    candidates = np.unique(np.clip(ordered, 1, MAX_RADIUS))
    beyond = ordered.size - np.searchsorted(ordered, candidates, side="right")
    return int(candidates[np.argmin(8 * candidates + 4 * beyond)])


def _categorical(counts: np.ndarray):
    return constriction.stream.model.Categorical(np.asarray(counts, np.float64), perfect=False)


def west_differences(q: np.ndarray) -> np.ndarray:
    """Each q minus its western neighbour; the first column as it is (undone by a cumsum)."""
    d = q.copy()
    d[:, 1:] -= q[:, :-1]
    return d


def encode(q: np.ndarray) -> bytes:
    """Integer corrections (nlat, nlon) -> section bytes (format v4); b"" when all are zero."""
    q = np.asarray(q, dtype=np.int64)
    if q.ndim != 2:
        raise ValueError(f"expected a 2-D plane of corrections, got shape {q.shape}")
    if not q.any():
        return b""
    best = bytes([PREDICT_NONE]) + _encode_blocks(q)
    d = west_differences(q)
    if np.abs(d).max() < 2 ** 31:  # escapes travel as i32
        west = bytes([PREDICT_WEST]) + _encode_blocks(d)
        if len(west) < len(best):
            best = west
    return best


def _encode_blocks(q: np.ndarray) -> bytes:
    """The v3 layout of a plane of integers that are not all zero."""
    order, starts = _blocks(q.shape)
    ordered = q.ravel()[order]
    block_max = np.maximum.reduceat(np.abs(ordered), starts)
    classes = np.where(block_max == 0, ZERO, np.where(block_max == 1, UNIT, WIDE))
    pixel_class = np.repeat(classes, np.diff(np.r_[starts, ordered.size]))
    class_counts = np.bincount(classes, minlength=3)
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(classes.astype(np.int32), _categorical(class_counts))
    units = ordered[pixel_class == UNIT] + 1
    unit_counts = np.bincount(units, minlength=3)
    if units.size:
        encoder.encode(units.astype(np.int32), _categorical(unit_counts))
    wide = ordered[pixel_class == WIDE]
    radius, wide_counts, escapes = 0, np.zeros(0, np.int64), np.zeros(0, np.int64)
    if wide.size:
        radius = _radius(np.abs(wide))
        outside = np.abs(wide) > radius
        symbols = np.where(outside, 2 * radius + 1, wide + radius)
        wide_counts = np.bincount(symbols, minlength=2 * radius + 2)
        encoder.encode(symbols.astype(np.int32), _categorical(wide_counts))
        escapes = wide[outside]
    return b"".join([
        _HEAD3.pack(BLOCK, *(int(c) for c in class_counts), radius, escapes.size),
        unit_counts.astype("<u4").tobytes(), wide_counts.astype("<u4").tobytes(), escapes.astype("<i4").tobytes(),
        encoder.get_compressed().astype("<u4").tobytes(),
    ])


def _fail(why: str):
    raise ValueError(f"not a valid xneuralcodec chunk: {why}")


def decode(blob: bytes, shape: tuple[int, int], version: int = 4) -> np.ndarray:
    """Section bytes -> integer corrections of shape (nlat, nlon); ValueError on anything inconsistent."""
    count = shape[0] * shape[1]
    if not blob:
        return np.zeros(shape, dtype=np.int64)
    if version < 3:
        return _decode_v2(blob, count).reshape(shape)
    if version == 3:
        return _decode_blocks(blob, shape, count)
    predictor = blob[0]
    if predictor not in (PREDICT_NONE, PREDICT_WEST):
        _fail(f"unknown correction predictor {predictor}")
    values = _decode_blocks(blob[1:], shape, count)
    if predictor == PREDICT_WEST:
        values = np.cumsum(values, axis=1)
        if np.abs(values).max() >= 2 ** 31:
            _fail("correction values out of range")
    return values


def _decode_blocks(blob: bytes, shape: tuple[int, int], count: int) -> np.ndarray:
    if len(blob) < _HEAD3.size:
        _fail("correction section cut short")
    block, n_zero, n_unit, n_wide, radius, n_escapes = _HEAD3.unpack_from(blob, 0)
    order, starts = _blocks(tuple(shape))
    if block != BLOCK or n_zero + n_unit + n_wide != starts.size or (radius == 0) != (n_wide == 0) \
            or radius > MAX_RADIUS or n_escapes > count:
        _fail("malformed correction section header")
    n_wide_counts = 2 * radius + 2 if n_wide else 0
    offset = _HEAD3.size
    need = offset + 4 * (3 + n_wide_counts + n_escapes)
    if need > len(blob) or (len(blob) - need) % 4:
        _fail("correction section lengths do not add up")
    unit_counts = np.frombuffer(blob, "<u4", 3, offset).astype(np.int64)
    offset += 12
    wide_counts = np.frombuffer(blob, "<u4", n_wide_counts, offset).astype(np.int64)
    offset += 4 * n_wide_counts
    escapes = np.frombuffer(blob, "<i4", n_escapes, offset).astype(np.int64)
    offset += 4 * n_escapes
    words = np.frombuffer(blob, "<u4", offset=offset).astype(np.uint32)
    try:
        decoder = constriction.stream.queue.RangeDecoder(words)
        classes = decoder.decode(_categorical([n_zero, n_unit, n_wide]), starts.size).astype(np.int64)
        pixel_class = np.repeat(classes, np.diff(np.r_[starts, count]))
        is_unit, is_wide = pixel_class == UNIT, pixel_class == WIDE
        if unit_counts.sum() != is_unit.sum() or wide_counts.sum() != is_wide.sum():
            _fail("correction histograms do not match the block classes")
        ordered = np.zeros(count, dtype=np.int64)
        if is_unit.any():
            ordered[is_unit] = decoder.decode(_categorical(unit_counts), int(is_unit.sum())).astype(np.int64) - 1
        if is_wide.any():
            symbols = decoder.decode(_categorical(wide_counts), int(is_wide.sum())).astype(np.int64)
            outside = symbols == 2 * radius + 1
            if int(outside.sum()) != n_escapes:
                _fail("correction escapes do not match")
            symbols[outside] = escapes + radius
            ordered[is_wide] = symbols - radius
    except ValueError:
        raise
    except Exception as exc:  # constriction reports damaged streams in its own types
        _fail(f"correction decoder failed ({exc})")
    q = np.empty(count, dtype=np.int64)
    q[order] = ordered
    return q.reshape(shape)


def _decode_v2(blob: bytes, count: int) -> np.ndarray:
    """Format v2 section bytes -> ``count`` integer corrections."""
    if len(blob) < _HEAD.size:
        _fail("correction section cut short")
    radius, n_escapes = _HEAD.unpack_from(blob, 0)
    n_counts = 2 * radius + 2
    offset = _HEAD.size
    need = offset + 4 * n_counts + 4 * n_escapes
    if not 1 <= radius <= MAX_RADIUS or n_escapes > count or need > len(blob) or (len(blob) - need) % 4:
        _fail("malformed correction section")
    counts = np.frombuffer(blob, "<u4", n_counts, offset).astype(np.float64)
    offset += 4 * n_counts
    escapes = np.frombuffer(blob, "<i4", n_escapes, offset).astype(np.int64)
    offset += 4 * n_escapes
    words = np.frombuffer(blob, "<u4", offset=offset).astype(np.uint32)
    if counts.sum() != count:
        _fail("correction histogram does not match the plane")
    try:
        model = constriction.stream.model.Categorical(counts, perfect=False)
        symbols = constriction.stream.queue.RangeDecoder(words).decode(model, count).astype(np.int64)
    except Exception as exc:  # constriction reports damaged streams in its own types
        _fail(f"correction decoder failed ({exc})")
    q = symbols - radius
    outside = symbols == 2 * radius + 1
    if int(outside.sum()) != n_escapes:
        _fail("correction escapes do not match")
    q[outside] = escapes
    return q
