"""Policy heads for behaviour cloning, including the remedies for multimodal experts (CS285 lecture 2).

A head is an ``nn.Module`` mapping a feature batch ``(B, in_dim)`` (the output of an encoder or
MLP trunk) to an action distribution with the interface of :mod:`deeprl.nn.distributions`:
``sample()``, ``mode()``, ``log_prob(actions) -> (B,)`` and ``entropy() -> (B,)`` where it has a
closed form. Behaviour cloning maximises ``log_prob(expert_actions)``.

* :class:`GaussianHead` -> :class:`~deeprl.nn.distributions.DiagGaussian`. One Gaussian averages
  the modes of a multimodal expert (left/right around a tree gives "straight ahead").
* :class:`MixtureGaussianHead` -> :class:`MixtureOfGaussians`: K diagonal Gaussians with
  state-dependent weights, means and standard deviations.
* :class:`AutoregressiveDiscretizedHead` -> :class:`AutoregressiveDiscretized`: each action
  dimension is discretised into bins and predicted by a categorical conditioned on the features
  and the bins already chosen for the previous dimensions, so any joint distribution over the
  bin grid can be represented with a number of outputs linear in the dimension.
* :class:`CategoricalHead` -> :class:`~deeprl.nn.distributions.Categorical` for Discrete actions.

:func:`make_head` builds one by name for an action space.

Log standard deviations are bounded smoothly: ``log_std = lo + (hi - lo) * (tanh(raw) + 1) / 2``
for ``log_std_bounds = (lo, hi)``, so the bound never cuts the gradient (a hard clamp would stop
a component whose std hit the bound from ever coming back). Output layers get orthogonal weights
with gain 0.01, so at initialisation every distribution parameter is (almost) its bias, whatever
the features are.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from deeprl.core.errors import ConfigError, SpaceError
from deeprl.nn.distributions import LOG_SQRT_2PI, Categorical, DiagGaussian
from deeprl.nn.networks import mlp

HEAD_KINDS = ("gaussian", "mixture", "autoregressive", "categorical")


def _linear(in_dim: int, out_dim: int, gain: float = 0.01, bias: torch.Tensor | float = 0.0) -> nn.Linear:
    lin = nn.Linear(in_dim, out_dim)
    nn.init.orthogonal_(lin.weight, gain)
    with torch.no_grad():
        lin.bias.copy_(torch.as_tensor(bias, dtype=lin.bias.dtype).expand_as(lin.bias))
    return lin


def _check_bounds(log_std_bounds, log_std_init: float) -> tuple[float, float]:
    lo, hi = (float(b) for b in log_std_bounds)
    if not lo < hi:
        raise ConfigError(f"log_std_bounds must be (low, high) with low < high, got {tuple(log_std_bounds)}")
    if not lo < log_std_init < hi:
        raise ConfigError(f"log_std_init={log_std_init} must lie strictly inside log_std_bounds=({lo}, {hi})")
    return lo, hi


def _bound_log_std(raw: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return lo + 0.5 * (hi - lo) * (torch.tanh(raw) + 1.0)


def _unbound_log_std(value: float, lo: float, hi: float) -> float:
    """The raw pre-activation that :func:`_bound_log_std` maps to ``value``."""
    return math.atanh(2.0 * (value - lo) / (hi - lo) - 1.0)


# ======================================================================================
# Gaussian and categorical heads
# ======================================================================================


class GaussianHead(nn.Module):
    """features -> DiagGaussian(mean, std); std from the features or a free per-dimension parameter."""

    def __init__(self, in_dim: int, act_dim: int, state_dependent_std: bool = True,
                 log_std_bounds=(-5.0, 2.0), log_std_init: float = 0.0):
        super().__init__()
        self.act_dim = int(act_dim)
        self.lo, self.hi = _check_bounds(log_std_bounds, log_std_init)
        raw0 = _unbound_log_std(log_std_init, self.lo, self.hi)
        self.state_dependent_std = bool(state_dependent_std)
        self.mean = _linear(in_dim, self.act_dim)
        if self.state_dependent_std:
            self.log_std = _linear(in_dim, self.act_dim, bias=raw0)
        else:
            self.log_std_raw = nn.Parameter(torch.full((self.act_dim,), raw0))

    def forward(self, features: torch.Tensor) -> DiagGaussian:
        raw = self.log_std(features) if self.state_dependent_std else self.log_std_raw
        return DiagGaussian(self.mean(features), _bound_log_std(raw, self.lo, self.hi))


class CategoricalHead(nn.Module):
    """features -> Categorical(logits) over ``n`` discrete actions."""

    def __init__(self, in_dim: int, n: int):
        super().__init__()
        self.logits = _linear(in_dim, int(n))

    def forward(self, features: torch.Tensor) -> Categorical:
        return Categorical(self.logits(features))


# ======================================================================================
# Mixture of Gaussians
# ======================================================================================


class MixtureOfGaussians:
    """p(a) = sum_k w_k N(a; mu_k, diag(sigma_k^2)), w = softmax(logits).

    Shapes: ``logits (B, K)``, ``means (B, K, D)``, ``log_stds (B, K, D)`` (broadcast to the means).
    ``log_prob(a) = logsumexp_k(log w_k + sum_d log N(a_d; mu_kd, sigma_kd))``. There is no
    closed-form entropy, so there is no ``entropy()``.
    """

    def __init__(self, logits: torch.Tensor, means: torch.Tensor, log_stds: torch.Tensor):
        self.log_weights = logits - logits.logsumexp(-1, keepdim=True)
        self.means = means
        self.log_stds = log_stds.expand_as(means)
        self.stds = self.log_stds.exp()

    @property
    def weights(self) -> torch.Tensor:
        return self.log_weights.exp()

    def component_log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """log N(a; mu_k, sigma_k) for every component: ``(B, K)``."""
        z = (actions.unsqueeze(-2) - self.means) / self.stds
        return (-0.5 * z.pow(2) - self.log_stds - LOG_SQRT_2PI).sum(-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return (self.log_weights + self.component_log_prob(actions)).logsumexp(-1)

    def _pick(self, k: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x.gather(-2, k[..., None, None].expand(*k.shape, 1, x.shape[-1])).squeeze(-2)

    def sample(self) -> torch.Tensor:
        """A component k ~ w per row, then a ~ N(mu_k, sigma_k) (not reparameterised: no gradient)."""
        with torch.no_grad():
            k = Categorical(self.log_weights).sample()
            mean, std = self._pick(k, self.means), self._pick(k, self.stds)
            return mean + std * torch.randn_like(mean)

    def mode(self) -> torch.Tensor:
        """The mean of the heaviest component.

        This is what a deterministic BC policy executes; it is not the exact mode of the mixture
        density (overlapping components can put the density's maximum elsewhere), but it is always
        the centre of one of the modes the mixture learned rather than an average of them.
        """
        return self._pick(self.log_weights.argmax(-1), self.means)


class MixtureGaussianHead(nn.Module):
    """features -> MixtureOfGaussians with ``n_components`` diagonal Gaussians.

    Three linear layers produce the logits ``(B, K)``, means ``(B, K, D)`` and raw log stds.
    Initialisation (the output weights are small, so these biases are the initial parameters):
    equal weights; log std ``log_std_init`` for every component; and means spread apart so the
    components do not start on top of each other (identical components get identical gradients
    and stay collapsed): in each action dimension the K means are a random permutation (from
    the global torch RNG) of ``linspace(-init_spread, init_spread, K)``, i.e. a Latin hypercube
    over ``[-init_spread, init_spread]^D`` with distinct values in every dimension. The default
    spread of 1 suits actions normalised to [-1, 1]; ``K = 1`` starts at 0.
    """

    def __init__(self, in_dim: int, act_dim: int, n_components: int = 5, log_std_bounds=(-5.0, 2.0),
                 log_std_init: float = math.log(0.5), init_spread: float = 1.0):
        super().__init__()
        if int(n_components) < 1:
            raise ConfigError(f"n_components must be >= 1, got {n_components}")
        self.act_dim, self.n_components = int(act_dim), int(n_components)
        self.lo, self.hi = _check_bounds(log_std_bounds, log_std_init)
        K, D = self.n_components, self.act_dim
        grid = torch.linspace(-init_spread, init_spread, K) if K > 1 else torch.zeros(1)
        means0 = torch.stack([grid[torch.randperm(K)] for _ in range(D)], dim=-1)  # (K, D)
        self.logits = _linear(in_dim, K)
        self.means = _linear(in_dim, K * D, bias=means0.reshape(-1))
        self.log_stds = _linear(in_dim, K * D, bias=_unbound_log_std(log_std_init, self.lo, self.hi))

    def forward(self, features: torch.Tensor) -> MixtureOfGaussians:
        shape = (*features.shape[:-1], self.n_components, self.act_dim)
        log_stds = _bound_log_std(self.log_stds(features), self.lo, self.hi)
        return MixtureOfGaussians(self.logits(features), self.means(features).reshape(shape), log_stds.reshape(shape))


# ======================================================================================
# Autoregressive discretisation
# ======================================================================================


class AutoregressiveDiscretized:
    """p(bins) = prod_d p(bin_d | features, bin_1 .. bin_{d-1}), a categorical per dimension.

    ``log_prob(a)`` discretises ``a`` with the head's :meth:`~AutoregressiveDiscretizedHead.discretize`
    and returns the log-probability of the bin tuple, conditioning each dimension on the *given*
    previous bins (teacher forcing: one batched pass per dimension). It is a probability, not a
    density: the density of the piecewise-uniform distribution over the box is
    ``log_prob(a) - sum_d log(bin_width_d)`` (:meth:`log_density`). There is no closed-form entropy.
    """

    def __init__(self, head: "AutoregressiveDiscretizedHead", features: torch.Tensor):
        self.head = head
        self.features = features

    def _logits(self, d: int, idx: torch.Tensor) -> torch.Tensor:
        """Normalised log-probs of dimension d's bins given the bins ``idx[:, :d]``."""
        return Categorical(self.head.conditional_logits(self.features, idx[..., :d])).logits

    def log_prob_bins(self, idx: torch.Tensor) -> torch.Tensor:
        idx = idx.long()
        out = 0.0
        for d in range(self.head.act_dim):
            out = out + self._logits(d, idx).gather(-1, idx[..., d:d + 1]).squeeze(-1)
        return out

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.log_prob_bins(self.head.discretize(actions))

    def log_density(self, actions: torch.Tensor) -> torch.Tensor:
        return self.log_prob(actions) - self.head.width.log().sum()

    def _decode(self, greedy: bool) -> torch.Tensor:
        with torch.no_grad():
            idx = torch.zeros((*self.features.shape[:-1], 0), dtype=torch.long, device=self.features.device)
            for d in range(self.head.act_dim):
                dist = Categorical(self._logits(d, idx))
                choice = dist.mode() if greedy else dist.sample()
                idx = torch.cat([idx, choice.unsqueeze(-1)], dim=-1)
            return idx

    def sample_bins(self) -> torch.Tensor:
        return self._decode(greedy=False)

    def sample(self) -> torch.Tensor:
        """Bins sampled dimension by dimension, returned as their centres."""
        return self.head.centres(self.sample_bins())

    def mode(self) -> torch.Tensor:
        """Greedy decoding: the most probable bin of each dimension given the previous choices.

        This is not necessarily the most probable bin tuple (that needs a search over the grid).
        """
        return self.head.centres(self._decode(greedy=True))


class AutoregressiveDiscretizedHead(nn.Module):
    """features -> AutoregressiveDiscretized over ``bins`` equal-width bins per action dimension.

    Dimension d's categorical comes from its own MLP ``(in_dim + d) -> hidden -> bins`` applied to
    ``[features, centres of the previous dims' bins scaled to [-1, 1]]``. Bin ``i`` of dimension d
    covers ``[low_d + i w_d, low_d + (i + 1) w_d)`` with ``w_d = (high_d - low_d) / bins``; the
    last bin also contains ``high_d``.
    """

    def __init__(self, in_dim: int, low, high, bins: int = 21, hidden: int = 64, activation: str = "tanh"):
        super().__init__()
        low, high = np.broadcast_arrays(np.atleast_1d(np.asarray(low, np.float64)),
                                        np.atleast_1d(np.asarray(high, np.float64)))
        if low.ndim != 1 or not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
            raise ConfigError(f"autoregressive head needs finite 1-D bounds with low < high, got low={low}, "
                              f"high={high}")
        if int(bins) < 1:
            raise ConfigError(f"bins must be >= 1, got {bins}")
        self.act_dim, self.bins = len(low), int(bins)
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))
        self.register_buffer("width", torch.as_tensor((high - low) / self.bins, dtype=torch.float32))
        self.nets = nn.ModuleList(mlp(in_dim + d, (int(hidden),), self.bins, activation, out_gain=0.01)
                                  for d in range(self.act_dim))

    def discretize(self, actions: torch.Tensor) -> torch.Tensor:
        """Bin indices (long, same shape): clip to [low, high], floor, ``high`` goes to the last bin."""
        a = torch.maximum(torch.minimum(actions.to(self.low.dtype), self.high), self.low)
        return torch.floor((a - self.low) / self.width).long().clamp_(0, self.bins - 1)

    def centres(self, idx: torch.Tensor) -> torch.Tensor:
        """The actions at the centres of bins ``idx``."""
        return self.low + (idx.to(self.low.dtype) + 0.5) * self.width

    def scaled_centres(self, idx: torch.Tensor) -> torch.Tensor:
        """Bin centres mapped to [-1, 1]: ``(2 i + 1) / bins - 1``."""
        return (2 * idx.to(self.low.dtype) + 1) / self.bins - 1

    def conditional_logits(self, features: torch.Tensor, prev_idx: torch.Tensor) -> torch.Tensor:
        """Unnormalised logits of dimension ``d = prev_idx.shape[-1]`` given the previous bins."""
        d = prev_idx.shape[-1]
        x = torch.cat([features, self.scaled_centres(prev_idx).to(features.dtype)], dim=-1) if d else features
        return self.nets[d](x)

    def forward(self, features: torch.Tensor) -> AutoregressiveDiscretized:
        return AutoregressiveDiscretized(self, features)


