"""One plane's latents <-> range-coded words for hyperprior-v5 (checkerboard context).

    encode: z --z tables--> words; psi = integer h_s(z)
            anchors:     round(y) - mu_a --y tables[index_a]--> words
            non-anchors: ctx = integer context(anchors); round(y) - mu_n --y tables[index_n]--> words
    decode: the same three steps replayed, each from what the previous one decoded.

All means and scale indices come from ``integer_context.IntegerContextModel``, so both sides
pick identical tables on any machine. Same interface as ``latents.LatentCoder`` (v4).
"""

from __future__ import annotations

import constriction
import numpy as np

from .entropy import EscapeReader, decode_groups, encode_groups
from .integer_context import anchor_mask


class CheckerboardLatentCoder:
    """Entropy coding of (y, z) for one loaded v5 model."""

    def __init__(self, model):
        self.model = model

    def encode(self, y: np.ndarray, z: np.ndarray) -> tuple[bytes, bytes]:
        """(12, M, m, m) float y and (12, Z, k, k) int z -> (range-coded words, escaped values)."""
        tables, entropy = self.model, self.model.hyper
        encoder = constriction.stream.queue.RangeEncoder()
        escapes: list[int] = []
        z_groups = np.broadcast_to(np.arange(z.shape[1])[None, :, None, None], z.shape)
        encode_groups(encoder, z, z_groups, tables.z_tables, escapes)
        y_int = np.round(y).astype(np.int64)
        anchors = anchor_mask(y.shape[-1])
        psi = entropy.psi(z)
        mu, index = entropy.parameters(psi, None, anchors)
        encode_groups(encoder, y_int[..., anchors] - mu, index, tables.y_tables, escapes)
        mu, index = entropy.parameters(psi, entropy.context(y_int * anchors), ~anchors)
        encode_groups(encoder, y_int[..., ~anchors] - mu, index, tables.y_tables, escapes)
        words = encoder.get_compressed().astype("<u4").tobytes()
        return words, np.asarray(escapes, dtype="<i4").tobytes()

    def size(self, y: np.ndarray, z: np.ndarray) -> int:
        words, escapes = self.encode(y, z)
        return len(words) + len(escapes)

    def decode(self, words: bytes, escaped: bytes, nside: int) -> np.ndarray:
        """The rounded latents y (12, M, m, m) float32 of a plane coded at ``nside``."""
        cfg, entropy = self.model.config, self.model.hyper
        words = np.frombuffer(words, dtype="<u4").astype(np.uint32)
        escapes = EscapeReader(np.frombuffer(escaped, dtype="<i4"))
        n = 2 * (nside // cfg.stride)
        anchors = anchor_mask(n)
        y = np.zeros((12, cfg.latent, n, n), dtype=np.int64)
        try:
            decoder = constriction.stream.queue.RangeDecoder(words)
            nz = nside // cfg.stride
            z_groups = np.broadcast_to(np.arange(cfg.hyper)[None, :, None, None], (12, cfg.hyper, nz, nz))
            z = decode_groups(decoder, z_groups, self.model.z_tables, escapes)
            psi = entropy.psi(z)
            mu, index = entropy.parameters(psi, None, anchors)
            y[..., anchors] = decode_groups(decoder, index, self.model.y_tables, escapes) + mu
            mu, index = entropy.parameters(psi, entropy.context(y * anchors), ~anchors)
            y[..., ~anchors] = decode_groups(decoder, index, self.model.y_tables, escapes) + mu
        except ValueError:
            raise
        except Exception as exc:  # constriction reports damaged streams in its own types
            raise ValueError(f"not a valid xneuralcodec chunk: range decoder failed ({exc})") from exc
        if escapes.pos != escapes.values.size:
            raise ValueError("not a valid xneuralcodec chunk: unused escaped latents")
        return y.astype(np.float32)
