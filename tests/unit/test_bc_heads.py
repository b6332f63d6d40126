"""Tests for deeprl.nn.bc_heads: the mixture against SciPy's normal pdf, the autoregressive head
against brute-force enumeration and hand-computed conditionals, sampling frequencies by
chi-square, gradient flow, the factory's errors, and a small bimodal maximum-likelihood fit."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from gymnasium import spaces
from scipy import integrate, stats

from deeprl.core.errors import ConfigError, DeeprlError
from deeprl.nn.bc_heads import (
    AutoregressiveDiscretized,
    AutoregressiveDiscretizedHead,
    CategoricalHead,
    GaussianHead,
    MixtureGaussianHead,
    MixtureOfGaussians,
    make_head,
)
from deeprl.nn.distributions import Categorical, DiagGaussian


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _random_mixture(B=4, K=3, D=2, seed=0):
    g = _gen(seed)
    logits = torch.randn(B, K, generator=g, dtype=torch.float64) * 2
    means = torch.randn(B, K, D, generator=g, dtype=torch.float64) * 2
    log_stds = torch.randn(B, K, D, generator=g, dtype=torch.float64) * 0.5
    return logits, means, log_stds


# ======================================================================================
# MixtureOfGaussians
# ======================================================================================


def test_mixture_log_prob_matches_scipy_definition():
    logits, means, log_stds = _random_mixture()
    dist = MixtureOfGaussians(logits, means, log_stds)
    a = torch.randn(4, 2, generator=_gen(1), dtype=torch.float64) * 2
    w = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(-1, keepdims=True)
    mu, sd = means.numpy(), np.exp(log_stds.numpy())
    ref = np.log(sum(w[:, k] * stats.norm.pdf(a.numpy(), mu[:, k], sd[:, k]).prod(-1) for k in range(3)))
    np.testing.assert_allclose(dist.log_prob(a).numpy(), ref, rtol=0, atol=1e-6)
    assert dist.log_prob(a).shape == (4,)


def test_mixture_log_prob_is_stable_far_in_the_tails():
    logits, means, log_stds = _random_mixture(B=2, K=3, D=1, seed=2)
    lp = MixtureOfGaussians(logits, means, log_stds).log_prob(torch.full((2, 1), 200.0, dtype=torch.float64))
    assert torch.isfinite(lp).all()  # the naive log(sum w pdf) underflows to -inf here


def test_mixture_density_integrates_to_one_in_1d():
    logits, means, log_stds = _random_mixture(B=1, K=3, D=1, seed=3)
    dist = MixtureOfGaussians(logits, means, log_stds)
    grid = torch.linspace(-25, 25, 200_001, dtype=torch.float64)
    pdf = MixtureOfGaussians(logits.expand(len(grid), 3), means.expand(len(grid), 3, 1),
                             log_stds.expand(len(grid), 3, 1)).log_prob(grid[:, None]).exp()
    assert integrate.trapezoid(pdf.numpy(), grid.numpy()) == pytest.approx(1.0, abs=1e-6)
    assert dist.log_prob(torch.zeros(1, 1, dtype=torch.float64)).shape == (1,)


def test_mixture_component_frequencies_match_weights():
    # three well-separated components: a sample's component is the nearest mean
    n = 20_000
    logits = torch.log(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)).expand(n, 3)
    means = torch.tensor([[-20.0], [0.0], [20.0]], dtype=torch.float64).expand(n, 3, 1)
    dist = MixtureOfGaussians(logits, means, torch.zeros(n, 3, 1, dtype=torch.float64))
    x = dist.sample()
    assert x.shape == (n, 1) and not x.requires_grad
    comp = (x - means[0, :, 0]).abs().argmin(-1)
    counts = np.bincount(comp.numpy(), minlength=3)
    assert stats.chisquare(counts, n * np.array([0.2, 0.5, 0.3])).pvalue > 1e-3


def test_mixture_sample_mean_and_variance_match_the_mixture():
    n = 20_000
    logits, means, log_stds = _random_mixture(B=1, K=3, D=2, seed=4)
    dist = MixtureOfGaussians(logits.expand(n, 3), means.expand(n, 3, 2), log_stds.expand(n, 3, 2))
    x = dist.sample().numpy()
    w = torch.softmax(logits[0], -1).numpy()[:, None]
    mu, var = means[0].numpy(), np.exp(2 * log_stds[0].numpy())
    mean = (w * mu).sum(0)
    total_var = (w * (var + mu**2)).sum(0) - mean**2
    se_mean = np.sqrt(total_var / n)
    assert np.all(np.abs(x.mean(0) - mean) < 5 * se_mean)
    np.testing.assert_allclose(x.var(0), total_var, rtol=0.05)


def test_mixture_mode_is_heaviest_components_mean():
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    means = torch.arange(6.0).reshape(1, 3, 2).expand(2, 3, 2)
    dist = MixtureOfGaussians(logits, means, torch.zeros(2, 3, 2))
    torch.testing.assert_close(dist.mode(), torch.tensor([[2.0, 3.0], [0.0, 1.0]]))


# ======================================================================================
# AutoregressiveDiscretizedHead
# ======================================================================================


def _sharpened_ar_head(in_dim=3, low=(-1.0, 0.0), high=(1.0, 2.0), bins=5, seed=0):
    """A head whose conditionals are far from uniform (the default init makes them ~uniform)."""
    torch.manual_seed(seed)
    head = AutoregressiveDiscretizedHead(in_dim, low, high, bins=bins, hidden=16).double()
    with torch.no_grad():
        for net in head.nets:
            net[-1].weight.normal_(0.0, 1.0)
            net[-1].bias.normal_(0.0, 1.0)
    return head


def test_autoregressive_probabilities_over_all_bin_tuples_sum_to_one():
    head = _sharpened_ar_head()
    feats = torch.randn(4, 3, generator=_gen(0), dtype=torch.float64)
    dist = head(feats)
    assert isinstance(dist, AutoregressiveDiscretized)
    total = torch.zeros(4, dtype=torch.float64)
    for i, j in itertools.product(range(5), range(5)):
        idx = torch.tensor([[i, j]]).expand(4, 2)
        total += dist.log_prob(head.centres(idx)).exp()
        torch.testing.assert_close(dist.log_prob(head.centres(idx)), dist.log_prob_bins(idx))
    torch.testing.assert_close(total, torch.ones(4, dtype=torch.float64))


def test_autoregressive_log_prob_is_product_of_hand_computed_conditionals():
    head = _sharpened_ar_head()
    feats = torch.randn(3, 3, generator=_gen(1), dtype=torch.float64)
    a = torch.tensor([[-0.95, 1.99], [0.1, 0.0], [0.55, 1.3]], dtype=torch.float64)
    bins = [[0, 4], [2, 0], [3, 3]]  # width 0.4 per dim: floor((a - low) / 0.4)
    scaled = [-0.8, -0.4, 0.0, 0.4, 0.8]  # bin centres of 5 bins mapped to [-1, 1]
    lp = head(feats).log_prob(a)
    for b in range(3):
        p0 = torch.softmax(head.nets[0](feats[b]), -1)
        x1 = torch.cat([feats[b], torch.tensor([scaled[bins[b][0]]], dtype=torch.float64)])
        p1 = torch.softmax(head.nets[1](x1), -1)
        expected = torch.log(p0[bins[b][0]] * p1[bins[b][1]])
        torch.testing.assert_close(lp[b], expected)
    # log_density subtracts the log bin volume
    torch.testing.assert_close(head(feats).log_density(a), lp - 2 * np.log(0.4))


def test_autoregressive_sampling_frequencies_match_probabilities():
    n = 20_000
    head = _sharpened_ar_head(seed=1)
    feats = torch.randn(1, 3, generator=_gen(2), dtype=torch.float64)
    dist = head(feats.expand(n, 3))
    x = dist.sample()
    assert x.shape == (n, 2) and not x.requires_grad
    idx = head.discretize(x)
    torch.testing.assert_close(head.centres(idx), x)  # samples are bin centres
    counts = np.bincount((idx[:, 0] * 5 + idx[:, 1]).numpy(), minlength=25)
    one = head(feats)
    probs = np.array([one.log_prob_bins(torch.tensor([[i, j]])).exp().item()
                      for i, j in itertools.product(range(5), range(5))])
    assert stats.chisquare(counts, n * probs / probs.sum()).pvalue > 1e-3


def test_autoregressive_mode_is_greedy_decoding():
    head = _sharpened_ar_head(seed=2)
    feats = torch.randn(6, 3, generator=_gen(3), dtype=torch.float64)
    dist = head(feats)
    idx = head.discretize(dist.mode())
    first = head.nets[0](feats).argmax(-1)
    torch.testing.assert_close(idx[:, 0], first)
    second = head.conditional_logits(feats, first[:, None]).argmax(-1)
    torch.testing.assert_close(idx[:, 1], second)


def test_discretize_and_centres_round_trip_and_edges():
    head = AutoregressiveDiscretizedHead(2, low=[-1.0, 0.0], high=[1.0, 10.0], bins=4)  # widths 0.5, 2.5
    idx = torch.randint(0, 4, (100, 2))
    torch.testing.assert_close(head.discretize(head.centres(idx)), idx)
    torch.testing.assert_close(head.centres(torch.tensor([[0, 3]])), torch.tensor([[-0.75, 8.75]]))
    a = torch.tensor([[-1.0, 0.0],    # == low -> first bin
                      [1.0, 10.0],    # == high -> last bin (edge included)
                      [-0.5, 2.5],    # interior edge -> the bin it opens
                      [-7.0, 30.0],   # out of range -> clipped
                      [0.999, 9.99]])
    expected = torch.tensor([[0, 0], [3, 3], [1, 1], [0, 3], [3, 3]])
    out = head.discretize(a)
    assert out.dtype == torch.long
    torch.testing.assert_close(out, expected)


def test_autoregressive_head_validates_bounds():
    with pytest.raises(ConfigError, match="low < high"):
        AutoregressiveDiscretizedHead(2, low=[0.0, 1.0], high=[1.0, 1.0])
    with pytest.raises(ConfigError, match="finite"):
        AutoregressiveDiscretizedHead(2, low=[-np.inf], high=[1.0])


# ======================================================================================
# Gradients, shapes, factory
# ======================================================================================


def _heads():
    return [GaussianHead(5, 2), GaussianHead(5, 2, state_dependent_std=False), MixtureGaussianHead(5, 2),
            AutoregressiveDiscretizedHead(5, low=[-1.0, -2.0], high=[1.0, 2.0], bins=7, hidden=8)]


@pytest.mark.parametrize("head", _heads(), ids=["gauss", "gauss-const-std", "mixture", "autoregressive"])
def test_gradients_reach_every_parameter(head):
    feats = torch.randn(16, 5)
    a = torch.rand(16, 2) * 2 - 1
    dist = head(feats)
    lp = dist.log_prob(a)
    assert lp.shape == (16,)
    assert dist.sample().shape == (16, 2) and dist.mode().shape == (16, 2)
    (-lp.mean()).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_categorical_head_gradients_and_type():
    head = CategoricalHead(5, 4)
    dist = head(torch.randn(8, 5))
    assert isinstance(dist, Categorical)
    (-dist.log_prob(torch.randint(0, 4, (8,))).mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_gaussian_head_returns_diag_gaussian_with_bounded_std():
    head = GaussianHead(3, 2, log_std_bounds=(-5.0, 2.0))
    dist = head(torch.zeros(4, 3))
    assert isinstance(dist, DiagGaussian)
    torch.testing.assert_close(dist.log_std, torch.zeros(4, 2))  # log_std_init = 0
    with torch.no_grad():
        head.log_std.bias.fill_(1e3)
    assert head(torch.zeros(1, 3)).log_std.max().item() == pytest.approx(2.0)
    with torch.no_grad():
        head.log_std.bias.fill_(-1e3)
    assert head(torch.zeros(1, 3)).log_std.min().item() == pytest.approx(-5.0)


def test_mixture_head_initial_means_are_spread_apart():
    head = MixtureGaussianHead(4, 3, n_components=5)
    dist = head(torch.randn(2, 4))
    m = dist.means[0].detach()  # (K, D)
    for d in range(3):  # distinct values in every dimension, spanning [-1, 1]
        torch.testing.assert_close(m[:, d].sort().values, torch.linspace(-1, 1, 5), atol=0.1, rtol=0)
    torch.testing.assert_close(dist.weights, torch.full((2, 5), 0.2), atol=0.02, rtol=0)


def test_make_head_builds_each_kind():
    box = spaces.Box(-1.0, 1.0, (3,), np.float32)
    assert isinstance(make_head("gaussian", 8, box), GaussianHead)
    assert isinstance(make_head("mixture", 8, box, n_components=2), MixtureGaussianHead)
    ar = make_head("autoregressive", 8, box, bins=11)
    assert isinstance(ar, AutoregressiveDiscretizedHead) and ar.bins == 11 and ar.act_dim == 3
    torch.testing.assert_close(ar.low, torch.full((3,), -1.0))
    assert isinstance(make_head("categorical", 8, spaces.Discrete(4)), CategoricalHead)


@pytest.mark.parametrize("kind, space, match", [
    ("flow", spaces.Box(-1.0, 1.0, (2,)), "valid choices: 'gaussian', 'mixture', 'autoregressive', 'categorical'"),
    ("mixture", spaces.Discrete(3), "needs a Box action space; Discrete actions use 'categorical'"),
    ("gaussian", spaces.Discrete(3), "needs a Box action space"),
    ("categorical", spaces.Box(-1.0, 1.0, (2,)), "needs a Discrete action space; Box actions use"),
    ("autoregressive", spaces.Box(-np.inf, np.inf, (2,)), "finite low and high"),
])
def test_make_head_config_errors(kind, space, match):
    with pytest.raises(ConfigError, match=match) as err:
        make_head(kind, 4, space)
    assert "\n" not in str(err.value)


def test_make_head_unsupported_space():
    with pytest.raises(DeeprlError, match="Discrete and 1-D Box"):
        make_head("gaussian", 4, spaces.MultiDiscrete([2, 3]))


# ======================================================================================
# Fitting bimodal data
# ======================================================================================


def _fit(head, data, steps=300, lr=0.03):
    feats = torch.ones(len(data), 1)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        loss = -head(feats).log_prob(data).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head(feats[:1])


def test_mixture_fits_both_modes_where_a_gaussian_averages_them():
    n = 256
    data = torch.cat([torch.full((n // 2, 1), -1.0), torch.full((n // 2, 1), 1.0)]) + 0.05 * torch.randn(n, 1)
    mix = _fit(MixtureGaussianHead(1, 1, n_components=5), data)
    w, m = mix.weights[0].detach(), mix.means[0, :, 0].detach()
    top2 = m[w.argsort(descending=True)[:2]].sort().values
    torch.testing.assert_close(top2, torch.tensor([-1.0, 1.0]), atol=0.1, rtol=0)
    assert w[(m + 1).abs() < 0.2].sum().item() == pytest.approx(0.5, abs=0.05)  # half the mass per mode
    assert w[(m - 1).abs() < 0.2].sum().item() == pytest.approx(0.5, abs=0.05)
    assert abs(abs(mix.mode().item()) - 1.0) < 0.1  # the deterministic action is one of the modes

    gauss = _fit(GaussianHead(1, 1), data)
    assert abs(gauss.mean.item()) < 0.1  # the single Gaussian averages the modes...
    assert gauss.std.item() == pytest.approx(1.0, abs=0.1)  # ...and covers both with its std
