"""Issue 15's yardstick: the codec and its networks against SZ3, SPERR and EBCC at the paper's
MAE targets and at half of them, with error tails and spectra: ``python -m benchmarks.paper_targets``.

For one held-out plane per validation group, side by side in one run, at equal latitude-
weighted MAE (each peer's knob, an absolute bound, a step or a ratio, bisected to the target, ``ratio_at_mae``):
- ``codec``: ``NeuralCodec(target_mae=T)`` as it ships (``model="auto"``: v4 below 0.25 degree,
  the registry's fine v5 model at 0.25 degree; network or conventional record);
- ``codec max``: the same with ``effort="max"`` (encode-time latent refinement, and EBCC among
  the conventional records);
- ``v4 network`` / ``v5.N network`` (the registry's fine model of ``"auto"``, hyperprior-v5.3
  in 0.13.0-0.19.0, hyperprior-v5.4 from 0.20.0): each network with its correction layer only (``conventional=False``),
  on every grid; ``v5.N network max``: with ``effort="max"``. (Until 0.13.0 the table also had
  v5.1 and v5.2 columns; v5.3 shares their encoder.)
- SZ3, SPERR, EBCC, SPERR in its quantisation-step mode (``sperr_q``, what the codec uses
  for MAE targets since 0.11.0), and EBCC's JPEG 2000 layer alone (``ebcc_j2k``, its
  compression ratio bisected to the target; a codec coder since 0.16.0, and the strongest peer
  at MAE targets on 0.25 and 1 degree t2m, u10 and v10), and from 0.21.0 AV1 intra alone (``avif``,
  libavif through imagecodecs, its unit per 12-bit code bisected; the whole AVIF file counts): a
  codec coder since 0.21.0 too; from 0.24.0 also with libaom's tune=ssim (``avif_ssim``), as the
  codec's AV1 records may be written.
Per cell: ratio, MAE, max error, % of points off by more than 5x the target, and the power
spectrum ratio (reconstructed / original) averaged over the top quarter of spherical-harmonic
degrees. ``x / best peer`` divides by the best peer ratio that met the target. Results:
``<out>/paper-targets.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from xneuralcodec import NeuralCodec
from xneuralcodec.evaluation.baselines import Compressor, TargetNotReached, ratio_at_mae, reference_compressors
from xneuralcodec.evaluation.metrics import spectrum_ratio, weighted_errors
from xneuralcodec.network.registry import registry, registry_entry
from xneuralcodec.variables import units_of

from .hybrid import REFERENCES, _tails
from .run import default_data, finite_stacks, group_key, load_groups
from .targets import mae_target

FACTORS = (1.0, 0.5)
V4 = "hyperprior-v4"


def our_columns(fine: str) -> tuple:
    """The codec's columns; the v5 ones are named after auto's fine model (``v5.4 network``)."""
    label = fine.removeprefix("hyperprior-")
    return ("codec", "codec max", "v4 network", f"{label} network", f"{label} network max")


def top_quarter_spectrum(planes, back, grid) -> float:
    """Mean power ratio over degrees l in (0.75 lmax, lmax]: 1 keeps the small scales' energy."""
    spectra = spectrum_ratio(planes, back, grid)
    top = spectra["l"] > 0.75 * grid.lmax
    return float(np.nanmean(spectra["ratio"][top]))


def cell(planes, back, nbytes: int, grid, target: float) -> dict:
    return {"ratio": planes.nbytes / nbytes, "mae": weighted_errors(planes, back, grid)["mae"],
            **_tails(back, planes, target, None), "spectrum_top_quarter": top_quarter_spectrum(planes, back, grid)}


def codec_cell(planes, grid, variable, target, **options) -> dict:
    codec = NeuralCodec(grid=grid.to_config(), variable=variable, target_mae=target, **options)
    blobs = [codec.encode(p) for p in planes]
    return cell(planes, np.stack([codec.decode(b) for b in blobs]), sum(map(len, blobs)), grid, target)


def peer_cell(compressor: Compressor, planes, grid, target) -> dict:
    try:
        point = ratio_at_mae(compressor, planes, grid, target)
    except TargetNotReached as exc:
        return {"skipped": str(exc)}
    return cell(planes, point["reconstruction"], point["nbytes"], grid, target)


def measure_group(planes, grid, variable, references, factors, fine: str) -> list[dict]:
    target, source = mae_target(variable, planes)
    label = fine.removeprefix("hyperprior-")
    rows = []
    for factor in factors:
        t = factor * target
        cells = {"codec": codec_cell(planes, grid, variable, t),
                 "codec max": codec_cell(planes, grid, variable, t, effort="max"),
                 "v4 network": codec_cell(planes, grid, variable, t, model=V4, conventional=False),
                 f"{label} network": codec_cell(planes, grid, variable, t, model=fine, conventional=False),
                 f"{label} network max": codec_cell(planes, grid, variable, t, model=fine, conventional=False,
                                                   effort="max")}
        for name, compressor in references.items():
            cells[name] = peer_cell(compressor, planes, grid, t)
        rows.append({"factor": factor, "target": t, "target_source": source, "cells": cells})
    return rows


