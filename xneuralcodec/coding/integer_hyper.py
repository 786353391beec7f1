"""Hyper-synthesis in exact integer arithmetic, so encoder and decoder agree bit for bit.

The entropy coder needs *identical* means and scale indices on both sides; a float network
gives answers that differ in the last bits between machines, thread counts and devices,
and one flipped scale index desynchronises the range decoder (CompressAI issues #279,
#309). Following Ballé et al. 2019 ("Integer networks for data compression"), the trained
float ``h_s`` is frozen at export into fixed-point weights and run here with integers only:

    z_hat (int) --[pad, conv, >>FW, pixel shuffle, relu]--> ... --> mu (int), scale index (int)

The layer list is ``HYPER_SYNTHESIS_LAYOUT``, shared with the float h_s.

Matrix products run in float64 on integer-valued arrays: exact, because export checks that
every partial sum stays below 2**52, and much faster than numpy's integer matmul.
"""

from __future__ import annotations

import numpy as np
import torch

from ..network.layers import faces_per_pass, im2col
from ..sphere.padding import healpix_pad
from .entropy import LOG_SCALE_MAX, LOG_SCALE_MIN, NUM_SCALES

# h_s, layer by layer: only operations that run exactly in integers. The float h_s of the
# model is built from this list (``network.model.hyper_synthesis``) and export freezes it
# layer by layer, so the three cannot drift apart.
HYPER_SYNTHESIS_LAYOUT = ("up", "relu", "conv", "relu", "conv")

FRAC_WEIGHTS = 12      # fractional bits of weights
FRAC_ACT = 8           # fractional bits of activations
ACT_LIMIT = 2 ** 22    # activations are clipped to +-ACT_LIMIT (fixed point), keeping sums exact


def conv_fixed(a: np.ndarray, weight: np.ndarray, bias: np.ndarray, pad=healpix_pad,
               positions: np.ndarray | None = None) -> np.ndarray:
    """a: (12, C, n, n) integer-valued float64 -> (12, Cout, n, n), before rescaling; with an
    (n, n) bool ``positions``, only the output pixels there, (12, Cout, K) in C order.

    ``pad`` borders each face with its neighbours' pixels (3x3 kernels; a 1x1 kernel needs
    none). Runs through torch's float64 GEMM: every partial sum is an integer below 2**52,
    so the result is exact whatever order or thread count the GEMM sums in."""
    cout, k = weight.shape[0], weight.shape[-1]
    x = torch.from_numpy(np.ascontiguousarray(a))
    if k == 1 and positions is None:
        out = torch.matmul(torch.from_numpy(weight.reshape(cout, -1)), x.reshape(*x.shape[:2], -1)).numpy()
        return (out + bias[None, :, None]).reshape(a.shape[0], cout, *a.shape[2:])
    x = pad(x) if k > 1 else x
    w = torch.from_numpy(weight.reshape(1, cout, -1))
    step = faces_per_pass(weight[0].size * a.shape[-2] * a.shape[-1] * 8)   # as the float convolutions
    out = []
    for start in range(0, x.shape[0], step):   # columns that stay in cache; each face is its own GEMM anyway
        cols, _ = im2col(x[start:start + step], (k, k))                # (faces, C*k*k, n*n)
        if positions is not None:
            cols = cols[:, :, torch.from_numpy(np.flatnonzero(positions))]
        out.append(torch.bmm(w.expand(cols.shape[0], -1, -1), cols).numpy())
    out = (out[0] if len(out) == 1 else np.concatenate(out)) + bias[None, :, None]
    return out if positions is not None else out.reshape(a.shape[0], cout, *a.shape[2:])


def rescale(acc: np.ndarray) -> np.ndarray:
    """Fixed point with FRAC_WEIGHTS + FRAC_ACT bits -> FRAC_ACT bits, rounding half up.
    In place on one new array; multiplying by 2**-FRAC_WEIGHTS is the division, exactly."""
    out = acc + 2.0 ** (FRAC_WEIGHTS - 1)
    out *= 2.0 ** -FRAC_WEIGHTS
    np.floor(out, out=out)
    return np.clip(out, -ACT_LIMIT, ACT_LIMIT, out=out)


def pixel_shuffle(a: np.ndarray) -> np.ndarray:
    b, c4, n, _ = a.shape
    c = c4 // 4
    return a.reshape(b, c, 2, 2, n, n).transpose(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * n, 2 * n)


def round_means(mu_fixed: np.ndarray) -> np.ndarray:
    """Fixed-point means (FRAC_ACT bits) -> the integer means the entropy coder uses, half up."""
    return np.floor((mu_fixed + 2.0 ** (FRAC_ACT - 1)) / 2.0 ** FRAC_ACT).astype(np.int64)


