"""Convolution building blocks that work on the 12 HEALPix faces of a whole sphere.

Tensors are laid out ``(batch * 12, channels, n, n)``: the faces of one sphere are
consecutive in the batch dimension, so ordinary ``Conv2d`` kernels slide over each face.
Before every 3x3 convolution ``sphere.padding.healpix_pad`` borders each face with one
ring of pixels gathered from its neighbouring faces (rotations included), as in Mirowski
et al. 2024: there is no seam at face edges. Because the HEALPix NESTED hierarchy maps face pixel (x, y) at nside n to
(2x + i, 2y + j) at 2n, stride-2 convolutions and pixel shuffles move between HEALPix
resolutions exactly.
"""

from __future__ import annotations

import threading

import torch
from torch import nn
from torch.nn import functional as F

from ..sphere.padding import healpix_pad


def conv2d_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1) -> torch.Tensor:
    """Valid 2-D convolution as GEMMs, used at inference.

    oneDNN's convolutions change their summation order with the thread count (decoded
    values then differ in the last bit between 1 and 2 threads); these GEMM paths give
    identical results (tests/test_determinism.py). Few output channels (the last decoder
    layer) go tap by tap: unfolding a 64-channel full-resolution map costs more than the
    convolution itself. With gradients (encode-time refinement, ``refine.py``) the columns
    come from ``F.unfold``, whose backward sums in a fixed order too.
    """
    by_taps = stride == 1 and weight.shape[0] < weight.shape[1]
    rows = x.shape[0]
    step = rows if torch.is_grad_enabled() else _rows_per_pass(x, weight, stride, by_taps)
    passes = [x] if step >= rows else [x[i:i + step] for i in range(0, rows, step)]
    # one GEMM per face either way: the same sums, with intermediates that stay in cache
    out = [_conv2d_taps(p, weight, bias) if by_taps else _conv2d_gemm(p, weight, bias, stride) for p in passes]
    return out[0] if len(out) == 1 else torch.cat(out)


PASS_BUDGET = 4 * 2 ** 20   # bytes of im2col columns (or tap responses) per thread and pass at inference


def faces_per_pass(bytes_per_face: int) -> int:
    """Faces per pass: a whole 0.25 degree sphere's columns (up to ~56 MB) spill out of cache
    between being written and read by the GEMM; passes of a few faces per thread do not (the
    batched GEMM shares a pass's faces among the threads). g_s of hyperprior-v5.3 on a 0.25
    degree plane: 51 -> 46 ms on one thread, 28 -> 27 ms on two; the same bits."""
    return torch.get_num_threads() * max(1, PASS_BUDGET // bytes_per_face)


def _rows_per_pass(x: torch.Tensor, weight: torch.Tensor, stride: int, by_taps: bool) -> int:
    oh, ow = _output_size(x.shape[-2:], weight.shape[-2:], stride)
    pixels = x.shape[-2] * x.shape[-1] if by_taps else oh * ow
    per_row = (weight.shape[0] if by_taps else weight.shape[1]) * weight.shape[2] * weight.shape[3] * pixels
    return faces_per_pass(per_row * x.element_size())


def _conv2d_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int) -> torch.Tensor:
    b = x.shape[0]
    cout = weight.shape[0]
    if torch.is_grad_enabled():   # encode-time refinement: unfold's backward (fold) is as order-fixed
        cols = F.unfold(x, weight.shape[-2:], stride=stride)
        oh, ow = _output_size(x.shape[-2:], weight.shape[-2:], stride)
    else:
        cols, (oh, ow) = im2col(x, weight.shape[-2:], stride)        # (B, C*kh*kw, L)
    out = torch.bmm(weight.reshape(1, cout, -1).expand(b, -1, -1), cols)  # (B, Cout, L)
    if bias is not None:
        out = out + bias[:, None] if torch.is_grad_enabled() else out.add_(bias[:, None])
    return out.reshape(b, cout, oh, ow)


def _output_size(size, kernel, stride: int) -> tuple[int, int]:
    """(rows, columns) of a valid convolution's output."""
    return (size[0] - kernel[0]) // stride + 1, (size[1] - kernel[1]) // stride + 1


_scratch = threading.local()   # one im2col buffer per thread: dask decodes chunks on several


