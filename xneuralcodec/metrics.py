"""Error metrics on the original lat/lon grid, weighted by grid-cell area (cos latitude).

An unweighted mean over a lat/lon grid counts the polar rows, which are tiny in area, as
much as the tropics; the paper (Mirowski et al. 2024) reports area-weighted errors.
"""

from __future__ import annotations

import numpy as np

from .grid import LatLonGrid


def area_weights(grid: LatLonGrid) -> np.ndarray:
    """(nlat, 1) weights proportional to cos(latitude), summing to 1 over the plane."""
    w = np.cos(np.deg2rad(grid.latitudes)).clip(min=0.0)
    if w.sum() == 0:
        raise ValueError("grid has no area")
    return (w / (w.sum() * grid.nlon))[:, None]


def weighted_errors(original: np.ndarray, reconstructed: np.ndarray, grid: LatLonGrid) -> dict:
    """MAE, RMSE (area-weighted) and max absolute error over all planes of the arrays."""
    original = np.asarray(original, np.float64)
    reconstructed = np.asarray(reconstructed, np.float64)
    if original.shape != reconstructed.shape or original.shape[-2:] != (grid.nlat, grid.nlon):
        raise ValueError(f"expected matching arrays on the {grid.nlat} x {grid.nlon} grid, got {original.shape} and {reconstructed.shape}")
    err = reconstructed - original
    finite = np.isfinite(original)
    err = np.where(finite, err, 0.0)
    w = np.broadcast_to(area_weights(grid), original.shape) * finite
    total = w.sum()
    return {
        "mae": float((np.abs(err) * w).sum() / total),
        "rmse": float(np.sqrt((err ** 2 * w).sum() / total)),
        "max_abs": float(np.abs(err).max()),
    }
