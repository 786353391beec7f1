"""Rate control in the user's units: ``python -m benchmarks.target_mae``.

Encodes one held-out plane per validation group with ``NeuralCodec(target_mae=x)`` for a
ladder of targets (the paper's target and half of it, more for the groups in ``LADDERS``).
Per plane and target it prints the record the codec chose (the network at a quality, or since
0.7.0 SZ3 / SPERR where they are smaller), whether the correction layer was
needed, the ratio, the MAE reached (area-weighted, recomputed here from the decoded plane),
the encode time and the decode throughput (MB/s of float32 output, median of 3); the same
with ``nside="auto"`` (the encoder also tries coarser HEALPix spheres and keeps the shortest
chunk); and SZ3's ratio at the same target on the same plane (bisected error bound). Unlike
the fixed-quality sweep of ``benchmarks.run``, every target is reached: where the finest
quality misses, the correction layer makes up the rest. Results go to
``benchmarks/results/target-mae.{json,md}``. The MAE must never exceed the target.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from xneuralcodec import NeuralCodec
from xneuralcodec.coding import conventional
from xneuralcodec.evaluation.baselines import ratio_at_mae, sz3_compressor
from xneuralcodec.evaluation.metrics import weighted_errors
from xneuralcodec.format import bitstream
from xneuralcodec.variables import units_of

from .run import REPO, default_data, group_key, load_groups
from .targets import mae_target

DECODE_REPEATS = 3  # median of these, torch on the threads the run was started with

LADDERS = {  # group -> targets in the variable's units, loose to tight
    "G01:t2m": (2.0, 1.0, 0.6, 0.4, 0.2),
    "G01:msl": (200.0, 100.0, 50.0, 25.0),
    "G01:u10": (1.0, 0.5, 0.25),
    "G04:t2m": (0.8, 0.4, 0.2),
    "G08:t": (0.8, 0.4, 0.2),
}


def ladder(key: str, variable: str, plane) -> tuple[float, ...]:
    if key in LADDERS:
        return LADDERS[key]
    target, _ = mae_target(variable, [plane.values])
    return (target, target / 2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.target_mae", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="shared data directory (default ../shared/data/global)")
    p.add_argument("--groups", nargs="+", default=None, help="e.g. G01:t2m (default: every validation group)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = p.parse_args(argv)

    groups = load_groups([args.data or default_data()], tuple(args.groups) if args.groups else None, max_planes=1)
    sz3 = sz3_compressor()
    rows = []
    lines = ["| group | plane | target MAE | record (quality or coder) | correction | ratio | MAE reached | encode s | decode MB/s | "
             "nside='auto': nside kept (default) | ratio | encode s | decode MB/s | SZ3 ratio | neural / SZ3 | auto / SZ3 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    print(lines[0] + "\n" + lines[1])
    for (source, variable), planes in groups.items():
        plane, key = planes[0], group_key(source, variable)
        for target in ladder(key, variable, plane):
            row = {"group": key, "plane": plane.label.split(":", 1)[-1], "target_mae": target,
                   "units": units_of(variable), "default_nside": plane.grid.default_nside()}
            for prefix, nside in (("", None), ("auto_", "auto")):
                codec = NeuralCodec(grid=plane.grid.to_config(), target_mae=target, nside=nside, variable=variable)
                t0 = time.perf_counter()
                data = codec.encode(plane.values)
                seconds = time.perf_counter() - t0
                chunk = bitstream.unpack(data)
                decoded = codec.decode(data)
                decode_s = []
                for _ in range(DECODE_REPEATS):
                    t0 = time.perf_counter()
                    codec.decode(data)
                    decode_s.append(time.perf_counter() - t0)
                mae = weighted_errors(plane.values, decoded, plane.grid)["mae"]
                if mae > target:
                    raise AssertionError(f"{key} target {target} nside {nside}: reached MAE {mae} above the target")
                record = chunk.planes[0]
                row.update({f"{prefix}nside": chunk.nside, f"{prefix}quality": record.quality,
                            f"{prefix}record": conventional.NAMES[record.coder] if record.kind == bitstream.KIND_CONVENTIONAL
                            else f"q{record.quality:.3g}",
                            f"{prefix}correction_bytes": len(chunk.planes[0].correction),
                            f"{prefix}ratio": plane.values.astype("float32").nbytes / len(data),
                            f"{prefix}mae": mae, f"{prefix}encode_s": seconds,
                            f"{prefix}decode_s": float(np.median(decode_s))})
            row["sz3_ratio"] = ratio_at_mae(sz3, plane.values[None], plane.grid, target)["ratio"]
            mb = plane.values.astype("float32").nbytes / 1e6
            rows.append(row)
            lines.append(f"| {key} | {row['plane']} | {target:.4g} | {row['record']} | "
                         f"{'yes' if row['correction_bytes'] else 'no'} | {row['ratio']:.1f} | {row['mae']:.4g} | "
                         f"{row['encode_s']:.2f} | {mb / row['decode_s']:.1f} | {row['auto_nside']} ({row['default_nside']}) | "
                         f"{row['auto_ratio']:.1f} | {row['auto_encode_s']:.2f} | {mb / row['auto_decode_s']:.1f} | "
                         f"{row['sz3_ratio']:.1f} | {row['ratio'] / row['sz3_ratio']:.2f} | "
                         f"{row['auto_ratio'] / row['sz3_ratio']:.2f} |")
            print(lines[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "target-mae.json").write_text(json.dumps({"command": "python -m benchmarks.target_mae", "rows": rows}, indent=1))
    (out / "target-mae.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
