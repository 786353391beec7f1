"""hyperprior-v5's entropy model (h_s, checkerboard context, entropy parameters) in exact
integer arithmetic, so encoder and decoder pick identical means and tables on any machine.

Same scheme as ``integer_hyper.py`` (fixed-point weights and activations, float64 GEMMs
that stay exact), applied to v5's five entropy-path layers::

    z_hat --up, relu, conv, relu--> psi                          (h_s, at y's resolution)
    anchors:      ep(psi, ctx0)             ctx0 = the context conv's bias
    non-anchors:  ep(psi, context(y_hat on anchors, zero elsewhere))
    ep: 1x1 conv, relu, 1x1 conv -> mu (rounded to an integer), log sigma (-> scale index)

Anchors are the latents with (row + col) even on every face (``model_v5.checkerboard``).
``ep`` runs only at the positions of the pass that needs it (``positions``), a column per
latent position: a 1x1 convolution is a plain matrix product. Two shortcuts (0.13.0) give
the same integers with less work, since every sum is exact: the anchors' constant context
is folded into ``ep``'s bias, and the context convolution skips the taps that read the
zeros a checkerboard leaves (``AnchorContextConv``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..network.model_v5 import SPHERE, HyperpriorV5, pad
from .integer_hyper import (ACT_LIMIT, FRAC_ACT, conv_fixed, means_and_indices, pixel_shuffle, quantise_layer,
                            rescale, scale_index_constants, scale_values)

# (weights-file prefix, float module path) of every integer layer, in evaluation order
LAYERS = (("int_v5.hs_up", "h_s.0.conv.conv"), ("int_v5.hs_conv", "h_s.2.conv"), ("int_v5.context", "context.conv"),
          ("int_v5.ep_hidden", "ep.0.conv"), ("int_v5.ep_out", "ep.2.conv"))


def _sphere_pad(x: torch.Tensor) -> torch.Tensor:
    return pad(x, SPHERE)


def anchor_mask(n: int) -> np.ndarray:
    """(n, n) bool, True on the checkerboard anchors ((row + col) even)."""
    r = np.arange(n)
    return ((r[:, None] + r[None, :]) % 2) == 0


def freeze(model: HyperpriorV5) -> dict[str, np.ndarray]:
    """Weights-file tensors of the integer twin of v5's entropy path, and the scale index
    constants (as ``integer_hyper.freeze``)."""
    modules = dict(model.named_modules())
    tensors = {}
    for prefix, path in LAYERS:
        conv = modules[path]
        w, b = quantise_layer(conv.weight.detach().cpu().numpy(), conv.bias.detach().cpu().numpy())
        tensors[f"{prefix}.weight"], tensors[f"{prefix}.bias"] = w, b
    tensors["scale_index"] = scale_index_constants()
    return tensors


def _anchor_hidden_layer(weight: np.ndarray, bias: np.ndarray, ctx0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ep's hidden layer for the anchors, whose context input is the constant ``ctx0``: its
    columns times ctx0 join the bias (an integer sum below 2**52, so exact), which drops the
    context's share of the anchors' GEMM and gives bit for bit the same sums."""
    w = weight.reshape(weight.shape[0], -1)
    psi_width = w.shape[1] - ctx0.size
    return w[:, :psi_width].reshape(-1, psi_width, 1, 1).copy(), bias + w[:, psi_width:] @ ctx0


def dense_fixed(a: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A 1x1 fixed-point convolution on channels-first columns: (Cin, N) -> (Cout, N) before
    rescaling, one float64 GEMM (exact, as ``conv_fixed``)."""
    w = torch.from_numpy(weight.reshape(weight.shape[0], -1))
    return torch.mm(w, torch.from_numpy(np.ascontiguousarray(a))).numpy() + bias[:, None]


_CROSS = ((-1, 0), (0, -1), (0, 1), (1, 0))          # the taps of a non-anchor that hold anchors, inside a face
_OFF_CROSS = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) not in _CROSS)


class AnchorContextConv:
    """``conv_fixed(a, weight, bias, pad=healpix, positions=~anchor_mask(n))`` for ``a`` that
    is zero off the checkerboard anchors, with the taps that read zeros left out of the GEMM.

    Inside a face, a non-anchor's 3x3 window holds anchors only on the cross (up, left,
    right, down): the non-anchors of even rows (odd columns) and of odd rows (even columns)
    each read their cross as four strided slices. On a face's edge the window reaches into
    neighbouring faces, whose anchors need not follow this face's parity, so the edge
    positions also add their other five taps. Dropped terms are exact zeros and every sum is
    an exact integer, so the result is bit for bit ``conv_fixed``'s, in under half its work."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        self.cout = weight.shape[0]
        self.bias = bias
        self.w_cross, self.w_off_cross = (
            torch.from_numpy(np.stack([weight[:, :, 1 + dr, 1 + dc] for dr, dc in taps], 2).reshape(self.cout, -1))
            for taps in (_CROSS, _OFF_CROSS))

    def __call__(self, a: np.ndarray) -> np.ndarray:
        """(12, C, n, n) fixed point, zero off the anchors -> (Cout, 12, K), K the non-anchors
        in C order (channels first: what the entropy parameters' GEMM reads)."""
        faces, c, n, _ = a.shape
        cout, half = self.cout, n // 2
        out = np.zeros((cout, faces, n, n))
        if n >= 2:
            padded = _sphere_pad(torch.from_numpy(np.ascontiguousarray(a))).numpy().transpose(1, 0, 2, 3)   # (C, 12, n+2, n+2)

            def gemm(w, columns):   # (Cout, C * T) @ (C * T, 12 * P): one GEMM for all faces
                return torch.mm(w, torch.from_numpy(np.stack(columns, 1).reshape(w.shape[1], -1))).numpy()

            for r0, c0 in ((0, 1), (1, 0)):          # non-anchors of even rows, of odd rows
                part = gemm(self.w_cross, [padded[:, :, 1 + r0 + dr:1 + r0 + dr + n:2, 1 + c0 + dc:1 + c0 + dc + n:2]
                                           for dr, dc in _CROSS])
                out[:, :, r0::2, c0::2] = part.reshape(cout, faces, half, half)
            rows, columns = np.nonzero(~anchor_mask(n) & _face_edge(n))
            part = gemm(self.w_off_cross, [padded[:, :, rows + 1 + dr, columns + 1 + dc] for dr, dc in _OFF_CROSS])
            out[:, :, rows, columns] += part.reshape(cout, faces, -1)
        out += self.bias[:, None, None, None]
        return out[..., ~anchor_mask(n)]


