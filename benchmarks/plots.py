"""Figures: rate-distortion curves and power spectra, one PNG per variable group.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot state, no
display needed), so the benchmark runs headless and inside tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

RATIO_LIMITS = (1e-3, 1e3)  # a codec band-limited below the grid's lmax has ratios near 0 beyond its cutoff
ERRORS = (("mae", "MAE"), ("rmse", "RMSE"), ("max_abs", "max abs error"))


def rd_plot(group: dict, path: Path) -> Path:
    """Compression ratio against MAE, RMSE and max error for every compressor of a group."""
    fig = Figure(figsize=(15, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, sharey=True)
    for name, result in group["compressors"].items():
        sweep = [p for p in result.get("sweep", []) if p["mae"] > 0]
        if not sweep:
            continue
        style = dict(marker="o", lw=2.5 if name == "neural" else 1.2, ms=4)
        for ax, (key, _) in zip(axes, ERRORS):
            pts = sorted((p[key], p["ratio"]) for p in sweep if p[key] > 0)
            if pts:
                ax.plot(*zip(*pts), label=name, **style)
    for ax, (key, label) in zip(axes, ERRORS):
        ax.set(xscale="log", yscale="log", xlabel=f"{label} [{group['units'] or 'units'}]")
        ax.grid(True, which="both", alpha=0.3)
    target = group["target_mae"]
    axes[0].axvline(target, color="k", ls=":", lw=1, label=f"target MAE {target:.3g}")
    axes[0].set_ylabel("compression ratio (float32 bytes / compressed)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{group['key']} ({group['grid']}, {group['planes']} plane(s)): rate-distortion")
    fig.savefig(path, dpi=90)
    return path


def spectra_plot(group: dict, path: Path) -> Path:
    """Power spectra of the original and of each compressor at the matched MAE, and their ratio."""
    spectra = group["spectra"]
    l = np.asarray(spectra["l"])
    fig = Figure(figsize=(9, 7), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    keep = l > 0
    top.plot(l[keep], np.asarray(spectra["original"], float)[keep], color="k", lw=2.5, ls="--", zorder=5, label="original")
    for name, recon in spectra["reconstructed"].items():
        recon = np.asarray(recon, float)
        top.plot(l[keep], recon[keep], lw=1.2, label=name)
        ratio = np.asarray([np.nan if r is None else r for r in spectra["ratio"][name]], float)
        bottom.plot(l[keep], ratio[keep], lw=1.2, label=name)
    bottom.axhline(1.0, color="k", lw=1)
    top.set(xscale="log", yscale="log", ylabel="power per l")
    bottom.set(xscale="log", yscale="log", ylim=RATIO_LIMITS, xlabel="total wavenumber l",
               ylabel="reconstructed / original\n(clipped to 1e-3..1e3)")
    for ax in (top, bottom):
        ax.grid(True, which="both", alpha=0.3)
    top.legend(fontsize=8)
    fig.suptitle(f"{group['key']}: spectra at matched MAE {group['target_mae']:.3g}")
    fig.savefig(path, dpi=90)
    return path
