"""hyperprior-v5 building blocks: the properties the integer entropy path will rely on."""

import healpy as hp
import numpy as np
import pytest
import torch

from xneuralcodec.network.model_v5 import PATCH, SPHERE, HyperpriorV5, ModelV5Config, checkerboard, pad


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_nside1_padding_reads_the_neighbouring_faces():
    x = torch.arange(12, dtype=torch.float32).reshape(12, 1, 1, 1)
    padded = pad(x, SPHERE)[:, 0].long().numpy()                 # (12, 3, 3), row = y, col = x
    # HEALPix face axes: +x points NE, +y points NW; healpy order SW, W, NW, N, NE, E, SE, S
    where = {"SW": (1, 0), "NW": (2, 1), "NE": (1, 2), "SE": (0, 1), "N": (2, 2), "S": (0, 0), "W": (2, 0), "E": (0, 2)}
    for face in range(12):
        assert padded[face, 1, 1] == face
        for name, neighbour in zip(("SW", "W", "NW", "N", "NE", "E", "SE", "S"), hp.get_all_neighbours(1, face, nest=True)):
            if neighbour >= 0:
                assert padded[face][where[name]] == neighbour, (face, name)


@pytest.mark.parametrize("mode,shape", [(SPHERE, (12, 8, 4, 4)), (PATCH, (3, 8, 4, 2))])
def test_checkerboard_context_is_causal(mode, shape):
    """Anchors' parameters never depend on y; non-anchors' only on anchors (through face
    padding too), so the decoder can run anchors first, then the rest."""
    torch.manual_seed(0)
    model = HyperpriorV5(ModelV5Config(latent=8, hyper=4, psi=6, ctx=5, ep_hidden=7)).eval()
    psi = torch.randn(shape[0], 6, *shape[2:])
    y = torch.round(3 * torch.randn(shape))
    anchor = checkerboard(*shape[2:]).bool().expand(shape)
    with torch.no_grad():
        mu, ls = model.entropy_model(y, psi, mode)
        y2 = torch.where(anchor, y, y + torch.round(5 * torch.randn(shape)))   # change every non-anchor
        mu2, ls2 = model.entropy_model(y2, psi, mode)
        assert torch.equal(mu, mu2) and torch.equal(ls, ls2)
        y3 = torch.where(anchor, y + 7, y)                                       # change the anchors
        mu3, _ = model.entropy_model(y3, psi, mode)
        assert torch.equal(mu3[anchor], mu[anchor]) and not torch.equal(mu3[~anchor], mu[~anchor])


@pytest.mark.parametrize("nside", [32, 64])
def test_whole_spheres_down_to_min_nside(nside):
    model = HyperpriorV5().eval()
    with torch.no_grad():
        x_hat, y_bits, z_bits = model(torch.randn(12, 1, nside, nside), torch.tensor([0]))
    assert x_hat.shape == (12, 1, nside, nside) and y_bits > 0 and z_bits > 0
    assert model.config.min_nside == 32


def test_patches_with_sides_of_16():
    model = HyperpriorV5().eval()
    with torch.no_grad():
        x_hat, _, _ = model(torch.randn(2, 1, 32, 16), torch.tensor([1, 7]), torch.zeros(2, 12), PATCH)
    assert x_hat.shape == (2, 1, 32, 16)


def test_codec_mean_rounding_matches_the_integer_path():
    """``train_v5 --codec-means`` rates latents under the mean the codec uses: the float mean in
    FRAC_ACT fixed point, then ``means_and_indices``'s half-up rounding (not round-half-even of
    the float mean, which sends 0.4996 to 0 where the codec says 1)."""
    from xneuralcodec.coding.integer_hyper import FRAC_ACT, means_and_indices
    from xneuralcodec.network.model_v5 import _ste_codec_round

    rng = np.random.default_rng(0)
    mu = np.concatenate([rng.uniform(-4, 4, 10000), np.array([0.4996, -0.4996, 0.5, -0.5, 1.5, 2.4999])])
    fixed = np.floor(mu * 2.0 ** FRAC_ACT + 0.5)
    expected, _ = means_and_indices(np.stack([fixed, np.zeros_like(fixed)]), 0, 1, 1, axis=0)
    got = _ste_codec_round(torch.from_numpy(mu)).numpy()
    np.testing.assert_array_equal(got, expected[0])
    assert got[-6] == 1.0 and torch.round(torch.tensor(0.4996)).item() == 0.0


def test_mae_distortion_is_in_mse_units_with_the_l1_gradient():
    """train_v5 --distortion mae: pi/2 MAE^2, the MSE's value for Gaussian errors, whose
    gradient is pi MAE sign(e) / N (every error pulled equally, as the MAE weighs them)."""
    import math

    from xneuralcodec.training.train_v5 import distortion

    torch.manual_seed(0)
    x = torch.randn(4, 1, 8, 8)
    x_hat = (x + 0.3 * torch.randn_like(x)).requires_grad_(True)
    value, mse, _ = distortion(x_hat, x, beta=0.0, kind="mae")
    e = (x_hat - x).detach()
    assert torch.isclose(value, math.pi / 2 * e.abs().mean() ** 2)
    assert torch.isclose(mse, (e ** 2).mean())
    value.backward()
    expected = math.pi * e.abs().mean() * torch.sign(e) / e.numel()
    assert torch.allclose(x_hat.grad, expected, atol=1e-7)
    gaussian = torch.randn(200000) * 0.5
    assert abs(float(distortion(gaussian, torch.zeros_like(gaussian), 0.0, "mae")[0]) / float((gaussian ** 2).mean()) - 1) < 0.01
