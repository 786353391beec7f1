"""PNG plots for ``evaluate --out``: error maps and spherical power spectra.

A mean error hides where the error is (coasts, mountains, fronts) and what it does to
scales (smoothing shows as lost power at high wavenumber l, blocking or noise as added
power); a map of original, reconstruction and error and the two spectra show both.
matplotlib is imported only here and only when plots are asked for, with the
non-interactive Agg backend, so a machine without it or without a display still runs
every other command.
"""

from __future__ import annotations

import numpy as np

from ..evaluation.metrics import spectrum_ratio
from ..sphere.grid import LatLonGrid
from .files import CLIError, atomic_output


def pyplot():
    """matplotlib.pyplot on the Agg backend, or a one-line instruction to install it."""
    try:
        import matplotlib
    except ImportError:
        raise CLIError("evaluate --out needs matplotlib for its plots: pip install matplotlib "
                       "(or pip install 'xneuralcodec[io]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    plt = pyplot()
    try:
        with atomic_output(path, overwrite=True) as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)


def plot_maps(path, original: np.ndarray, reconstructed: np.ndarray, grid: LatLonGrid, title: str, units: str) -> None:
    """Three panels side by side: original, reconstruction (same colour scale) and their difference.

    The difference's colour range is the 99.5th percentile of |error|: the maximum is often
    20x the mean and would leave the map blank but for a few points.
    """
    plt = pyplot()
    lat, lon = grid.latitudes, grid.longitudes
    dlon = 360.0 / grid.nlon
    extent = (lon[0] - dlon / 2, lon[-1] + dlon / 2, min(lat[0], lat[-1]), max(lat[0], lat[-1]))
    origin = "upper" if grid.north_first else "lower"
    error = reconstructed.astype(np.float64) - original
    finite = np.isfinite(original)
    vmin, vmax = np.nanmin(original), np.nanmax(original)
    span = float(np.percentile(np.abs(error[finite]), 99.5)) if finite.any() else 0.0
    span = span or float(np.nanmax(np.abs(error))) or 1.0
    fig, axes = plt.subplots(1, 3, figsize=(16, 3.6), constrained_layout=True)
    panels = [
        (original, "original", "viridis", vmin, vmax, "neither"),
        (reconstructed, "reconstruction", "viridis", vmin, vmax, "neither"),
        (error, f"error (reconstruction - original), clipped at 99.5th pct {span:.3g}", "RdBu_r", -span, span, "both"),
    ]
    for ax, (data, label, cmap, lo, hi, extend) in zip(axes, panels):
        image = ax.imshow(data, extent=extent, origin=origin, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("longitude")
        cbar = fig.colorbar(image, ax=ax, orientation="horizontal", shrink=0.85, pad=0.12, extend=extend)
        cbar.set_label(units)
    axes[0].set_ylabel("latitude")
    fig.suptitle(title)
    _save(fig, path)


def plot_spectrum(path, original: np.ndarray, reconstructed: np.ndarray, grid: LatLonGrid, title: str,
                  band_limit: int | None = None) -> dict:
    """Power per total wavenumber l of original and reconstruction (top) and their ratio (bottom).

    ``band_limit`` (2 * nside) marks the degree above which the HEALPix projection keeps nothing.
    Returns the spectra (``metrics.spectrum_ratio``).
    """
    plt = pyplot()
    spectra = spectrum_ratio(original, reconstructed, grid)
    l = spectra["l"][1:]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=(2, 1), constrained_layout=True)
    top.loglog(l, spectra["original"][1:], label="original", color="black")
    top.loglog(l, spectra["reconstructed"][1:], label="reconstruction", color="tab:red", linestyle="--")
    top.set_ylabel("power per degree l")
    floor = np.min(spectra["original"][1:][spectra["original"][1:] > 0], initial=np.inf)
    if np.isfinite(floor):  # beyond the band limit the reconstruction has ~no power: do not let that set the scale
        top.set_ylim(bottom=floor / 100)
    bottom.semilogx(l, spectra["ratio"][1:], color="tab:red")
    bottom.axhline(1.0, color="black", linewidth=0.8)
    bottom.set_ylabel("reconstruction / original")
    bottom.set_xlabel("total wavenumber l")
    if band_limit and band_limit <= l[-1]:
        for ax in (top, bottom):
            ax.axvline(band_limit, color="grey", linestyle=":", label="HEALPix band limit 2*nside" if ax is top else None)
    top.legend()
    top.set_title(title)
    _save(fig, path)
    return spectra
