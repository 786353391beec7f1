"""An error-bounded plane coder: SZ3's multilevel interpolation, with the latitude pass first
and the codes range-coded by constriction under adaptive context counts.

Why: at a hard bound (``max_abs_error``) native SZ3 3.4 (pysz) was the best peer on most 1 and
2.5 degree planes, and the WebAssembly SZ3 3.3 the codec could decode writes 1.5-22% more
(`docs/tight-bounds.md`). This coder writes 4-48% fewer bytes than native SZ3 on all 15
held-out planes of the benchmarks at 2x the paper's targets (ERA5 0.25 and 1 degree, GFS 2.5
degree, ERA5 3 degree, NCEP z500; `/work/exp/interp_real2.py`). Two things make the difference:
- the order of the passes. Each level first fills the rows between known rows along the
  meridian, then every row along the parallel: the last pass holds half the points, and along
  a parallel the grid points are closest (1 degree of longitude is 111 km at the equator and
  less towards the poles). The other order cost 3-21% more bytes on 8 of those planes.
- the coding. Huffman cannot spend under a bit on a code, and at these bounds many codes
  are 0 (12-94% on 8 of the planes); adaptive probabilities in 12 contexts cost less.
The decoder is numpy and constriction only: no native or WebAssembly decoder sees chunk bytes.

Prediction (both sides, float64, the same operations in the same order): the plane's first
value is stored; for strides s = 2^L .. 2 the points halfway between known ones are predicted
by cubic interpolation (-1, 9, 9, -1) / 16 (linear, or the nearer known value, at the edges).
A prediction error is quantised to ``q = rint(err / 2e)``; the decoder's value ``pred + 2e q``,
rounded to the plane's dtype, is within ``e`` of the original, or the point is an escape and
keeps its exact value.

Codes: per pass, row by row, each code in one of 12 contexts (the code above it in the pass:
0, 1 or 2+; the spread of the four values it is predicted from, in 4 bands of the step), from
counts that encoder and decoder update after every row (no table is stored). Codes beyond
+-RADIUS are an escape symbol; after its row's codes, each escape's class (an exact value, or
how many bits its code has) is range-coded under one more adaptive table, and the code's sign
and lower bits go to the bits section (on GFS 2.5 degree w at a bound of half the paper's MAE
target, where 29% of the points escape, 30% fewer bytes for them than one varint each). An exact
value goes to the raw section.

Stream: ``f64 bound``, varints ``words_len, bits_len, raw_count``, then the range coder's words
(u32), the escapes' bits (most significant first, zero-padded to a byte) and the raw values
(the plane's dtype; the first is the plane's first value). A clamped stream (format v17,
conventional coder 7: every prediction clipped to the plane's range) starts with ``f64 min, f64 max``.
"""

from __future__ import annotations

import struct

import constriction
import numpy as np

from ..format.bitstream import read_varint, varints

RADIUS = 31                       # codes -31..31 are symbols 1..63; symbol 0 is the escape
ALPHABET = 2 * RADIUS + 2
_UP_CLASSES = 3                   # |code above in the pass|: 0, 1, 2+
_SPREAD_EDGES = (0.5, 2.0, 8.0)   # the stencil's spread, in quantisation steps
_CONTEXTS = _UP_CLASSES * (len(_SPREAD_EDGES) + 1)
_LEVEL_CLASSES = 2                # the finest level's passes count apart from all coarser ones
_INCREMENT = 24                   # a seen symbol's count step (the prior gives each symbol 1-17)
# An escape's class: 0 = an exact value (raw section); c >= 1 = a code with c + 5 significant
# bits (|q| in [2^(c+4), 2^(c+5)): |q| > RADIUS has 6 or more, and codes stay below 2^52)
_ESCAPE_CLASSES = 48
_LIMITS = struct.Struct("<dd")   # a clamped stream's head: the plane's min and max


def _prior() -> np.ndarray:
    """Starting counts, ~1 + 16 exp(-|q|): small codes likelier, so the first rows of a pass cost
    little. Integers, as every count: their sums are exact, so the probabilities handed to
    constriction (count / row sum, one correctly rounded division) are the same on every
    machine, which the range decoder needs bit for bit."""
    prior = np.ones(ALPHABET, np.int64)
    for magnitude, extra in enumerate((16, 6, 2, 1)):
        prior[[RADIUS + 1 - magnitude, RADIUS + 1 + magnitude]] += extra
    return prior


