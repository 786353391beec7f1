"""One plane's latents <-> range-coded words for hyperprior-v5 (checkerboard context).

    encode: z --z tables--> words; psi = integer h_s(z)
            anchors:     round(y) - mu_a --y tables[index_a]--> words
            non-anchors: ctx = integer context(anchors); round(y) - mu_n --y tables[index_n]--> words
    decode: the same three steps replayed, each from what the previous one decoded.

All means and scale indices come from ``integer_context.IntegerContextModel``, so both sides
pick identical tables on any machine. z, the words and the escapes are handled as in v4
(``latents.LatentCoder``); only the y steps differ.
"""

from __future__ import annotations

import numpy as np

from .entropy import EscapeReader, decode_groups, encode_groups
from .integer_context import anchor_mask
from .latents import LatentCoder


class CheckerboardLatentCoder(LatentCoder):
    """Entropy coding of (y, z) for one loaded v5 model: anchors first, then the rest."""

    def _encode_y(self, encoder, y: np.ndarray, z: np.ndarray, escapes: list) -> None:
        entropy, tables = self.model.hyper, self.model.y_tables
        anchors = anchor_mask(y.shape[-1])
        psi = entropy.psi(z)
        mu, index = entropy.parameters(psi, None, anchors)
        encode_groups(encoder, y[..., anchors] - mu, index, tables, escapes)
        mu, index = entropy.parameters(psi, entropy.context(y * anchors, ~anchors), ~anchors)
        encode_groups(encoder, y[..., ~anchors] - mu, index, tables, escapes)

    def _decode_y(self, decoder, z: np.ndarray, escapes: EscapeReader) -> np.ndarray:
        entropy, tables = self.model.hyper, self.model.y_tables
        n = 2 * z.shape[-1]            # y has twice z's resolution
        anchors = anchor_mask(n)
        y = np.zeros((12, self.model.config.latent, n, n), dtype=np.int64)
        psi = entropy.psi(z)
        mu, index = entropy.parameters(psi, None, anchors)
        y[..., anchors] = decode_groups(decoder, index, tables, escapes) + mu
        mu, index = entropy.parameters(psi, entropy.context(y, ~anchors), ~anchors)   # y is still 0 off the anchors
        y[..., ~anchors] = decode_groups(decoder, index, tables, escapes) + mu
        return y