# ======================================================================================
# Factory
# ======================================================================================


def make_head(kind: str, in_dim: int, action_space: spaces.Space, **kw) -> nn.Module:
    """Build the head ``kind`` (one of :data:`HEAD_KINDS`) for ``action_space``; ``kw`` go to its constructor.

    Box (1-D) actions: "gaussian", "mixture", "autoregressive" (needs finite bounds, which become
    its ``low``/``high``). Discrete actions: "categorical". A wrong name or a kind that does not fit
    the space raises ConfigError; a space no head supports raises SpaceError.
    """
    choices = ", ".join(repr(k) for k in HEAD_KINDS)
    if kind not in HEAD_KINDS:
        raise ConfigError(f"unknown policy_head={kind!r}; valid choices: {choices}")
    box_kinds = "'gaussian', 'mixture' or 'autoregressive'"
    if isinstance(action_space, spaces.Discrete):
        if kind != "categorical":
            raise ConfigError(f"policy_head={kind!r} needs a Box action space; Discrete actions use 'categorical'")
        if int(action_space.start) != 0:
            raise SpaceError(f"policy_head='categorical' needs a Discrete action space starting at 0, "
                             f"got start={action_space.start}")
        return CategoricalHead(in_dim, int(action_space.n), **kw)
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        act_dim = int(action_space.shape[0])
        if kind == "categorical":
            raise ConfigError(f"policy_head='categorical' needs a Discrete action space; Box actions use {box_kinds}")
        if kind == "gaussian":
            return GaussianHead(in_dim, act_dim, **kw)
        if kind == "mixture":
            return MixtureGaussianHead(in_dim, act_dim, **kw)
        if not action_space.is_bounded("both"):
            raise ConfigError("policy_head='autoregressive' needs a Box action space with finite low and high; "
                              "unbounded Box actions use 'gaussian' or 'mixture'")
        return AutoregressiveDiscretizedHead(in_dim, action_space.low, action_space.high, **kw)
    raise SpaceError(f"policy heads support Discrete and 1-D Box action spaces, got {action_space}; "
                     f"valid choices: {choices}")
