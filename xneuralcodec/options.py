"""Codec options shared by the Zarr v2 and v3 faces: parsing, defaults and the stored config.

Everything that changes the bytes is an option and lands in the stored config: the model by
name and weights sha256 (never a path), the quality level, the grid, the HEALPix nside and
the variable and level the network is conditioned on.
Parsers follow zarr's ``parse_<field>`` habit: ``TypeError`` for a wrong type,
``ValueError`` for a wrong value, saying what was expected and what came instead.
"""

from __future__ import annotations

import dataclasses
import math

from .conditioning import Condition, parse_level, parse_variable
from .grid import LatLonGrid
from .weights import registry, registry_entry

DEFAULT_QUALITY = 3
QUALITIES = 6
DEVICES = ("auto", "cpu", "cuda")


def parse_quality(value) -> int | float:
    """An int picks a trained rate point; a float in between interpolates the gains."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected quality as an int or float, got {value!r} instead")
    if not (math.isfinite(value) and 0 <= value <= QUALITIES - 1):
        raise ValueError(f"expected quality in 0..{QUALITIES - 1} (higher = finer), got {value} instead")
    return value


def _parse_optional_error(value, name: str) -> float | None:
    """None, or a positive finite error in the variable's units (target_mae, max_abs_error)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected {name} as a number or None, got {value!r} instead")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"expected a positive finite {name}, got {value!r} instead")
    return float(value)


def parse_target_mae(value) -> float | None:
    return _parse_optional_error(value, "target_mae")


def parse_device(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected device as a string, got {value!r} instead")
    if value not in DEVICES:
        raise ValueError(f"expected device in {DEVICES}, got {value!r} instead")
    return value


AUTO_NSIDE = "auto"  # with target_mae: search the sphere too, from the grid's default down to 32


def parse_nside(value) -> int | str | None:
    if value is None or value == AUTO_NSIDE:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an int nside, 'auto' or None, got {value!r} instead")
    if value < 32 or value > 4096 or value & (value - 1):
        raise ValueError(f"expected nside a power of two in 32..4096, got {value} instead")
    return value


def parse_max_abs_error(value) -> float | None:
    return _parse_optional_error(value, "max_abs_error")


def parse_grid(value) -> LatLonGrid | None:
    if value is None:
        return None
    return LatLonGrid.from_config(value)


def parse_model(name, sha256) -> tuple[str, str]:
    if name is None:
        name = registry()["default"]
    if not isinstance(name, str):
        raise TypeError(f"expected a model name string, got {name!r} instead")
    entry = registry_entry(name)
    if sha256 is None:
        sha256 = entry["sha256"]
    if not isinstance(sha256, str):
        raise TypeError(f"expected weights_sha256 as a hex string, got {sha256!r} instead")
    return name, sha256


@dataclasses.dataclass(frozen=True)
class CodecOptions:
    quality: int | float
    model: str
    weights_sha256: str
    grid: LatLonGrid | None
    nside: int | str | None
    device: str
    max_abs_error: float | None = None
    target_mae: float | None = None
    variable: str | None = None
    level: float | None = None

    @classmethod
    def parse(cls, quality=DEFAULT_QUALITY, model=None, weights_sha256=None, grid=None, nside=None, device="auto",
              max_abs_error=None, target_mae=None, variable=None, level=None):
        model, weights_sha256 = parse_model(model, weights_sha256)
        grid = parse_grid(grid)
        nside = parse_nside(nside)
        target_mae = parse_target_mae(target_mae)
        if nside == AUTO_NSIDE and target_mae is None:
            raise ValueError("nside='auto' searches the sphere for the coarsest that meets target_mae: "
                             "set target_mae too, or give an int nside")
        if grid is not None and nside is None:
            nside = grid.default_nside()
        elif grid is not None and nside != AUTO_NSIDE and nside > grid.max_nside:
            raise ValueError(f"expected nside at most {grid.max_nside} for a {grid.nlat} x {grid.nlon} grid, got {nside} instead")
        return cls(parse_quality(quality), model, weights_sha256, grid, nside, parse_device(device),
                   parse_max_abs_error(max_abs_error), target_mae, parse_variable(variable), parse_level(level))

    @property
    def condition(self) -> Condition:
        return Condition.of(self.variable, self.level)

    def to_config(self) -> dict:
        return {
            "quality": self.quality, "model": self.model, "weights_sha256": self.weights_sha256,
            "grid": None if self.grid is None else self.grid.to_config(), "nside": self.nside,
            "device": self.device, "max_abs_error": self.max_abs_error, "target_mae": self.target_mae,
            "variable": self.variable, "level": self.level,
        }

    def kwargs_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.to_config().items())
