"""Reference compressors for side-by-side numbers, kept out of the decode path.

Only what evaluation needs for the codec issue: SZ3 through pysz (``pip install pysz``),
with its absolute error bound found by bisection so that its area-weighted MAE matches a
target, as the benchmark compares compressors at equal MAE.
"""

from __future__ import annotations

import numpy as np

from .grid import LatLonGrid
from .metrics import weighted_errors


def sz3_roundtrip(plane: np.ndarray, abs_bound: float) -> tuple[int, np.ndarray]:
    from pysz import sz, szConfig, szErrorBoundMode

    a = np.ascontiguousarray(plane, dtype=np.float32)
    cfg = szConfig(a.shape)
    cfg.errorBoundMode = szErrorBoundMode.ABS
    cfg.absErrorBound = float(abs_bound)
    out = sz.compress(a, cfg)
    compressed = out[0] if isinstance(out, tuple) else out
    back = sz.decompress(compressed, np.float32, a.shape)
    back = back[0] if isinstance(back, tuple) else back
    return len(compressed), np.asarray(back).reshape(a.shape)


def sz3_at_mae(planes: np.ndarray, grid: LatLonGrid, target_mae: float, iterations: int = 18) -> dict:
    """SZ3 compression ratio of ``planes`` at (just under) ``target_mae``, bisecting on the bound."""
    planes = np.asarray(planes, np.float32).reshape(-1, grid.nlat, grid.nlon)
    lo, hi = 0.0, 4.0 * target_mae
    best = None
    for _ in range(iterations):
        eb = 0.5 * (lo + hi)
        size, back = 0, np.empty_like(planes)
        for i, p in enumerate(planes):
            n, back[i] = sz3_roundtrip(p, eb)
            size += n
        mae = weighted_errors(planes, back, grid)["mae"]
        if mae <= target_mae:
            lo, best = eb, {"abs_bound": eb, "ratio": planes.nbytes / size, "mae": mae}
        else:
            hi = eb
    if best is None:
        raise ValueError(f"SZ3 could not reach MAE {target_mae}")
    return best
