"""Q-network heads (dueling, noisy, distributional) and batched critic ensembles."""
import numpy as np
import pytest
import torch
from gymnasium import spaces

from deeprl.nn.ensemble import QEnsemble
from deeprl.nn.qnets import NoisyLinear, QNetwork

OBS = spaces.Box(-1, 1, (5,), np.float32)


def test_dueling_head_decomposes_into_value_and_zero_mean_advantage():
    torch.manual_seed(0)
    net = QNetwork(OBS, 4, (32, 16), dueling=True)
    x = torch.randn(8, 5)
    q = net(x)
    h = net.torso(net.encoder(x))
    v, a = net.value(h), net.advantage(h)
    torch.testing.assert_close(q, v + a - a.mean(1, keepdim=True))
    torch.testing.assert_close(q.mean(1, keepdim=True), v)  # the mean of Q over actions is V


def test_distributional_dueling_shapes_and_per_atom_decomposition():
    net = QNetwork(OBS, 3, (16,), dueling=True, n_atoms=7)
    x = torch.randn(4, 5)
    out = net(x)
    assert out.shape == (4, 3, 7)
    v = net.value(net.torso(net.encoder(x)))  # (4, 7): one value per atom
    torch.testing.assert_close(out.mean(1), v)


def test_noisy_linear_uses_factorised_noise_and_its_mean_without_noise():
    torch.manual_seed(0)
    layer = NoisyLinear(6, 3, sigma0=0.5)
    x = torch.randn(10, 6)
    layer.noise = False
    torch.testing.assert_close(layer(x), x @ layer.weight_mu.t() + layer.bias_mu)
    layer.noise = True
    layer.reset_noise()
    f = lambda e: e.sign() * e.abs().sqrt()  # noqa: E731
    # eps_in/eps_out are f(standard normals): |eps|^2 ~ |N(0,1)|, so f^-1 recovers Gaussians
    w = layer.weight_mu + layer.weight_sigma * torch.outer(layer.eps_out, layer.eps_in)
    torch.testing.assert_close(layer(x), x @ w.t() + layer.bias_mu + layer.bias_sigma * layer.eps_out)
    # sigma initialised to sigma0 / sqrt(fan_in)
    assert torch.allclose(layer.weight_sigma, torch.full_like(layer.weight_sigma, 0.5 / np.sqrt(6)))
    # the noise is rank one: eps_w = f(eps_out) f(eps_in)^T
    assert torch.linalg.matrix_rank(torch.outer(layer.eps_out, layer.eps_in)) == 1
    # f(N(0,1)) has E|f(e)|^2 = E|e| = sqrt(2/pi)
    samples = torch.randn(200_000)
    assert f(samples).pow(2).mean().item() == pytest.approx(np.sqrt(2 / np.pi), rel=0.02)


def test_noise_changes_outputs_only_when_enabled():
    net = QNetwork(OBS, 2, (8,), noisy=True)
    x = torch.randn(3, 5)
    net.reset_noise()
    a = net(x)
    net.reset_noise()
    assert not torch.allclose(a, net(x))
    net.set_noise(False)
    b = net(x)
    net.reset_noise()
    torch.testing.assert_close(b, net(x))


def test_ensemble_equals_independent_members():
    torch.manual_seed(0)
    act = spaces.Box(-2, 2, (2,), np.float32)
    ens = QEnsemble(OBS, act, members=3, hidden=(16, 8))
    obs, a = torch.randn(11, 5), torch.randn(11, 2)
    out = ens(obs, a)
    assert out.shape == (3, 11)
    for e in range(3):
        m = ens.member(e)
        x = torch.cat([obs, a], -1)
        for layer in m.body:
            x = layer(x)
        torch.testing.assert_close(out[e], x.squeeze(-1)[0])
        # by hand: Linear -> ReLU -> Linear -> ReLU -> Linear with member e's weights
        h = torch.cat([obs, a], -1)
        lins = [mod for mod in ens.body if hasattr(mod, "weight")]
        for i, lin in enumerate(lins):
            h = h @ lin.weight[e] + lin.bias[e]
            if i < len(lins) - 1:
                h = h.relu()
        torch.testing.assert_close(out[e], h.squeeze(-1))
    # members start different
    assert not torch.allclose(out[0], out[1])


def test_ensemble_member_slice_equals_the_full_ensemble_row():
    act = spaces.Box(-2, 2, (2,), np.float32)
    ens = QEnsemble(OBS, act, members=3, hidden=(16, 8))
    obs, a = torch.randn(6, 5), torch.randn(6, 2)
    full = ens(obs, a)
    torch.testing.assert_close(ens(obs, a, slice(0, 1)), full[:1])
    torch.testing.assert_close(ens(obs, a, slice(1, 3)), full[1:])
