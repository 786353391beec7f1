"""The error-bound correction layer: residual quantisation and its entropy coding.

``NeuralCodec(max_abs_error=eps)`` adds, after the neural reconstruction on the original
lat/lon grid, a correction ``q * step`` with integer q and ``step = 2 * eps * (1 - margin)``,
so every finite value ends within eps (issue 5; Mirowski et al. 2024 leave a few pixels far
off, scientists archiving data want a worst case). The margin absorbs float rounding and the
last-bit differences another machine's decoder may have.

Most q are zero, so they are range-coded with constriction against their own histogram,
stored in the section (integers only, identical on every machine): an all-zero plane costs
nothing, the section is then empty.

Section layout (little-endian): radius K u16 | escapes E u32 | counts (2K+2) x u32 for
q = -K..K and one escape slot | escaped values E x i32 | range-coder words u32.
"""

from __future__ import annotations

import struct

import constriction
import numpy as np

MARGIN = 2.0 ** -6      # fraction of the bound kept back for rounding and other machines
MAX_RADIUS = 1024
_HEAD = struct.Struct("<HI")


def step_for(max_abs_error: float) -> float:
    return 2.0 * max_abs_error * (1.0 - MARGIN)


def quantise(original: np.ndarray, approx: np.ndarray, max_abs_error: float, dtype) -> tuple[np.ndarray, float]:
    """(q, step): integer corrections that bring every finite value of ``original`` within
    the bound once ``approx + q * step`` is cast to ``dtype`` (NaN positions get 0)."""
    step = step_for(max_abs_error)
    # step / 2 < bound < max_abs_error: room for the output dtype's rounding below the
    # bound, and for another machine's last-bit differences above it
    bound = max_abs_error * (1.0 - MARGIN / 2)
    x = original.astype(np.float64)
    finite = ~np.isnan(x)
    q = np.where(finite, np.rint((x - approx) / step), 0.0)

    def error(qq):
        return np.abs((approx + qq * step).astype(dtype).astype(np.float64) - x)

    bad = finite & (error(q) > bound)
    for dq in (-1.0, 1.0):  # rounding to the output dtype can push a value over the edge
        if bad.any():
            fixed = bad & (error(q + dq) <= bound)
            q = np.where(fixed, q + dq, q)
            bad &= ~fixed
    if bad.any():
        raise ValueError(
            f"max_abs_error={max_abs_error} is finer than {np.dtype(dtype)} can represent near "
            f"{x[bad][0]:g}: choose a larger bound"
        )
    if np.abs(q).max() >= 2 ** 31:
        raise ValueError(f"max_abs_error={max_abs_error} is too small for values of this range: choose a larger bound")
    return q.astype(np.int64), step


def corrected(original: np.ndarray, approx: np.ndarray, max_abs_error: float, dtype) -> np.ndarray:
    """The plane as the decoder will return it (before the NaN mask) with this bound's correction."""
    q, step = quantise(original, approx, max_abs_error, dtype)
    return approx + q * step


def encode(q: np.ndarray) -> bytes:
    """Integer corrections (any shape) -> section bytes; b"" when all are zero."""
    q = np.asarray(q, dtype=np.int64).ravel()
    if not q.any():
        return b""
    # the table covers 99.9% of the corrections; the rare large ones travel verbatim
    radius = int(min(max(1, np.quantile(np.abs(q), 0.999, method="higher")), MAX_RADIUS))
    outside = np.abs(q) > radius
    symbols = np.where(outside, 2 * radius + 1, q + radius)
    counts = np.bincount(symbols, minlength=2 * radius + 2).astype(np.uint32)
    model = constriction.stream.model.Categorical(counts.astype(np.float64), perfect=False)
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(symbols.astype(np.int32), model)
    escapes = q[outside].astype("<i4")
    return b"".join([
        _HEAD.pack(radius, escapes.size), counts.astype("<u4").tobytes(), escapes.tobytes(),
        encoder.get_compressed().astype("<u4").tobytes(),
    ])


def decode(blob: bytes, count: int) -> np.ndarray:
    """Section bytes -> ``count`` integer corrections; ValueError on anything inconsistent."""
    if not blob:
        return np.zeros(count, dtype=np.int64)
    if len(blob) < _HEAD.size:
        raise ValueError("not a valid xneuralcodec chunk: correction section cut short")
    radius, n_escapes = _HEAD.unpack_from(blob, 0)
    n_counts = 2 * radius + 2
    offset = _HEAD.size
    need = offset + 4 * n_counts + 4 * n_escapes
    if not 1 <= radius <= MAX_RADIUS or n_escapes > count or need > len(blob) or (len(blob) - need) % 4:
        raise ValueError("not a valid xneuralcodec chunk: malformed correction section")
    counts = np.frombuffer(blob, "<u4", n_counts, offset).astype(np.float64)
    offset += 4 * n_counts
    escapes = np.frombuffer(blob, "<i4", n_escapes, offset).astype(np.int64)
    offset += 4 * n_escapes
    words = np.frombuffer(blob, "<u4", offset=offset).astype(np.uint32)
    if counts.sum() != count:
        raise ValueError("not a valid xneuralcodec chunk: correction histogram does not match the plane")
    try:
        model = constriction.stream.model.Categorical(counts, perfect=False)
        symbols = constriction.stream.queue.RangeDecoder(words).decode(model, count).astype(np.int64)
    except Exception as exc:  # constriction reports damaged streams in its own types
        raise ValueError(f"not a valid xneuralcodec chunk: correction decoder failed ({exc})") from exc
    q = symbols - radius
    outside = symbols == 2 * radius + 1
    if int(outside.sum()) != n_escapes:
        raise ValueError("not a valid xneuralcodec chunk: correction escapes do not match")
    q[outside] = escapes
    return q
