"""Range coding of quantised latents with constriction, from frozen integer tables.

Tables are built once at export (``build_tables``) and stored in the weights file: row k
holds integer frequencies of a zero-mean discretised Gaussian of scale ``scales[k]`` over
symbols -R_k..R_k, plus one escape symbol for anything outside. Escaped values travel
verbatim (int32) after the range-coded words. Encoder and decoder only ever see these
integers, so the probabilities fed to constriction are identical on every machine.

Symbols are coded grouped by table, in a fixed order the decoder can replay: all of z
channel by channel, then y table by table (positions in C order within each group).
"""

from __future__ import annotations

import math

import constriction
import numpy as np

TABLE_TOTAL = 2 ** 20
TAIL_SIGMAS = 7.0
NUM_SCALES = 64
LOG_SCALE_MIN = math.log(0.11)  # the scales the y tables cover; training clamps log sigma to them
LOG_SCALE_MAX = math.log(64.0)


def scale_table(log_min: float, log_max: float, num: int = NUM_SCALES) -> np.ndarray:
    return np.exp(np.linspace(log_min, log_max, num))


def build_table(sigma: float) -> np.ndarray:
    """Integer frequencies for symbols -R..R and a final escape slot (all >= 1)."""
    radius = max(2, int(math.ceil(TAIL_SIGMAS * sigma)))
    edges = (np.arange(-radius, radius + 2) - 0.5) / (sigma * math.sqrt(2.0))
    cdf = 0.5 * np.array([math.erfc(-e) for e in edges])
    probs = np.diff(cdf)
    probs = np.append(probs, max(0.0, 1.0 - probs.sum()))
    freq = np.maximum(1, np.floor(probs * (TABLE_TOTAL - probs.size))).astype(np.int64)
    freq[radius] += TABLE_TOTAL - freq.sum()  # put the rounding slack on zero
    return freq


def build_tables(sigmas) -> tuple[np.ndarray, np.ndarray]:
    """Stack tables into a zero-padded (K, L) int32 array and their radii (K,)."""
    tables = [build_table(float(s)) for s in sigmas]
    width = max(t.size for t in tables)
    out = np.zeros((len(tables), width), dtype=np.int32)
    for k, t in enumerate(tables):
        out[k, :t.size] = t
    radii = np.array([(t.size - 2) // 2 for t in tables], dtype=np.int32)
    return out, radii


class TableSet:
    """constriction models for a (K, L) frequency array; built once per loaded model."""

    def __init__(self, tables: np.ndarray, radii: np.ndarray):
        self.radii = np.asarray(radii, dtype=np.int64)
        self.models = []
        for k, r in enumerate(self.radii):
            freq = np.asarray(tables[k, : 2 * r + 2], dtype=np.float64)
            if freq.size != 2 * r + 2 or (freq <= 0).any():
                raise ValueError(f"entropy table {k} is malformed")
            self.models.append(constriction.stream.model.Categorical(freq / TABLE_TOTAL, perfect=False))
        # bits of every symbol of every table (an escape also carries its 32-bit value)
        self.bits = np.full((len(self.radii), tables.shape[1]), np.inf)
        for k, r in enumerate(self.radii):
            self.bits[k, : 2 * r + 2] = -np.log2(np.asarray(tables[k, : 2 * r + 2], np.float64) / TABLE_TOTAL)
            self.bits[k, 2 * r + 1] += 32.0

    def __len__(self):
        return len(self.models)

    def cost(self, values: np.ndarray, groups: np.ndarray) -> float:
        """Bits that ``encode_groups`` would spend on ``values`` under tables ``groups``
        (ideal code lengths: the range coder adds a few bytes per stream)."""
        values, groups = np.asarray(values, np.int64).ravel(), np.asarray(groups, np.int64).ravel()
        symbols, _ = _symbols(values, self.radii[groups])
        return float(self.bits[groups, symbols].sum())


def _symbols(values: np.ndarray, radius) -> tuple[np.ndarray, np.ndarray]:
    """Table symbols of integer ``values`` (value + radius; the escape slot 2 * radius + 1
    beyond the radius) and where they escaped."""
    outside = np.abs(values) > radius
    return np.where(outside, 2 * radius + 1, values + radius), outside


def _by_group(groups: np.ndarray):
    """(table index, positions in C order) for every table index (>= 0) in ``groups``,
    ascending; one stable sort instead of a scan of the whole array per table. The indices
    are sorted as uint16, for which numpy's stable sort is a radix sort, and the groups are
    cut by their counts (6x faster than a stable sort of int64 and np.unique)."""
    flat = groups.ravel()
    counts = np.bincount(flat)
    order = np.argsort(flat.astype(np.uint16) if counts.size <= 2 ** 16 else flat, kind="stable")
    keys = np.flatnonzero(counts)
    ends = np.cumsum(counts)[keys]
    return [(int(k), order[end - counts[k]:end]) for k, end in zip(keys, ends)]


def encode_groups(encoder, values: np.ndarray, groups: np.ndarray, tables: TableSet, escapes: list) -> None:
    """Encode integer ``values`` whose table index is ``groups`` (same shape)."""
    values = values.ravel()
    for k, where in _by_group(groups):
        v = values[where]
        symbols, outside = _symbols(v, tables.radii[k])
        escapes.extend(int(e) for e in v[outside])
        encoder.encode(symbols.astype(np.int32), tables.models[k])


def decode_groups(decoder, groups: np.ndarray, tables: TableSet, escapes: "EscapeReader") -> np.ndarray:
    out = np.empty(groups.size, dtype=np.int64)
    for k, where in _by_group(groups):
        out[where] = _decode_group(decoder, k, where.size, tables, escapes)
    return out.reshape(groups.shape)


def decode_channels(decoder, shape: tuple, tables: TableSet, escapes: "EscapeReader") -> np.ndarray:
    """``decode_groups`` where the table index is the channel (axis 1), as for z: group k is
    channel k in C order, so the same symbols come out in the same order without a sort."""
    out = np.empty(shape, dtype=np.int64)
    for k in range(shape[1]):
        channel = out[:, k]
        channel[...] = _decode_group(decoder, k, channel.size, tables, escapes).reshape(channel.shape)
    return out


def _decode_group(decoder, k: int, count: int, tables: TableSet, escapes: "EscapeReader") -> np.ndarray:
    """``count`` values coded under table ``k``, escapes filled in."""
    r = tables.radii[k]
    symbols = decoder.decode(tables.models[k], count).astype(np.int64)
    values = symbols - r
    outside = symbols == 2 * r + 1
    if outside.any():
        values[outside] = escapes.take(int(outside.sum()))
    return values


class EscapeReader:
    def __init__(self, values: np.ndarray):
        self.values = values
        self.pos = 0

    def take(self, count: int) -> np.ndarray:
        if self.pos + count > self.values.size:
            raise ValueError("corrupt chunk: more escaped latents than stored")
        out = self.values[self.pos:self.pos + count].astype(np.int64)
        self.pos += count
        return out
