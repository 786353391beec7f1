"""``bench``: the neural codec against SZ3 and zstd on the user's own fields, at equal MAE.

The published numbers (README, docs/validation.md) are for a few held-out samples; what
matters to a user is their own data. Per variable, the neural codec runs once at the
chosen options (each plane its own chunk, as in a store) and gives ratio, area-weighted
errors and throughput; each reference compressor is then tuned to the same MAE with
``baselines.ratio_at_mae`` and timed at that setting. A reference that is not installed
or cannot run is skipped with its reason, never silently.
"""

from __future__ import annotations

import time

import numpy as np

from ..codec.numcodecs_codec import NeuralCodec
from ..evaluation.baselines import TargetNotReached, ratio_at_mae, reference_compressors, time_compressor
from ..evaluation.metrics import weighted_errors
from ..options import options_for
from ..sphere.grid import LatLonGrid

REFERENCES = ("sz3", "zstd")


def references(names=REFERENCES) -> tuple[dict, dict]:
    """The reference compressors that work here and the reasons for the others."""
    return reference_compressors(list(names))


def bench_neural(planes: np.ndarray, grid: LatLonGrid, codec_options: dict) -> dict:
    """Ratio, errors and encode/decode MB/s of the neural codec on a stack of planes.

    One untimed round trip first, so loading the model is not counted as throughput.
    """
    codec = NeuralCodec(grid=grid.to_config(), **codec_options)
    codec.decode(codec.encode(planes[0]))
    t0 = time.perf_counter()
    blobs = [codec.encode(plane) for plane in planes]
    t1 = time.perf_counter()
    back = np.stack([np.asarray(codec.decode(blob)).reshape(planes.shape[1:]) for blob in blobs])
    t2 = time.perf_counter()
    nbytes = sum(len(b) for b in blobs)
    megabytes = planes.nbytes / 1e6
    return {"compressor": f"neural q{codec.options.quality}", "ratio": planes.nbytes / nbytes,
            **weighted_errors(planes, back, grid), "encode_mb_s": megabytes / (t1 - t0),
            "decode_mb_s": megabytes / (t2 - t1), "note": "each plane its own chunk"}


def bench_reference(compressor, planes: np.ndarray, grid: LatLonGrid, target_mae: float) -> dict:
    """A reference compressor tuned to ``target_mae`` (lossless ones just run), then timed once."""
    point = ratio_at_mae(compressor, planes, grid, target_mae)
    timing = time_compressor(compressor, planes, point["parameter"], repeats=1)
    if point["method"] == "lossless":
        note = "lossless"
    elif compressor.kind == "abs_bound":
        note = f"same MAE: abs bound {point['parameter']:.3g}"
    else:
        note = f"same MAE: {point['method']} at parameter {point['parameter']}"
    return {"compressor": compressor.name, "ratio": point["ratio"], "mae": point["mae"], "rmse": point["rmse"],
            "max_abs": point["max_abs"], "encode_mb_s": timing["encode_mb_s"], "decode_mb_s": timing["decode_mb_s"],
            "note": note}


def bench_variable(name: str, planes: np.ndarray, grid: LatLonGrid, codec_options: dict, available: dict,
                   bar=None) -> dict:
    """Neural codec, then every available reference at the neural MAE, on one variable's planes."""
    planes = np.ascontiguousarray(planes, dtype=np.float32).reshape((-1, grid.nlat, grid.nlon))
    rows = [bench_neural(planes, grid, options_for({"variable": name, **codec_options}, name))]
    if bar is not None:
        bar.update(1)
    skipped = {}
    target = rows[0]["mae"]
    for ref_name, compressor in available.items():
        if not np.isfinite(planes).all():
            skipped[ref_name] = "the field has NaN or inf values, which the reference compressors do not take"
        elif target <= 0:
            skipped[ref_name] = "the neural codec is exact on this field (MAE 0): no MAE to match"
        else:
            try:
                rows.append(bench_reference(compressor, planes, grid, target))
            except TargetNotReached as exc:
                skipped[ref_name] = str(exc)
        if bar is not None:
            bar.update(1)
    return {"variable": name, "planes": int(planes.shape[0]), "megabytes": planes.nbytes / 1e6,
            "rows": rows, "skipped": skipped}


def format_bench(results: list[dict], unavailable: dict, units: dict) -> str:
    lines = [f"{'variable':<12}{'compressor':<13}{'ratio':>8}{'MAE':>11}{'RMSE':>11}{'max err':>11}"
             f"{'enc MB/s':>10}{'dec MB/s':>10}  note"]
    for res in results:
        for i, r in enumerate(res["rows"]):
            label, note = (res["variable"], f"{r['note']}; {res['planes']} planes, units {units.get(res['variable']) or '?'}") \
                if i == 0 else ("", r["note"])
            lines.append(f"{label:<12}{r['compressor']:<13}{r['ratio']:8.1f}{r['mae']:11.4g}{r['rmse']:11.4g}"
                         f"{r['max_abs']:11.4g}{r['encode_mb_s']:10.2f}{r['decode_mb_s']:10.2f}  {note}")
        for ref_name, reason in res["skipped"].items():
            lines.append(f"{'':<12}{ref_name:<13}skipped: {reason}")
    for ref_name, reason in unavailable.items():
        lines.append(f"{ref_name} skipped everywhere: {reason}")
    lines.append("errors are area-weighted (cos latitude); MB/s of float32 input on this machine")
    return "\n".join(lines)
