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
from .output import to_dtype

BISECTION_STEPS = 5  # quality resolution (finest - coarsest) / 2^5: about 0.16 of a trained step
CORRECTION_STEPS = 20   # 12 measured +0.04-1.5% bytes on network-only records (benchmarks.hybrid, G01 tp worst) for ~6% of a search
# A corrected network record this many times its rival's size gives up: over the trained rates the
# smallest corrected record was 0.81-1.0 of the finest one's (ERA5 0.25 degree t2m at 0.2 and
# 0.4 K, 1 degree t2m, u10, msl, GFS t500, ERA5 3 degree z500; v4 and v5.1), so none would win.
HOPELESS = 2.0
SIZE_STEPS = 3         # the size cap needs no finer quality than (finest - coarsest) / 8


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
        return plane_mae(original, to_dtype(correction.corrected(original, approx, eps, dtype), dtype), weights)

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


class NetworkCannotWin(Exception):
    """Even the network's coarsest rate, or its best corrected record, is larger than the record
    already in hand (``HOPELESS``)."""


class PlaneRateSearch:
    """The target-MAE decisions for one plane, against the decoder's own replay.

    ``replay(quality)`` returns the plane the decoder would rebuild at that rate (before any
    correction) and ``coded_size(quality)`` the bytes of its latents; the engine supplies
    both, so this class knows errors and sizes, not networks. ``size_limit``: the bytes of a
    record already in hand (a conventional coder's): rates whose latents alone are that large
    cannot win, so the search stays below them (latent sizes are cheap, replays are not).
    """

    def __init__(self, original: np.ndarray, weights: np.ndarray, dtype, target_mae: float,
                 max_abs_error: float | None, finest: int,
                 replay: Callable[[float], np.ndarray], coded_size: Callable[[float], int],
                 size_limit: int | None = None):
        self.original = original
        self.weights = weights
        self.dtype = dtype
        self.target_mae = target_mae
        self.max_abs_error = max_abs_error
        self.finest = finest
        self._replay = replay
        self._coded_size = coded_size
        self.size_limit = size_limit
        self.replays: dict[float, np.ndarray] = {}
        self.sizes: dict[float, int] = {}

    def _mae_at(self, quality: float) -> float:
        self.replays[quality] = approx = self._replay(quality)
        if self.max_abs_error is not None:  # the decoded plane includes the correction
            approx = correction.corrected(self.original, approx, self.max_abs_error, self.dtype)
        return plane_mae(self.original, to_dtype(approx, self.dtype), self.weights)

    def _size(self, quality: float) -> int:
        if quality not in self.sizes:
            self.sizes[quality] = self._coded_size(quality)
        return self.sizes[quality]

    def _finest_under_limit(self) -> float:
        """The finest rate whose latents are smaller than ``size_limit`` (bisection on the
        quality: latent size grows with it); raises NetworkCannotWin when none is."""
        finest = float(self.finest)
        if self.size_limit is None or self._size(finest) < self.size_limit:
            return finest
        if self._size(0.0) >= self.size_limit:
            raise NetworkCannotWin
        low, high = 0.0, finest
        for _ in range(SIZE_STEPS):
            mid = float(np.float32((low + high) / 2))
            if self._size(mid) < self.size_limit:
                low = mid
            else:
                high = mid
        return low

    def quality(self) -> tuple[float, np.ndarray]:
        """(quality, decoder replay at it): the coarsest rate whose decoded plane meets the target."""
        finest = self._finest_under_limit()
        quality, mae = search_quality(self._mae_at, self.target_mae, finest)
        if mae > self.target_mae:
            quality = self._smallest_with_correction(finest)
        return quality, self.replays[quality]

    def _smallest_with_correction(self, finest: float) -> float:
        """Where even the finest rate misses the target and the correction layer must make up
        the rest, a coarser rate with a larger correction is often smaller in all (measured:
        ratio 29% higher on ERA5 1 degree u10 at 0.25 m/s, 61% on GFS w), so every trained
        rate is coded with its correction and the smallest total is kept."""
        sizes = {}
        for quality in map(float, range(int(finest), -1, -1)):   # finest first: the smallest correction
            if quality not in self.replays:
                self._mae_at(quality)
            sizes[quality] = self._size(quality)
            bound = self.correction_bound(self.replays[quality])
            if bound is not None:  # None: this rate meets the target on its own
                q, _ = correction.quantise(self.original, self.replays[quality], bound, self.dtype)
                sizes[quality] += len(correction.encode(q))
            if self.size_limit is not None and sizes[quality] > HOPELESS * self.size_limit:
                raise NetworkCannotWin
        return min(sizes, key=sizes.get)

    def correction_bound(self, approx: np.ndarray) -> float | None:
        """The correction bound the plane needs: the user's, tightened if the MAE target needs it."""
        corrected = approx if self.max_abs_error is None else correction.corrected(
            self.original, approx, self.max_abs_error, self.dtype)
        if plane_mae(self.original, to_dtype(corrected, self.dtype), self.weights) <= self.target_mae:
            return self.max_abs_error
        return correction_bound_for_mae(self.original, approx, self.weights, self.target_mae, self.dtype,
                                        self.max_abs_error)
