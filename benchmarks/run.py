"""Benchmark the neural codec against reference compressors: ``python -m benchmarks.run --quick``.

For every (file, variable) group of the validation split it measures the neural codec at
every trained quality and each available reference compressor over a sweep of its knob
(rate-distortion curves, one PNG per group), each compressor's ratio at the paper's MAE
target and at half of it (bisection on each knob, the neural quality included), encode and
decode throughput at the target (the neural codec with 1 and 2 torch threads too), and
the paper's metrics there (share of the globe above
an error threshold, power spectra, cyclone cores, warm tail). Results go to
``<out>/benchmark-<mode>.json`` and ``.md`` plus PNGs; the machine and library versions
are recorded with them.

``--quick`` runs one plane of three groups with short sweeps (about a minute on 2 cores);
``--full`` runs every validation plane (well under an hour on 2 cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from xneuralcodec.evaluation.baselines import (
    REFERENCE_COMPRESSORS,
    Compressor,
    TargetNotReached,
    evaluate_point,
    ratio_at_mae,
    reference_compressors,
    time_compressor,
)
from xneuralcodec.evaluation.metrics import (
    cyclone_cores,
    error_threshold,
    exceedance_percent,
    power_spectrum,
    spectrum_ratio,
    upper_tail,
    variable_kind,
)
from xneuralcodec.training.data import find_fields, iter_planes
from xneuralcodec.training.split import RULES, is_validation
from xneuralcodec.variables import units_of

from .machine import machine_info
from .neural import neural_compressor, neural_config
from .plots import rd_plot, spectra_plot
from .report import markdown
from .targets import mae_target

REPO = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much work a mode does."""

    groups: tuple | None      # "PREFIX:variable" specs, None = every validation group
    max_planes: int | None    # per group, None = all
    bound_points: int         # sweep points for error-bounded compressors
    precision_points: int     # sweep points for bit rounding (the neural codec always runs every quality)
    iterations: int           # bisection steps in ratio_at_mae
    repeats: int              # timing repeats (median)
    cyclone_cores: int = 10


MODES = {
    "quick": Settings(groups=("G01:msl", "G01:t2m", "G03:z"), max_planes=1, bound_points=4, precision_points=5,
                      iterations=5, repeats=3),
    "full": Settings(groups=None, max_planes=None, bound_points=8, precision_points=24, iterations=10, repeats=5),
}


