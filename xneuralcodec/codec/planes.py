"""A chunk's planes on the lat/lon grid: input checks, what kind of record each plane gets,
standardisation, and the decoder's way back (de-standardise, NaN mask, dtype).

    chunk (..., nlat, nlon) --check_array--> planes (P, nlat, nlon)
        all NaN  -> KIND_ALL_NAN record
        constant -> KIND_CONSTANT record (the value as float32)
        else     -> KIND_NEURAL record (mean, std, NaN mask) + the standardised plane
                    (minus its orographic prediction where the terrain explains much of it, v15)
        a bound the correction cannot hold -> KIND_LOSSLESS record (the values themselves)
        SZ3 / SPERR smaller under the same promise -> KIND_CONVENTIONAL record (engine.py, v7)

Mean and std are float32 as the chunk header stores them, so that encoder replays and the
decoder de-standardise with the same numbers. float32 statistics cannot describe planes
whose magnitude lies outside float32's range (float64 near 1e308) or so low that float32
loses precision (denormal float32, float64 near 1e-50): those are scaled by a power of two
first, which is exact, so they code with the relative error of the same field at ordinary
magnitude, and the exponent travels in the record (format v6). Ordinary planes get
exponent 0 and keep their v5 bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..coding import conventional as conventional_coders
from ..coding import orographic_prediction
from ..coding.output import to_dtype
from ..format import bitstream
from ..format.bitstream import KIND_ALL_NAN, KIND_CONSTANT, KIND_CONVENTIONAL, KIND_LOSSLESS, KIND_NEURAL, PlaneRecord
from ..format.limits import MAX_CHUNK_BYTES_ENV, max_chunk_bytes
from ..sphere.faces import faces_to_ring
from ..sphere.grid import LatLonGrid

if TYPE_CHECKING:  # projection loads torch for its thread count; the Zarr 3 face needs none of it
    from ..sphere.projection import Projector

SUPPORTED_DTYPES = (np.dtype("float32"), np.dtype("float64"))
# The network gets the plane minus its orographic prediction (format v15) where the terrain
# explains at least orographic_prediction.SURE_EXPLAINED of its band-pass variance (2 m and skin
# temperature, surface pressure; not msl, winds, upper air; /work/exp/oro/sp_network.py). With hyperprior-v5.3, never trained on such planes,
# on ERA5 0.25 degree t2m at quality 3: 211.9x at 0.314 K -> 239.7x at 0.297 K; at target_mae
# 0.4 K, network records 315.6x -> 413.9x (/work/exp/oro/default_on_predicted.py,
# network_on_predicted.py). hyperprior-v5.4 (0.20.0) is v5.3 trained on such planes (docs/model-card.md).
PREDICT_OROGRAPHY = True
SMALLEST_UNSCALED = 2.0 ** -60   # below this largest magnitude, float32 std would lose precision
LARGEST_UNSCALED = float(np.finfo(np.float32).max)


def scale_exponent(finite: np.ndarray) -> int:
    """0 for every plane float32 statistics describe as it is; otherwise the power of two that
    brings its largest magnitude into [0.5, 1)."""
    biggest = float(np.abs(finite).max())
    if biggest == 0 or SMALLEST_UNSCALED <= biggest <= LARGEST_UNSCALED:
        return 0
    return int(np.frexp(biggest)[1])


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
    """Validate an input chunk; returns it as a native-order ndarray and the grid it lives on
    (big-endian input, common from netCDF and GRIB, codes exactly like the same values native)."""
    if not isinstance(arr, np.ndarray):
        arr = np.asarray(arr)
    if arr.dtype.kind == "f" and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"expected a float32 or float64 array, got dtype {arr.dtype} instead")
    if arr.ndim < 2:
        raise ValueError(f"expected an array whose last two dims are (lat, lon), got shape {arr.shape} instead")
    if 0 in arr.shape[-2:]:
        raise ValueError(f"expected non-empty lat and lon dims, got shape {arr.shape} instead "
                         "(only the leading dims may be empty)")
    if arr.nbytes > max_chunk_bytes():  # never write a chunk that readers refuse by default
        raise ValueError(f"chunk of {arr.nbytes} bytes is larger than the decode limit of {max_chunk_bytes()} "
                         f"bytes: use smaller chunks (or raise {MAX_CHUNK_BYTES_ENV} for every reader)")
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


def lossless(plane: np.ndarray) -> PlaneRecord:
    """The plane's own values (format v6): where no lossy record can keep the promised bound."""
    return PlaneRecord(KIND_LOSSLESS, 0.0, 0.0, words=bitstream.pack_values(plane))


