"""Action distributions with the few operations policy-gradient methods need.

Thin, allocation-light classes instead of ``torch.distributions`` (whose argument
validation costs more than the maths on small batches). Shapes: a batch of ``B``
states gives ``log_prob(actions) -> (B,)`` and ``entropy() -> (B,)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Categorical:
    """pi(a|s) = softmax(logits)[a] over ``n`` discrete actions."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits - logits.logsumexp(-1, keepdim=True)  # normalised log-probs

    def sample(self) -> torch.Tensor:
        # Gumbel-max trick: argmax(logits + Gumbel noise) ~ Categorical(logits).
        u = torch.rand_like(self.logits).clamp_(1e-20, 1.0)
        return (self.logits - torch.log(-torch.log(u))).argmax(-1)

    def mode(self) -> torch.Tensor:
        return self.logits.argmax(-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.logits.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        return -(self.logits.exp() * self.logits).sum(-1)

    def kl(self, other: "Categorical") -> torch.Tensor:
        """KL(self || other)."""
        return (self.logits.exp() * (self.logits - other.logits)).sum(-1)


class DiagGaussian:
    """N(mean, diag(std^2)); ``log_std`` broadcasts (state-independent) or is per state."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor):
        self.mean = mean
        self.log_std = log_std.expand_as(mean)
        self.std = self.log_std.exp()

    def sample(self) -> torch.Tensor:
        return self.mean + self.std * torch.randn_like(self.mean)

    def mode(self) -> torch.Tensor:
        return self.mean

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - self.mean) / self.std
        return (-0.5 * z.pow(2) - self.log_std - LOG_SQRT_2PI).sum(-1)

    def entropy(self) -> torch.Tensor:
        return (self.log_std + 0.5 + LOG_SQRT_2PI).sum(-1)

    def kl(self, other: "DiagGaussian") -> torch.Tensor:
        var_ratio = (self.std / other.std).pow(2)
        t = ((self.mean - other.mean) / other.std).pow(2)
        return 0.5 * (var_ratio + t - 1 - var_ratio.log()).sum(-1)


class TanhGaussian:
    """a = low + (tanh(u) + 1) / 2 * (high - low), u ~ N(mean, diag(std^2)).

    log pi(a) = log N(u) - sum_i log |da_i/du_i|, with
    da/du = scale * (1 - tanh(u)^2), scale = (high - low) / 2, and the stable identity
    log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)).
    """

    def __init__(self, mean, log_std, low: torch.Tensor | float = -1.0, high: torch.Tensor | float = 1.0):
        self.base = DiagGaussian(mean, log_std)
        low = torch.as_tensor(low, dtype=mean.dtype, device=mean.device)
        high = torch.as_tensor(high, dtype=mean.dtype, device=mean.device)
        self.scale = (high - low) / 2
        self.center = (high + low) / 2
        self._log_scale_sum = torch.log(self.scale).expand_as(mean).sum(-1)

    def _squash(self, u):
        return self.center + self.scale * torch.tanh(u)

    def _log_det(self, u):
        return (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1) + self._log_scale_sum

    def rsample_with_log_prob(self):
        """Reparameterised sample and its log-prob (no atanh round trip)."""
        u = self.base.mean + self.base.std * torch.randn_like(self.base.mean)
        return self._squash(u), self.base.log_prob(u) - self._log_det(u)

    def sample(self) -> torch.Tensor:
        with torch.no_grad():
            return self._squash(self.base.sample())

    def mode(self) -> torch.Tensor:
        return self._squash(self.base.mean)

    def log_prob(self, actions: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        y = ((actions - self.center) / self.scale).clamp(-1 + eps, 1 - eps)
        u = torch.atanh(y)
        return self.base.log_prob(u) - self._log_det(u)

    def entropy(self) -> torch.Tensor:
        """Single-sample estimate (the squashed entropy has no closed form)."""
        _, logp = self.rsample_with_log_prob()
        return -logp