def default_data() -> str:
    return os.environ.get("XNEURALCODEC_DATA", str(REPO.parent / "shared" / "data")) + "/global"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", action="store_true", help="tiny subset, short sweeps (about a minute)")
    mode.add_argument("--full", action="store_true", help="every validation plane (under an hour on 2 cores)")
    p.add_argument("--data", nargs="+", default=None, help=f"netCDF/Zarr files or directories (default {default_data()})")
    p.add_argument("--out", default="benchmarks/results", help="output directory (default benchmarks/results)")
    p.add_argument("--groups", nargs="+", default=None, metavar="PREFIX:VAR",
                   help="only these groups, e.g. G01:msl G03:z (file-name prefix and variable)")
    p.add_argument("--max-planes", type=int, default=None, help="at most this many planes per group")
    p.add_argument("--compressors", nargs="+", default=None, choices=sorted(REFERENCE_COMPRESSORS),
                   help="reference compressors to run (default: all that are installed)")
    p.add_argument("--all-planes", action="store_true", help="use every plane, not only the validation split")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for the neural codec (default 1, like the single-threaded references)")
    p.add_argument("--repeats", type=int, default=None, help="timing repeats (default: by mode)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.max_planes is not None and args.max_planes < 1:
        p.error(f"expected --max-planes >= 1, got {args.max_planes}")
    if args.threads < 1:
        p.error(f"expected --threads >= 1, got {args.threads}")
    if args.repeats is not None and args.repeats < 1:
        p.error(f"expected --repeats >= 1, got {args.repeats}")
    return args


# -- planes --------------------------------------------------------------------------------

def parse_group_spec(spec: str) -> tuple[str, str]:
    if not isinstance(spec, str) or not re.fullmatch(r"[^:\s]+:[^:\s]+", spec):
        raise ValueError(f"expected a group as PREFIX:VARIABLE (e.g. G01:msl), got {spec!r} instead")
    prefix, variable = spec.split(":")
    return prefix, variable


def load_groups(paths, specs=None, max_planes=None, all_planes=False) -> dict[tuple[str, str], list]:
    """Validation planes (or all, with ``all_planes``) grouped by (file name, variable)."""
    wanted = [parse_group_spec(s) for s in specs] if specs else None
    files = find_fields(paths)
    if not all_planes:  # only files with a validation rule can hold validation planes
        files = [f for f in files if f.name.startswith(tuple(RULES))]
    if wanted:
        files = [f for f in files if f.name.startswith(tuple(prefix for prefix, _ in wanted))]
    groups = defaultdict(list)
    for plane in iter_planes(files):
        if not (all_planes or is_validation(plane)):
            continue
        if wanted and not any(plane.source.startswith(pre) and plane.variable == var for pre, var in wanted):
            continue
        key = (plane.source, plane.variable)
        if max_planes is None or len(groups[key]) < max_planes:
            groups[key].append(plane)
    return dict(sorted(groups.items()))


def group_key(source: str, variable: str) -> str:
    return f"{source.split('_', 1)[0]}:{variable}"


def finite_stacks(groups: dict):
    """(source, variable, float32 stack of the planes, grid) for each of ``load_groups``' groups whose
    planes are finite everywhere: the reference coders take no NaN (the others are named on stderr)."""
    for (source, variable), planes in groups.items():
        stack = np.stack([pl.values for pl in planes]).astype(np.float32)
        if not np.isfinite(stack).all():
            print(f"{group_key(source, variable)}: skipped (the peers take no NaN)", file=sys.stderr, flush=True)
            continue
        yield source, variable, stack, planes[0].grid


# -- one compressor on one group -----------------------------------------------------------

def sweep_parameters(compressor: Compressor, target_mae: float, settings: Settings) -> list:
    """The knob values for the rate-distortion curve: bounds from target/8 to 8 x target."""
    if compressor.kind == "lossless":
        return [None]
    if compressor.kind == "quality":  # the trained rate points
        lo, hi = compressor.parameter_range
        return [float(q) for q in range(math.ceil(lo), math.floor(hi) + 1)]
    if compressor.kind == "precision":
        lo, hi = compressor.parameter_range
        return sorted({int(round(p)) for p in np.linspace(lo, hi, min(settings.precision_points, hi - lo + 1))})
    if compressor.kind == "ratio":   # compression ratios from 4 to 4000
        return [float(r) for r in np.geomspace(4.0, 4000.0, settings.bound_points)]
    return [float(target_mae * 2.0 ** e) for e in np.linspace(-3, 3, settings.bound_points)]


def matched_point(compressor: Compressor, planes, grid, target_mae: float, iterations: int) -> dict:
    """``ratio_at_mae``, or for a discrete knob that cannot reach the target its finest setting."""
    try:
        point = ratio_at_mae(compressor, planes, grid, target_mae, iterations=iterations)
        point["reached"] = True
    except TargetNotReached as exc:
        if compressor.kind not in ("precision", "quality"):
            raise
        point = evaluate_point(compressor, planes, grid, compressor.parameter_range[1])
        point.update(target_mae=target_mae, method="finest setting", reached=False, note=str(exc))
    return point


def cyclone_summary(planes, recon, grid, k: int) -> dict:
    """Cyclone cores of every plane, pooled: median displacement, mean depth error, share kept."""
    try:
        per_plane = [cyclone_cores(o, r, grid, k=k) for o, r in zip(planes, recon)]
    except ImportError as exc:  # scipy missing: the other metrics still count
        return {"cyclones_skipped": str(exc)}
    cores = [c for p in per_plane for c in p["cores"]]
    dist = [c["distance_km"] for c in cores if c["distance_km"] is not None]
    depth = [abs(c["value_error"]) for c in cores if c["value_error"] is not None]
    return {
        "cyclones": per_plane,
        "cyclone_median_distance_km": float(np.median(dist)) if dist else None,
        "cyclone_mean_abs_depth_error": float(np.mean(depth)) if depth else None,
        "cyclone_kept_fraction": sum(p["in_reconstruction_top_k"] for p in per_plane) / len(cores) if cores else None,
    }


def paper_metrics(planes, recon, grid, variable: str, settings: Settings) -> dict:
    """Threshold exceedance, spectral power kept at high l, cyclone cores, warm tail."""
    kind = variable_kind(variable)
    found = {}
    threshold = error_threshold(variable)
    if threshold is not None:
        found["error_threshold"] = threshold
        found["exceedance_percent"] = exceedance_percent(planes, recon, grid, threshold)
    spectra = spectrum_ratio(planes, recon, grid)
    upper = spectra["l"] > grid.lmax / 2
    high = spectra["ratio"][upper]
    found["high_l_power_ratio"] = float(np.nanmean(high)) if np.isfinite(high).any() else None
    found["spectrum"] = spectra["reconstructed"]
    found["spectrum_ratio"] = spectra["ratio"]
    if kind == "pressure":
        found.update(cyclone_summary(planes, recon, grid, settings.cyclone_cores))
    if kind == "temperature":
        per_plane = [upper_tail(o, r, fraction=0.001) for o, r in zip(planes, recon)]
        found.update(upper_tail=per_plane,
                     tail_kept_fraction=float(np.mean([t["kept_fraction"] for t in per_plane])),
                     tail_max_abs_error=float(np.max([t["max_abs_error_on_tail"] for t in per_plane])))
    return found


def benchmark_compressor(compressor: Compressor, planes, grid, target_mae: float, settings: Settings) -> dict:
    sweep = []
    for parameter in sweep_parameters(compressor, target_mae, settings):
        point = evaluate_point(compressor, planes, grid, parameter)
        point.pop("reconstruction")
        sweep.append(point)
    matched = matched_point(compressor, planes, grid, target_mae, settings.iterations)
    try:
        half = matched_point(compressor, planes, grid, target_mae / 2, settings.iterations)
        half.pop("reconstruction")
    except TargetNotReached as exc:
        half = {"target_mae": target_mae / 2, "reached": False, "ratio": None, "note": str(exc)}
    timing = time_compressor(compressor, planes, matched["parameter"], repeats=settings.repeats)
    result = {"kind": compressor.kind, "library": compressor.library, "sweep": sweep, "matched": matched,
              "matched_half_target": half, "timing": timing}
    if compressor.name == "neural":  # the decode target is for 2 cores: time it there too
        result["timing_by_threads"] = _threaded_timings(compressor, planes, matched["parameter"], settings.repeats)
    return result


def _threaded_timings(compressor: Compressor, planes, parameter, repeats: int) -> dict:
    """Throughput with 1 and with 2 torch threads (where the machine has 2 cores)."""
    import torch

    previous = torch.get_num_threads()
    timings = {}
    try:
        for threads in sorted({1, min(2, os.cpu_count() or 1)}):
            torch.set_num_threads(threads)
            timings[str(threads)] = time_compressor(compressor, planes, parameter, repeats=repeats)
    finally:
        torch.set_num_threads(previous)
    return timings


# -- one group -----------------------------------------------------------------------------

def benchmark_group(source: str, variable: str, planes: list, references: dict, settings: Settings, progress: bool) -> dict:
    grid = planes[0].grid
    stack = np.stack([p.values for p in planes]).astype(np.float32)
    target, target_source = mae_target(variable, stack)
    group = {
        "key": group_key(source, variable), "source": source, "variable": variable, "kind": variable_kind(variable),
        "units": units_of(variable), "grid": f"{grid.nlat}x{grid.nlon}", "planes": len(planes),
        "plane_labels": [p.label for p in planes], "target_mae": target, "target_source": target_source,
        "compressors": {}, "failed": {},
        "spectra": {"l": np.arange(grid.lmax + 1), "original": power_spectrum(stack, grid), "reconstructed": {}, "ratio": {}},
    }
    compressors = {"neural": neural_compressor(grid, variable=variable), **references}
    for name, compressor in tqdm(compressors.items(), desc=group["key"], leave=False, disable=not progress):
        try:
            result = benchmark_compressor(compressor, stack, grid, target, settings)
        except Exception as exc:  # one compressor failing on one group is recorded, not fatal
            group["failed"][name] = f"{type(exc).__name__}: {exc}"
            continue
        recon = result["matched"].pop("reconstruction")
        if compressor.kind != "lossless":  # lossless: every metric trivially perfect
            metrics = paper_metrics(stack, recon, grid, variable, settings)
            group["spectra"]["reconstructed"][name] = metrics.pop("spectrum")
            group["spectra"]["ratio"][name] = metrics.pop("spectrum_ratio")
            result["metrics"] = metrics
        group["compressors"][name] = result
    neural, sz3 = group["compressors"].get("neural"), group["compressors"].get("sz3")
    if neural and sz3:
        group["neural_vs_sz3"] = {
            "encode_time_ratio": neural["timing"]["encode_s"] / sz3["timing"]["encode_s"],
            "decode_time_ratio": neural["timing"]["decode_s"] / sz3["timing"]["decode_s"],
            # None when the neural codec's finest quality misses the target: no matched point
            "ratio_at_target": neural["matched"]["ratio"] / sz3["matched"]["ratio"] if neural["matched"]["reached"] else None,
            "ratio_at_half_target": (neural["matched_half_target"]["ratio"] / sz3["matched_half_target"]["ratio"]
                                     if neural["matched_half_target"]["reached"] and sz3["matched_half_target"]["reached"]
                                     else None),
        }
    return group


# -- output --------------------------------------------------------------------------------

def plain(value):
    """JSON-ready copy: numpy to Python, non-finite floats to None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def file_stem(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", key)


def main(argv=None) -> int:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    settings = MODES[mode]
    settings = dataclasses.replace(
        settings,
        groups=tuple(args.groups) if args.groups else settings.groups,
        max_planes=args.max_planes if args.max_planes is not None else settings.max_planes,
        repeats=args.repeats or settings.repeats,
    )
    progress = not args.no_progress
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import torch

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        data = args.data or [default_data()]
        groups = load_groups(data, settings.groups, settings.max_planes, args.all_planes)
        if not groups:
            raise SystemExit(f"no {'' if args.all_planes else 'validation '}planes found under {data} for groups {settings.groups}")
        references, skipped = reference_compressors(args.compressors)
        report = {
            "mode": mode,
            "command": "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "settings": dataclasses.asdict(settings), "data": [str(d) for d in data],
            "machine": machine_info(),
            "neural": neural_config(next(iter(groups.values()))[0].grid),
            "skipped_compressors": skipped,
            "groups": [],
        }
        for (source, variable), planes in tqdm(groups.items(), desc=f"{mode} benchmark", disable=not progress):
            group = benchmark_group(source, variable, planes, references, settings, progress)
            stem = file_stem(f"{mode}-{group['key']}")
            group["rd_plot"] = rd_plot(group, out / f"rd-{stem}.png").name
            if group["spectra"]["reconstructed"]:
                group["spectra_plot"] = spectra_plot(group, out / f"spectra-{stem}.png").name
            report["groups"].append(group)
    finally:
        torch.set_num_threads(previous_threads)
    report["wall_s"] = time.perf_counter() - started
    report = plain(report)
    (out / f"benchmark-{mode}.json").write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    (out / f"benchmark-{mode}.md").write_text(markdown(report))
    print(f"wrote {out / f'benchmark-{mode}.json'} and .md in {report['wall_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
