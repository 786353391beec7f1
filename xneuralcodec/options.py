"""The codec's options, declared once: defaults, validation, help, stored config, CLI flags.

Everything that changes the bytes is an option and lands in the stored config: the model by
name and weights sha256 (never a path), the quality level or error targets, the grid, the
HEALPix nside and the variable and level the network is conditioned on. Every face derives
from ``CodecOptions``: ``NeuralCodec`` and ``NeuralSerializer`` take its fields as keyword
arguments and store ``to_config()``, ``xneuralcodec.encoding(ds, **options)`` passes them
on, and the command line builds its codec flags from the fields marked ``flag``.
Parsers follow zarr's ``parse_<field>`` habit: ``TypeError`` for a wrong type,
``ValueError`` for a wrong value, saying what was expected and what came instead.
"""

from __future__ import annotations

import dataclasses
import inspect
import math

import numpy as np

from .network.conditioning import Condition, parse_level, parse_variable
from .network.registry import AUTO, auto_choice, registry_entry
from .sphere.grid import LatLonGrid

DEFAULT_QUALITY = 3
QUALITIES = 6   # rate points of a model whose registry entry does not say ("qualities")
DEVICES = ("auto", "cpu", "cuda")
AUTO_NSIDE = "auto"  # with target_mae: search the sphere too, from the grid's default down to 32


