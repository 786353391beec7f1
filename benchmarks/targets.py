"""MAE targets at which compressors are compared (the paper's matched-error points).

Mirowski et al. (2024) compare codecs at fixed area-weighted MAE per variable kind. For
variables with no published target (precipitation, humidity, vertical velocity ...) the
benchmark uses a documented relative target instead: ``RELATIVE_TARGET`` times the
standard deviation of the group's values, so that the target scales with the field.
"""

from __future__ import annotations

import numpy as np

from xneuralcodec.metrics import variable_kind

PAPER_MAE_TARGETS = {
    "temperature": 0.4,            # K
    "wind": 0.5,                   # m/s
    "pressure": 100.0,             # Pa
    "geopotential": 30.0,          # m2/s2
    "geopotential_height": 3.0,    # m
}

UNITS = {
    "temperature": "K", "wind": "m/s", "pressure": "Pa", "geopotential": "m2/s2",
    "geopotential_height": "m", "specific_humidity": "kg/kg",
}

RELATIVE_TARGET = 0.02  # of the group's standard deviation, for variables without a paper target


def mae_target(variable: str, planes) -> tuple[float, str]:
    """(target MAE, where it comes from) for a group of planes of ``variable``."""
    kind = variable_kind(variable)
    if kind in PAPER_MAE_TARGETS:
        return PAPER_MAE_TARGETS[kind], f"paper target for {kind}"
    spread = float(np.std(np.asarray(planes, np.float64)))
    if not spread > 0:
        raise ValueError(f"expected varying values of {variable!r} to set a relative target, got a constant group")
    return RELATIVE_TARGET * spread, f"{RELATIVE_TARGET:g} x standard deviation (no paper target for {variable!r})"
