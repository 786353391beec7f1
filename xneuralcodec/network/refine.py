"""Encode-time latent refinement for ``effort="max"`` (SGA, Yang et al. 2020).

The analysis transform is trained for the average plane; at encode time the latents of *this*
plane can be moved to where rate plus distortion is lower. A few gradient steps on the scaled
latents y, through the float twin of the entropy model and the synthesis transform, with
rounding replaced by stochastic Gumbel annealing (soft rounding whose temperature falls to
near-hard), then the usual rounding and range coding. The decoder and the format do not
change: a refined stream decodes like any other.

The distortion here is the MAE (the codec's unit of promise), not the training loss: on ERA5
0.25 degree t2m with hyperprior-v5.1 at 30 steps, MAE-driven refinement gave +16% ratio at the
same MAE (quality 3) and +8% ratio with 5% lower MAE (quality 5), where the training loss gave
about 2-6% at equal MAE. Its weight is the training lambda of the rate point turned into MAE
units (MSE ~ pi/2 MAE^2, so d MSE ~ pi MAE d MAE, with the plane's MAE before refinement),
times LAMBDA_SCALE; 2 keeps the MAE about where it was, so the gain shows as smaller files.

The network runs in eval mode with gradients, so its convolutions take the unfold + GEMM path
(``layers.conv2d_matmul``) whose backward is as order-fixed as its forward, and its padding a
gather with a fixed-order backward (``padding.fixed_order_gradients``): refined bytes are
the same for any thread count (tests/test_refine.py), at about twice the time of oneDNN's
convolutions (~12 s per refinement of a 0.25 degree plane on 2 threads, 2 s at 1 degree).
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import torch

from ..network.conditioning import Condition
from ..sphere.padding import fixed_order_gradients
from .registry import weights_dir
from .weights import LoadedModel

STEPS = 30
LEARNING_RATE = 0.01
TEMPERATURE = (0.5, 0.05)   # annealed geometrically over the steps
LAMBDA_SCALE = 2.0
SEED = 0


@functools.lru_cache(maxsize=8)
def training_lambdas(name: str) -> tuple[float, ...]:
    """The rate-distortion weight of each trained rate point, from the model card."""
    card = weights_dir() / f"{name}.card.json"
    if not card.is_file():
        raise ValueError(f"effort='max' refines latents with the training lambdas of the model card, "
                         f"and {name} has none ({card} is missing)")
    return tuple(float(v) for v in json.loads(card.read_text())["training"]["lambdas"])


def lambda_at(lambdas: tuple[float, ...], quality: float) -> float:
    """Between trained points, log-lambda is interpolated like the gains (``LoadedModel.gain``)."""
    low = min(int(quality), len(lambdas) - 2)
    t = quality - low
    return math.exp((1.0 - t) * math.log(lambdas[low]) + t * math.log(lambdas[low + 1]))


def annealed_round(y: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """Stochastic Gumbel annealing: a differentiable draw of floor(y) or floor(y) + 1, the
    nearer one more likely, hard as the temperature reaches 0."""
    floor = torch.floor(y)
    frac = y - floor
    eps = 1e-5
    logit_down = -torch.atanh(torch.clamp(frac, -1 + eps, 1 - eps)) / temperature
    logit_up = -torch.atanh(torch.clamp(1 - frac, -1 + eps, 1 - eps)) / temperature
    u = torch.rand((2, *y.shape), generator=generator, dtype=y.dtype, device=y.device).clamp(1e-10, 1 - 1e-10)
    gumbel = -torch.log(-torch.log(u))
    p_up = torch.softmax(torch.stack([logit_down + gumbel[0], logit_up + gumbel[1]]), 0)[1]
    return floor + p_up


def _straight_through_round(v: torch.Tensor) -> torch.Tensor:
    return v + (torch.round(v) - v).detach()


class LatentRefiner:
    """Refines one sphere's scaled latents for one loaded model."""

    def __init__(self, model: LoadedModel):
        self.model = model
        self.lambdas = training_lambdas(model.name)

    def refine(self, faces: np.ndarray, y: np.ndarray, quality: float, condition: Condition) -> np.ndarray:
        """faces (12, n, n) float32 (the standardised plane on HEALPix), scaled latents y
        (12, M, m, m) as ``NeuralTransform.latents`` gives them -> refined y, same shape, float64."""
        net, device = self.model.network, self.model.device
        x = torch.from_numpy(np.ascontiguousarray(faces, np.float32)).to(device)[:, None]
        gain = torch.from_numpy(self.model.gain(quality)).to(device)[None, :, None, None]
        cond = torch.from_numpy(condition.vector()).to(device)[None]
        latents = torch.from_numpy(np.asarray(y, np.float32)).to(device)
        with torch.no_grad():   # summed by numpy: torch's parallel sums follow the thread count on some CPUs
            start_mae = float(np.abs((net.synthesise(torch.round(latents) / gain, cond) - x).cpu().numpy()).mean(
                dtype=np.float64))
        weight = LAMBDA_SCALE * lambda_at(self.lambdas, quality) * math.pi * start_mae
        generator = torch.Generator(device=device).manual_seed(SEED)
        optimiser = torch.optim.Adam([latents.requires_grad_()], lr=LEARNING_RATE)
        hot, cold = TEMPERATURE
        with torch.enable_grad(), fixed_order_gradients():
            for step in range(STEPS):
                temperature = hot * (cold / hot) ** (step / max(1, STEPS - 1))
                soft = annealed_round(latents, temperature, generator)
                z_hat = _straight_through_round(net.hyper_analyse(latents))
                bits = net.coded_bits(soft, z_hat)
                distortion = (net.synthesise(soft / gain, cond) - x).abs().mean()
                loss = weight * distortion + bits / x.numel()
                # gradients for the latents only: the shared network's parameters stay untouched
                latents.grad, = torch.autograd.grad(loss, [latents])
                optimiser.step()
        return latents.detach().cpu().numpy().astype(np.float64)
