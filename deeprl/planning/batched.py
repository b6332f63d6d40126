"""Random shooting, CEM and MPPI for a batch of start states at once, in torch (CS285 lecture 10).

The same updates as :mod:`deeprl.planning.shooting` (see there for the maths), but each call
plans ``B`` problems together: candidates are ``(B, N, H, m)`` and the objective maps them to
returns ``(B, N)`` (higher is better), typically :func:`deeprl.planning.model_env.model_returns`
on a ModelEnv, which rolls out all ``B * N * particles`` sequences as one torch batch. So MPC on
``B`` parallel envs makes ``H`` model calls per iteration, not ``B * H`` row by row.

- ``random``: the best of ``N`` uniform sequences in the box.
- ``cem``: ``N`` samples ``clip(mu + sigma eps)``; refit mean and (population) std to the
  ``num_elites`` highest returns with smoothing ``alpha``; ``sigma_0 = (high - low) / 4``; returns
  the final mean.
- ``mppi``: ``N`` samples ``clip(mu + noise_std eps)``; ``mu <- alpha mu + (1 - alpha) sum_i w_i A_i``
  with ``w = softmax((G - max G) / temperature)``; returns the final mean.

NaN returns count as the worst (``-inf``); a row whose returns are all NaN raises
:class:`~deeprl.core.errors.NonFiniteError`. Noise comes from the planner's
``torch.Generator``. ``info`` after a call holds the best return per row (``best_return (B,)``)
and its sequence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from deeprl.core.errors import ConfigError, NonFiniteError

__all__ = ["BatchedPlanner", "PlanInfo", "BATCHED_METHODS"]

BATCHED_METHODS = ("random", "cem", "mppi")


@dataclass(frozen=True)
class PlanInfo:
    best_return: torch.Tensor  # (B,) best return of any candidate evaluated
    best_actions: torch.Tensor  # (B, H, m) that candidate
    num_evaluations: int  # candidates per row


def _returns(objective: Callable, samples: torch.Tensor) -> torch.Tensor:
    g = objective(samples)
    B, N = samples.shape[:2]
    if tuple(g.shape) != (B, N):
        raise ValueError(f"objective must return returns of shape (B, N) = ({B}, {N}), got {tuple(g.shape)}")
    g = torch.nan_to_num(g.to(samples.dtype), nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)
    if torch.isneginf(g).all(1).any():
        raise NonFiniteError("objective returned NaN or -inf return for every candidate of a start state")
    return g


@dataclass(eq=False)
class BatchedPlanner:
    """``plan(objective, init (B, H, m)) -> plans (B, H, m)`` maximising ``objective``; ``low``/
    ``high`` are the action box ``(m,)``; ``noise_std`` (MPPI) is absolute, ``(m,)`` or a scalar."""

    method: str
    low: torch.Tensor
    high: torch.Tensor
    num_samples: int
    num_elites: int = 1
    num_iterations: int = 1
    alpha: float = 0.1
    temperature: float = 1.0
    noise_std: object = 1.0
    generator: torch.Generator | None = None
    info: PlanInfo | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.method not in BATCHED_METHODS:
            raise ConfigError(f"planner: {self.method!r} is not one of {', '.join(BATCHED_METHODS)}")
        if self.num_samples < (2 if self.method == "cem" else 1):
            raise ConfigError(f"num_samples must be >= {2 if self.method == 'cem' else 1}, got {self.num_samples}")
        if self.method == "cem" and not 1 <= self.num_elites <= self.num_samples:
            raise ConfigError(f"num_elites must be in [1, num_samples = {self.num_samples}], got {self.num_elites}")
        if not 0.0 <= self.alpha < 1.0:
            raise ConfigError(f"alpha must be in [0, 1), got {self.alpha}")
        if self.method == "mppi" and not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        self.low = torch.as_tensor(self.low, dtype=torch.float64)
        self.high = torch.as_tensor(self.high, dtype=torch.float64)
        if not (self.low < self.high).all():
            raise ConfigError("low must be < high elementwise")
        self.noise_std = torch.as_tensor(self.noise_std, dtype=torch.float64)

    def _normal(self, shape, like):
        return torch.randn(shape, generator=self.generator, dtype=like.dtype, device=like.device)

    @torch.no_grad()
    def plan(self, objective: Callable[[torch.Tensor], torch.Tensor], init: torch.Tensor) -> torch.Tensor:
        B, H, m = init.shape
        N = self.num_samples
        lo, hi = self.low.to(init), self.high.to(init)
        best_g = torch.full((B,), -torch.inf, dtype=init.dtype, device=init.device)
        best_a = init.clone()
        rows = torch.arange(B, device=init.device)

        def track(samples, g):
            i = g.argmax(1)
            better = g[rows, i] > best_g
            best_g[better] = g[rows, i][better]
            best_a[better] = samples[rows, i][better]

        if self.method == "random":
            u = torch.rand((B, N, H, m), generator=self.generator, dtype=init.dtype, device=init.device)
            samples = lo + (hi - lo) * u
            track(samples, _returns(objective, samples))
            self.info = PlanInfo(best_g, best_a, N)
            return best_a.clone()

        mean = torch.maximum(torch.minimum(init, hi), lo)
        std = ((hi - lo) / 4.0).expand(B, H, m) if self.method == "cem" else self.noise_std.to(init).expand(B, H, m)
        for _ in range(self.num_iterations):
            eps = self._normal((B, N, H, m), init)
            samples = torch.maximum(torch.minimum(mean[:, None] + std[:, None] * eps, hi), lo)
            g = _returns(objective, samples)
            track(samples, g)
            if self.method == "cem":
                top = g.topk(self.num_elites, dim=1).indices  # (B, K)
                elites = samples[rows[:, None], top]  # (B, K, H, m)
                mean = self.alpha * mean + (1.0 - self.alpha) * elites.mean(1)
                std = self.alpha * std + (1.0 - self.alpha) * elites.std(1, unbiased=False)
            else:
                w = torch.softmax((g - g.max(1, keepdim=True).values) / self.temperature, dim=1)  # -inf -> 0
                mean = self.alpha * mean + (1.0 - self.alpha) * torch.einsum("bn,bnhm->bhm", w, samples)
        self.info = PlanInfo(best_g, best_a, N * self.num_iterations)
        return mean
