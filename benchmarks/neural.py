"""The neural codec behind the reference compressors' interface, so one harness runs all.

Its knob is the quality, continuous from 0 (coarsest) to 5 (finest): integers are the
trained rate points, fractions interpolate their gains. ``ratio_at_mae`` therefore
bisects it like an error bound and reports a measured point, never an interpolated one.
"""

from __future__ import annotations

import numpy as np

from xneuralcodec import NeuralCodec
from xneuralcodec.evaluation.baselines import Compressor
from xneuralcodec.options import QUALITIES
from xneuralcodec.sphere.grid import LatLonGrid


def neural_compressor(grid: LatLonGrid, finest: float = QUALITIES - 1, variable: str | None = None) -> Compressor:
    """NeuralCodec on ``grid`` (each plane its own chunk), one codec object per quality used,
    told the variable's name as ``xneuralcodec.encoding`` would (no level: groups mix levels)."""
    if not 0 < finest <= QUALITIES - 1:
        raise ValueError(f"expected the finest quality in (0, {QUALITIES - 1}], got {finest} instead")
    codecs = {}

    def codec(quality):
        quality = float(np.float32(quality))
        if quality not in codecs:
            codecs[quality] = NeuralCodec(quality=quality, grid=grid.to_config(), variable=variable)
        return codecs[quality]

    def encode(plane, quality):
        return codec(quality).encode(plane)

    def decode(blob, shape, quality):
        return np.asarray(codec(quality).decode(blob)).reshape(shape)

    return Compressor("neural", "quality", encode, decode, library="xneuralcodec", parameter_range=(0.0, float(finest)))


def neural_config(grid: LatLonGrid) -> dict:
    """The codec config (model name, weights sha256, ...) that the numbers belong to."""
    return NeuralCodec(grid=grid.to_config()).get_config()
