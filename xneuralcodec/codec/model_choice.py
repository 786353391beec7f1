"""``model="auto"``: which shipped weights code, and decode, each chunk.

Why per chunk: a ``NeuralCodec()`` is configured before it sees any data, and the better
network depends on the grid (``registry.auto_choice``: v4 below 0.25 degree, the fine-grid
model at 0.25 degree and finer). Encoding picks by the chunk's sphere. Decoding picks by the
weights sha256 prefix that every network chunk carries, so a store written with "auto" keeps
decoding when a later release changes the rule.
"""

from __future__ import annotations

import numpy as np

from ..network.registry import AUTO, auto_choice, model_of_prefix
from ..options import CodecOptions
from .planes import infer_grid


def options_for_array(options: CodecOptions, arr) -> CodecOptions:
    """The options an input chunk is coded with: "auto" resolved by the chunk's sphere (with a
    grid in the options, ``CodecOptions`` has resolved it already)."""
    if options.model != AUTO:
        return options
    shape = np.shape(arr)
    nside = options.nside if isinstance(options.nside, int) else None
    if nside is None and len(shape) >= 2 and min(shape[-2:]) > 0:
        try:
            nside = infer_grid(*shape[-2:]).default_nside()
        except ValueError:
            nside = None   # not a whole global grid: the engine refuses the chunk and says why
    return options.for_model(*auto_choice(nside or 0))


def options_for_chunk(options: CodecOptions, chunk) -> CodecOptions:
    """The options a parsed chunk decodes with: "auto" resolved by the weights the chunk names
    (chunks without network fields name none and need no weights)."""
    if options.model != AUTO or not chunk.weights_sha256:
        return options
    return options.for_model(model_of_prefix(chunk.weights_sha256))
