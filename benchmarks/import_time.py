"""How long ``import xneuralcodec`` takes in a fresh process: ``python -m benchmarks.import_time``.

A Zarr codec is imported by every reader and every dask worker, before any chunk is coded;
issue 18 asks for under 1.5 s. Each run is a new interpreter (nothing cached in memory but
the OS file cache, warmed by one untimed run). The table also says whether torch (loaded
only when the first chunk is coded) came in with the import, and the slowest imports.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .machine import machine_info

PROBE = "import sys, xneuralcodec; print(int('torch' in sys.modules))"


def one_run() -> tuple[float, bool]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, out.stdout.strip() == "1"


def slowest_imports(count: int = 5) -> list[tuple[str, float]]:
    """Cumulative import time per top-level package (``python -X importtime``)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import xneuralcodec"], capture_output=True,
                         text=True, check=True).stderr
    totals = {}
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].strip()
            if "." not in name:
                totals[name] = max(totals.get(name, 0.0), int(parts[1]) / 1e6)
    return sorted(totals.items(), key=lambda kv: -kv[1])[:count]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.import_time", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    one_run()  # warm the file cache
    runs = [one_run() for _ in range(args.runs)]
    seconds = [s for s, _ in runs]
    result = {"runs": args.runs, "min_s": min(seconds), "median_s": statistics.median(seconds), "max_s": max(seconds),
              "torch_loaded": any(t for _, t in runs), "slowest": slowest_imports(), "machine": machine_info()}
    print(f"import xneuralcodec, {args.runs} fresh processes: min {result['min_s']:.2f} s, "
          f"median {result['median_s']:.2f} s, max {result['max_s']:.2f} s (target < 1.5 s); "
          f"torch loaded by the import: {'yes' if result['torch_loaded'] else 'no'}")
    print("slowest top-level imports (cumulative): " + ", ".join(f"{n} {s:.2f} s" for n, s in result["slowest"]))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
