"""The hyperprior autoencoder (Ballé et al. 2018) on HEALPix faces, with gain units for rate.

Shapes for one sphere of nside n (N hidden, M latent, Z hyper-latent channels)::

    x (12, 1, n, n) --g_a--> y (12, M, n/8, n/8) --*gain[q]--> y_s --h_a--> z (12, Z, n/16, n/16)
                                                                 |             | round
    x_hat <--g_s-- y_hat / gain[q] <-- round(y_s - mu) + mu   <--+  mu, log sigma <--h_s-- z_hat

One network serves several rate points (``quality``): a learned per-channel gain vector
scales the latents before rounding (Cui et al. 2021, "Asymmetric gained deep image
compression with continuous rate adaptation"). A conditioned model (``conditioned=True``)
also scales and shifts the channels after every (inverse) GDN of ``g_a`` and ``g_s`` by
FiLM layers (Perez et al. 2018) fed the plane's kind of variable and pressure level
(``conditioning.py``), as in Mirowski et al. 2024; they start as the identity, so a
conditioned model can be fine-tuned from an unconditioned one. ``h_s`` uses ReLU and
stride-free integer friendly layers because at run time it is evaluated in exact integer
arithmetic (``integer_hyper.py``, Ballé et al. 2019), so encoder and decoder agree bit for
bit.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from ..coding.entropy import LOG_SCALE_MAX, LOG_SCALE_MIN
from ..coding.integer_hyper import HYPER_SYNTHESIS_LAYOUT
from .conditioning import CONDITION_SIZE
from .layers import GDN, HealpixConv, HealpixUp


def hyper_synthesis(cin: int, hidden: int, cout: int) -> nn.Sequential:
    """The float h_s of ``HYPER_SYNTHESIS_LAYOUT``: every conv ``hidden`` wide but the last."""
    convs = [i for i, op in enumerate(HYPER_SYNTHESIS_LAYOUT) if op != "relu"]
    layers, channels = [], cin
    for i, op in enumerate(HYPER_SYNTHESIS_LAYOUT):
        out = cout if i == convs[-1] else hidden
        if op == "relu":
            layers.append(nn.ReLU())
            continue
        layers.append(HealpixUp(channels, out) if op == "up" else HealpixConv(channels, out))
        channels = out
    return nn.Sequential(*layers)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    hidden: int = 64
    latent: int = 48
    hyper: int = 24
    qualities: int = 6
    conditioned: bool = False  # FiLM on variable kind and level (weights from 0.5.0 on)

    @property
    def stride(self) -> int:
        return 16  # nside of z is nside / 16; y is nside / 8

    @property
    def min_nside(self) -> int:
        return 2 * self.stride


class HyperpriorModel(nn.Module):
    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        n, m, z = config.hidden, config.latent, config.hyper
        self.g_a = nn.Sequential(
            HealpixConv(1, n, 2), GDN(n), HealpixConv(n, n, 2), GDN(n), HealpixConv(n, m, 2)
        )
        self.g_s = nn.Sequential(
            HealpixUp(m, n), GDN(n, inverse=True), HealpixUp(n, n), GDN(n, inverse=True), HealpixUp(n, 1)
        )
        self.h_a = nn.Sequential(HealpixConv(m, n), nn.ReLU(), HealpixConv(n, z, 2))
        self.h_s = hyper_synthesis(z, n, 2 * m)
        if config.conditioned:
            self.film_a = nn.ModuleList([FiLM(n), FiLM(n)])
            self.film_s = nn.ModuleList([FiLM(n), FiLM(n)])
        self.log_gain = nn.Parameter(torch.zeros(config.qualities, m))
        self.z_log_scale = nn.Parameter(torch.zeros(z))
        with torch.no_grad():  # spread the rate points: higher quality index -> finer latents
            self.log_gain += torch.linspace(-1.5, 1.5, config.qualities)[:, None]

    def gain(self, quality: torch.Tensor) -> torch.Tensor:
        """(B,) quality indices -> (B*12, M, 1, 1) gains, one row per face."""
        g = self.log_gain[quality].exp()
        return g.repeat_interleave(12, dim=0)[:, :, None, None]

    def analyse(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """g_a with FiLM after each GDN; ``condition`` (B or 1, CONDITION_SIZE), None for an
        unconditioned model."""
        return self._run(self.g_a, getattr(self, "film_a", None), x, condition)

    def synthesise(self, y: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """g_s with FiLM after each inverse GDN."""
        return self._run(self.g_s, getattr(self, "film_s", None), y, condition)

    @staticmethod
    def _run(layers: nn.Sequential, films, x, condition):
        if films is None:
            return layers(x)
        if condition is None:
            raise ValueError("a conditioned model needs a condition (conditioning.condition_vector)")
        film = iter(films)
        for layer in layers:
            x = layer(x)
            if isinstance(layer, GDN):
                x = next(film)(x, condition)
        return x

    def hyper_analyse(self, y: torch.Tensor) -> torch.Tensor:
        """h_a: scaled latents -> z before rounding (the codec's name for it, shared with v5)."""
        return self.h_a(y)

    def hyper_parameters(self, z_hat):
        """Float mean and log-scale of y_s (training twin of integer_hyper)."""
        mu, log_sigma = self.h_s(z_hat).chunk(2, dim=1)
        return mu, log_sigma.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)

    def means_and_log_scales(self, y_hat: torch.Tensor, z_hat: torch.Tensor):
        """Float (mu, log sigma) of every latent, as ``model_v5`` names it (v4's do not depend on y)."""
        return self.hyper_parameters(z_hat)

    def coded_bits(self, y_tilde: torch.Tensor, z_hat: torch.Tensor) -> torch.Tensor:
        """What the codec spends on (y, z_hat), differentiable in both: the rate of encode-time
        latent refinement (``refine.py``); the integer h_s rounds the means, so this does too."""
        mu, log_sigma = self.hyper_parameters(z_hat)
        mu = mu + (torch.round(mu) - mu).detach()
        z_log_scale = self.z_log_scale[None, :, None, None].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)
        return _gaussian_bits(y_tilde, mu, log_sigma) + _gaussian_bits(z_hat, torch.zeros_like(z_hat), z_log_scale)

    def forward(self, x: torch.Tensor, quality: torch.Tensor, condition: torch.Tensor | None = None):
        """Training pass with noise/STE quantisation; returns x_hat and bits of y and z."""
        gain = self.gain(quality)
        y = self.analyse(x, condition) * gain
        z = self.h_a(y)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        z_bits = _gaussian_bits(z_noisy, torch.zeros_like(z), self.z_log_scale[None, :, None, None].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX))
        z_hat = z + (torch.round(z) - z).detach()
        mu, log_sigma = self.hyper_parameters(z_hat)
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        y_bits = _gaussian_bits(y_noisy, mu, log_sigma)
        y_hat = mu + (torch.round(y - mu) - (y - mu)).detach() + (y - mu)
        x_hat = self.synthesise(y_hat / gain, condition)
        return x_hat, y_bits, z_bits


