"""hyperprior-v5's entropy model (h_s, checkerboard context, entropy parameters) in exact
integer arithmetic, so encoder and decoder pick identical means and tables on any machine.

Same scheme as ``integer_hyper.py`` (fixed-point weights and activations, float64 GEMMs
that stay exact), applied to v5's five entropy-path layers::

    z_hat --up, relu, conv, relu--> psi                          (h_s, at y's resolution)
    anchors:      ep(psi, ctx0)             ctx0 = the context conv's bias
    non-anchors:  ep(psi, context(y_hat on anchors, zero elsewhere))
    ep: 1x1 conv, relu, 1x1 conv -> mu (rounded to an integer), log sigma (-> scale index)

Anchors are the latents with (row + col) even on every face (``model_v5.checkerboard``).
``ep`` runs only at the positions of the pass that needs it (``positions``), a row per
latent position: a 1x1 convolution is a plain matrix product.
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


class IntegerContextModel:
    """Integer h_s, context conv and entropy parameters of one v5 weights file."""

    def __init__(self, tensors: dict):
        self.layers = {prefix: (np.asarray(tensors[f"{prefix}.weight"], np.float64),
                                np.asarray(tensors[f"{prefix}.bias"], np.float64)) for prefix, _ in LAYERS}
        self.scale_index = tuple(int(v) for v in tensors["scale_index"][:3])   # log min, log step, count
        _, ctx_bias = self.layers["int_v5.context"]
        self.ctx0 = rescale(ctx_bias)                                   # (C,) fixed point

    def psi(self, z_hat: np.ndarray) -> np.ndarray:
        """h_s: integer z (12, Z, k, k) -> fixed-point hyper features (12, P, 2k, 2k)."""
        a = np.asarray(z_hat, np.float64) * 2.0 ** FRAC_ACT
        a = np.maximum(pixel_shuffle(rescale(conv_fixed(a, *self.layers["int_v5.hs_up"], pad=_sphere_pad))), 0)
        return np.maximum(rescale(conv_fixed(a, *self.layers["int_v5.hs_conv"], pad=_sphere_pad)), 0)

    def context(self, y_anchors: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Context conv over integer latents that are zero off the anchors, evaluated only at
        the (n, n) bool ``positions`` (the non-anchors that use it) -> fixed point (12, C, K)."""
        a = np.clip(np.asarray(y_anchors, np.float64) * 2.0 ** FRAC_ACT, -ACT_LIMIT, ACT_LIMIT)
        return rescale(conv_fixed(a, *self.layers["int_v5.context"], pad=_sphere_pad, positions=positions))

    def parameters(self, psi: np.ndarray, ctx: np.ndarray | None, positions: np.ndarray):
        """Integer mu and scale index, each (12, M, K), at the K True pixels of the (n, n)
        bool ``positions`` on every face; ``ctx`` (``context`` at the same positions) None
        gives the anchors' (context = bias)."""
        return means_and_indices(self.fixed_parameters(psi, ctx, positions), *self.scale_index)

    def fixed_parameters(self, psi: np.ndarray, ctx: np.ndarray | None, positions: np.ndarray) -> np.ndarray:
        """``parameters`` before rounding: fixed-point (mu, log sigma) stacked, (12, 2M, K)."""
        rows = psi[:, :, positions]                                      # (12, P, K)
        if ctx is None:
            ctx = np.broadcast_to(self.ctx0[None, :, None], (rows.shape[0], self.ctx0.size, rows.shape[2]))
        a = np.concatenate([rows, ctx], axis=1)[..., None]              # (12, P + C, K, 1)
        a = np.maximum(rescale(conv_fixed(a, *self.layers["int_v5.ep_hidden"])), 0)
        return rescale(conv_fixed(a, *self.layers["int_v5.ep_out"]))[..., 0]

    def scales(self) -> np.ndarray:
        """The float scale of every index, for building the entropy tables at export."""
        return scale_values(*self.scale_index)
