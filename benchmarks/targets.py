"""MAE targets at which compressors are compared (the paper's matched-error points).

The paper's targets live in the variable table (``xneuralcodec.variables``).

Mirowski et al. (2024) compare codecs at fixed area-weighted MAE per variable kind. For
variables with no published target (precipitation, humidity, vertical velocity ...) the
benchmark uses a documented relative target instead: ``RELATIVE_TARGET`` times the
standard deviation of the group's values, so that the target scales with the field.
"""

from __future__ import annotations

import numpy as np

from xneuralcodec.variables import lookup

RELATIVE_TARGET = 0.02  # of the group's standard deviation, for variables without a paper target


def mae_target(variable: str, planes) -> tuple[float, str]:
    """(target MAE, where it comes from) for a group of planes of ``variable``."""
    row = lookup(variable)
    if row is not None and row.paper_mae is not None:
        return row.paper_mae, f"paper target for {row.group}"
    spread = float(np.std(np.asarray(planes, np.float64)))
    if not spread > 0:
        raise ValueError(f"expected varying values of {variable!r} to set a relative target, got a constant group")
    return RELATIVE_TARGET * spread, f"{RELATIVE_TARGET:g} x standard deviation (no paper target for {variable!r})"
