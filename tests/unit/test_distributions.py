"""Tests for deeprl.nn.distributions against torch.distributions, SciPy and closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch import distributions as D

from deeprl.nn.distributions import Categorical, DiagGaussian, TanhGaussian


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ======================================================================================
# Categorical
# ======================================================================================


def _random_logits(B=6, n=5, seed=0, scale=3.0):
    return torch.randn(B, n, generator=_gen(seed), dtype=torch.float64) * scale + 7.0  # unnormalised


def test_categorical_log_prob_matches_torch():
    logits = _random_logits()
    ref = D.Categorical(logits=logits)
    actions = torch.tensor([0, 1, 2, 3, 4, 2])
    torch.testing.assert_close(Categorical(logits).log_prob(actions), ref.log_prob(actions))
    # float-typed actions (as stored in a buffer) give the same answer
    torch.testing.assert_close(Categorical(logits).log_prob(actions.double()), ref.log_prob(actions))


def test_categorical_log_prob_all_actions_sum_to_one():
    logits = _random_logits(B=4, n=7, seed=1)
    dist = Categorical(logits)
    total = sum(dist.log_prob(torch.full((4,), a)).exp() for a in range(7))
    torch.testing.assert_close(total, torch.ones(4, dtype=torch.float64))


def test_categorical_entropy_matches_torch_and_closed_forms():
    logits = _random_logits(seed=2)
    torch.testing.assert_close(Categorical(logits).entropy(), D.Categorical(logits=logits).entropy())
    # uniform over n actions: log n; deterministic-ish: ~0
    torch.testing.assert_close(Categorical(torch.zeros(3, 5)).entropy(), torch.full((3,), math.log(5)))
    peaked = torch.tensor([[50.0, 0.0, 0.0]], dtype=torch.float64)
    assert Categorical(peaked).entropy().item() == pytest.approx(0.0, abs=1e-18)


def test_categorical_kl_matches_torch():
    p, q = _random_logits(seed=3), _random_logits(seed=4)
    kl = Categorical(p).kl(Categorical(q))
    torch.testing.assert_close(kl, D.kl_divergence(D.Categorical(logits=p), D.Categorical(logits=q)))
    assert torch.all(kl > 0)
    torch.testing.assert_close(Categorical(p).kl(Categorical(p + 3.0)), torch.zeros(6, dtype=torch.float64))


def test_categorical_log_prob_gradient_matches_torch():
    logits = _random_logits(seed=5).requires_grad_(True)
    actions = torch.tensor([4, 3, 2, 1, 0, 0])
    (Categorical(logits).log_prob(actions) * torch.arange(1.0, 7.0, dtype=torch.float64)).sum().backward()
    ours = logits.grad.clone()
    logits.grad = None
    (D.Categorical(logits=logits).log_prob(actions) * torch.arange(1.0, 7.0, dtype=torch.float64)).sum().backward()
    torch.testing.assert_close(ours, logits.grad)


def test_categorical_mode_is_argmax():
    logits = _random_logits(seed=6)
    assert torch.equal(Categorical(logits).mode(), logits.argmax(-1))


def test_categorical_sample_frequencies_chi_square():
    probs = torch.tensor([0.05, 0.15, 0.5, 0.3])
    n_samples = 200_000
    dist = Categorical(probs.log().expand(n_samples, 4))
    torch.manual_seed(123)
    samples = dist.sample()
    assert samples.shape == (n_samples,)
    assert samples.dtype == torch.int64
    counts = torch.bincount(samples, minlength=4).numpy()
    p64 = probs.double().numpy()
    expected = p64 / p64.sum() * n_samples
    _, p_value = stats.chisquare(counts, expected)
    assert p_value > 1e-3, (counts, expected)
    np.testing.assert_allclose(counts / n_samples, probs.numpy(), atol=5e-3)


def test_categorical_sample_per_row_distributions():
    """Each row of a batch samples from its own distribution."""
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8], [1 / 3, 1 / 3, 1 / 3]])
    reps = 30_000
    logits = probs.clamp_min(1e-30).log().repeat(reps, 1)  # rows cycle 0,1,2,0,1,2,...
    torch.manual_seed(7)
    samples = Categorical(logits).sample().view(reps, 3)
    for row in range(3):
        freq = torch.bincount(samples[:, row], minlength=3).double() / reps
        torch.testing.assert_close(freq, probs[row].double(), atol=1e-2, rtol=0)
    assert not torch.any(samples[:, 0] == 2)  # zero-probability actions are never drawn
    assert not torch.any(samples[:, 1] == 0)


# ======================================================================================
# DiagGaussian
# ======================================================================================


def _torch_diag(mean, log_std):
    return D.Independent(D.Normal(mean, log_std.exp().expand_as(mean)), 1)


def _gauss_params(B=5, A=3, seed=0):
    g = _gen(seed)
    mean = torch.randn(B, A, generator=g, dtype=torch.float64) * 2
    log_std = torch.randn(B, A, generator=g, dtype=torch.float64) * 0.5
    return mean, log_std


def test_diag_gaussian_log_prob_matches_torch():
    mean, log_std = _gauss_params()
    x = torch.randn(5, 3, generator=_gen(9), dtype=torch.float64) * 3
    torch.testing.assert_close(DiagGaussian(mean, log_std).log_prob(x), _torch_diag(mean, log_std).log_prob(x))


def test_diag_gaussian_log_prob_matches_scipy():
    mean, log_std = _gauss_params(B=4, A=2, seed=1)
    x = torch.randn(4, 2, generator=_gen(2), dtype=torch.float64)
    ref = stats.multivariate_normal
    expected = [ref(mean[i].numpy(), np.diag(log_std[i].exp().numpy() ** 2)).logpdf(x[i].numpy())
                for i in range(4)]
    np.testing.assert_allclose(DiagGaussian(mean, log_std).log_prob(x).numpy(), expected, rtol=1e-10)


def test_diag_gaussian_entropy_and_kl_match_torch():
    mean, log_std = _gauss_params(seed=3)
    mean2, log_std2 = _gauss_params(seed=4)
    p, q = DiagGaussian(mean, log_std), DiagGaussian(mean2, log_std2)
    torch.testing.assert_close(p.entropy(), _torch_diag(mean, log_std).entropy())
    torch.testing.assert_close(
        p.kl(q), D.kl_divergence(_torch_diag(mean, log_std), _torch_diag(mean2, log_std2)))
    torch.testing.assert_close(p.kl(p), torch.zeros(5, dtype=torch.float64))


def test_diag_gaussian_state_independent_log_std_broadcasts():
    B, A = 7, 3
    mean = torch.randn(B, A, generator=_gen(5), dtype=torch.float64)
    log_std = torch.tensor([-0.5, 0.0, 0.7], dtype=torch.float64, requires_grad=True)
    dist = DiagGaussian(mean, log_std)
    x = torch.randn(B, A, generator=_gen(6), dtype=torch.float64)
    lp, ent = dist.log_prob(x), dist.entropy()
    assert lp.shape == (B,) and ent.shape == (B,)
    for i in range(B):  # each row against an un-broadcast torch reference
        ref = D.Independent(D.Normal(mean[i], log_std.exp()), 1)
        torch.testing.assert_close(lp[i], ref.log_prob(x[i]))
        torch.testing.assert_close(ent[i], ref.entropy())
    other = DiagGaussian(mean + 1, torch.zeros(A, dtype=torch.float64))
    torch.testing.assert_close(
        dist.kl(other),
        D.kl_divergence(_torch_diag(mean, log_std), _torch_diag(mean + 1, torch.zeros(A, dtype=torch.float64))))
    # gradients reach the shared parameter, and equal torch's
    lp.sum().backward()
    ours = log_std.grad.clone()
    log_std.grad = None
    _torch_diag(mean, log_std).log_prob(x).sum().backward()
    torch.testing.assert_close(ours, log_std.grad)


def test_diag_gaussian_sample_moments_and_mode():
    mean = torch.tensor([1.0, -2.0, 0.0])
    log_std = torch.tensor([0.0, -1.0, 1.0])
    dist = DiagGaussian(mean.expand(100_000, 3), log_std)
    s = dist.sample()
    assert s.shape == (100_000, 3)
    torch.testing.assert_close(s.mean(0), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(s.std(0), log_std.exp(), atol=0.03, rtol=0)
    assert torch.equal(DiagGaussian(mean, log_std).mode(), mean)


# ======================================================================================
# TanhGaussian
# ======================================================================================


def _tanh_density_1d(mean, std, low, high):
    dist = TanhGaussian(torch.tensor([[mean]], dtype=torch.float64),
                        torch.tensor([math.log(std)], dtype=torch.float64), low, high)

    def pdf(a):
        return dist.log_prob(torch.tensor([[a]], dtype=torch.float64)).exp().item()

    return pdf


TANH_1D_CASES = [
    (0.0, 1.0, -1.0, 1.0),
    (0.8, 0.3, -1.0, 1.0),
    (-1.5, 0.6, -1.0, 1.0),
    (0.0, 1.0, -2.0, 3.0),
    (0.4, 0.5, -2.0, 3.0),
    (-0.7, 1.2, 0.0, 0.1),
]


@pytest.mark.parametrize("mean,std,low,high", TANH_1D_CASES)
def test_tanh_gaussian_density_integrates_to_one_1d(mean, std, low, high):
    pdf = _tanh_density_1d(mean, std, low, high)
    total, err = integrate.quad(pdf, low, high, limit=200, epsabs=1e-10, epsrel=1e-10)
    assert total == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("mean,std,low,high", TANH_1D_CASES[:4])
def test_tanh_gaussian_cdf_matches_normal_cdf(mean, std, low, high):
    """P(a <= x) = Phi((atanh(y(x)) - mean) / std): checks where the mass is, not just its total."""
    pdf = _tanh_density_1d(mean, std, low, high)
    for frac in (0.1, 0.5, 0.93):
        x = low + frac * (high - low)
        mass, _ = integrate.quad(pdf, low, x, limit=200, epsabs=1e-11)
        y = (x - (low + high) / 2) / ((high - low) / 2)
        assert mass == pytest.approx(stats.norm.cdf(math.atanh(y), mean, std), abs=1e-6)


def test_tanh_gaussian_density_integrates_to_one_2d_grid():
    """Per-dimension bounds in 2-D: Gauss-Legendre product rule over the box."""
    low = torch.tensor([-2.0, 0.0], dtype=torch.float64)
    high = torch.tensor([3.0, 0.5], dtype=torch.float64)
    mean = torch.tensor([0.3, -0.5], dtype=torch.float64)
    log_std = torch.tensor([0.5, 0.4], dtype=torch.float64).log()
    nodes, weights = np.polynomial.legendre.leggauss(300)
    axes, wts = [], []
    for d in range(2):
        lo, hi = low[d].item(), high[d].item()
        axes.append((hi - lo) / 2 * nodes + (hi + lo) / 2)
        wts.append((hi - lo) / 2 * weights)
    xx, yy = np.meshgrid(axes[0], axes[1], indexing="ij")
    pts = torch.tensor(np.stack([xx.ravel(), yy.ravel()], -1))
    dist = TanhGaussian(mean.expand(len(pts), 2), log_std, low, high)
    dens = dist.log_prob(pts).exp().numpy().reshape(xx.shape)
    total = float(wts[0] @ dens @ wts[1])
    assert total == pytest.approx(1.0, abs=1e-4)


def _torch_tanh_ref(mean, log_std, low, high):
    low = torch.as_tensor(low, dtype=mean.dtype)
    high = torch.as_tensor(high, dtype=mean.dtype)
    base = D.Normal(mean, log_std.exp().expand_as(mean))
    transformed = D.TransformedDistribution(
        base, [D.TanhTransform(), D.AffineTransform(loc=(high + low) / 2, scale=(high - low) / 2)])
    return D.Independent(transformed, 1)


def _closed_form_tanh_log_prob(a, mean, std, low, high):
    """Naive change of variables in NumPy: log N(atanh(y)) - log|da/du|."""
    a, mean, std = (np.asarray(v, np.float64) for v in (a, mean, std))
    low, high = np.broadcast_to(low, a.shape[-1:]), np.broadcast_to(high, a.shape[-1:])
    scale = (high - low) / 2
    y = (a - (high + low) / 2) / scale
    u = np.arctanh(y)
    return (stats.norm.logpdf(u, mean, std) - np.log(scale * (1 - y**2))).sum(-1)


@pytest.mark.parametrize("low,high", [(-1.0, 1.0), (-2.0, 3.0), ([-1.0, 0.0, -5.0], [2.0, 0.5, 5.0])])
def test_tanh_gaussian_log_prob_matches_torch_transformed_and_closed_form(low, high):
    B, A = 64, 3
    g = _gen(11)
    mean = torch.randn(B, A, generator=g, dtype=torch.float64)
    log_std = torch.randn(A, generator=g, dtype=torch.float64) * 0.3 - 0.2
    lo = torch.as_tensor(low, dtype=torch.float64)
    hi = torch.as_tensor(high, dtype=torch.float64)
    # interior points, away from the +-1 clamp
    y = torch.rand(B, A, generator=g, dtype=torch.float64) * 1.9 - 0.95
    actions = (hi + lo) / 2 + (hi - lo) / 2 * y
    ours = TanhGaussian(mean, log_std, low, high).log_prob(actions)
    ref = _torch_tanh_ref(mean, log_std, low, high).log_prob(actions)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
    closed = _closed_form_tanh_log_prob(actions.numpy(), mean.numpy(), log_std.exp().numpy(),
                                        np.asarray(low), np.asarray(high))
    np.testing.assert_allclose(ours.numpy(), closed, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("low,high", [(-1.0, 1.0), (-2.0, 3.0)])
def test_tanh_gaussian_rsample_log_prob_consistent_with_log_prob(low, high):
    B, A = 4096, 2
    mean = torch.randn(B, A, generator=_gen(12), dtype=torch.float64) * 0.7
    log_std = torch.tensor([-0.3, 0.2], dtype=torch.float64)
    dist = TanhGaussian(mean, log_std, low, high)
    torch.manual_seed(1)
    actions, logp = dist.rsample_with_log_prob()
    assert actions.shape == (B, A) and logp.shape == (B,)
    scale, center = (high - low) / 2, (high + low) / 2
    interior = (((actions - center) / scale).abs() < 0.999).all(-1)
    assert interior.float().mean() > 0.9
    torch.testing.assert_close(logp[interior], dist.log_prob(actions)[interior], rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(logp[interior], _torch_tanh_ref(mean, log_std, low, high).log_prob(actions)[interior],
                               rtol=1e-7, atol=1e-7)


def test_tanh_gaussian_rsample_is_reparameterised():
    mean = torch.tensor([[0.3, -1.0]], dtype=torch.float64, requires_grad=True)
    log_std = torch.tensor([-0.5, 0.1], dtype=torch.float64, requires_grad=True)
    low, high = -2.0, 3.0
    torch.manual_seed(5)
    a, _ = TanhGaussian(mean, log_std, low, high).rsample_with_log_prob()
    a.sum().backward()
    # a = c + s tanh(mean + std * eps)  =>  da/dmean = s (1 - tanh(u)^2)
    y = ((a.detach() - 0.5) / 2.5)
    torch.testing.assert_close(mean.grad, 2.5 * (1 - y**2))
    eps = (torch.atanh(y) - mean.detach()) / log_std.detach().exp()
    torch.testing.assert_close(log_std.grad, (2.5 * (1 - y**2) * eps * log_std.detach().exp()).squeeze(0))


@pytest.mark.parametrize("low,high", [(-1.0, 1.0), (-2.0, 3.0), ([0.0, -10.0], [0.5, -9.0])])
def test_tanh_gaussian_samples_within_bounds_and_mode(low, high):
    B = 20_000
    mean = torch.randn(B, 2, generator=_gen(13)) * 3  # float32, saturates often
    log_std = torch.tensor([1.0, 1.5])  # wide: many samples pile up at the bounds
    dist = TanhGaussian(mean, log_std, low, high)
    lo, hi = torch.as_tensor(low), torch.as_tensor(high)
    for s in (dist.sample(), dist.rsample_with_log_prob()[0]):
        assert s.shape == (B, 2)
        assert torch.all(s >= lo) and torch.all(s <= hi)
    torch.testing.assert_close(dist.mode(), lo + (torch.tanh(mean) + 1) / 2 * (hi - lo))
    assert not dist.sample().requires_grad


def test_tanh_gaussian_sample_distribution_matches_cdf():
    """Kolmogorov-Smirnov test of sample() against the exact CDF Phi((atanh(y) - mu) / sigma)."""
    mean, std, low, high = 0.4, 0.8, -2.0, 3.0
    dist = TanhGaussian(torch.full((50_000, 1), mean, dtype=torch.float64),
                        torch.tensor([math.log(std)], dtype=torch.float64), low, high)
    torch.manual_seed(3)
    s = dist.sample().squeeze(-1).numpy()

    def cdf(x):
        return stats.norm.cdf(np.arctanh((x - 0.5) / 2.5), mean, std)

    assert stats.kstest(s, cdf).pvalue > 1e-3


def test_tanh_gaussian_log_prob_finite_at_bounds():
    dist = TanhGaussian(torch.zeros(2, 1), torch.zeros(1), -2.0, 3.0)
    lp = dist.log_prob(torch.tensor([[-2.0], [3.0]]))
    assert torch.all(torch.isfinite(lp))


def test_tanh_gaussian_entropy_estimate_is_unbiased():
    mean, std, low, high = 0.2, 0.6, -2.0, 3.0
    pdf = _tanh_density_1d(mean, std, low, high)
    exact, _ = integrate.quad(lambda a: -pdf(a) * math.log(max(pdf(a), 1e-300)), low, high, limit=200)
    dist = TanhGaussian(torch.full((100_000, 1), mean, dtype=torch.float64),
                        torch.tensor([math.log(std)], dtype=torch.float64), low, high)
    torch.manual_seed(4)
    est = dist.entropy()
    assert est.shape == (100_000,)
    assert est.mean().item() == pytest.approx(exact, abs=4 * est.std().item() / math.sqrt(len(est)) + 1e-3)


def test_tanh_gaussian_follows_input_device():
    """Scalar bounds must be created on the policy's device (meta stands in for a GPU)."""
    mean = torch.zeros(4, 2, device="meta")
    dist = TanhGaussian(mean, torch.zeros(2, device="meta"), -2.0, 3.0)
    assert dist.log_prob(torch.zeros(4, 2, device="meta")).shape == (4,)
    a, lp = dist.rsample_with_log_prob()
    assert a.device.type == "meta" and lp.shape == (4,)
