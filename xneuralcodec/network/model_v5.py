"""hyperprior-v5 (shipped in 0.8.0 as ``model="hyperprior-v5"``): deeper, wider-at-low-resolution hyperprior with a
checkerboard context model, a cheap decoder, 8 rate points and two padding modes.

Why (issue "v5 network"): v4 (y at nside/8) cannot exploit large-scale smoothness, its
decoder spends most of its work at full resolution, and its lowest rate point stops far
above 2000x on 0.25 degree t2m. v5 moves y one stage down and puts the width there::

    x (R, 1, n, n)
      g_a: conv s2 1->64 GDN | conv s2 64->96 GDN | conv s2 96->192 GDN | conv s2 192->192 GDN
           | conv 192->M                                   (FiLM after every GDN)
    y (R, M=128, n/16, n/16) * gain[q]  --h_a: conv M->160 relu | conv s2 160->160 relu | conv 160->Z-->
    z (R, Z=64, n/32, n/32)   (factorised zero-mean Gaussian per channel, as v4)
    h_s: up(Z->96) relu | conv 96->192 relu                      -> psi (R, 192, n/16, n/16)
         (widths: ModelV5Config.hyper_up, psi, ctx, ep_hidden; train_v5 --entropy-widths)
    ctx: conv3x3 M->128 on the *anchor* latents only (checkerboard, He et al. 2021)
    ep:  1x1 (192+128)->256 relu | 1x1 256->2M                    -> mu, log sigma
    g_s: conv 128->192 IGDN | up 192->64 IGDN | up 64->32 IGDN | up 32->16 IGDN | up 16->1
         (FiLM after every inverse GDN; ~4 GMAC on a whole nside-256 sphere against ~10 for v4)

``R`` rows are 12 faces per sphere (``mode="sphere"``: 3x3 convolutions read one ring of
neighbouring-face pixels, ``layers.healpix_pad``; nside 1, reached by z at nside 32, gets
its own table) or one row per regional patch (``mode="patch"``: replicate padding, since a
patch has no neighbours; patch sides must be multiples of 16, z is ceil-sized and psi cut
back to y's size). The smallest supported sphere is **nside 32** (y 2x2, z 1x1 per face),
so the codec's 2.5 degree grids keep their default nside.

Checkerboard context, two passes: anchors (``(x + y) % 2 == 0`` on every face / patch in
y's pixel grid) get (mu, sigma) from ``ep(psi, ctx = bias of the context conv)``; once
they are decoded, the context conv reads them (non-anchors zeroed *before* padding, so
nothing undecoded leaks in through face padding) and ``ep(psi, ctx)`` gives the
non-anchors' parameters.

Integer evaluation (``coding/integer_context.py``, same rules as ``integer_hyper.py``): every layer
of h_s, ctx and ep is a 3x3 conv with HEALPix padding, a 1x1 conv (a 1x1 kernel, same
GEMM), ReLU or pixel shuffle; channel concatenation is exact. Inputs are integers: z_hat,
and y_hat for the context conv. At run time ``mu`` is rounded to an integer (entropy
tables are indexed by scale only), hence ``y_hat = round(y - mu) + mu = round(y)``; the
training twin therefore decodes ``round(y)`` (straight-through) and rates the symbols
under ``round(mu)`` (straight-through), so that what is trained is what will run. The
export will quantise the 2 (h_s) + 1 (ctx) + 2 (ep) conv layers with
``integer_hyper.quantise_layer`` (fixed point, exact float64 GEMMs); anchors' ctx is the
context conv's quantised bias. Patch mode exists only for training.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
from torch import nn
from torch.nn import functional as F

from ..coding.entropy import LOG_SCALE_MAX, LOG_SCALE_MIN
from ..coding.integer_hyper import FRAC_ACT
from ..sphere.faces import padding_index
from ..sphere.padding import healpix_pad
from .layers import GDN, conv2d_matmul
from .model import FiLM

SPHERE, PATCH = "sphere", "patch"


@dataclasses.dataclass(frozen=True)
class ModelV5Config:
    latent: int = 128       # M, channels of y at nside/16
    hyper: int = 64         # Z, channels of z at nside/32
    qualities: int = 8
    conditioned: bool = True
    enc: tuple = (64, 96, 192, 192)      # g_a widths at n/2, n/4, n/8, n/16
    dec: tuple = (192, 64, 32, 16)       # g_s widths at n/16, n/8, n/4, n/2
    hyper_hidden: int = 160              # h_a
    hyper_up: int = 96                   # h_s's first layer (z's resolution doubled)
    psi: int = 192                       # h_s output (hyper features)
    ctx: int = 128                       # context conv output
    ep_hidden: int = 256

    @classmethod
    def from_dict(cls, fields: dict) -> "ModelV5Config":
        """From its JSON form (a checkpoint's or a weights file's), where tuples became lists."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})

    @property
    def stride(self) -> int:
        return 32   # nside of z is nside / 32; y is nside / 16

    @property
    def min_nside(self) -> int:
        return 32


