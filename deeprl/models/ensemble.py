"""Learned dynamics: an ensemble of E networks f_e(s, a) run as one batched MLP; CS285 lecture 11.

Each member predicts the change of state, normalised: with inputs x = (s, a) and targets
y = (s' - s) (and the reward r when ``learn_reward``), both standardised with the training
data's mean and std,

    deterministic:  mu_e(x_norm)                      trained by MSE  (1/B) sum ||mu_e - y_norm||^2
    probabilistic:  N(mu_e(x_norm), diag exp(v_e))    trained by the Gaussian NLL (Chua et al. 2018)

The log-variance is softly bounded by learned limits (PETS):
``v = max - softplus(max - v_raw)``, then ``v = min + softplus(v - min)``, with the penalty
``0.01 (sum max - sum min)`` that keeps the limits tight. Every layer is an
:class:`~deeprl.nn.ensemble.EnsembleLinear` (one ``baddbmm`` for all members), so E members
cost about one on small inputs.

``predict(states, actions)`` returns next states and rewards in the env's units; ``members``
selects which member answers each row (trajectory sampling) and ``sample`` draws the
probabilistic members' noise.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deeprl.core.errors import ConfigError
from deeprl.nn.ensemble import EnsembleLinear
from deeprl.nn.networks import ACTIVATIONS

__all__ = ["DynamicsEnsemble", "ensemble_mse", "gaussian_nll", "logvar_bound_penalty"]

LOG_2PI = 1.8378770664093453


class DynamicsEnsemble(nn.Module):
    """E members f_e(s, a) -> normalised (s' - s [, r]); see the module docstring.

    ``forward(x_norm (B, in) shared, or (E, B, in) per member) -> (mean (E, B, out), logvar or None)``.
    The normaliser's statistics are buffers (saved with ``state_dict``), set by :meth:`set_normalizer`.
    """

    def __init__(self, obs_dim: int, act_dim: int, members: int = 5, hidden: tuple[int, ...] = (200, 200, 200, 200),
                 activation: str = "silu", probabilistic: bool = True, learn_reward: bool = False,
                 min_logvar: float = -10.0, max_logvar: float = 0.5):
        super().__init__()
        if members < 1:
            raise ConfigError(f"ensemble_size must be >= 1, got {members}")
        if activation not in ACTIVATIONS:
            raise ConfigError(f"activation: {activation!r} is not one of {', '.join(ACTIVATIONS)}")
        self.obs_dim, self.act_dim, self.members = int(obs_dim), int(act_dim), int(members)
        self.probabilistic, self.learn_reward = bool(probabilistic), bool(learn_reward)
        self.in_dim, self.out_dim = self.obs_dim + self.act_dim, self.obs_dim + int(learn_reward)
        layers: list[nn.Module] = []
        d = self.in_dim
        for h in hidden:
            layers += [EnsembleLinear(members, d, h), ACTIVATIONS[activation]()]
            d = h
        self.body = nn.Sequential(*layers)
        self.mean_head = EnsembleLinear(members, d, self.out_dim)
        self.logvar_head = EnsembleLinear(members, d, self.out_dim) if probabilistic else None
        if probabilistic:
            self.max_logvar = nn.Parameter(torch.full((1, 1, self.out_dim), float(max_logvar)))
            self.min_logvar = nn.Parameter(torch.full((1, 1, self.out_dim), float(min_logvar)))
        self.register_buffer("in_mean", torch.zeros(self.in_dim))
        self.register_buffer("in_std", torch.ones(self.in_dim))
        self.register_buffer("out_mean", torch.zeros(self.out_dim))
        self.register_buffer("out_std", torch.ones(self.out_dim))

    # -- normalisation ----------------------------------------------------------------------
    def set_normalizer(self, inputs: torch.Tensor, targets: torch.Tensor, min_std: float = 1e-6) -> None:
        """Standardise with the mean and std of the training data (rows are samples); a
        dimension whose std is below ``min_std`` (a constant input) is only centred."""
        for name, data in (("in", inputs), ("out", targets)):
            mean, std = data.mean(0), data.std(0, unbiased=False)
            getattr(self, f"{name}_mean").copy_(mean)
            getattr(self, f"{name}_std").copy_(torch.where(std < min_std, torch.ones_like(std), std))

    def normalize_inputs(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return (torch.cat([states, actions], dim=-1) - self.in_mean) / self.in_std

    def normalize_targets(self, targets: torch.Tensor) -> torch.Tensor:
        return (targets - self.out_mean) / self.out_std

    def denormalize_targets(self, y_norm: torch.Tensor) -> torch.Tensor:
        return y_norm * self.out_std + self.out_mean

    @staticmethod
    def targets_of(states, next_states, rewards=None) -> torch.Tensor:
        """The regression targets ``s' - s`` (and ``r`` as a last column when given)."""
        delta = next_states - states
        return delta if rewards is None else torch.cat([delta, rewards.reshape(-1, 1)], dim=-1)

    # -- the networks -----------------------------------------------------------------------
    def forward(self, x_norm: torch.Tensor, members: slice | torch.Tensor = slice(None)):
        """``members`` (a slice or index tensor) runs only those members: then ``x_norm`` is
        shared ``(B, in)`` or one block of rows per selected member ``(len(members), B, in)``."""
        h = x_norm
        for layer in self.body:
            h = layer(h, members) if isinstance(layer, EnsembleLinear) else layer(h)
        # the heads run in float32 even under bfloat16 autocast (the hidden layers' matmuls are the
        # cost): a bfloat16 output would round the normalised prediction to 2^-8 of its size, far
        # coarser than the squared errors of a fitted model (1e-3 to 1e-5)
        with torch.autocast(h.device.type, enabled=False):
            h = h.float()
            mean = self.mean_head(h, members)
            if self.logvar_head is None:
                return mean, None
            v = self.logvar_head(h, members)
            v = self.max_logvar - F.softplus(self.max_logvar - v)
            v = self.min_logvar + F.softplus(v - self.min_logvar)
        return mean, v

    def predict(self, states: torch.Tensor, actions: torch.Tensor, members: torch.Tensor | None = None,
                sample: bool = True, generator: torch.Generator | None = None):
        """Next states ``(B, n)`` and rewards ``(B,)`` (None unless ``learn_reward``), in env units.

        ``members (B,)`` long: the member that answers each row (trajectory sampling); None: the
        mean of all members' means (a deterministic "mean model"). ``sample``: add the
        probabilistic member's noise ``exp(v / 2) * eps`` (drawn with ``generator``).
        """
        x = self.normalize_inputs(states, actions)
        mean, logvar = self(x)  # (E, B, out)
        if members is None:
            y = mean.mean(0)
        else:
            rows = torch.arange(x.shape[0], device=x.device)
            y = mean[members, rows]
            if sample and logvar is not None:
                std = (0.5 * logvar[members, rows]).exp()
                y = y + std * torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        y = self.denormalize_targets(y)
        next_states = states + y[:, :self.obs_dim]
        return next_states, (y[:, self.obs_dim] if self.learn_reward else None)


def gaussian_nll(mean: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-member mean negative log-likelihood of ``target`` under N(mean, diag exp(logvar)):
    ``(E, B, d)`` -> ``(E,)``, the mean over rows of ``sum_d 1/2 (log 2pi + v + (y - mu)^2 e^{-v})``."""
    nll = 0.5 * (LOG_2PI + logvar + (target - mean).pow(2) * torch.exp(-logvar))
    return nll.sum(-1).mean(-1)


def ensemble_mse(mean: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-member mean squared error ``(E, B, d)`` -> ``(E,)``: the mean over rows and dimensions."""
    return (target - mean).pow(2).mean((-2, -1))


def logvar_bound_penalty(model: DynamicsEnsemble, weight: float = 0.01) -> torch.Tensor:
    """PETS' regulariser on the learned log-variance limits: ``weight * (sum max - sum min)``."""
    if not model.probabilistic:
        return torch.zeros(())
    return weight * (model.max_logvar.sum() - model.min_logvar.sum())
