"""Error metrics on the original lat/lon grid, weighted by grid-cell area (cos latitude).

An unweighted mean over a lat/lon grid counts the polar rows, which are tiny in area, as
much as the tropics; the paper (Mirowski et al. 2024) reports area-weighted errors.
Besides MAE / RMSE / max error it reports what those averages hide, as the paper does: the
share of the globe above a per-variable error threshold, the spherical power spectrum
(smoothing or added noise per scale), and extremes (cyclone cores, the warm tail).
"""

from __future__ import annotations

import numpy as np

from ..sphere.grid import LatLonGrid, area_weights
from ..variables import lookup


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


# -- per-variable error thresholds ---------------------------------------------------------
# A forecaster cares less about the mean error than about how much of the globe is off by
# more than a tolerance that matters for that quantity (Mirowski et al. 2024 use such
# thresholds). The thresholds are the variable table's (``xneuralcodec.variables``).

def variable_kind(variable: str) -> str | None:
    """Reporting group of a variable from its name ("t2m" -> "temperature", "u10" -> "wind"),
    None if unknown; from the variable table (``xneuralcodec.variables``)."""
    row = lookup(variable)
    return None if row is None else row.group


def error_threshold(variable: str, overrides: dict | None = None) -> float | None:
    """Absolute error that matters for ``variable`` (None when neither known nor overridden).

    ``overrides`` maps variable names or kinds (e.g. ``{"t2m": 0.5}`` or ``{"wind": 2}``) to
    thresholds in the variable's units; a name beats a kind, both beat the defaults.
    """
    overrides = {} if overrides is None else overrides
    if not isinstance(overrides, dict):
        raise TypeError(f"expected overrides as a dict of name or kind -> threshold, got {overrides!r} instead")
    kind = variable_kind(variable)
    for key in (variable, kind):
        if key is not None and key in overrides:
            return _positive(overrides[key], f"threshold for {key!r}")
    row = lookup(variable)
    return None if row is None else row.error_threshold


def exceedance_percent(original, reconstructed, grid: LatLonGrid, threshold: float) -> float:
    """Area-weighted percentage of the globe where |reconstructed - original| > ``threshold``.

    Area weighting keeps the many tiny polar pixels of a lat/lon grid from dominating.
    """
    threshold = _positive(threshold, "threshold")
    original, reconstructed = _matching(original, reconstructed, grid)
    finite = np.isfinite(original)
    exceeds = (np.abs(reconstructed - original) > threshold) & finite
    w = np.broadcast_to(area_weights(grid), original.shape)
    return float(100.0 * (w * exceeds).sum() / (w * finite).sum())


# -- spherical power spectrum --------------------------------------------------------------
# A codec that smooths loses power at high total wavenumber l; one that adds noise or block
# artefacts gains it. MAE sees neither, the spectrum per l sees both.

def power_spectrum(field, grid: LatLonGrid) -> np.ndarray:
    """Angular power per total wavenumber l = 0..grid.lmax of a plane (mean over a stack).

    power_l = sum over m of |a_lm|^2 (m > 0 counted twice for the negative m of a real
    field), divided by (2l + 1), with orthonormal harmonics from ``ducc0.sht.analysis_2d``.
    """
    import ducc0

    field = _planes(field, grid, "field")
    if not np.isfinite(field).all():
        raise ValueError("expected finite values for a power spectrum, got NaN or inf")
    lmax = grid.lmax
    degree, order = _lm_index(lmax)
    weight = np.where(order > 0, 2.0, 1.0)
    power = np.zeros(lmax + 1)
    for plane in field.reshape(-1, grid.nlat, grid.nlon):
        north_first = plane if grid.north_first else plane[::-1]
        alm = ducc0.sht.analysis_2d(
            map=np.ascontiguousarray(north_first)[None], spin=0, lmax=lmax, geometry=grid.geometry,
            phi0=np.radians(grid.lon_first % 360.0), nthreads=1,
        )[0]
        power += np.bincount(degree, weights=weight * np.abs(alm) ** 2, minlength=lmax + 1)
    n = field.size // (grid.nlat * grid.nlon)
    return power / n / (2.0 * np.arange(lmax + 1) + 1.0)


