"""The network with and without its orographic prediction (format v15), side by side in one run:
``python -m benchmarks.network_orography``.

For every held-out plane whose terrain explains at least ``SURE_EXPLAINED`` of its band-pass
variance (where 0.19.0 applies the prediction; in the validation split, 2 m temperature), the default codec
(``model="auto"``, network records only: ``conventional=False``) at each trained quality, once
as it ships and once with ``planes.PREDICT_OROGRAPHY`` off. Per point: ratio, area-weighted
MAE, max error, % of points off by more than 5x that MAE, and the power spectrum ratio over the
top quarter of degrees. ``ratio at equal MAE`` reads the plain curve at each predicted point's
MAE (log-log interpolation; blank outside the plain curve's range). Results:
``<out>/network-orography.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from xneuralcodec import NeuralCodec
from xneuralcodec.codec import planes as plane_records
from xneuralcodec.coding import orographic_prediction
from xneuralcodec.evaluation.metrics import weighted_errors
from xneuralcodec.options import model_qualities

from .network_curves import ratio_at_equal_mae
from .paper_targets import top_quarter_spectrum
from .run import default_data, group_key, load_groups


def point(planes, grid, variable, quality: float) -> dict:
    codec = NeuralCodec(grid=grid.to_config(), variable=variable, quality=quality, conventional=False)
    blobs = [codec.encode(p) for p in planes]
    back = np.stack([codec.decode(b) for b in blobs]).astype(np.float64)
    mae = weighted_errors(planes, back, grid)["mae"]
    err = np.abs(back - planes)
    return {"quality": quality, "ratio": planes.nbytes / sum(map(len, blobs)), "mae": mae,
            "max_abs": float(err.max()), "over_5x_mae_pct": float(100 * (err > 5 * mae).mean()),
            "spectrum_top_quarter": top_quarter_spectrum(planes, back, grid)}


def curves(planes, grid, variable) -> dict:
    qualities = range(model_qualities("auto"))   # "auto" takes quality on its coarse model's scale on every grid
    predicted = [point(planes, grid, variable, float(q)) for q in qualities]
    plane_records.PREDICT_OROGRAPHY = False
    try:
        plain = [point(planes, grid, variable, float(q)) for q in qualities]
    finally:
        plane_records.PREDICT_OROGRAPHY = True
    for p in predicted:
        p["plain_ratio_at_equal_mae"] = ratio_at_equal_mae(p["mae"], plain)
    return {"predicted": predicted, "plain": plain}


def markdown(results: list[dict]) -> str:
    lines = ["| group | grid | quality | plain: ratio (MAE, max, % > 5x MAE, spectrum) | predicted: ratio (MAE, max, "
             "% > 5x MAE, spectrum) | plain ratio at the predicted MAE | gain at equal MAE |", "|---|---|---|---|---|---|---|"]

    def shown(p):
        return (f"{p['ratio']:.4g} ({p['mae']:.3g}, {p['max_abs']:.3g}, {p['over_5x_mae_pct']:.2f}%, "
                f"{p['spectrum_top_quarter']:.2f})")

    for g in results:
        for new, old in zip(g["curves"]["predicted"], g["curves"]["plain"]):
            equal = new["plain_ratio_at_equal_mae"]
            lines.append(f"| {g['group']} | {g['grid']} | {new['quality']:g} | {shown(old)} | {shown(new)} | "
                         + ("–" if equal is None else f"{equal:.4g}") + " | "
                         + ("–" if equal is None else f"{new['ratio'] / equal:.3f}") + " |")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 4), squeeze=False)
    for ax, g in zip(axes[0], results):
        for name, style in (("plain", "o--"), ("predicted", "s-")):
            c = g["curves"][name]
            ax.plot([p["mae"] for p in c], [p["ratio"] for p in c], style, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"area-weighted MAE ({g['units']})")
        ax.set_ylabel("compression ratio")
        ax.set_title(f"{g['group']} ({g['grid']})")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.network_orography", description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=None)
    p.add_argument("--groups", nargs="+", default=None, metavar="PREFIX:VAR")
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    from xneuralcodec.variables import units_of

    results = []
    for (source, variable), planes in load_groups(args.data or [default_data()], args.groups, 1).items():
        stack = np.stack([pl.values for pl in planes]).astype(np.float32)
        grid = planes[0].grid
        fitted = orographic_prediction.fit(stack[0], np.isfinite(stack[0]), grid)
        if fitted is None or fitted.explained < orographic_prediction.SURE_EXPLAINED:
            continue
        results.append({"group": group_key(source, variable), "grid": f"{grid.nlat}x{grid.nlon}",
                        "units": units_of(variable), "explained": fitted.explained,
                        "curves": curves(stack, grid, variable)})
        print(f"{results[-1]['group']}: done (explained {fitted.explained:.2f})", file=sys.stderr, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.network_orography " + " ".join(sys.argv[1:] if argv is None else argv)
    (out / "network-orography.json").write_text(json.dumps({"command": command, "results": results}, indent=1) + "\n")
    table = markdown(results)
    plot(results, out / "network-orography.png")
    (out / "network-orography.md").write_text(
        "# The network with and without its orographic prediction (format v15)\n\n"
        f"Command: `{command}`; default model 'auto', network records only (`conventional=False`), one held-out "
        "plane per group whose terrain explains at least SURE_EXPLAINED of its band-pass variance; both curves "
        "in one run. Cells: ratio (area-weighted MAE, max error, % of points off by more than 5x that MAE, power "
        "spectrum ratio over the top quarter of degrees).\n\n"
        + "\n".join(f"- {g['group']}: the terrain explains {g['explained']:.2f} of the band-pass variance"
                    for g in results) + "\n\n" + table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
