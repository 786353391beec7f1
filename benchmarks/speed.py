"""Encode and decode speed beside SPERR and SZ3, on one 0.25 degree plane: ``python -m benchmarks.speed``.

Issue 17's yardstick, measured in one run. The plane is the held-out ERA5 0.25 degree t2m
(G04, 4.15 MB of float32). The rows are:
- the neural codec at its default settings (``model="auto"``, which on a 0.25 degree grid is the
  registry's fine-grid model at quality 3 + 2);
- the neural codec with ``target_mae=0.4``, the paper's target, whose encode searches the
  rate against the decoder's replay and (format v7) SPERR's and SZ3's bounds, keeping the
  smallest record; and the same with ``conventional=False`` (the network's record only), and
  with ``effort="fast"`` (0.16.0: without the JPEG 2000 layer's probes);
- the same three with ``model="hyperprior-v4"`` (the default before 0.12.0, still the model of
  coarser grids), and ``hyperprior-v5.2`` at the default's rate point (0.12.0's default: the same
  decoded values as 0.13.0's ``hyperprior-v5.3``, under a larger entropy model);
- SPERR and SZ3 at the absolute bound whose MAE is 0.4 K, bisected once before timing.

Every figure is the median of ``--repeats`` runs after one untimed warm-up (model loading
and the per-shape caches are not throughput). The main table times each coder in its own
stretch, so a ratio of two rows carries the machine's drift between stretches (20-30% on this
shared machine, ``benchmarks.decode_ab``); issue 17's ratios are therefore also timed
interleaved: every round runs the default decode, the target_mae decode and encodes
(default effort and ``effort="fast"``) and SPERR's encode and decode once each, in turn.
Each thread count runs in its own process, with torch (and so ducc0, which follows torch's
thread count) set before any work; the wasm builds of SPERR and SZ3 are single-threaded.
Results: ``<out>/speed.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .output import command_line, write_results

PLANE = "global/G04_era5_t2m_0.25deg_2017-01-01T12.nc"
TARGET_MAE = 0.4
V4, V52 = "hyperprior-v4", "hyperprior-v5.2"


def load_plane(data: str) -> tuple[np.ndarray, dict]:
    import xarray as xr

    from xneuralcodec.sphere.grid import LatLonGrid

    with xr.open_dataset(Path(data) / PLANE) as ds:
        grid = LatLonGrid.from_coords(ds.lat.values, ds.lon.values)
        return ds.t2m.squeeze().values.astype(np.float32), grid


def over_5x_target_pct(plane: np.ndarray, back) -> float:
    """Share of grid points off by more than 5x the MAE target, in per cent (issue 15's tail)."""
    return float(100 * (np.abs(np.asarray(back, np.float64) - plane) > 5 * TARGET_MAE).mean())


def timed(fn, repeats: int) -> tuple[float, object]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def interleaved(jobs: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each job per round, the jobs run in turn once per round (after one warm-up
    each: weights, per-shape caches), so that all of them see the same minutes of the machine."""
    for job in jobs.values():
        job()
    times = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            t0 = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - t0)
    return times


def measure(data: str, threads: int, repeats: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from xneuralcodec import NeuralCodec
    from xneuralcodec.evaluation.baselines import ratio_at_mae, reference_compressors
    from xneuralcodec.evaluation.metrics import weighted_errors
    from xneuralcodec.network.registry import registry
    from xneuralcodec.options import DEFAULT_QUALITY

    plane, grid = load_plane(data)
    megabytes = plane.nbytes / 1e6
    rows, codecs = [], {}
    cases = [("neural, default quality", {}), (f"neural, target_mae {TARGET_MAE}", {"target_mae": TARGET_MAE}),
             (f"network only, target_mae {TARGET_MAE}", {"target_mae": TARGET_MAE, "conventional": False})]
    cases += [(f"v4 {label}", {"model": V4, **options}) for label, options in cases]
    fine_point = DEFAULT_QUALITY + registry()["auto"]["fine_quality_offset"]
    cases += [("v5.2 neural, the default's rate point (0.12.0's default)", {"model": V52, "quality": fine_point})]
    cases += [(f"neural, target_mae {TARGET_MAE}, effort fast", {"target_mae": TARGET_MAE, "effort": "fast"})]
    for label, options in cases:
        codec = NeuralCodec(grid=grid.to_config(), variable="t2m", **options)
        enc_s, blob = timed(lambda: codec.encode(plane), repeats)
        dec_s, back = timed(lambda: codec.decode(blob), repeats)
        codecs[label] = codec, blob
        rows.append({"coder": f"{label} ({codec.options.model})", "model": codec.options.model,
                     "encode_MBps": megabytes / enc_s, "decode_MBps": megabytes / dec_s,
                     "ratio": plane.nbytes / len(blob), **weighted_errors(plane, back, grid),
                     "over_5x_target_pct": over_5x_target_pct(plane, back)})
    references, _ = reference_compressors(["sperr", "sz3_wasm"])
    jobs = {}
    for name, compressor in references.items():
        bound = ratio_at_mae(compressor, [plane], grid, TARGET_MAE)["parameter"]
        if name == "sperr":
            sperr_blob = compressor.encode(plane, bound)
            jobs["sperr encode"] = lambda c=compressor, b=bound: c.encode(plane, b)
            jobs["sperr decode"] = lambda c=compressor, b=bound: c.decode(sperr_blob, plane.shape, b)
        enc_s, blob = timed(lambda: compressor.encode(plane, bound), repeats)
        dec_s, back = timed(lambda: compressor.decode(blob, plane.shape, bound), repeats)
        back = np.asarray(back, np.float32).reshape(plane.shape)
        rows.append({"coder": f"{name} (wasm), bound {bound:.3g}", "encode_MBps": megabytes / enc_s,
                     "decode_MBps": megabytes / dec_s, "ratio": plane.nbytes / memoryview(blob).nbytes,
                     **weighted_errors(plane, back, grid), "over_5x_target_pct": over_5x_target_pct(plane, back)})
    (default, default_blob), (target, target_blob) = codecs[cases[0][0]], codecs[cases[1][0]]
    fast = codecs[cases[-1][0]][0]
    jobs.update({"default decode": lambda: default.decode(default_blob),
                 "target_mae decode": lambda: target.decode(target_blob),
                 "target_mae encode": lambda: target.encode(plane),
                 "target_mae encode, effort fast": lambda: fast.encode(plane)})
    return {"rows": rows, "interleaved_s": {name: statistics.median(t) for name, t in interleaved(jobs, repeats).items()}}


def markdown(runs: dict) -> str:
    lines = [f"| threads | coder | encode MB/s | decode MB/s | ratio | MAE | max err | % off by > {5 * TARGET_MAE:g} |",
             "|---|---|---|---|---|---|---|---|"]
    for threads, run in runs.items():
        for r in run["rows"]:
            lines.append(f"| {threads} | {r['coder']} | {r['encode_MBps']:.3g} | {r['decode_MBps']:.3g} | "
                         f"{r['ratio']:.4g} | {r['mae']:.3g} | {r['max_abs']:.3g} | {r['over_5x_target_pct']:.2f}% |")
    lines += ["", "Issue 17's ratios from the rows above (each coder timed in its own stretch):", "",
              "| threads | model | neural decode / SPERR decode (default, target_mae) | target_mae encode / SPERR encode "
              "(effort default; fast) |", "|---|---|---|---|"]
    for threads, run in runs.items():
        rows = run["rows"]
        sperr = next((r for r in rows if r["coder"].startswith("sperr")), None)
        for first in (0, 3):   # measure(): the default model's rows, then v4's
            default, target = rows[first], rows[first + 1]
            model = f"default ({default['model']})" if first == 0 else default["model"]
            fast = next((r for r in rows if "effort fast" in r["coder"]), None) if first == 0 else None
            if sperr:
                lines.append(f"| {threads} | {model} | {default['decode_MBps'] / sperr['decode_MBps']:.3f}, "
                             f"{target['decode_MBps'] / sperr['decode_MBps']:.3f} | "
                             f"{target['encode_MBps'] / sperr['encode_MBps']:.3f}"
                             + (f"; {fast['encode_MBps'] / sperr['encode_MBps']:.3f}" if fast else "") + " |")
    lines += ["", "The same ratios timed interleaved (every round runs each job once, in turn; medians):", "",
              "| threads | default decode / SPERR decode | target_mae decode / SPERR decode | target_mae encode / SPERR "
              "encode (effort default; fast) |", "|---|---|---|---|"]
    for threads, run in runs.items():
        t = run["interleaved_s"]
        lines.append(f"| {threads} | {t['sperr decode'] / t['default decode']:.3f} | "
                     f"{t['sperr decode'] / t['target_mae decode']:.3f} | {t['sperr encode'] / t['target_mae encode']:.3f}; "
                     f"{t['sperr encode'] / t['target_mae encode, effort fast']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from .run import default_data

    p = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(default_data()).parent), help="shared data directory")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # a child process: one thread count
    args = p.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.data, args.one, args.repeats)))
        return 0
    runs = {}
    for threads in args.threads:
        child = [sys.executable, "-m", "benchmarks.speed", "--data", args.data, "--one", str(threads),
                 "--repeats", str(args.repeats)]
        out = subprocess.run(child, capture_output=True, text=True, check=True)
        runs[threads] = json.loads(out.stdout.splitlines()[-1])
    table = markdown(runs)
    write_results(args.out, "speed", command_line("benchmarks.speed", argv), {"runs": runs},
                  "Speed on one 0.25 degree plane (G04 t2m, 4.15 MB)", f"medians of {args.repeats} runs.", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
