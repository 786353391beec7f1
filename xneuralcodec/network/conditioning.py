"""What the network is told about a plane: its kind of variable and its pressure level.

Mirowski et al. 2024 condition their autoencoder on the variable and level (FiLM, Perez et
al. 2018): precipitation, temperature and geopotential have very different spectra, and a
network that knows which one it codes can spend its channels accordingly. The codec only
sees arrays, so the condition comes from the codec config (``variable=``, ``level=``), which
``xneuralcodec.encoding(ds)`` fills in from the dataset, and is stored in every chunk
header (bitstream v5) so that decoding never depends on the config.

A condition is ``(kind, level)``: ``kind`` an index into ``KINDS`` (0: not known) and
``level`` a pressure in hPa (0: not known, or a single-level field). The network is
trained with both dropped at random, so an unknown variable or level is a supported case,
not a degraded one.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..variables import KINDS, UNKNOWN, kind_of

CONDITION_SIZE = len(KINDS) + 2  # one-hot kind, has-level flag, log level


def parse_variable(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected variable as a name string or None, got {value!r} instead")
    if not value.strip() or len(value) > 200:
        raise ValueError(f"expected a non-empty variable name of at most 200 characters, got {value!r} instead")
    return value


def parse_level(value) -> float | None:
    """A pressure level in hPa (0 < level <= 1100), or None for single-level fields."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"expected level as a pressure in hPa or None, got {value!r} instead")
    if not (math.isfinite(value) and 0 < value <= 1100):
        raise ValueError(f"expected a pressure level in hPa in (0, 1100], got {value!r} instead")
    return float(value)


LEVEL_KEYS = ("lev", "isobaric", "plev", "pressure")  # how pressure-level dims' names start


def pressure_hpa(value, units: str | None = None) -> float:
    """A level coordinate value in hPa (Pa converted; without units, values above 1100 are
    taken as Pa); 0 when it is not a plausible pressure level."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return 0.0
    value = float(value)
    if units is not None:
        value = value / 100.0 if units.strip() == "Pa" else value
    elif value > 1100:
        value /= 100.0
    return value if math.isfinite(value) and 0 < value <= 1100 else 0.0


def level_of_index(index: dict, units: dict | None = None) -> float:
    """Pressure level in hPa from a plane's single-valued leading coordinates (name -> value;
    ``units``: name -> units string where known); 0 if none."""
    for key, value in index.items():
        if key.lower().startswith(LEVEL_KEYS):
            return pressure_hpa(value, (units or {}).get(key))
    return 0.0


def condition_vector(kind: int, level: float) -> np.ndarray:
    """The network's condition input: one-hot kind, a has-level flag and log(level / 1000 hPa)."""
    vec = np.zeros(CONDITION_SIZE, dtype=np.float32)
    vec[kind if 0 <= kind < len(KINDS) else UNKNOWN] = 1.0
    if level > 0:
        vec[len(KINDS)] = 1.0
        vec[len(KINDS) + 1] = math.log(level / 1000.0)
    return vec


@dataclasses.dataclass(frozen=True)
class Condition:
    """The condition of one chunk, as stored in its header."""

    kind: int = UNKNOWN
    level: float = 0.0   # hPa; 0: unknown

    @classmethod
    def of(cls, variable: str | None, level: float | None) -> "Condition":
        """From the codec config: level rounded to the float32 the header stores, so that
        encoder and decoder feed the network the same numbers."""
        return cls(kind_of(variable), float(np.float32(level or 0.0)))

    def vector(self) -> np.ndarray:
        return condition_vector(self.kind, self.level)