def spectrum_ratio(original, reconstructed, grid: LatLonGrid) -> dict:
    """Spectra of original and reconstruction and their ratio per l (1 = power preserved).

    The ratio is NaN where the original has no power at that l.
    """
    original, reconstructed = _matching(original, reconstructed, grid)
    p_orig = power_spectrum(original, grid)
    p_recon = power_spectrum(reconstructed, grid)
    ratio = np.divide(p_recon, p_orig, out=np.full_like(p_orig, np.nan), where=p_orig > 0)
    return {"l": np.arange(grid.lmax + 1), "original": p_orig, "reconstructed": p_recon, "ratio": ratio}


def _lm_index(lmax: int) -> tuple[np.ndarray, np.ndarray]:
    """(l, m) of every coefficient in ducc0/healpy order: m-major, l = m..lmax."""
    order = np.concatenate([np.full(lmax + 1 - m, m) for m in range(lmax + 1)])
    degree = np.concatenate([np.arange(m, lmax + 1) for m in range(lmax + 1)])
    return degree, order


# -- extremes: cyclone cores and the warm tail ---------------------------------------------
# Extreme events are what users look at first and what smoothing destroys: a 100 Pa MAE can
# hide a cyclone core that moved a cell or filled by 5 hPa, and clipped heat extremes.

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius


def great_circle_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km between points given in degrees (haversine formula)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(x, np.float64)) for x in (lat1, lon1, lat2, lon2))
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def local_minima(plane, grid: LatLonGrid, k: int | None = 10, size: int = 3) -> list[dict]:
    """The ``k`` (None: all) deepest local minima of a plane, deepest first: lat, lon, value, row, col.

    A point is a candidate when nothing in its ``size`` x ``size`` neighbourhood is lower
    (longitude wraps round; beyond the first and last rows the edge row repeats). A flat
    patch of candidates (common after quantisation) is one minimum, placed at its point
    nearest the patch's centre; a patch that continues at the same value into points with
    a lower neighbour is a terrace on a slope, not a minimum, and is dropped. Pole rows of a
    grid that has them are one point each and are skipped. Needs scipy (``scipy.ndimage``).
    """
    try:
        from scipy import ndimage
    except ImportError as exc:
        raise ImportError(f"local_minima needs scipy ({exc}); pip install scipy") from exc

    k = None if k is None else _count(k, "k")
    size = _count(size, "size")
    if size < 3 or size % 2 == 0 or size > min(grid.nlat, grid.nlon):
        raise ValueError(f"expected an odd neighbourhood size >= 3 and <= the grid's sides, got {size} instead")
    plane = _planes(plane, grid, "plane")
    if plane.ndim != 2:
        raise ValueError(f"expected one 2-D plane, got shape {plane.shape} instead")
    if not np.isfinite(plane).all():
        raise ValueError("expected finite values to look for minima, got NaN or inf")
    candidate = plane <= ndimage.minimum_filter(plane, size=size, mode=("nearest", "wrap"))
    if grid.geometry == "CC":
        candidate[[0, -1], :] = False
    labels, count = ndimage.label(candidate, structure=np.ones((3, 3), bool))
    labels = _join_across_seam(labels, candidate)
    # a patch touching an equal value that is not a candidate is a terrace: drop it
    # (a candidate's neighbours are never lower, so "touching an equal non-candidate" is
    # "the lowest non-candidate neighbour equals it")
    lowest_other = ndimage.minimum_filter(np.where(candidate, np.inf, plane), size=3, mode=("nearest", "wrap"))
    terrace = candidate & (lowest_other == plane)
    dropped = set(np.unique(labels[terrace]).tolist())
    ids, first = np.unique(labels.ravel(), return_index=True)
    keep = [(plane.flat[f], i) for i, f in zip(ids.tolist(), first) if i != 0 and i not in dropped]
    keep.sort()
    lats, lons = grid.latitudes, grid.longitudes
    xyz = _unit_vectors(lats[:, None], lons[None, :])
    taken = np.zeros(plane.shape, bool)
    r = size // 2
    boxes = ndimage.find_objects(labels)
    found = []
    for value, label in keep:
        box = boxes[label - 1]
        rows, cols = np.nonzero(labels[box] == label)
        rows, cols = rows + box[0].start, cols + box[1].start
        centre = xyz[:, rows, cols].mean(axis=1)
        best = int(np.argmax(centre @ xyz[:, rows, cols]))
        row, col = int(rows[best]), int(cols[best])
        if taken[row, col]:  # two separate patches of one value within a neighbourhood: keep one
            continue
        taken[max(row - r, 0):row + r + 1, np.arange(col - r, col + r + 1) % grid.nlon] = True
        found.append({"lat": float(lats[row]), "lon": float(lons[col]), "value": float(value), "row": row, "col": col})
        if len(found) == k:
            break
    return found


