"""Lat/lon planes <-> HEALPix maps <-> 12 padded faces, by spherical harmonic transforms.

Following Mirowski et al. 2024 (arXiv 2407.11666) the network works on HEALPix faces, so
every pixel covers the same area and the poles are not oversampled. The projection is a
spherical harmonic round trip with ducc0 (../shared/NOTES.md "HEALPix and spherical
harmonics"), exact for fields band-limited to ``lmax <= 2 * nside``::

    (nlat, nlon) --analysis_2d--> alm --synthesis(HEALPix RING)--> (12 nside^2,)
         ^                                                              |
         +--synthesis_2d-- alm <--pseudo_analysis (LSMR)---------------+

    RING map --face_index--> (12, nside, nside)   faces, row-major in HEALPix (x, y)
"""

from __future__ import annotations

import functools
import math

import ducc0
import healpy as hp
import numpy as np
import torch

from .grid import LatLonGrid

# pseudo_analysis is iterative; these settings reach ~1e-7 relative on band-limited maps.
_LSMR_MAXITER = 30
_LSMR_EPSILON = 1e-9


@functools.lru_cache(maxsize=16)
def _healpix_info(nside: int) -> dict:
    return ducc0.healpix.Healpix_Base(nside, "RING").sht_info()


class Projector:
    """Maps planes of one lat/lon grid to HEALPix faces of one nside, and back.

    ducc0 runs on as many threads as torch does: its transforms give bitwise-identical
    results for any thread count (checked by tests/test_determinism.py across processes).
    """

    def __init__(self, grid: LatLonGrid, nside: int):
        self.grid = grid
        self.nside = int(nside)
        self.lmax = min(grid.lmax, 2 * self.nside)
        self._phi0 = math.radians(grid.lon_first % 360.0)

    def _north_first(self, plane: np.ndarray) -> np.ndarray:
        return plane if self.grid.north_first else plane[::-1]

    def to_healpix(self, plane: np.ndarray, rotation: tuple[float, float, float] | None = None) -> np.ndarray:
        """(nlat, nlon) float -> RING map (12 nside^2,) float64. ``rotation`` (Euler angles
        psi, theta, phi in radians) turns the field on the sphere on the way (training
        augmentation); the band limit, and so the field's spectrum, is unchanged."""
        plane = np.ascontiguousarray(self._north_first(np.asarray(plane, dtype=np.float64)))
        alm = ducc0.sht.analysis_2d(
            map=plane[None], spin=0, lmax=self.lmax, geometry=self.grid.geometry, phi0=self._phi0, nthreads=torch.get_num_threads()
        )
        if rotation is not None:
            alm = ducc0.sht.rotate_alm(alm, self.lmax, *rotation, nthreads=torch.get_num_threads())
        return ducc0.sht.synthesis(alm=alm, lmax=self.lmax, spin=0, nthreads=torch.get_num_threads(), **_healpix_info(self.nside))[0]

    def to_latlon(self, ring_map: np.ndarray) -> np.ndarray:
        """RING map (12 nside^2,) -> (nlat, nlon) float64."""
        ring_map = np.ascontiguousarray(ring_map, dtype=np.float64)[None]
        alm = ducc0.sht.pseudo_analysis(
            map=ring_map, lmax=self.lmax, spin=0, maxiter=_LSMR_MAXITER, epsilon=_LSMR_EPSILON,
            nthreads=torch.get_num_threads(), **_healpix_info(self.nside),
        )[0]
        plane = ducc0.sht.synthesis_2d(
            alm=alm, ntheta=self.grid.nlat, nphi=self.grid.nlon, lmax=self.lmax, spin=0,
            geometry=self.grid.geometry, phi0=self._phi0, nthreads=torch.get_num_threads(),
        )[0]
        return self._north_first(plane)


@functools.lru_cache(maxsize=16)
def face_index(nside: int) -> np.ndarray:
    """(12, nside, nside) RING pixel indices of the 12 faces, row = HEALPix y, column = x."""
    y, x = np.meshgrid(np.arange(nside), np.arange(nside), indexing="ij")
    f = np.broadcast_to(np.arange(12)[:, None, None], (12, nside, nside))
    return hp.xyf2pix(nside, np.broadcast_to(x, f.shape), np.broadcast_to(y, f.shape), f, nest=False)


def ring_to_faces(ring_map: np.ndarray) -> np.ndarray:
    nside = hp.npix2nside(ring_map.shape[-1])
    return ring_map[..., face_index(nside)]


def faces_to_ring(faces: np.ndarray) -> np.ndarray:
    nside = faces.shape[-1]
    out = np.empty(faces.shape[:-3] + (12 * nside * nside,), dtype=faces.dtype)
    out[..., face_index(nside).ravel()] = faces.reshape(faces.shape[:-3] + (-1,))
    return out


@functools.lru_cache(maxsize=32)
def padding_index(nside: int, pad: int) -> np.ndarray:
    """Gather table: flat (12*n*n) face pixels -> (12, n+2p, n+2p) faces padded from neighbours.

    Each padded position is located on the sphere by extrapolating the face's own pixel
    grid past its edge, then looked up with ``vec2pix``: this picks the right pixel of the
    neighbouring face whatever its rotation (polar faces meet rotated by 90 degrees), and
    some nearby pixel at the 8 vertices where only three faces meet.
    """
    if nside < 2 or pad < 0 or pad > nside:
        raise ValueError(f"expected nside >= 2 and 0 <= pad <= nside, got nside={nside}, pad={pad} instead")
    idx = face_index(nside)
    vec = np.stack(hp.pix2vec(nside, idx.ravel()), axis=-1).reshape(12, nside, nside, 3)
    coords = np.arange(-pad, nside + pad)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    cy, cx = np.clip(yy, 0, nside - 1), np.clip(xx, 0, nside - 1)
    # local pixel-step vectors (one-sided at the border, where we extrapolate)
    gx = np.empty_like(vec)
    gx[:, :, 1:] = vec[:, :, 1:] - vec[:, :, :-1]
    gx[:, :, 0] = gx[:, :, 1]
    gy = np.empty_like(vec)
    gy[:, 1:] = vec[:, 1:] - vec[:, :-1]
    gy[:, 0] = gy[:, 1]
    base = vec[:, cy, cx]
    point = base + (xx - cx)[None, ..., None] * gx[:, cy, cx] + (yy - cy)[None, ..., None] * gy[:, cy, cx]
    ring = hp.vec2pix(nside, point[..., 0], point[..., 1], point[..., 2], nest=False)
    flat_of_ring = np.empty(12 * nside * nside, dtype=np.int64)
    flat_of_ring[idx.ravel()] = np.arange(12 * nside * nside)
    table = flat_of_ring[ring]
    # inside the face the table must be the identity
    inner = table[:, pad:pad + nside, pad:pad + nside]
    assert np.array_equal(inner.reshape(12, -1), np.arange(12 * nside * nside).reshape(12, -1))
    return table
