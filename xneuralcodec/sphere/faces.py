"""The 12 HEALPix faces the network works on, cut from a RING map, and their padding.

    RING map (12 nside^2,) --face_index--> (12, nside, nside)   row = HEALPix y, column = x

Because the NESTED hierarchy maps face pixel (x, y) at nside n to (2x + i, 2y + j) at 2n,
stride-2 convolutions and pixel shuffles on these faces move between HEALPix resolutions
exactly. ``padding_index`` tells a convolution which neighbouring face's pixel lies past
each edge. Pixel geometry comes from ducc0 (the same HEALPix C++ code as healpy, without
healpy's astropy and matplotlib imports on the codec's path).
"""

from __future__ import annotations

import functools
import math

import ducc0
import numpy as np


@functools.lru_cache(maxsize=16)
def _ring_base(nside: int):
    return ducc0.healpix.Healpix_Base(nside, "RING")


@functools.lru_cache(maxsize=16)
def face_index(nside: int) -> np.ndarray:
    """(12, nside, nside) RING pixel indices of the 12 faces, row = HEALPix y, column = x."""
    y, x = np.meshgrid(np.arange(nside), np.arange(nside), indexing="ij")
    f = np.broadcast_to(np.arange(12)[:, None, None], (12, nside, nside))
    xyf = np.stack([np.broadcast_to(x, f.shape), np.broadcast_to(y, f.shape), f], axis=-1)
    return _ring_base(nside).xyf2pix(xyf)


def ring_to_faces(ring_map: np.ndarray) -> np.ndarray:
    nside = math.isqrt(ring_map.shape[-1] // 12)
    return ring_map[..., face_index(nside)]


@functools.lru_cache(maxsize=16)
def _ring_order(nside: int) -> np.ndarray:
    """For every RING pixel, its position in the faces' flattened (12, nside, nside) order:
    the inverse permutation of ``face_index``."""
    return np.argsort(face_index(nside).ravel())


def faces_to_ring(faces: np.ndarray) -> np.ndarray:
    """(..., 12, nside, nside) -> RING map (..., 12 nside^2): a gather by the inverse
    permutation, which is faster than the scatter ``out[face_index] = faces``."""
    nside = faces.shape[-1]
    return np.take(faces.reshape(faces.shape[:-3] + (-1,)), _ring_order(nside), axis=-1)


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
    vec = _ring_base(nside).pix2vec(idx.ravel()).reshape(12, nside, nside, 3)
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
    point = point / np.linalg.norm(point, axis=-1, keepdims=True)  # ducc0 wants unit vectors
    # ducc0 0.42 asserts on longitudes a rounding error below 0 (y = -1e-16, x > 0): snap
    # them onto 0, where healpy's answer already was
    point[..., 1][np.abs(point[..., 1]) < 1e-12] = 0.0
    ring = _ring_base(nside).vec2pix(np.ascontiguousarray(point))
    flat_of_ring = np.empty(12 * nside * nside, dtype=np.int64)
    flat_of_ring[idx.ravel()] = np.arange(12 * nside * nside)
    table = flat_of_ring[ring]
    # inside the face the table must be the identity
    inner = table[:, pad:pad + nside, pad:pad + nside]
    assert np.array_equal(inner.reshape(12, -1), np.arange(12 * nside * nside).reshape(12, -1))
    return table
