"""The network as the codec runs it: batches of spheres in numpy, out of torch and back.

    faces (B, 12, n, n) --analyse--> (B, 12, M, m, m) --* gain[q]--> y --h_a, round--> z
    y_hat (B, 12, M, m, m) / gain[q] --synthesise--> faces (B, 12, n, n)

Inference only (``torch.no_grad``). The condition of a chunk (its kind of variable and
level) enters as one row shared by every sphere of a batch, so that the FiLM scale and
shift are the same numbers whether the encoder replays one plane or the decoder runs
several (``model.FiLM``).
"""

from __future__ import annotations

import numpy as np
import torch

from .conditioning import Condition
from .weights import LoadedModel


class NeuralTransform:
    def __init__(self, model: LoadedModel):
        self.model = model

    def _condition_input(self, condition: Condition) -> torch.Tensor:
        """(1, CONDITION_SIZE) network input, shared by every sphere of the chunk."""
        return torch.from_numpy(condition.vector()).to(self.model.device)[None]

    @torch.no_grad()
    def analyse(self, faces: np.ndarray, condition: Condition) -> np.ndarray:
        """g_a of a batch of spheres (B, 12, n, n) -> (B, 12, M, m, m) (m = n/8 in v4,
        n/16 in v5), before any gain."""
        net = self.model.network
        x = torch.from_numpy(faces).to(self.model.device).reshape(-1, 1, *faces.shape[-2:])
        y = net.analyse(x, self._condition_input(condition))
        return y.cpu().numpy().reshape(faces.shape[0], 12, *y.shape[1:])

    def scaled(self, analysed: np.ndarray, gains: np.ndarray) -> torch.Tensor:
        """Latents times each sphere's gain row: (B, 12, M, m, m) float32 on the device."""
        device = self.model.device
        return torch.from_numpy(analysed).to(device) * torch.from_numpy(gains).to(device)[:, None, :, None, None]

    @torch.no_grad()
    def rounded(self, analysed: np.ndarray, gains: np.ndarray) -> np.ndarray:
        """The decoder's y_hat for these gains, float32: what a replay of the decoder starts from."""
        return torch.round(self.scaled(analysed, gains)).cpu().numpy()

    @torch.no_grad()
    def latents(self, analysed: np.ndarray, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scaled latents y (float64) and rounded hyper-latents z (int64), one gain row per sphere."""
        net = self.model.network
        b = analysed.shape[0]
        y = self.scaled(analysed, gains)
        y = y.reshape(-1, *y.shape[2:])
        z = torch.round(net.hyper_analyse(y))
        y = y.cpu().numpy().astype(np.float64).reshape(b, 12, *y.shape[1:])
        z = z.cpu().numpy().astype(np.int64).reshape(b, 12, *z.shape[1:])
        return y, z

    @torch.no_grad()
    def hyper_latents(self, y: np.ndarray) -> np.ndarray:
        """Rounded hyper-latents z (int64) of one sphere's scaled latents y (12, M, m, m)."""
        y_t = torch.from_numpy(np.asarray(y, np.float32)).to(self.model.device)
        return torch.round(self.model.network.hyper_analyse(y_t)).cpu().numpy().astype(np.int64)

    @torch.no_grad()
    def synthesise(self, y: np.ndarray, gains: np.ndarray, condition: Condition) -> np.ndarray:
        """g_s of rounded latents (B, 12, M, m, m) divided by each sphere's gains (B, M)."""
        net = self.model.network
        b = y.shape[0]
        gain = torch.from_numpy(np.repeat(gains, 12, axis=0)).to(self.model.device)[:, :, None, None]
        y_t = torch.from_numpy(y.reshape(-1, *y.shape[2:])).to(self.model.device) / gain
        x = net.synthesise(y_t, self._condition_input(condition))
        return x.cpu().numpy().reshape(b, 12, *x.shape[-2:])