def conventional(candidate, plane: np.ndarray) -> PlaneRecord:
    """A plane coded by a conventional coder (``coding/conventional.py``), NaN mask beside it."""
    nan = np.isnan(plane)
    return PlaneRecord(KIND_CONVENTIONAL, 0.0, 0.0, bitstream.pack_mask(nan) if nan.any() else b"",
                       words=candidate.blob, correction_step=candidate.bound, coder=candidate.coder,
                       short_frame=candidate.short_frame, clip=candidate.clip, power=candidate.power,
                       latitude=candidate.latitude, orography=candidate.orography)


def constant(plane: np.ndarray, finite: np.ndarray, value: float, exponent: int, mask: bytes,
             max_abs_error: float | None) -> PlaneRecord:
    """A constant plane stores one float32 (times 2**exponent), or its values where a bound
    is finer than that float32 (the promise holds; the ratio shows the cost)."""
    stored = np.ldexp(np.float64(np.float32(value)), exponent)
    if max_abs_error is not None and np.abs(finite.astype(np.float64) - stored).max() > max_abs_error:
        return lossless(plane)
    return PlaneRecord(KIND_CONSTANT, float(value), 0.0, mask, exponent=exponent)


def describe(planes: np.ndarray, quality: float, max_abs_error: float | None, grid: LatLonGrid | None = None):
    """(records, [(index, standardised plane)] of the planes the network codes); with the chunk's
    ``grid``, a plane the terrain explains well is standardised minus its orographic prediction."""
    records: list[PlaneRecord] = []
    neural: list[tuple[int, np.ndarray]] = []
    for i, plane in enumerate(planes):
        nan = np.isnan(plane)
        if nan.all():
            records.append(PlaneRecord(KIND_ALL_NAN, 0.0, 0.0))
            continue
        mask = bitstream.pack_mask(nan) if nan.any() else b""
        finite = plane[~nan]
        exponent = scale_exponent(finite)
        scaled = np.ldexp(plane.astype(np.float64), -exponent) if exponent else plane
        if finite.min() == finite.max():
            value = float(np.ldexp(np.float64(finite[0]), -exponent))
            records.append(constant(plane, finite, value, exponent, mask, max_abs_error))
            continue
        filled = np.where(nan, scaled[~nan].mean(dtype=np.float64), scaled).astype(np.float64)
        orography = None
        if grid is not None and PREDICT_OROGRAPHY and not exponent:
            fitted = orographic_prediction.fit(filled, ~nan, grid)
            if fitted is not None and fitted.explained >= orographic_prediction.SURE_EXPLAINED:
                filled, orography = fitted.values, fitted.prediction
        normed, mean, std = standardise(filled)
        if not np.isfinite(std) or std == 0:  # values too close for float32 statistics
            records.append(constant(plane, finite, float(mean), exponent, mask, max_abs_error))
            continue
        records.append(PlaneRecord(KIND_NEURAL, float(mean), float(std), mask, quality=quality, exponent=exponent,
                                   orography=orography))
        neural.append((i, normed))
    return records, neural


def unscale(values, exponent: int) -> np.ndarray:
    """``values * 2**exponent`` in float64, held to its finite range (no overflow to inf)."""
    if not exponent:
        return values
    with np.errstate(over="ignore"):
        limit = np.finfo(np.float64).max
        return np.clip(np.ldexp(values, exponent), -limit, limit)


