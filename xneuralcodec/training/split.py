"""The validation split: held-out dates and members that no training step sees.

Follows the suggestion in ../shared/data/README.md. A rule names a file prefix and a test
on a plane's leading coordinates; anything matching is validation. Files not named here are
training data, so any other archive a user points the scripts at trains by default.
"""

from __future__ import annotations

from .data import Plane


def _g01(p: Plane) -> bool:
    return str(p.index.get("time", "")).startswith("2026-03-30")


def _g03(p: Plane) -> bool:
    return p.index.get("number") == 9


def _g08(p: Plane) -> bool:
    level = p.index.get("level")
    return level is not None and 250 <= float(level) <= 500


def _g09(p: Plane) -> bool:
    return str(p.index.get("time", "")) >= "1970"


def _always(p: Plane) -> bool:
    return True


RULES = {
    "G01_": _g01,   # ERA5 1 deg surface: the last day
    "G03_": _g03,   # ERA5 3 deg ensemble: member 9
    "G04_": _always,  # ERA5 0.25 deg t2m: the only 0.25 deg global state, held out whole
    "G08_": _g08,   # GFS 2.5 deg: pressure levels 250-500 hPa
    "G09_": _g09,   # NCEP 500 hPa height: months from 1970 on
}


def is_validation(plane: Plane) -> bool:
    for prefix, rule in RULES.items():
        if plane.source.startswith(prefix):
            return rule(plane)
    return False
