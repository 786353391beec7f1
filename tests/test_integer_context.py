"""The v5 integer entropy path's shortcuts give bit for bit what the plain fixed-point
convolutions give: the anchors' folded context bias and the context conv that skips the
taps a checkerboard leaves at zero. Real shipped weights, real latents, every face edge."""

import numpy as np
import pytest

from xneuralcodec.coding.integer_context import (ACT_LIMIT, FRAC_ACT, _sphere_pad, AnchorContextConv,
                                                 anchor_mask)
from xneuralcodec.coding.integer_hyper import conv_fixed, rescale
from xneuralcodec.network.weights import load_model

from .test_codec_v5 import _latents
from .conftest import load_plane


@pytest.fixture(scope="module")
def shipped():
    model = load_model("hyperprior-v5.2")
    plane, grid = load_plane("era5_1deg_t2m")
    y, z = _latents(model, plane, grid, 64)        # y at nside 4, z at nside 2
    return model, np.round(y), np.round(z)


@pytest.mark.parametrize("n", [1, 2, 4, 16])
def test_anchor_context_conv_is_conv_fixed(n, shipped):
    model, _, _ = shipped
    weight, bias = model.hyper.layers["int_v5.context"]
    rng = np.random.default_rng(n)
    anchors = anchor_mask(n)
    a = rng.integers(-40, 40, size=(12, weight.shape[1], n, n)) * 2.0 ** FRAC_ACT * anchors
    want = conv_fixed(a, weight, bias, pad=_sphere_pad, positions=~anchors)
    np.testing.assert_array_equal(AnchorContextConv(weight, bias)(a), want.transpose(1, 0, 2))


def test_anchor_context_conv_at_activation_limit(shipped):
    """Sums stay exact at the largest activations the clip allows."""
    model, _, _ = shipped
    weight, bias = model.hyper.layers["int_v5.context"]
    anchors = anchor_mask(8)
    a = np.where(anchors, ACT_LIMIT, 0.0) * np.sign(np.random.default_rng(0).standard_normal((12, weight.shape[1], 8, 8)))
    want = conv_fixed(a, weight, bias, pad=_sphere_pad, positions=~anchors)
    np.testing.assert_array_equal(AnchorContextConv(weight, bias)(a), want.transpose(1, 0, 2))


def _plain_parameters(entropy, psi, ctx, positions):
    """ep as plain per-face fixed-point convolutions; psi (P, 12, n, n) as ``psi`` gives it, ctx (12, C, K)."""
    rows = psi.transpose(1, 0, 2, 3)[:, :, positions]
    hidden = np.maximum(rescale(conv_fixed(np.concatenate([rows, ctx], 1)[..., None],
                                           *entropy.layers["int_v5.ep_hidden"])), 0)
    return rescale(conv_fixed(hidden, *entropy.layers["int_v5.ep_out"]))[..., 0]


def test_entropy_parameters_match_plain_convolutions(shipped):
    """Anchors fold their constant context into the bias; both passes run as channels-first GEMMs."""
    model, y, z = shipped
    entropy = model.hyper
    anchors = anchor_mask(y.shape[-1])
    psi = entropy.psi(z)
    ctx0 = np.broadcast_to(entropy.ctx0[None, :, None], (12, entropy.ctx0.size, int(anchors.sum())))
    np.testing.assert_array_equal(entropy.fixed_parameters(psi, None, anchors),
                                  _plain_parameters(entropy, psi, ctx0, anchors))
    a = np.clip(y * anchors * 2.0 ** FRAC_ACT, -ACT_LIMIT, ACT_LIMIT)
    ctx = rescale(conv_fixed(a, *entropy.layers["int_v5.context"], pad=_sphere_pad, positions=~anchors))
    np.testing.assert_array_equal(entropy.context(y * anchors, ~anchors), ctx.transpose(1, 0, 2))
    np.testing.assert_array_equal(entropy.fixed_parameters(psi, ctx.transpose(1, 0, 2), ~anchors),
                                  _plain_parameters(entropy, psi, ctx, ~anchors))
