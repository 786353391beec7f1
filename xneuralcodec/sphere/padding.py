"""HEALPix face padding for convolutions: each face bordered by its neighbours' pixels.

Tensors are laid out ``(batch * 12, channels, n, n)``, the faces of one sphere consecutive.
``healpix_pad`` adds one ring of pixels around every face, taken from the neighbouring
faces with their rotation (``faces.padding_index``), so a 3x3 convolution sees no seam. The
float network (``network/layers.py``) and the exact integer hyper-synthesis
(``coding/integer_hyper.py``) both pad with it.
"""

from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np
import torch

from .faces import padding_index

_PAD_CACHE: dict[tuple[int, str], tuple[torch.Tensor, ...]] = {}


def _border_tables(n: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """For the 4n+4 border pixels of each padded face: destination (face, position) in the
    padded (n+2)^2 grid and source (face, pixel) in the unpadded n^2 grid."""
    key = (n, str(device))
    tables = _PAD_CACHE.get(key)
    if tables is None:
        table = padding_index(n, 1)                                   # (12, n+2, n+2) flat sources
        border = np.ones((n + 2, n + 2), dtype=bool)
        border[1:-1, 1:-1] = False
        positions = np.flatnonzero(border)
        source = table.reshape(12, -1)[:, positions].ravel()
        tables = tuple(torch.from_numpy(np.ascontiguousarray(t)).to(device) for t in (
            np.repeat(np.arange(12), positions.size), np.tile(positions, 12), source // (n * n), source % (n * n)))
        _PAD_CACHE[key] = tables
    return tables


_ORDER = threading.local()


@contextlib.contextmanager
def fixed_order_gradients():
    """Within it, on this thread, padding's backward sums in a fixed order (``healpix_pad``)."""
    previous = getattr(_ORDER, "fixed", False)
    _ORDER.fixed = True
    try:
        yield
    finally:
        _ORDER.fixed = previous


@functools.lru_cache(maxsize=32)
def _padded_sources(n: int, device: str) -> torch.Tensor:
    """For every pixel of the 12 padded faces, its source pixel in the sphere's 12 n^2."""
    return torch.from_numpy(padding_index(n, 1).reshape(-1).astype(np.int64)).to(device)


def healpix_pad(x: torch.Tensor) -> torch.Tensor:
    """(B*12, C, n, n) -> (B*12, C, n+2, n+2), border pixels taken from neighbouring faces.

    The interior is a strided copy; only the 4n+4 border pixels per face are gathered. Inside
    ``fixed_order_gradients`` (encode-time refinement), one ``index_select`` over the whole
    sphere instead: its backward (``index_add``) sums in a fixed order, where the advanced-
    indexing backward of the border gather gave run-to-run different last bits under load
    (tests/test_refine.py); it is several times slower, so training keeps the gather."""
    b12, c, n, _ = x.shape
    if getattr(_ORDER, "fixed", False) and torch.is_grad_enabled():
        b = b12 // 12
        sphere = x.reshape(b, 12, c, n * n).transpose(1, 2).reshape(b, c, 12 * n * n)
        out = torch.index_select(sphere, 2, _padded_sources(n, str(x.device)))
        return out.reshape(b, c, 12, n + 2, n + 2).transpose(1, 2).reshape(b12, c, n + 2, n + 2)
    b = b12 // 12
    dst_face, dst_pos, src_face, src_pix = _border_tables(n, x.device)
    out = x.new_empty(b12, c, n + 2, n + 2)
    out[:, :, 1:-1, 1:-1] = x
    gathered = x.reshape(b, 12, c, n * n)[:, src_face, :, src_pix]    # (K, B, C)
    out.view(b, 12, c, (n + 2) * (n + 2))[:, dst_face, :, dst_pos] = gathered
    return out