def to_planes(faces: np.ndarray, projector: Projector, records) -> list[np.ndarray]:
    """Decoded faces (B, 12, n, n) -> lat/lon planes (float64, before NaN masking), each
    de-standardised with its record's float32 mean and std, scaled by its exponent and, where
    the record has one, plus its orographic prediction (v15)."""
    dtype = np.float32 if projector.precision == "float32" else np.float64   # sphere.projection.SINGLE
    planes = []
    for f, rec in zip(faces, records):
        plane = unscale(projector.to_latlon(faces_to_ring(f.astype(dtype, copy=False))).astype(np.float64)
                        * np.float64(np.float32(rec.std)) + np.float64(np.float32(rec.mean)), rec.exponent)
        planes.append(plane if rec.orography is None else orographic_prediction.inverse(plane, rec.orography))
    return planes


def start_planes(chunk) -> tuple[np.ndarray, list[int]]:
    """(P, nlat, nlon) float64 with the all-NaN, constant and lossless planes filled in, and
    the indices of the planes left to the network."""
    out = np.empty((chunk.n_planes, chunk.nlat, chunk.nlon), dtype=np.float64)
    neural = []
    for i, rec in enumerate(chunk.planes):
        if rec.kind == KIND_ALL_NAN:
            out[i] = np.nan
        elif rec.kind == KIND_CONSTANT:
            out[i] = unscale(np.float64(rec.mean), rec.exponent)
        elif rec.kind == KIND_LOSSLESS:
            out[i] = bitstream.unpack_values(rec.words, chunk.dtype, (chunk.nlat, chunk.nlon))
        elif rec.kind == KIND_CONVENTIONAL:
            out[i] = conventional_coders.decode(rec.coder, rec.words, (chunk.nlat, chunk.nlon), chunk.dtype,
                                                rec.short_frame, rec.power, rec.latitude, rec.orography)
            if rec.clip:
                np.clip(out[i], *rec.clip, out=out[i])
        else:
            neural.append(i)
    return out, neural


def check_chunk(chunk, weights_sha256: str, grid: LatLonGrid | None, model_name: str = "") -> None:
    """The chunk was written by these weights (v7 keeps the sha256's first 8 bytes) and, when
    the codec knows its grid, for that grid."""
    if not weights_sha256.startswith(chunk.weights_sha256.hex()):
        raise ValueError(
            f"chunk was written with weights sha256 {chunk.weights_sha256.hex()}..., but this codec uses "
            f"{model_name} {weights_sha256}: open it with the codec config stored in the array"
        )
    if grid is not None and (chunk.nlat, chunk.nlon) != (grid.nlat, grid.nlon):
        raise ValueError(f"chunk grid {chunk.nlat} x {chunk.nlon} does not match the codec grid {grid.nlat} x {grid.nlon}")


def decode_without_network(chunk, weights_sha256: str, grid: LatLonGrid | None) -> np.ndarray | None:
    """The chunk's array when none of its planes needs the network (SZ3 / SPERR, lossless,
    constant or all-NaN planes), else None: reading such chunks loads neither torch nor the
    weights, which a store written at tight targets is mostly made of."""
    if any(rec.kind == KIND_NEURAL for rec in chunk.planes):
        return None
    check_chunk(chunk, weights_sha256, grid)
    out, _ = start_planes(chunk)
    return finish_planes(out, chunk)


def finish_planes(out: np.ndarray, chunk) -> np.ndarray:
    """NaN positions restored, the chunk's dtype and shape."""
    for i, rec in enumerate(chunk.planes):
        if rec.mask:
            out[i][bitstream.unpack_mask(rec.mask, (chunk.nlat, chunk.nlon))] = np.nan
    return to_dtype(out, chunk.dtype).reshape(chunk.shape)