def parse_quality(value) -> int | float:
    """An int picks a trained rate point; a float in between interpolates the gains."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected quality as an int or float, got {value!r} instead")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"expected quality in 0..{QUALITIES - 1} (higher = finer), got {value} instead")
    return value


def model_qualities(model: str) -> int:
    """How many trained rate points the shipped model has (registry.json; 6 before v5); for
    "auto", those of the coarse-grid model, whose scale ``quality`` is given in."""
    if model == AUTO:
        model = auto_choice(0)[0]
    return int(registry_entry(model).get("qualities", QUALITIES))


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


def parse_max_abs_error(value) -> float | None:
    return _parse_optional_error(value, "max_abs_error")


def parse_device(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected device as a string, got {value!r} instead")
    if value not in DEVICES:
        raise ValueError(f"expected device in {DEVICES}, got {value!r} instead")
    return value


def parse_nside(value) -> int | str | None:
    if value is None or value == AUTO_NSIDE:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an int nside, 'auto' or None, got {value!r} instead")
    if value < 32 or value > 4096 or value & (value - 1):
        raise ValueError(f"expected nside a power of two in 32..4096, got {value} instead")
    return value


def parse_grid(value) -> LatLonGrid | None:
    if value is None or isinstance(value, LatLonGrid):
        return value
    return LatLonGrid.from_config(value)


def parse_model(value) -> str:
    """A shipped model name, or "auto" (also for None): the weights are picked per chunk."""
    if value is None:
        return AUTO
    if not isinstance(value, str):
        raise TypeError(f"expected a model name string, got {value!r} instead")
    if value != AUTO:
        registry_entry(value)  # refuses names that are not shipped
    return value


def parse_conventional(value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"expected conventional=True or False, got {value!r} instead")
    return bool(value)


EFFORTS = ("fast", "default", "max")


def parse_effort(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected effort as a string ({', '.join(EFFORTS)}), got {value!r} instead")
    if value not in EFFORTS:
        raise ValueError(f"expected effort in {EFFORTS}, got {value!r} instead")
    return value


def parse_weights_sha256(value) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"expected weights_sha256 as a hex string, got {value!r} instead")
    return value


# -- how the command line reads a flag's text (the option's parser then validates it) -----

def _number_text(text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r} instead") from None
    return int(value) if value.is_integer() else value


def _float_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r} instead") from None


def _switch_text(text: str) -> bool:
    if text not in ("on", "off"):
        raise ValueError(f"expected 'on' or 'off', got {text!r} instead")
    return text == "on"


def _nside_text(text: str) -> int | str:
    return text if text == AUTO_NSIDE else int(_number_text(text))


def _option(default, parse, help_: str, flag=None, metavar: str | None = None):
    """A field of ``CodecOptions``: ``parse`` validates it, ``flag`` (a text -> value
    function) makes it a command-line flag of the same name."""
    return dataclasses.field(default=default, metadata={"parse": parse, "help": help_, "flag": flag,
                                                        "metavar": metavar})


@dataclasses.dataclass(frozen=True)
class CodecOptions:
    """What a ``NeuralCodec`` or ``NeuralSerializer`` stores; validated on construction."""

    quality: int | float = _option(
        DEFAULT_QUALITY, parse_quality,
        f"rate point of the shipped model, 0 (smallest files) .. {QUALITIES - 1} (finest; 0 .. 7 for v5 models); "
        "floats in between interpolate",
        _number_text, "Q")
    model: str | None = _option(
        AUTO, parse_model, "shipped model name, or 'auto': per chunk, hyperprior-v4 on grids coarser than 0.25 degree "
        "and the registry's fine-grid model (quality + 2) on 0.25 degree and finer; each chunk names its weights",
        str, "NAME")
    weights_sha256: str | None = _option(
        None, parse_weights_sha256, "sha256 of the weights file; a store names the exact weights that wrote it")
    grid: LatLonGrid | None = _option(
        None, parse_grid, "{nlat, nlon, lat_first, lon_first} of the global regular grid (default: from the chunk shape)")
    nside: int | str | None = _option(
        None, parse_nside, "HEALPix resolution (default: from the grid); 'auto' with target_mae also tries every "
        "coarser sphere and keeps the shortest chunk", _nside_text, "N|auto")
    device: str = _option("auto", parse_device, "'auto', 'cpu' or 'cuda': where the network runs (never changes the bytes)",
                          str, "|".join(DEVICES))
    max_abs_error: float | None = _option(
        None, parse_max_abs_error, "hard pointwise bound in the variable's units: a correction layer keeps every "
        "finite value within it", _float_text, "EPS")
    target_mae: float | None = _option(
        None, parse_target_mae, "per plane, the coarsest rate whose latitude-weighted MAE is at most this, in the "
        "variable's units (overrides quality)", _float_text, "MAE")
    conventional: bool = _option(
        True, parse_conventional, "with target_mae or max_abs_error, also code each plane with SZ3 and SPERR "
        "(error-bounded; SPERR in its quantisation-step mode when there is no max_abs_error) and keep whichever "
        "record is smallest (format v7 conventional planes)", _switch_text, "on|off")
    effort: str = _option(
        "default", parse_effort, "how hard the encoder looks for the smallest record: 'fast' leaves out EBCC's "
        "JPEG 2000 layer, which 'default' tries for a target_mae (~0.25 s a probe on a 0.25 degree plane; files "
        "up to ~30% smaller there); 'max' also refines each plane's latents at encode time (SGA: 8-10% smaller "
        "network records at the same MAE, ~12 s per 0.25 degree plane) and tries EBCC with a bound on planes of at "
        "least 32 x 32 (up to a fifth smaller at tight targets); decoding speed is unaffected", str, "|".join(EFFORTS))
    variable: str | None = _option(
        None, parse_variable, "the variable's name or CF standard name (e.g. 't2m'); the network is told its kind")
    level: float | None = _option(None, parse_level, "the variable's pressure level in hPa, if it has one")

    def __post_init__(self):
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, field.metadata["parse"](getattr(self, field.name)))
        finest = model_qualities(self.model) - 1
        if self.quality > finest:
            scale = f"model='auto' ({auto_choice(0)[0]}'s scale)" if self.model == AUTO else self.model
            raise ValueError(f"expected quality in 0..{finest} for {scale} (higher = finer), "
                             f"got {self.quality} instead")
        if self.model == AUTO and self.weights_sha256 is not None:
            raise ValueError("weights_sha256 names one weights file, but model='auto' picks them per chunk: "
                             "give a model name with it, or drop it")
        if self.nside == AUTO_NSIDE and self.target_mae is None:
            raise ValueError("nside='auto' searches the sphere for the coarsest that meets target_mae: "
                             "set target_mae too, or give an int nside")
        if self.grid is not None and self.nside is None:
            object.__setattr__(self, "nside", self.grid.default_nside())
        elif self.grid is not None and self.nside != AUTO_NSIDE and self.nside > self.grid.max_nside:
            raise ValueError(f"expected nside at most {self.grid.max_nside} for a {self.grid.nlat} x "
                             f"{self.grid.nlon} grid, got {self.nside} instead")
        if self.model == AUTO and self.grid is not None:   # the grid decides now: the config names the weights
            nside = self.nside if isinstance(self.nside, int) else self.grid.default_nside()
            name, offset = auto_choice(nside)
            object.__setattr__(self, "model", name)
            object.__setattr__(self, "quality", self.quality + offset)
        if self.model != AUTO and self.weights_sha256 is None:
            object.__setattr__(self, "weights_sha256", registry_entry(self.model)["sha256"])

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def for_model(self, name: str, quality_offset: int = 0) -> "CodecOptions":
        """These options with one shipped model (what "auto" resolved to for a chunk)."""
        return dataclasses.replace(self, model=name, weights_sha256=None, quality=self.quality + quality_offset)

    @property
    def condition(self) -> Condition:
        return Condition.of(self.variable, self.level)

    def to_config(self) -> dict:
        """The JSON config stored in Zarr metadata (every option, in declaration order)."""
        config = {name: getattr(self, name) for name in self.names()}
        config["grid"] = None if self.grid is None else self.grid.to_config()
        return config

    def kwargs_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.to_config().items())


def options_signature(kind=inspect.Parameter.KEYWORD_ONLY) -> inspect.Signature:
    """``(self, <every option>)``: the faces' ``__init__`` signature, for help() and editors."""
    params = [inspect.Parameter(f.name, kind, default=f.default) for f in dataclasses.fields(CodecOptions)]
    return inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *params])