def means_and_indices(a: np.ndarray, log_scale_min: int, log_scale_step: int, num_scales: int,
                      axis: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point (mu, log sigma), stacked along ``axis`` -> integer mu and scale index."""
    mu_fixed, log_sigma_fixed = np.split(a, 2, axis=axis)
    mu = round_means(mu_fixed)
    index = np.floor((log_sigma_fixed - log_scale_min) / log_scale_step + 0.5)
    return mu, np.clip(index, 0, num_scales - 1).astype(np.int64)


def scale_values(log_scale_min: int, log_scale_step: int, num_scales: int) -> np.ndarray:
    """The float scale of every index (fixed-point constants of the weights file)."""
    return np.exp((log_scale_min + log_scale_step * np.arange(num_scales)) / 2 ** FRAC_ACT)


def quantise_layer(weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float conv parameters -> integer-valued arrays (weights 2**FW, bias 2**(FW+FA))."""
    w = np.round(np.asarray(weight, np.float64) * 2.0 ** FRAC_WEIGHTS)
    b = np.round(np.asarray(bias, np.float64) * 2.0 ** (FRAC_WEIGHTS + FRAC_ACT))
    bound = np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max() * ACT_LIMIT + np.abs(b).max()
    if bound >= 2.0 ** 52:
        raise ValueError(f"integer hyper layer may overflow float64 exactness (bound {bound:.3g})")
    return w, b


def _float_convs(h_s) -> list:
    """The Conv2d modules of a float h_s, in ``HYPER_SYNTHESIS_LAYOUT`` order."""
    convs = []
    for op, layer in zip(HYPER_SYNTHESIS_LAYOUT, h_s, strict=True):
        if op == "up":
            convs.append(layer.conv.conv)
        elif op == "conv":
            convs.append(layer.conv)
    return convs


def freeze(h_s) -> dict[str, np.ndarray]:
    """Weights-file tensors of the integer twin of a float h_s: ``int_hs.{i}.weight/bias``
    per conv, and the scale table as integers (``scale_index``: log-scale minimum, step and
    count in FRAC_ACT fixed point), so that the decoder never recomputes a float boundary."""
    tensors = {}
    for i, conv in enumerate(_float_convs(h_s)):
        w, b = quantise_layer(conv.weight.detach().cpu().numpy(), conv.bias.detach().cpu().numpy())
        tensors[f"int_hs.{i}.weight"], tensors[f"int_hs.{i}.bias"] = w, b
    tensors["scale_index"] = scale_index_constants()
    return tensors


def scale_index_constants() -> np.ndarray:
    """(log-scale minimum, step, count), the first two in FRAC_ACT fixed point: the scale
    table's definition as a weights file stores it."""
    log_min = int(round(LOG_SCALE_MIN * 2 ** FRAC_ACT))
    log_step = int(round((LOG_SCALE_MAX - LOG_SCALE_MIN) / (NUM_SCALES - 1) * 2 ** FRAC_ACT))
    return np.array([log_min, log_step, NUM_SCALES], dtype=np.int64)


class IntegerHyperSynthesis:
    """Runs h_s (``HYPER_SYNTHESIS_LAYOUT``) on integer z; returns (mu, scale index).

    ``layers`` are (weight, bias) pairs from ``quantise_layer``, one per conv of the layout;
    ``log_scale_min`` and ``log_scale_step`` (both fixed point, FRAC_ACT bits) define the
    scale table index.
    """

    def __init__(self, layers, log_scale_min: int, log_scale_step: int, num_scales: int):
        self.layers = [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in layers]
        if len(self.layers) != sum(op != "relu" for op in HYPER_SYNTHESIS_LAYOUT):
            raise ValueError(f"expected one (weight, bias) per conv of {HYPER_SYNTHESIS_LAYOUT}, got {len(self.layers)}")
        self.log_scale_min = int(log_scale_min)
        self.log_scale_step = int(log_scale_step)
        self.num_scales = int(num_scales)

    @classmethod
    def from_tensors(cls, tensors: dict) -> "IntegerHyperSynthesis":
        """From the tensors ``freeze`` wrote into a weights file."""
        count = sum(op != "relu" for op in HYPER_SYNTHESIS_LAYOUT)
        log_min, log_step, num = (int(v) for v in tensors["scale_index"][:3])
        return cls([(tensors[f"int_hs.{i}.weight"], tensors[f"int_hs.{i}.bias"]) for i in range(count)],
                   log_scale_min=log_min, log_scale_step=log_step, num_scales=num)

    def scales(self) -> np.ndarray:
        """The float scale of every index, for building the entropy tables at export."""
        return scale_values(self.log_scale_min, self.log_scale_step, self.num_scales)

    @property
    def scale_index(self) -> tuple[int, int, int]:
        """(log-scale minimum, step, count), as ``IntegerContextModel.scale_index``."""
        return self.log_scale_min, self.log_scale_step, self.num_scales

    def __call__(self, z_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return means_and_indices(self.fixed(z_hat), self.log_scale_min, self.log_scale_step, self.num_scales)

    def fixed(self, z_hat: np.ndarray) -> np.ndarray:
        """The last layer's fixed-point output (mu and log sigma stacked on axis 1), before
        rounding: what ``calibrate_means`` needs to see how close each mean is to a tie."""
        layers = iter(self.layers)
        a = np.asarray(z_hat, np.float64) * 2.0 ** FRAC_ACT
        for op in HYPER_SYNTHESIS_LAYOUT:
            if op == "relu":
                a = np.maximum(a, 0)
                continue
            a = rescale(conv_fixed(a, *next(layers)))
            if op == "up":
                a = pixel_shuffle(a)
        return a

