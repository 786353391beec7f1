"""A chunk's planes on the lat/lon grid: input checks, what kind of record each plane gets,
standardisation, and the decoder's way back (de-standardise, NaN mask, dtype).

    chunk (..., nlat, nlon) --check_array--> planes (P, nlat, nlon)
        all NaN  -> KIND_ALL_NAN record
        constant -> KIND_CONSTANT record (the value as float32)
        else     -> KIND_NEURAL record (mean, std, NaN mask) + the standardised plane

Mean and std are float32 as the chunk header stores them, so that encoder replays and the
decoder de-standardise with the same numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..format import bitstream
from ..format.bitstream import KIND_ALL_NAN, KIND_CONSTANT, KIND_NEURAL, PlaneRecord
from ..sphere.faces import faces_to_ring
from ..sphere.grid import LatLonGrid

if TYPE_CHECKING:  # projection loads torch for its thread count; the Zarr 3 face needs none of it
    from ..sphere.projection import Projector

SUPPORTED_DTYPES = (np.dtype("float32"), np.dtype("float64"))


def standardise(values: np.ndarray):
    """Per-plane standardisation; mean and std are float32 as stored in the chunk header."""
    mean = np.float32(values.mean(dtype=np.float64))
    std = np.float32(values.std(dtype=np.float64))
    return (values - np.float64(mean)) / np.float64(std), mean, std


def infer_grid(nlat: int, nlon: int) -> LatLonGrid:
    """Grid from a plane shape alone: odd row counts include both poles, even ones do not.

    Orientation (north or south first, longitude origin) does not change how exactly a
    plane round-trips, so the ERA5 convention (north first, from 0 E) is assumed. Only
    shapes with equal latitude and longitude steps are taken for whole globes: a chunk that
    holds half a globe (Zarr's own chunking of an array given no chunks, say) has unequal
    steps and is refused rather than coded as if it were a sphere.
    """
    lat_step = 180.0 / (nlat - 1) if nlat % 2 else 180.0 / nlat
    if abs(lat_step - 360.0 / nlon) > 1e-9 * lat_step:
        raise ValueError(
            f"a {nlat} x {nlon} chunk is not a whole global grid with equal latitude and longitude steps "
            f"({lat_step:g} and {360.0 / nlon:g} degrees): chunks must hold whole lat x lon planes. Give the codec "
            "grid={...} (xneuralcodec.encoding(ds) does) and chunks of whole planes, e.g. ds.chunk(time=1, lat=-1, lon=-1)"
        )
    if nlat % 2:
        return LatLonGrid(nlat, nlon, 90.0, 0.0)
    return LatLonGrid(nlat, nlon, 90.0 - 90.0 / nlat, 0.0)


def check_array(arr, grid: LatLonGrid | None) -> tuple[np.ndarray, LatLonGrid]:
    """Validate an input chunk; returns it as an ndarray and the grid it lives on."""
    if not isinstance(arr, np.ndarray):
        arr = np.asarray(arr)
    if arr.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"expected a float32 or float64 array, got dtype {arr.dtype} instead")
    if arr.ndim < 2:
        raise ValueError(f"expected an array whose last two dims are (lat, lon), got shape {arr.shape} instead")
    if grid is None:
        grid = infer_grid(arr.shape[-2], arr.shape[-1])
    elif arr.shape[-2:] != (grid.nlat, grid.nlon):
        raise ValueError(
            f"expected chunks holding whole {grid.nlat} x {grid.nlon} lat/lon planes, got shape {arr.shape} "
            "instead (chunk only the leading dims; see docs/chunking.md)"
        )
    if np.isinf(arr).any():
        raise ValueError("expected finite values or NaN, got +-inf in the chunk instead")
    return arr, grid


def check_constant(values: np.ndarray, max_abs_error: float | None, stored: float | None = None) -> None:
    """Constant planes are stored as one float32: refuse a bound that this would break."""
    if max_abs_error is None:
        return
    stored = np.float64(np.float32(values.flat[0] if stored is None else stored))
    if np.abs(values.astype(np.float64) - stored).max() > max_abs_error:
        raise ValueError(f"max_abs_error={max_abs_error} is finer than the float32 value stored for a constant plane")


def describe(planes: np.ndarray, quality: float, max_abs_error: float | None):
    """(records, [(index, standardised plane)] of the planes the network codes)."""
    records: list[PlaneRecord] = []
    neural: list[tuple[int, np.ndarray]] = []
    for i, plane in enumerate(planes):
        nan = np.isnan(plane)
        if nan.all():
            records.append(PlaneRecord(KIND_ALL_NAN, 0.0, 0.0))
            continue
        mask = bitstream.pack_mask(nan) if nan.any() else b""
        finite = plane[~nan]
        if finite.min() == finite.max():
            check_constant(finite, max_abs_error)
            records.append(PlaneRecord(KIND_CONSTANT, float(finite[0]), 0.0, mask))
            continue
        filled = np.where(nan, finite.mean(dtype=np.float64), plane).astype(np.float64)
        normed, mean, std = standardise(filled)
        if not np.isfinite(std) or std == 0:  # values too close for float32 statistics
            check_constant(finite, max_abs_error, float(mean))
            records.append(PlaneRecord(KIND_CONSTANT, float(mean), 0.0, mask))
            continue
        records.append(PlaneRecord(KIND_NEURAL, float(mean), float(std), mask, quality=quality))
        neural.append((i, normed))
    return records, neural


def to_planes(faces: np.ndarray, projector: Projector, records) -> list[np.ndarray]:
    """Decoded faces (B, 12, n, n) -> lat/lon planes (float64, before NaN masking), each
    de-standardised with its record's float32 mean and std."""
    return [
        projector.to_latlon(faces_to_ring(f.astype(np.float64))) * np.float64(np.float32(rec.std))
        + np.float64(np.float32(rec.mean))
        for f, rec in zip(faces, records)
    ]


def start_planes(chunk) -> tuple[np.ndarray, list[int]]:
    """(P, nlat, nlon) float64 with the all-NaN and constant planes filled in, and the
    indices of the planes left to the network."""
    out = np.empty((chunk.n_planes, chunk.nlat, chunk.nlon), dtype=np.float64)
    neural = []
    for i, rec in enumerate(chunk.planes):
        if rec.kind == KIND_ALL_NAN:
            out[i] = np.nan
        elif rec.kind == KIND_CONSTANT:
            out[i] = rec.mean
        else:
            neural.append(i)
    return out, neural


def finish_planes(out: np.ndarray, chunk) -> np.ndarray:
    """NaN positions restored, the chunk's dtype and shape."""
    for i, rec in enumerate(chunk.planes):
        if rec.mask:
            out[i][bitstream.unpack_mask(rec.mask, (chunk.nlat, chunk.nlon))] = np.nan
    with np.errstate(over="ignore"):  # forged mean/std: inf, like any value out of range
        return out.astype(chunk.dtype).reshape(chunk.shape)
