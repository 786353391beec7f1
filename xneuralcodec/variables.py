"""One table of the variables the project knows: names, CF standard names, units, the
paper's MAE target, an error threshold for reports, and the kind the network is told.

Everything that asks "what is ``t2m``?" reads this table: the conditioning code stored in
chunk headers (``kind``), the evaluation's per-variable thresholds (``group``,
``error_threshold``), the benchmarks' and the command line's MAE targets (``paper_mae``,
Mirowski et al. 2024: 0.4 K, 0.5 m/s, 100 Pa, 30 m2/s2, 3 m) and the units printed beside
them. Names match case-insensitively, first whole, then by their leading part, so provider
spellings such as ``T``, ``u_1000hPa``, ``sp_ammc`` or ``z500_height`` are recognised.
Adding a name changes what the network is told about that variable (and so the bytes), so
names are added with a retrained or re-evaluated model, not casually: sea-surface and dew
point temperatures are not in the table because the shipped models never saw them labelled.
"""

from __future__ import annotations

import dataclasses

# conditioning code -> kind; the order is part of the bitstream (a u8 in chunk headers
# from format v5 on): append only
KINDS = ("unknown", "temperature", "eastward_wind", "northward_wind", "pressure", "geopotential",
         "geopotential_height", "humidity", "precipitation", "vertical_velocity")
UNKNOWN = 0
KIND_INDEX = {name: i for i, name in enumerate(KINDS)}


@dataclasses.dataclass(frozen=True)
class Variable:
    quantity: str                    # what it is, e.g. "eastward_wind"
    kind: int                        # conditioning code (KINDS)
    group: str                       # reporting group: u and v are both "wind"
    units: str
    names: tuple[str, ...]           # short names used by ERA5, GFS, NCEP, CMIP, GrADS (lower case)
    standard_names: tuple[str, ...]  # CF standard names
    paper_mae: float | None = None   # the paper's MAE target, in ``units``
    error_threshold: float | None = None  # an error that matters to a forecaster, for reports


VARIABLES = (
    Variable("temperature", KIND_INDEX["temperature"], "temperature", "K",
             ("t", "t2m", "2t", "ts", "skt", "air", "tas", "ta"), ("air_temperature", "surface_temperature"),
             paper_mae=0.4, error_threshold=1.0),
    Variable("eastward_wind", KIND_INDEX["eastward_wind"], "wind", "m/s",
             ("u", "u10", "10u", "u_10m", "ua", "uas", "uwnd"), ("eastward_wind",), paper_mae=0.5, error_threshold=1.0),
    Variable("northward_wind", KIND_INDEX["northward_wind"], "wind", "m/s",
             ("v", "v10", "10v", "v_10m", "va", "vas", "vwnd"), ("northward_wind",), paper_mae=0.5, error_threshold=1.0),
    Variable("pressure", KIND_INDEX["pressure"], "pressure", "Pa",
             ("msl", "prmsl", "mslp", "psl", "sp", "ps", "pres", "slp"),
             ("air_pressure_at_mean_sea_level", "surface_air_pressure", "air_pressure"),
             paper_mae=100.0, error_threshold=100.0),
    Variable("geopotential", KIND_INDEX["geopotential"], "geopotential", "m2/s2", ("z",), ("geopotential",),
             paper_mae=30.0, error_threshold=100.0),
    Variable("geopotential_height", KIND_INDEX["geopotential_height"], "geopotential_height", "m",
             ("gh", "hgt", "zg"), ("geopotential_height",), paper_mae=3.0, error_threshold=10.0),
    Variable("specific_humidity", KIND_INDEX["humidity"], "specific_humidity", "kg/kg",
             ("q", "hus", "sh2", "shum"), ("specific_humidity",), error_threshold=1e-4),
    Variable("relative_humidity", KIND_INDEX["humidity"], "relative_humidity", "%",
             ("r", "rh", "hur", "r2", "rhum"), ("relative_humidity",)),
    Variable("precipitation", KIND_INDEX["precipitation"], "precipitation", "m",
             ("tp", "pr", "precip", "prate", "apcp"), ("precipitation_amount", "precipitation_flux")),
    Variable("vertical_velocity", KIND_INDEX["vertical_velocity"], "vertical_velocity", "Pa/s",
             ("w", "omega", "wap"), ("lagrangian_tendency_of_air_pressure",)),
)

_BY_NAME = {name: v for v in VARIABLES for name in (*v.names, *v.standard_names)}
_GEOPOTENTIAL_HEIGHT = next(v for v in VARIABLES if v.quantity == "geopotential_height")


def lookup(name: str | None) -> Variable | None:
    """The table row of a variable name or CF standard name, None when nothing matches.

    Tried whole, then ``z..._height`` as geopotential height, then the part before the first
    underscore without trailing digits (``u_1000hPa`` -> ``u``, ``sp_ammc`` -> ``sp``)."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"expected a variable name string, got {name!r} instead")
    key = name.strip().lower()
    if key in _BY_NAME:
        return _BY_NAME[key]
    if key.endswith("_height") and key[:1] == "z":
        return _GEOPOTENTIAL_HEIGHT
    return _BY_NAME.get(key.split("_")[0].rstrip("0123456789"))


def kind_of(name: str | None) -> int:
    """Conditioning code of a variable name (``UNKNOWN`` when not in the table)."""
    row = lookup(name)
    return UNKNOWN if row is None else row.kind


def units_of(name: str | None) -> str:
    row = lookup(name)
    return "" if row is None else row.units