def _face_edge(n: int) -> np.ndarray:
    edge = np.zeros((n, n), bool)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    return edge


class IntegerContextModel:
    """Integer h_s, context conv and entropy parameters of one v5 weights file."""

    def __init__(self, tensors: dict):
        self.layers = {prefix: (np.asarray(tensors[f"{prefix}.weight"], np.float64),
                                np.asarray(tensors[f"{prefix}.bias"], np.float64)) for prefix, _ in LAYERS}
        self.scale_index = tuple(int(v) for v in tensors["scale_index"][:3])   # log min, log step, count
        _, ctx_bias = self.layers["int_v5.context"]
        self.ctx0 = rescale(ctx_bias)                                   # (C,) fixed point
        self.anchor_hidden = _anchor_hidden_layer(*self.layers["int_v5.ep_hidden"], self.ctx0)
        self.anchor_context = AnchorContextConv(*self.layers["int_v5.context"])

    def psi(self, z_hat: np.ndarray) -> np.ndarray:
        """h_s: integer z (12, Z, k, k) -> fixed-point hyper features, channels first
        (P, 12, 2k, 2k), as ``fixed_parameters`` reads them."""
        a = np.asarray(z_hat, np.float64) * 2.0 ** FRAC_ACT
        a = np.maximum(pixel_shuffle(rescale(conv_fixed(a, *self.layers["int_v5.hs_up"], pad=_sphere_pad))), 0)
        psi = np.maximum(rescale(conv_fixed(a, *self.layers["int_v5.hs_conv"], pad=_sphere_pad)), 0)
        return np.ascontiguousarray(psi.transpose(1, 0, 2, 3))

    def context(self, y_anchors: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Context conv over integer latents that are zero off the anchors, evaluated only at
        the (n, n) bool ``positions`` (the non-anchors that use it) -> fixed point (C, 12, K),
        channels first, as ``fixed_parameters`` takes it."""
        a = np.array(y_anchors, np.float64)
        a *= 2.0 ** FRAC_ACT
        np.clip(a, -ACT_LIMIT, ACT_LIMIT, out=a)
        if not np.array_equal(positions, ~anchor_mask(positions.shape[0])):
            out = conv_fixed(a, *self.layers["int_v5.context"], pad=_sphere_pad, positions=positions)
            return rescale(out.transpose(1, 0, 2))
        return rescale(self.anchor_context(a))

    def parameters(self, psi: np.ndarray, ctx: np.ndarray | None, positions: np.ndarray):
        """Integer mu and scale index, each (12, M, K), at the K True pixels of the (n, n)
        bool ``positions`` on every face; ``ctx`` (``context`` at the same positions) None
        gives the anchors' (context = bias)."""
        return means_and_indices(self.fixed_parameters(psi, ctx, positions), *self.scale_index)

    def fixed_parameters(self, psi: np.ndarray, ctx: np.ndarray | None, positions: np.ndarray) -> np.ndarray:
        """``parameters`` before rounding: fixed-point (mu, log sigma) stacked, (12, 2M, K).
        Runs channels first, (C, 12 * K): each 1x1 layer is then one GEMM for all faces."""
        faces = psi.shape[1]
        rows = psi[:, :, positions]                                      # (P, 12, K)
        k = rows.shape[2]
        if ctx is None:   # anchors: the constant context is folded into the bias
            a = dense_fixed(rows.reshape(rows.shape[0], -1), *self.anchor_hidden)
        else:
            a = dense_fixed(np.concatenate([rows, ctx], axis=0).reshape(-1, faces * k), *self.layers["int_v5.ep_hidden"])
        a = np.maximum(rescale(a), 0)                                    # (hidden, 12 * K)
        out = rescale(dense_fixed(a, *self.layers["int_v5.ep_out"]))      # (2M, 12 * K)
        return out.reshape(-1, faces, k).transpose(1, 0, 2)

    def scales(self) -> np.ndarray:
        """The float scale of every index, for building the entropy tables at export."""
        return scale_values(*self.scale_index)
