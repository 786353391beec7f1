"""The neural codec behind the reference compressors' interface, so one harness runs all.

Its knob is the discrete quality (0 coarsest .. 5 finest), a "precision" parameter:
``ratio_at_mae`` therefore interpolates its ratio between the two qualities that bracket
a target MAE instead of bisecting.
"""

from __future__ import annotations

import numpy as np

from xneuralcodec import NeuralCodec
from xneuralcodec.baselines import Compressor
from xneuralcodec.grid import LatLonGrid
from xneuralcodec.options import QUALITIES


def neural_compressor(grid: LatLonGrid, qualities=range(QUALITIES)) -> Compressor:
    """NeuralCodec on ``grid`` (each plane its own chunk), one codec object per quality."""
    qualities = sorted(qualities)
    if not qualities or qualities != list(range(qualities[0], qualities[-1] + 1)):
        raise ValueError(f"expected consecutive qualities, got {qualities} instead")
    codecs = {q: NeuralCodec(quality=q, grid=grid.to_config()) for q in qualities}

    def encode(plane, quality):
        return codecs[quality].encode(plane)

    def decode(blob, shape, quality):
        return np.asarray(codecs[quality].decode(blob)).reshape(shape)

    return Compressor("neural", "precision", encode, decode, library="xneuralcodec",
                      parameter_range=(qualities[0], qualities[-1]))


def neural_config(grid: LatLonGrid) -> dict:
    """The codec config (model name, weights sha256, ...) that the numbers belong to."""
    return NeuralCodec(grid=grid.to_config()).get_config()