def best_peer(cells: dict) -> float:
    ratios = [c["ratio"] for n, c in cells.items() if n in REFERENCES and "ratio" in c]
    return max(ratios) if ratios else float("nan")


def markdown(results: list[dict], names: list[str]) -> str:
    ours = [n for n in names if n not in REFERENCES]
    lines = []
    for factor in sorted({r["factor"] for g in results for r in g["rows"]}, reverse=True):
        title = "the paper's MAE target" if factor == 1.0 else f"{factor:g} x the paper's MAE target"
        lines += [f"### At {title}", "",
                  "| group | grid | target | " + " | ".join(names) + " | " + " | ".join(f"{n} / best peer" for n in ours) + " |",
                  "|" + "---|" * (3 + len(names) + len(ours))]
        worst = {n: float("inf") for n in ours}
        tails = {n: 0.0 for n in ours}
        for g in results:
            row = next(r for r in g["rows"] if r["factor"] == factor)
            cells, peer = row["cells"], best_peer(row["cells"])
            shown = []
            for n in names:
                c = cells.get(n, {})
                shown.append("–" if "ratio" not in c else
                             f"{c['ratio']:.4g} ({c['mae']:.3g}, {c['max_abs']:.3g}, {c['over_5x_target_pct']:.2f}%, "
                             f"{c['spectrum_top_quarter']:.2f})")
            versus = []
            for n in ours:
                value = cells[n]["ratio"] / peer if "ratio" in cells.get(n, {}) else float("nan")
                versus.append(f"{value:.2f}")
                worst[n] = min(worst[n], value)
                if "ratio" in cells.get(n, {}):
                    tails[n] = max(tails[n], cells[n]["over_5x_target_pct"])
            lines.append(f"| {g['group']} | {g['grid']} | {row['target']:.3g} {g['units']} | " + " | ".join(shown)
                         + " | " + " | ".join(versus) + " |")
        lines += ["", "Lowest x / best peer: " + ", ".join(f"{n} **{worst[n]:.2f}**" for n in ours)
                  + "; largest share off by more than 5x the target: "
                  + ", ".join(f"{n} {tails[n]:.2f}%" for n in ours) + ".", ""]
    return "\n".join(lines)


def plot(results: list[dict], names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g["group"] for g in results]
    fig, ax = plt.subplots(figsize=(max(8, 0.7 * len(groups)), 4.5))
    width = 0.8 / len(names)
    for k, n in enumerate(names):
        values = [next(r for r in g["rows"] if r["factor"] == 1.0)["cells"].get(n, {}).get("ratio", np.nan)
                  for g in results]
        ax.bar(np.arange(len(groups)) + k * width, values, width, label=n)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups, rotation=45, ha="right")
    ax.set_ylabel("compression ratio at the paper's MAE target")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _planes_per_group(n: int) -> str:
    return "one held-out plane per group" if n == 1 else f"up to {n} held-out planes per group (each its own chunk)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.paper_targets", description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=None)
    p.add_argument("--groups", nargs="+", default=None, metavar="PREFIX:VAR")
    p.add_argument("--factors", type=float, nargs="+", default=list(FACTORS))
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--planes", type=int, default=1, help="held-out planes per group (each its own chunk)")
    args = p.parse_args(argv)
    auto = registry()["auto"]
    models = (f"default model 'auto' ({auto['coarse']} below nside {auto['fine_from_nside']}, {auto['fine']} from it), "
              f"{auto['fine']} sha256 {registry_entry(auto['fine'])['sha256'][:12]}")
    groups = load_groups(args.data or [default_data()], args.groups, args.planes)
    references, skipped = reference_compressors(list(REFERENCES))
    results = []
    for source, variable, stack, grid in finite_stacks(groups):
        results.append({"group": group_key(source, variable), "grid": f"{grid.nlat}x{grid.nlon}",
                        "units": units_of(variable),
                        "rows": measure_group(stack, grid, variable, references, args.factors, auto["fine"])})
        print(f"{results[-1]['group']}: done", file=sys.stderr, flush=True)
    names = [*our_columns(auto["fine"]), *references]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.paper_targets " + " ".join(sys.argv[1:] if argv is None else argv)
    (out / "paper-targets.json").write_text(json.dumps({"command": command, "models": models, "skipped": skipped,
                                                        "results": results}, indent=1) + "\n")
    table = markdown(results, names)
    plot(results, names, out / "paper-targets.png")
    (out / "paper-targets.md").write_text(
        f"# The codec and its networks against SZ3, SPERR, EBCC and AV1 at the paper's targets\n\nCommand: `{command}`; "
        f"{models}; {_planes_per_group(args.planes)}, each peer's knob (bound, step or ratio) bisected to the same MAE. Cells: ratio (MAE, "
        "max error, % of points off by more than 5x the target, power spectrum ratio over the top quarter of "
        "degrees).\n\n" + table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