def _probabilities(table: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    """Each code's probabilities: its context's counts over their sum (the table is normalised
    once per row, then gathered: the same divisions, 12 rows instead of one per code)."""
    return (table / table.sum(axis=1, keepdims=True))[ctx]


def _passes(shape: tuple[int, int]):
    """(level class, axis, rows, cols, half) of every pass, coarse to fine; a pass's points
    are the grid ``rows x cols``. Per level: along axis 0 on the coarse columns, then along
    axis 1 on every row known by then."""
    n_lat, n_lon = shape
    stride = 1 << max(1, int(np.ceil(np.log2(max(n_lat, n_lon, 2)))))
    out = []
    while stride > 1:
        half = stride // 2
        level_class = min(half.bit_length() - 1, _LEVEL_CLASSES - 1)
        for axis, rows, cols in ((0, np.arange(half, n_lat, stride), np.arange(0, n_lon, stride)),
                                 (1, np.arange(0, n_lat, half), np.arange(half, n_lon, stride))):
            if rows.size and cols.size:
                out.append((level_class, axis, rows, cols, half))
        stride = half
    return out


def _predict(rec: np.ndarray, rows, cols, half: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Cubic interpolation of the pass's points from the known values ``half`` and ``3 half``
    away along ``axis``, and the spread of those values (a context)."""
    n = rec.shape[axis]
    along = rows if axis == 0 else cols

    def at(offset):
        idx = along + offset
        inside = (idx >= 0) & (idx < n)
        idx = np.clip(idx, 0, n - 1)
        values = rec[np.ix_(idx, cols)] if axis == 0 else rec[np.ix_(rows, idx)]
        return np.where(inside[:, None] if axis == 0 else inside[None, :], values, np.nan)

    a, b, c, d = at(-3 * half), at(-half), at(half), at(3 * half)
    with np.errstate(invalid="ignore", over="ignore"):
        cubic = (-a + 9.0 * b + 9.0 * c - d) / 16.0
        linear = (b + c) / 2.0
        pred = np.where(np.isfinite(cubic), cubic,
                        np.where(np.isfinite(linear), linear, np.where(np.isfinite(b), b, c)))
        spread = np.fmax(np.fmax(a, b), np.fmax(c, d)) - np.fmin(np.fmin(a, b), np.fmin(c, d))
    return pred, np.nan_to_num(spread, nan=0.0, posinf=np.inf)


def _contexts(up: np.ndarray, spread: np.ndarray, step: float) -> np.ndarray:
    return up * (len(_SPREAD_EDGES) + 1) + np.searchsorted(np.asarray(_SPREAD_EDGES) * step, spread, side="right")


def _up_class(q: np.ndarray, exact: np.ndarray) -> np.ndarray:
    up = np.minimum(np.abs(q), _UP_CLASSES - 1)
    up[exact] = _UP_CLASSES - 1
    return up


def encode(plane: np.ndarray, bound: float, clamped: bool = False) -> bytes:
    """A finite 2-D float32/float64 plane -> bytes whose every decoded value is within ``bound``
    (``clamped``: a clamped stream, ``encode_with_values``, even where no prediction left the range)."""
    blob, _, _ = encode_with_values(plane, bound, clamped, plain_if_unclipped=False)
    return blob


def encode_with_values(plane: np.ndarray, bound: float, clamped: bool = False,
                       plain_if_unclipped: bool = True) -> tuple[bytes, np.ndarray, bool]:
    """``encode``, the values ``decode`` will give (float64), and whether the stream is a clamped
    one: the encoder reconstructs the values as it goes, so a bound search need not decode every probe.

    ``clamped`` (format v17, conventional coder 7): every prediction is clipped to the plane's
    (min, max), which the stream then starts with. Why: every value lies in that range, so the
    clip never moves a prediction away from the value it predicts, and cubic interpolation
    overshoots wherever a field sits at its floor: around dry areas on precipitation (ERA5 1 degree
    tp at 1.46e-5 m: 3.6% fewer bytes). Where no prediction left the range (and
    ``plain_if_unclipped``) the stream is written plain: the same codes, 16 bytes fewer."""
    plane = np.asarray(plane)
    if plane.ndim != 2 or plane.dtype not in (np.float32, np.float64):
        raise TypeError(f"expected a 2-D float32 or float64 plane, got {plane.dtype} {plane.shape} instead")
    if not np.all(np.isfinite(plane)):
        raise ValueError("the interpolation coder takes finite values only (the caller masks NaN)")
    bound = float(bound)
    if not (np.isfinite(bound) and bound > 0):
        raise ValueError(f"expected a finite bound > 0, got {bound!r} instead")
    x = plane.astype(np.float64)
    limits = (float(x.min()), float(x.max())) if clamped else None
    clipped_any = False
    step = 2.0 * bound
    rec = np.full(x.shape, np.nan)
    rec[0, 0] = x[0, 0]
    raw, payloads, widths = [x[0, 0]], [], []
    counts = np.tile(_prior(), (_LEVEL_CLASSES, _CONTEXTS, 1))
    escape_counts = np.ones((1, _ESCAPE_CLASSES), np.int64)
    encoder = constriction.stream.queue.RangeEncoder()
    family = constriction.stream.model.Categorical(perfect=False)
    for level_class, axis, rows, cols, half in _passes(x.shape):
        pred, spread = _predict(rec, rows, cols, half, axis)
        if limits is not None:
            inside = np.clip(pred, *limits)
            clipped_any = clipped_any or not np.array_equal(inside, pred, equal_nan=True)
            pred = inside
        target = x[np.ix_(rows, cols)]
        with np.errstate(invalid="ignore", over="ignore"):
            q = np.rint((target - pred) / step)
            q = np.where(np.abs(q) < 2.0 ** 52, q, 0.0)
            back = (pred + step * q).astype(plane.dtype).astype(np.float64)
            exact = ~(np.abs(back - target) <= bound)   # (NaN or inf fails too)
        back[exact] = target[exact]
        rec[np.ix_(rows, cols)] = back
        q = q.astype(np.int64)
        q[exact] = 0
        symbols = np.where(np.abs(q) <= RADIUS, q + RADIUS + 1, 0)
        symbols[exact] = 0
        table = counts[level_class]
        up = np.zeros(len(cols), np.int64)
        for r in range(len(rows)):
            ctx = _contexts(up, spread[r], step)
            encoder.encode(symbols[r].astype(np.int32), family, _probabilities(table, ctx))
            np.add.at(table, (ctx, symbols[r]), _INCREMENT)
            escapes = np.flatnonzero(symbols[r] == 0)
            if escapes.size:   # their classes, under one adaptive table, then their bits
                magnitude = np.abs(q[r, escapes])
                bits = np.where(exact[r, escapes], 0, _bit_length(magnitude))
                classes = np.where(exact[r, escapes], 0, bits - 5)
                encoder.encode(classes.astype(np.int32), family, _probabilities(escape_counts, np.zeros_like(classes)))
                np.add.at(escape_counts, (0, classes), _INCREMENT)
                for j, n_bits in zip(escapes, bits.tolist()):
                    if exact[r, j]:
                        raw.append(target[r, j])
                        continue
                    code, lower = int(q[r, j]), n_bits - 1   # the sign, then the bits below the leading one
                    payloads.append((int(code < 0) << lower) | (abs(code) - (1 << lower)))
                    widths.append(n_bits)
            up = _up_class(q[r], exact[r])
    words = encoder.get_compressed().astype("<u4").tobytes()
    bit_bytes = _pack_bits(np.asarray(payloads, np.uint64), np.asarray(widths, np.int64))
    raw_bytes = np.asarray(raw, plane.dtype.newbyteorder("<")).tobytes()
    clamped = clamped and (clipped_any or not plain_if_unclipped)
    head = _LIMITS.pack(*limits) if clamped else b""
    blob = head + struct.pack("<d", bound) + varints(len(words), len(bit_bytes), len(raw)) + words + bit_bytes + raw_bytes
    return blob, rec, clamped


def _bit_length(values: np.ndarray) -> np.ndarray:
    """Significant bits of positive integers below 2^52 (exact: frexp of an exactly held value)."""
    return np.frexp(values.astype(np.float64))[1].astype(np.int64)


def _read_bits(data: bytes, pos: int, n_bits: int) -> int:
    """The ``n_bits`` bits of ``data`` from bit ``pos`` on (most significant first), as an int."""
    first, end = pos >> 3, (pos + n_bits + 7) >> 3
    return (int.from_bytes(data[first:end], "big") >> (8 * end - pos - n_bits)) & ((1 << n_bits) - 1)


def _pack_bits(values: np.ndarray, widths: np.ndarray) -> bytes:
    """Each value's lowest ``width`` bits, most significant first, one after another; zero-padded
    to whole bytes."""
    if not values.size:
        return b""
    bits = np.unpackbits(values.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
    return np.packbits(bits[np.arange(64)[None, :] >= 64 - widths[:, None]]).tobytes()


def _fail(why: str):
    raise ValueError(f"not a valid xneuralcodec chunk: interpolation plane {why}")


def decode(blob: bytes, shape: tuple[int, int], dtype, clamped: bool = False) -> np.ndarray:
    """Bytes from ``encode`` (with the same ``clamped``) -> the plane in ``dtype``; damaged bytes
    raise ValueError."""
    dtype = np.dtype(dtype)
    if len(shape) != 2 or dtype not in (np.float32, np.float64):
        raise TypeError(f"expected a 2-D float32 or float64 shape, got {dtype} {shape} instead")
    n_lat, n_lon = (int(v) for v in shape)
    if n_lat < 1 or n_lon < 1:
        _fail(f"has shape {shape}")
    blob = bytes(blob)
    limits = None
    if clamped:
        if len(blob) < _LIMITS.size:
            _fail("is cut short")
        limits = _LIMITS.unpack_from(blob)
        if not (np.all(np.isfinite(limits)) and limits[0] <= limits[1]):
            _fail(f"has limits {limits}")
        blob = blob[_LIMITS.size:]
    if len(blob) < 8:
        _fail("is cut short")
    (bound,) = struct.unpack_from("<d", blob, 0)
    if not (np.isfinite(bound) and bound > 0):
        _fail(f"has bound {bound}")
    words_len, pos = read_varint(blob, 8, len(blob), "interpolation plane")
    bits_len, pos = read_varint(blob, pos, len(blob), "interpolation plane")
    raw_count, pos = read_varint(blob, pos, len(blob), "interpolation plane")
    if words_len % 4 or not 1 <= raw_count <= n_lat * n_lon \
            or pos + words_len + bits_len + raw_count * dtype.itemsize != len(blob):
        _fail("has sections that do not add up to its length")
    words = np.frombuffer(blob, "<u4", words_len // 4, pos).astype(np.uint32)
    escape_bits = blob[pos + words_len:pos + words_len + bits_len]   # read a field at a time: no copy per bit
    raw = np.frombuffer(blob, dtype.newbyteorder("<"), raw_count, pos + words_len + bits_len).astype(np.float64)
    if not np.all(np.isfinite(raw)):
        _fail("holds a value that is not finite")
    step = 2.0 * bound
    rec = np.full((n_lat, n_lon), np.nan)
    rec[0, 0] = raw[0]
    bit_pos, raw_pos = 0, 1
    counts = np.tile(_prior(), (_LEVEL_CLASSES, _CONTEXTS, 1))
    escape_counts = np.ones((1, _ESCAPE_CLASSES), np.int64)
    decoder = constriction.stream.queue.RangeDecoder(words)
    family = constriction.stream.model.Categorical(perfect=False)
    for level_class, axis, rows, cols, half in _passes((n_lat, n_lon)):
        pred, spread = _predict(rec, rows, cols, half, axis)
        if limits is not None:
            pred = np.clip(pred, *limits)
        table = counts[level_class]
        back = np.empty(pred.shape)
        up = np.zeros(len(cols), np.int64)
        for r in range(len(rows)):
            ctx = _contexts(up, spread[r], step)
            try:
                symbols = np.asarray(decoder.decode(family, _probabilities(table, ctx)), np.int64)
            except Exception as exc:   # constriction reports damage in its own types
                _fail(f"codes do not decode ({exc})")
            np.add.at(table, (ctx, symbols), _INCREMENT)
            q = symbols - (RADIUS + 1)
            exact = np.zeros(len(cols), bool)
            values = np.empty(len(cols))
            escapes = np.flatnonzero(symbols == 0)
            if escapes.size:
                try:
                    classes = np.asarray(decoder.decode(family, _probabilities(escape_counts, np.zeros_like(escapes))),
                                         np.int64)
                except Exception as exc:
                    _fail(f"escapes do not decode ({exc})")
                np.add.at(escape_counts, (0, classes), _INCREMENT)
                for j, cls in zip(escapes, classes):
                    if cls == 0:
                        if raw_pos >= raw_count:
                            _fail("lacks an exact value")
                        exact[j], q[j] = True, 0
                        values[j] = raw[raw_pos]
                        raw_pos += 1
                        continue
                    n_bits = int(cls) + 5
                    if bit_pos + n_bits > 8 * len(escape_bits):
                        _fail("lacks the bits of an escaped code")
                    field = _read_bits(escape_bits, bit_pos, n_bits)
                    bit_pos += n_bits
                    magnitude = (1 << (n_bits - 1)) | (field & ((1 << (n_bits - 1)) - 1))
                    q[j] = -magnitude if field >> (n_bits - 1) else magnitude
            with np.errstate(invalid="ignore", over="ignore"):
                coded = (pred[r] + step * q.astype(np.float64)).astype(dtype).astype(np.float64)
            values[~exact] = coded[~exact]
            back[r] = values
            up = _up_class(q, exact)
        if not np.all(np.isfinite(back)):
            _fail("decodes to values that are not finite")
        rec[np.ix_(rows, cols)] = back
    padding = 8 * len(escape_bits) - bit_pos
    if padding >= 8 or (padding and _read_bits(escape_bits, bit_pos, padding)) or raw_pos != raw_count:
        _fail("has bytes left over")
    return rec.astype(dtype)