class FiLM(nn.Module):
    """Per-channel scale and shift from the condition vector; the identity at initialisation."""

    def __init__(self, channels: int):
        super().__init__()
        self.linear = nn.Linear(CONDITION_SIZE, 2 * channels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor, rows: int = 12) -> torch.Tensor:
        """``condition`` (B, CONDITION_SIZE), one row per sphere, or (1, ...) shared by all:
        the engine passes one row so that scale and shift are the same numbers whatever the
        batch size (encode replays one plane, decode runs several). ``rows`` is how many rows
        of ``x`` one condition row covers: 12 faces of a sphere, or 1 training patch (v5)."""
        scale, shift = self.linear(condition).chunk(2, dim=1)           # (B or 1, C) each
        scale = 1.0 + scale
        if condition.shape[0] > 1:
            scale, shift = scale.repeat_interleave(rows, dim=0), shift.repeat_interleave(rows, dim=0)
        return x * scale[:, :, None, None] + shift[:, :, None, None]


_SQRT2 = math.sqrt(2.0)


def _gaussian_bits(v, mu, log_sigma):
    sigma = log_sigma.exp()
    upper = 0.5 * torch.erfc(-(v - mu + 0.5) / (sigma * _SQRT2))
    lower = 0.5 * torch.erfc(-(v - mu - 0.5) / (sigma * _SQRT2))
    p = (upper - lower).clamp_min(1e-9)
    return -torch.log2(p).sum()
