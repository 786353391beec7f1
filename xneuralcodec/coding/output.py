"""The decoder's last step, which every encoder replay repeats: values to the output dtype.

Near the ends of a dtype's range (float64 fields near 1.7e308, float32 near 3.4e38) a
reconstruction can overshoot the largest finite value. No input value lies beyond it, so
clipping there only shrinks the error, where a plain cast would return inf. Ordinary values
are never near it, so for them this is exactly ``astype``.
"""

from __future__ import annotations

import numpy as np


def to_dtype(values: np.ndarray, dtype) -> np.ndarray:
    """``values`` (float64) clipped to the finite range of ``dtype`` and cast to it; NaN stays NaN."""
    limit = np.finfo(dtype).max
    return np.clip(values, -limit, limit).astype(dtype)