def im2col(x: torch.Tensor, kernel: tuple[int, int], stride: int = 1) -> tuple[torch.Tensor, tuple[int, int]]:
    """``F.unfold(x, kernel, stride=stride)`` (same values, same order) and the output size.

    Why not unfold itself: copying a strided view of ``x`` into a buffer this thread keeps
    is 1.5-3.5x faster on the decoder's full-resolution layers (unfold's kernel is slow, and
    a fresh 56 MB buffer per call on a 0.25 degree plane costs its page faults every time).
    The buffer is reused by the next call on the same thread: use the result before then. It
    holds the largest matrix the thread has needed, up to ~115 MB after encoding a 0.25 degree
    plane (g_a's second layer), 56 MB after decoding one.
    """
    x = x.contiguous()
    b, c, h, w = x.shape
    kh, kw = kernel
    oh, ow = _output_size((h, w), kernel, stride)
    sb, sc, sh, sw = x.stride()
    view = x.as_strided((b, c, kh, kw, oh, ow), (sb, sc, sh, sw, sh * stride, sw * stride))
    numel = b * c * kh * kw * oh * ow
    if x.device.type != "cpu":
        return view.reshape(b, c * kh * kw, oh * ow), (oh, ow)
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None:
        buffers = _scratch.buffers = {}
    buffer = buffers.get(x.dtype)
    if buffer is None or buffer.numel() < numel:
        buffer = buffers[x.dtype] = torch.empty(numel, dtype=x.dtype)
    cols = buffer[:numel].view(b, c, kh, kw, oh, ow)
    cols.copy_(view)
    return cols.view(b, c * kh * kw, oh * ow), (oh, ow)


def _conv2d_taps(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Stride-1 valid convolution for few output channels: one GEMM gives every kernel
    tap's response at every pixel of the flattened map, then the taps' shifted views are
    summed in a fixed order (rows wrap into the next one; the wrapped columns are cut off)."""
    b, c, h, w = x.shape
    cout, _, kh, kw = weight.shape
    oh, ow = h - kh + 1, w - kw + 1
    taps = weight.permute(2, 3, 0, 1).reshape(1, kh * kw * cout, c).expand(b, -1, -1)
    responses = torch.bmm(taps, x.reshape(b, c, h * w))             # (B, taps*Cout, h*w)
    span = (oh - 1) * w + ow
    out = None
    for t in range(kh * kw):
        start = (t // kw) * w + t % kw
        term = responses[:, t * cout:(t + 1) * cout, start:start + span]
        out = term.clone() if out is None else out.add_(term)
    out = F.pad(out, (0, kw - 1)).reshape(b, cout, oh, w)[..., :ow]
    if bias is not None:
        out = out + bias[:, None, None]
    return out


class HealpixConv(nn.Module):
    """3x3 convolution over whole spheres; stride 2 halves nside."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=0)

    def forward(self, x):
        x = healpix_pad(x)
        if self.training:   # oneDNN: fastest, but its sums follow the thread count
            return self.conv(x)
        return conv2d_matmul(x, self.conv.weight, self.conv.bias, self.conv.stride[0])


class HealpixUp(nn.Module):
    """Doubles nside: 3x3 convolution to 4x channels, then pixel shuffle (a child per quadrant)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = HealpixConv(cin, cout * 4)

    def forward(self, x):
        return F.pixel_shuffle(self.conv(x), 2)


class GDN(nn.Module):
    """Generalized divisive normalization (Ballé et al. 2016), or its inverse.

    y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2); parameters kept positive by squaring.
    """

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta_root = nn.Parameter(torch.ones(channels))
        self.gamma_root = nn.Parameter(torch.eye(channels) * 0.1 ** 0.5)

    def forward(self, x):
        beta = self.beta_root.pow(2) + 1e-6
        gamma = self.gamma_root.pow(2)
        b, c, h, w = x.shape
        if not torch.is_grad_enabled():  # inference: one batched GEMM, no transposes, in place
            norm = torch.bmm(gamma.expand(b, -1, -1), (x * x).reshape(b, c, h * w))
            norm.add_(beta[:, None]).sqrt_()
            norm = norm.reshape(b, c, h, w)
            return norm.mul_(x) if self.inverse else x / norm
        norm = torch.matmul(gamma, (x * x).reshape(b, c, h * w)) + beta[:, None]
        norm = torch.sqrt(norm).reshape(b, c, h, w)
        return x * norm if self.inverse else x / norm