@functools.lru_cache(maxsize=4)
def _nside1_table() -> torch.Tensor:
    """(12, 3, 3) base-pixel (face) indices around each face at nside 1: the parents of the
    nside-2 padding table (``padding_index(2, 2)``); the 8 three-face vertices get a nearby face."""
    t = padding_index(2, 2)
    sel = [1, 2, 4]
    return torch.from_numpy(t[:, sel][:, :, sel] // 4)


def pad(x: torch.Tensor, mode: str) -> torch.Tensor:
    """One ring of padding: neighbouring HEALPix faces (spheres) or replicated edge (patches)."""
    if mode == PATCH:
        return F.pad(x, (1, 1, 1, 1), mode="replicate")
    if x.shape[-1] == 1:
        b12, c = x.shape[:2]
        table = _nside1_table().to(x.device)                           # (12, 3, 3) face indices
        src = torch.index_select(x.reshape(b12 // 12, 12, c), 1, table.reshape(-1))   # (B, 12*9, C); fixed-order backward
        return src.reshape(b12 // 12, 12, 3, 3, c).permute(0, 1, 4, 2, 3).reshape(b12, c, 3, 3)
    return healpix_pad(x)


class Conv(nn.Module):
    """3x3 convolution (stride 1 or 2) after ``pad``; ``k=1`` gives a 1x1 convolution."""

    def __init__(self, cin: int, cout: int, stride: int = 1, k: int = 3):
        super().__init__()
        self.k = k
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=0)

    def forward(self, x, mode):
        x = pad(x, mode) if self.k == 3 else x
        if self.training:   # oneDNN: fastest, but its sums follow the thread count
            return self.conv(x)
        # inference: the GEMM path gives the same bits for any thread count (layers.conv2d_matmul)
        return conv2d_matmul(x, self.conv.weight, self.conv.bias, self.conv.stride[0])


class Up(nn.Module):
    """Doubles nside: 3x3 convolution to 4x channels, then pixel shuffle (as layers.HealpixUp)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = Conv(cin, 4 * cout)

    def forward(self, x, mode):
        return F.pixel_shuffle(self.conv(x, mode), 2)


def _run(layers, films, x, mode, condition, rows):
    film = iter(films) if films is not None else None
    for layer in layers:
        x = layer(x, mode) if isinstance(layer, (Conv, Up)) else layer(x)
        if film is not None and isinstance(layer, GDN) and condition is not None:
            x = next(film)(x, condition, rows)
    return x


def checkerboard(h: int, w: int, device=None) -> torch.Tensor:
    """(1, 1, h, w) float mask, 1 on anchors ((row + col) even)."""
    r = torch.arange(h, device=device)[:, None] + torch.arange(w, device=device)[None, :]
    return ((r % 2) == 0).float()[None, None]


def _ste_round(v):
    return v + (torch.round(v) - v).detach()


def _ste_codec_round(v):
    """The mean as the codec rounds it: the integer twin's fixed point (FRAC_ACT bits, half up),
    then half up to an integer; a float mean of 0.4996 becomes 1 here, 0 under ``_ste_round``.
    Training under it charges what a mean parked at +-0.5 costs in the codec (calibrate_means)."""
    fixed = torch.floor(v * 2.0 ** FRAC_ACT + 0.5)
    return v + (torch.floor(fixed / 2.0 ** FRAC_ACT + 0.5) - v).detach()


_SQRT2 = math.sqrt(2.0)


def gaussian_bits(v, mu, log_sigma):
    """Bits of v under a unit-bin discretised Gaussian, summed."""
    sigma = log_sigma.exp()
    upper = 0.5 * torch.erfc(-(v - mu + 0.5) / (sigma * _SQRT2))
    lower = 0.5 * torch.erfc(-(v - mu - 0.5) / (sigma * _SQRT2))
    return -torch.log2((upper - lower).clamp_min(1e-9)).sum()


class HyperpriorV5(nn.Module):
    def __init__(self, config: ModelV5Config = ModelV5Config()):
        super().__init__()
        self.config = c = config
        self.codec_means = False   # rate y under the codec's rounding of the mean (train_v5 --codec-means)
        e, d, m = c.enc, c.dec, c.latent
        self.g_a = nn.ModuleList([
            Conv(1, e[0], 2), GDN(e[0]), Conv(e[0], e[1], 2), GDN(e[1]), Conv(e[1], e[2], 2), GDN(e[2]),
            Conv(e[2], e[3], 2), GDN(e[3]), Conv(e[3], m)])
        self.g_s = nn.ModuleList([
            Conv(m, d[0]), GDN(d[0], inverse=True), Up(d[0], d[1]), GDN(d[1], inverse=True),
            Up(d[1], d[2]), GDN(d[2], inverse=True), Up(d[2], d[3]), GDN(d[3], inverse=True), Up(d[3], 1)])
        self.h_a = nn.ModuleList([Conv(m, c.hyper_hidden), nn.ReLU(), Conv(c.hyper_hidden, c.hyper_hidden, 2),
                                  nn.ReLU(), Conv(c.hyper_hidden, c.hyper)])
        # integer-evaluable from here on: conv / 1x1 conv / relu / pixel shuffle only
        self.h_s = nn.ModuleList([Up(c.hyper, c.hyper_up), nn.ReLU(), Conv(c.hyper_up, c.psi), nn.ReLU()])
        self.context = Conv(m, c.ctx)
        self.ep = nn.ModuleList([Conv(c.psi + c.ctx, c.ep_hidden, k=1), nn.ReLU(), Conv(c.ep_hidden, 2 * m, k=1)])
        if c.conditioned:
            self.film_a = nn.ModuleList([FiLM(w) for w in e])
            self.film_s = nn.ModuleList([FiLM(w) for w in d])
        self.log_gain = nn.Parameter(torch.zeros(c.qualities, m))
        self.z_log_scale = nn.Parameter(torch.zeros(c.hyper))
        with torch.no_grad():  # spread the rate points: higher quality index -> finer latents
            self.log_gain += torch.linspace(-2.5, 1.5, c.qualities)[:, None]

    # -- pieces ------------------------------------------------------------------------
    def gain(self, quality: torch.Tensor, rows: int) -> torch.Tensor:
        return self.log_gain[quality].exp().repeat_interleave(rows, 0)[:, :, None, None]

    def analyse(self, x, condition, mode=SPHERE, rows=12):
        return _run(self.g_a, getattr(self, "film_a", None), x, mode, condition, rows)

    def synthesise(self, y, condition, mode=SPHERE, rows=12):
        return _run(self.g_s, getattr(self, "film_s", None), y, mode, condition, rows)

    def hyper_analyse(self, y, mode=SPHERE):
        """h_a: scaled latents -> z before rounding (the codec's name for it, shared with v4)."""
        return _run(self.h_a, None, y, mode, None, 1)

    def entropy_parameters(self, psi, ctx, mode):
        out = _run(self.ep, None, torch.cat([psi, ctx], 1), mode, None, 1)
        mu, log_sigma = out.chunk(2, dim=1)
        return mu, log_sigma.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)

    def hyper(self, z_hat, y_shape, mode):
        psi = _run(self.h_s, None, z_hat, mode, None, 1)
        return psi[..., :y_shape[-2], :y_shape[-1]]   # patches: z was ceil-sized

    def coded_bits(self, y_tilde, z_hat, mode=SPHERE):
        """What the codec spends on (y, z_hat), differentiable in both: the rate of encode-time
        latent refinement (``refine.py``), with the means rounded as the codec rounds them."""
        z_log_scale = self.z_log_scale[None, :, None, None].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)
        mu, log_sigma = self.means_and_log_scales(y_tilde, z_hat, mode)
        return (gaussian_bits(y_tilde, _ste_codec_round(mu), log_sigma)
                + gaussian_bits(z_hat, torch.zeros_like(z_hat), z_log_scale))

    def means_and_log_scales(self, y_hat, z_hat, mode=SPHERE):
        """Float (mu, log sigma) of every latent: what the integer twin computes, up to its
        fixed-point rounding (the rate search's size estimates, ``LatentCoder.estimated_size``)."""
        return self.entropy_model(y_hat, self.hyper(z_hat, y_hat.shape, mode), mode)

    def entropy_model(self, y_hat, psi, mode):
        """Checkerboard context: anchors from psi alone (context = the context conv's bias),
        non-anchors from psi and the context conv over the anchors of ``y_hat`` (non-anchors
        zeroed before padding). Returns float (mu, log sigma) for every latent."""
        anchor = checkerboard(y_hat.shape[-2], y_hat.shape[-1], y_hat.device)
        ctx0 = self.context.conv.bias[None, :, None, None].expand(y_hat.shape[0], -1, *y_hat.shape[-2:])
        mu_a, ls_a = self.entropy_parameters(psi, ctx0, mode)
        mu_n, ls_n = self.entropy_parameters(psi, self.context(y_hat * anchor, mode), mode)
        return anchor * mu_a + (1 - anchor) * mu_n, anchor * ls_a + (1 - anchor) * ls_n

    def forward(self, x, quality, condition=None, mode=SPHERE):
        """Training pass (``self.training``: noise for rates, straight-through rounding for
        the decoder) or evaluation pass (hard rounding, rates of the rounded symbols).
        Returns x_hat, bits of y, bits of z."""
        rows = 12 if mode == SPHERE else 1
        y_hat, gain, y_bits, z_bits = self.latents_and_bits(x, quality, condition, mode)
        x_hat = self.synthesise(y_hat / gain, condition, mode, rows)
        return x_hat, y_bits, z_bits

    def latents_and_bits(self, x, quality, condition=None, mode=SPHERE):
        """The analysis and rate half of ``forward``: y_hat (scaled), the gain, bits of y and
        of z. Alone it is the whole loss of an entropy-only fine-tune, whose distortion cannot
        change (y_hat = round(y) whatever the entropy model predicts)."""
        rows = 12 if mode == SPHERE else 1
        gain = self.gain(quality, rows)
        y = self.analyse(x, condition, mode, rows) * gain
        z = self.hyper_analyse(y, mode)
        z_log_scale = self.z_log_scale[None, :, None, None].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)
        z_hat = _ste_round(z)
        noisy = self.training
        z_bits = gaussian_bits(z + torch.empty_like(z).uniform_(-0.5, 0.5) if noisy else z_hat,
                               torch.zeros_like(z), z_log_scale)
        psi = self.hyper(z_hat, y.shape, mode)
        y_hat = _ste_round(y)        # integer mu at run time -> round(y - mu) + mu == round(y)
        mu, log_sigma = self.entropy_model(y_hat, psi, mode)
        mu = _ste_codec_round(mu) if self.codec_means else _ste_round(mu)
        y_bits = gaussian_bits(y + torch.empty_like(y).uniform_(-0.5, 0.5) if noisy else y_hat, mu, log_sigma)
        return y_hat, gain, y_bits, z_bits


def parameter_counts(model: HyperpriorV5) -> dict:
    def n(mod):
        return sum(p.numel() for p in mod.parameters())
    counts = {k: n(getattr(model, k)) for k in ("g_a", "g_s", "h_a", "h_s", "context", "ep")}
    if model.config.conditioned:
        counts["film_a"], counts["film_s"] = n(model.film_a), n(model.film_s)
    counts["total"] = n(model)
    return counts