def options_doc() -> str:
    """One line per option, appended to the faces' docstrings."""
    return "\n".join(f"    ``{f.name}`` (default {f.default!r}): {f.metadata['help']}."
                     for f in dataclasses.fields(CodecOptions))


def flag_options() -> list[dataclasses.Field]:
    """The options the command line offers as ``--name`` flags."""
    return [f for f in dataclasses.fields(CodecOptions) if f.metadata["flag"] is not None]


# -- options that may differ per variable (encoding(ds, target_mae={...}), --target-mae t2m=0.3) --

PER_VARIABLE = ("target_mae", "max_abs_error")  # error targets are in each variable's own units
PAPER = "paper"  # target_mae="paper": each variable's MAE target from Mirowski et al. 2024 (variables.py)


def check_per_variable(options: dict, variables) -> None:
    """Refuse per-variable values that name no variable being coded, or "paper" where it means nothing."""
    for key in PER_VARIABLE:
        value = options.get(key)
        if isinstance(value, dict):
            unknown = sorted(set(map(str, value)) - set(map(str, variables)))
            if unknown:
                raise ValueError(f"{key}: {', '.join(unknown)} is not among the variables being coded "
                                 f"({', '.join(map(str, variables))})")
        elif value == PAPER and key != "target_mae":
            raise ValueError(f"expected {key} as a number or {{variable: number}}, got {PAPER!r} instead "
                             "(the paper's targets are MAEs: use target_mae='paper')")


def options_for(options: dict, variable: str, name=None) -> dict:
    """The codec options of one variable: per-variable dicts and "paper" resolved.

    ``name`` is the variable's key in the dataset (dict keys are matched against it), and
    ``variable`` the name or CF standard name the table knows it by. A variable left out of
    a dict, or with no paper target, gets no target (the codec's default quality)."""
    from .variables import lookup

    resolved = dict(options)
    for key in PER_VARIABLE:
        value = options.get(key)
        if isinstance(value, dict):
            resolved[key] = value.get(variable if name is None else name)
        elif value == PAPER:
            row = lookup(variable)
            resolved[key] = None if row is None else row.paper_mae
    return resolved
