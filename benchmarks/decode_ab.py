"""Decode time of the networks' default streams and SPERR's, interleaved: ``python -m benchmarks.decode_ab``.

Why beside ``benchmarks.speed``: on this shared machine the speed of a whole process drifts by
20-30% between minutes, and ``speed`` times each coder in its own stretch, so ratios of two
stretches carry that drift. Here every repeat decodes each stream once, in turn, so all of
them see the same minutes. The plane is the held-out ERA5 0.25 degree t2m (G04); the streams
are v4 at quality 3 (the default before 0.12.0), v5.1, v5.2 (0.12.0's default) and v5.3 (0.13.0's)
at rate point 5 (what ``model="auto"``'s quality 3 is on this grid), and SPERR at the bound whose
MAE is 0.4 K.
Results: ``<out>/decode-ab.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from .output import command_line, write_results
from .speed import TARGET_MAE, interleaved, load_plane

STREAMS = (("hyperprior-v4", 3), ("hyperprior-v5.1", 5), ("hyperprior-v5.2", 5), ("hyperprior-v5.3", 5))


def measure(data: str, threads: int, repeats: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from xneuralcodec import NeuralCodec
    from xneuralcodec.evaluation.baselines import ratio_at_mae, reference_compressors

    plane, grid = load_plane(data)
    decoders = {}
    for model, quality in STREAMS:
        codec = NeuralCodec(model=model, quality=quality, grid=grid.to_config(), variable="t2m")
        blob = codec.encode(plane)
        decoders[f"{model} q{quality}"] = lambda codec=codec, blob=blob: codec.decode(blob)
    sperr = reference_compressors(["sperr"])[0]["sperr"]
    bound = ratio_at_mae(sperr, [plane], grid, TARGET_MAE)["parameter"]
    blob = sperr.encode(plane, bound)
    decoders["sperr"] = lambda: sperr.decode(blob, plane.shape, bound)
    return {name: {"median_ms": 1e3 * statistics.median(t), "min_ms": 1e3 * min(t), "max_ms": 1e3 * max(t)}
            for name, t in interleaved(decoders, repeats).items()}


def markdown(result: dict, threads: int) -> str:
    sperr = result["sperr"]["median_ms"]
    lines = [f"| stream ({threads} threads) | median ms | min | max | decode speed / SPERR's |", "|---|---|---|---|---|"]
    for name, r in result.items():
        lines.append(f"| {name} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | {r['max_ms']:.1f} | "
                     f"{sperr / r['median_ms']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from .run import default_data

    p = argparse.ArgumentParser(prog="python -m benchmarks.decode_ab", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(default_data()).parent), help="shared data directory")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    result = measure(args.data, args.threads, args.repeats)
    table = markdown(result, args.threads)
    write_results(args.out, "decode-ab", command_line("benchmarks.decode_ab", argv),
                  {"threads": args.threads, "repeats": args.repeats, "result": result},
                  "Decode time, interleaved (G04 t2m, 4.15 MB)", f"medians of {args.repeats} rounds.", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
