"""Rate control in the user's units: per plane, the smallest rate whose MAE meets a target.

``NeuralCodec(target_mae=x)`` (issue 4) searches the continuous quality axis (gains
interpolated between the trained points, ``LoadedModel.gain``) for the coarsest rate at
which the plane *as it will decode* has a latitude-weighted MAE of at most x. The encoder
replays the decoder for every candidate, so the check is exact, not a model of the error.
The analysis transform runs once per plane; each candidate costs one synthesis and one
inverse projection.

Where even the finest rate misses the target, the correction layer (``correction.py``)
takes over with the coarsest step that brings the MAE under it, so the promise always holds;
the engine then keeps whichever trained rate plus its correction is smallest.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import correction

BISECTION_STEPS = 5  # quality resolution (finest - coarsest) / 2^5: about 0.16 of a trained step
CORRECTION_STEPS = 20


def plane_mae(original: np.ndarray, decoded: np.ndarray, weights: np.ndarray) -> float:
    """Latitude-weighted MAE over the finite points; ``weights`` (nlat, 1) as metrics.area_weights."""
    finite = ~np.isnan(original)
    w = np.broadcast_to(weights, original.shape) * finite
    err = np.where(finite, np.abs(decoded.astype(np.float64) - original.astype(np.float64)), 0.0)
    return float((err * w).sum() / w.sum())


def search_quality(mae_at: Callable[[float], float], target: float, finest: float) -> tuple[float, float]:
    """Coarsest quality in [0, finest] with ``mae_at(q) <= target`` by bisection.

    Returns (quality, its MAE); when even ``finest`` misses, returns (finest, its MAE) and
    the caller adds a correction. MAE falls as quality rises in practice, but that is not
    relied on: the returned quality is always one that was measured to meet the target.
    """
    top = mae_at(finest)
    if top > target:
        return finest, top
    bottom = mae_at(0.0)
    if bottom <= target:
        return 0.0, bottom
    low, high, high_mae = 0.0, finest, top
    for _ in range(BISECTION_STEPS):
        mid = float(np.float32((low + high) / 2))  # stored as f32 in the chunk
        mae = mae_at(mid)
        if mae <= target:
            high, high_mae = mid, mae
        else:
            low = mid
    return high, high_mae


def correction_bound_for_mae(original: np.ndarray, approx: np.ndarray, weights: np.ndarray, target: float,
                             dtype, ceiling: float | None = None) -> float:
    """The coarsest correction bound eps (at most ``ceiling``) whose corrected plane meets the
    MAE target, by bisection on eps; eps = target always works (every error is then below it)."""
    def corrected_mae(eps):
        return plane_mae(original, correction.corrected(original, approx, eps, dtype).astype(dtype), weights)

    low = target if ceiling is None else min(target, ceiling)
    high = float(np.nanmax(np.abs(original - approx))) if ceiling is None else ceiling
    if high <= low or corrected_mae(high) <= target:
        return max(high, low)
    for _ in range(CORRECTION_STEPS):
        mid = 0.5 * (low + high)
        if corrected_mae(mid) <= target:
            low = mid
        else:
            high = mid
    return low
