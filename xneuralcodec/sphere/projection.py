"""Lat/lon planes <-> HEALPix maps <-> 12 padded faces, by spherical harmonic transforms.

Following Mirowski et al. 2024 (arXiv 2407.11666) the network works on HEALPix faces, so
every pixel covers the same area and the poles are not oversampled. The projection is a
spherical harmonic round trip with ducc0 (../shared/NOTES.md "HEALPix and spherical
harmonics"), exact for fields band-limited to ``lmax <= 2 * nside``::

    (nlat, nlon) --analysis_2d--> alm --synthesis(HEALPix RING)--> (12 nside^2,)
         ^                                                              |
         +--synthesis_2d-- alm <--pseudo_analysis (LSMR) or ------------+
                                  weighted adjoint + Jacobi steps (format v9)

The RING map is cut into the network's 12 faces by ``faces.py``.
"""

from __future__ import annotations

import functools
import math

import ducc0
import numpy as np
import torch

from .grid import LatLonGrid

# pseudo_analysis (HEALPix -> spherical harmonics) is iterative. Until format v7 the decoder
# ran up to 30 iterations (~1e-7 relative on band-limited maps; network output is not
# band-limited, so it ran all 30). 3 stay within 2e-4 of the field's spread of the converged
# projection on band-limited test fields (tests/test_grid_projection.py), decode v4 and v5
# planes to the same MAE to 4 digits (ERA5 0.25 and 1 degree, GFS 2.5, ERA5 3 degree), and
# halve the back projection's time on a 0.25 degree plane (0.28 -> 0.15 s, one thread).
# From 0.10.0 spheres of nside >= FINE_NSIDE take FINE_ITERATIONS: on ERA5 0.25 degree t2m
# the back projection stays within 2e-3 (max) and 3e-5 (mean) of the spread of the converged
# one, decoded v4 / v5.1 planes keep their MAE to 5 digits at every quality, and a 0.25 degree
# decode saves 17 ms (2 threads). One iteration would save 35 ms but is off by up to 1.5x the
# spread on the raw field. The count travels in the chunk header (v7).
# From 0.11.0 (format v9) those spheres take one Jacobi step from the weighted adjoint instead
# (alm = w A^T m, then alm += w A^T (m - A alm), w = 4 pi / npix): 2 adjoint syntheses and 1
# synthesis where LSMR's 2 iterations took 5 and its bookkeeping, 2x faster (103 -> 51 ms on one
# thread, nside 256). Decoded v4 and v5.1 planes of ERA5 0.25 degree t2m and 1 degree u10 keep
# their MAE to 5 digits and their max error to 3 at qualities 1, 3 and 5 (/work/exp/jacobi_proj.py);
# on the raw 0.25 degree field, whose small scales the network does not keep, the round trip's
# MAE is 0.096 K instead of 0.079 K. The method travels in the chunk header too (v9).
# From 0.13.0 (format v10) chunks without max_abs_error run that Jacobi back projection in single
# precision: 23.6 ms instead of 27.7 on a 0.25 degree plane (2 threads); ERA5 0.25 degree t2m's
# round trip stays within 1.6e-5 K of double precision, a decoded plane within 1e-3 K
# (tests/test_grid_projection.py). Chunks with max_abs_error keep double precision: their
# correction layer keeps back only 1/128 of the bound for the differences between machines.
ITERATIONS = 3
FINE_NSIDE, FINE_ITERATIONS = 128, 2
LSMR, JACOBI = "lsmr", "jacobi"
DOUBLE, SINGLE = "float64", "float32"
FINE_METHOD, FINE_JACOBI_STEPS = JACOBI, 1
_LSMR_EPSILON = 1e-9


@functools.lru_cache(maxsize=16)
def _healpix_info(nside: int) -> dict:
    return ducc0.healpix.Healpix_Base(nside, "RING").sht_info()


def back_projection_for(nside: int) -> tuple[str, int]:
    """(method, iterations or steps) of the back projection a new chunk on this sphere records."""
    return (FINE_METHOD, FINE_JACOBI_STEPS) if nside >= FINE_NSIDE else (LSMR, ITERATIONS)


def precision_for(nside: int, bounded: bool) -> str:
    """The back projection's precision a new chunk records: single for Jacobi ones, unless the
    chunk holds a hard bound (``max_abs_error``)."""
    return SINGLE if back_projection_for(nside)[0] == JACOBI and not bounded else DOUBLE


class Projector:
    """Maps planes of one lat/lon grid to HEALPix faces of one nside, and back.

    ducc0 runs on as many threads as torch does: its transforms give bitwise-identical
    results for any thread count (checked by tests/test_determinism.py across processes).
    """

    def __init__(self, grid: LatLonGrid, nside: int, iterations: int | None = None, method: str = LSMR,
                 precision: str = DOUBLE):
        """``iterations``, ``method`` and ``precision`` as a chunk recorded them; iterations None:
        the method and iterations a new chunk records."""
        self.grid = grid
        self.nside = int(nside)
        if iterations is None:
            method, iterations = back_projection_for(self.nside)
        if method not in (LSMR, JACOBI):
            raise ValueError(f"expected back projection 'lsmr' or 'jacobi', got {method!r} instead")
        if precision not in (DOUBLE, SINGLE) or (precision == SINGLE and method != JACOBI):
            raise ValueError(f"expected a float64 back projection or a float32 Jacobi one, got {precision!r} "
                             f"with {method!r} instead")
        self.method, self.iterations, self.precision = method, int(iterations), precision
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
        """RING map (12 nside^2,) -> (nlat, nlon) float64 (float32 for a single-precision projector)."""
        ring_map = np.ascontiguousarray(ring_map, dtype=np.float32 if self.precision == SINGLE else np.float64)[None]
        threads, healpix = torch.get_num_threads(), _healpix_info(self.nside)
        if self.method == LSMR:
            alm = ducc0.sht.pseudo_analysis(map=ring_map, lmax=self.lmax, spin=0, maxiter=self.iterations,
                                            epsilon=_LSMR_EPSILON, nthreads=threads, **healpix)[0]   # (alm, ...)
        else:   # HEALPix pixels have equal areas: w A^T approximates the analysis; Jacobi steps refine it
            weight = 4 * np.pi / ring_map.shape[1]
            alm = weight * ducc0.sht.adjoint_synthesis(map=ring_map, lmax=self.lmax, spin=0, nthreads=threads, **healpix)
            for _ in range(self.iterations):
                residual = ring_map - ducc0.sht.synthesis(alm=alm, lmax=self.lmax, spin=0, nthreads=threads, **healpix)
                alm += weight * ducc0.sht.adjoint_synthesis(map=residual, lmax=self.lmax, spin=0, nthreads=threads,
                                                            **healpix)
        plane = ducc0.sht.synthesis_2d(
            alm=alm, ntheta=self.grid.nlat, nphi=self.grid.nlon, lmax=self.lmax, spin=0,
            geometry=self.grid.geometry, phi0=self._phi0, nthreads=torch.get_num_threads(),
        )[0]
        return self._north_first(plane)