def _join_across_seam(labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Merge labelled patches that touch across the last and first longitude columns."""
    parent = {}

    def root(a):
        while parent.get(a, a) != a:
            a = parent[a]
        return a

    nlat = labels.shape[0]
    for row in range(nlat):
        for other in (row - 1, row, row + 1):
            if 0 <= other < nlat and mask[row, -1] and mask[other, 0]:
                a, b = root(labels[row, -1]), root(labels[other, 0])
                if a != b:
                    parent[max(a, b)] = min(a, b)
    if not parent:
        return labels
    lookup = np.arange(labels.max() + 1)
    for a in parent:
        lookup[a] = root(a)
    return lookup[labels]


def _unit_vectors(lat, lon) -> np.ndarray:
    """(3, ...) Cartesian unit vectors of points given in degrees."""
    lat, lon = np.broadcast_arrays(np.radians(lat), np.radians(lon))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def cyclone_cores(original, reconstructed, grid: LatLonGrid, k: int = 10, size: int = 3) -> dict:
    """The ``k`` deepest pressure minima of the original and where the reconstruction has them.

    Each original core is matched to the nearest local minimum of the reconstruction (of any
    depth: restricting partners to the reconstruction's own ``k`` deepest would pair a core
    whose rank changed with an unrelated minimum far away). Per core: displacement in km,
    depth error (reconstructed - original, in the field's units) and the partner's rank among
    the reconstruction's minima (rank < k: it is also among the reconstruction's k deepest).
    """
    original, reconstructed = _matching(original, reconstructed, grid)
    k = _count(k, "k")
    cores = local_minima(original, grid, k, size)
    candidates = local_minima(reconstructed, grid, None, size)
    matched = []
    for core in cores:
        entry = {"lat": core["lat"], "lon": core["lon"], "value": core["value"],
                 "reconstructed_lat": None, "reconstructed_lon": None, "reconstructed_value": None,
                 "distance_km": None, "value_error": None, "reconstructed_rank": None}
        if candidates:
            dist = great_circle_km(core["lat"], core["lon"], [c["lat"] for c in candidates], [c["lon"] for c in candidates])
            rank = int(np.argmin(dist))
            partner = candidates[rank]
            entry.update(
                reconstructed_lat=partner["lat"], reconstructed_lon=partner["lon"], reconstructed_value=partner["value"],
                distance_km=float(dist[rank]), value_error=partner["value"] - core["value"], reconstructed_rank=rank,
            )
        matched.append(entry)
    distances = [m["distance_km"] for m in matched if m["distance_km"] is not None]
    errors = [abs(m["value_error"]) for m in matched if m["value_error"] is not None]
    return {
        "cores": matched,
        "matched": len(distances),
        "in_reconstruction_top_k": sum(1 for m in matched if m["reconstructed_rank"] is not None and m["reconstructed_rank"] < k),
        "median_distance_km": float(np.median(distances)) if distances else None,
        "max_distance_km": float(np.max(distances)) if distances else None,
        "mean_abs_value_error": float(np.mean(errors)) if errors else None,
        "max_abs_value_error": float(np.max(errors)) if errors else None,
    }


def upper_tail(original, reconstructed, fraction: float = 0.001) -> dict:
    """The warmest ``fraction`` of grid points (by count) in original and reconstruction.

    Reports both tails' maximum, threshold (smallest value in the tail) and mean, the error
    on the original's tail points, and how many of them remain in the reconstruction's tail
    (``kept``): a smoothing codec clips heat extremes and reshuffles which points are hottest.
    """
    fraction = _positive(fraction, "fraction")
    if fraction >= 1:
        raise ValueError(f"expected a tail fraction below 1, got {fraction} instead")
    original = np.asarray(original, np.float64).ravel()
    reconstructed = np.asarray(reconstructed, np.float64).ravel()
    if original.shape != reconstructed.shape:
        raise ValueError(f"expected arrays of one size, got {original.size} and {reconstructed.size} values")
    finite = np.flatnonzero(np.isfinite(original) & np.isfinite(reconstructed))
    if finite.size == 0:
        raise ValueError("expected some finite values, got none")
    n = max(1, int(np.ceil(fraction * finite.size)))
    top_orig = finite[np.argpartition(-original[finite], n - 1)[:n]]
    top_recon = finite[np.argpartition(-reconstructed[finite], n - 1)[:n]]
    err = np.abs(reconstructed[top_orig] - original[top_orig])
    return {
        "fraction": fraction, "points": n,
        "original_max": float(original[top_orig].max()), "reconstructed_max": float(reconstructed[top_recon].max()),
        "original_threshold": float(original[top_orig].min()), "reconstructed_threshold": float(reconstructed[top_recon].min()),
        "original_mean": float(original[top_orig].mean()), "reconstructed_mean": float(reconstructed[top_recon].mean()),
        "mean_abs_error_on_tail": float(err.mean()), "max_abs_error_on_tail": float(err.max()),
        "kept": int(np.intersect1d(top_orig, top_recon).size), "kept_fraction": float(np.intersect1d(top_orig, top_recon).size / n),
    }


# -- input checks --------------------------------------------------------------------------

def _planes(values, grid: LatLonGrid, name: str) -> np.ndarray:
    if not isinstance(grid, LatLonGrid):
        raise TypeError(f"expected a LatLonGrid, got {grid!r} instead")
    arr = np.asarray(values)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"expected a numeric {name} array, got dtype {arr.dtype} instead")
    if arr.ndim < 2 or arr.shape[-2:] != (grid.nlat, grid.nlon):
        raise ValueError(f"expected {name} on the {grid.nlat} x {grid.nlon} grid, got shape {arr.shape} instead")
    return arr.astype(np.float64)


def _matching(original, reconstructed, grid: LatLonGrid) -> tuple[np.ndarray, np.ndarray]:
    original = _planes(original, grid, "original")
    reconstructed = _planes(reconstructed, grid, "reconstructed")
    if original.shape != reconstructed.shape:
        raise ValueError(f"expected original and reconstruction of one shape, got {original.shape} and {reconstructed.shape}")
    return original, reconstructed


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"expected a number for {name}, got {value!r} instead")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"expected a positive finite {name}, got {value!r} instead")
    return float(value)


def _count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"expected an int {name}, got {value!r} instead")
    if value < 1:
        raise ValueError(f"expected {name} >= 1, got {value} instead")
    return int(value)
