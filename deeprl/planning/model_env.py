"""The ``ModelEnv`` protocol: a batched, torch model of an environment that planners roll out.

    model_env.step(states (B, n), actions (B, m)) -> (next_states (B, n), rewards (B,), terminated)

``terminated`` is a ``(B,)`` bool tensor, or None for a model whose episodes never end.

States are the model's own (for the analytic models, the state behind the observation; see
:mod:`deeprl.planning.models`). ``terminated`` marks transitions after which the episode ends:
a rollout stops adding rewards for that row (:func:`model_returns`). A model may be
stochastic (a learned ensemble draws its member and noise per row); :func:`model_returns`
then averages over ``particles`` rollouts of each action sequence.

:class:`AnalyticModelEnv` puts today's known dynamics (Pendulum-v1, CartPole-v1,
deeprl/LinearQuadratic-v0) behind the protocol, with reward = -cost. Their costs already
price failure (CartPole's cost is 1 per step outside the bounds), so they never terminate
(``terminated`` is None, which spares a planner the bookkeeping).
The model-based issue puts learned ensembles behind the same protocol.
"""
from __future__ import annotations

from typing import Protocol

import torch

from deeprl.planning.models import KnownDynamics

__all__ = ["AnalyticModelEnv", "ModelEnv", "model_returns"]


class ModelEnv(Protocol):
    state_dim: int
    action_dim: int

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                         torch.Tensor | None]:
        ...


class AnalyticModelEnv:
    """A :class:`~deeprl.planning.models.KnownDynamics` as a ModelEnv (float64, reward = -cost)."""

    def __init__(self, dynamics: KnownDynamics):
        self.dynamics = dynamics
        self.state_dim, self.action_dim = dynamics.state_dim, dynamics.action_dim

    def step(self, states, actions):
        d = self.dynamics
        return d.step(states, actions), -d.cost(states, actions), None


@torch.no_grad()
def model_returns(model_env: ModelEnv, states: torch.Tensor, plans: torch.Tensor, gamma: float = 1.0,
                  particles: int = 1) -> torch.Tensor:
    """Discounted model return of each action sequence from its row's state.

    ``states (B, n)``, ``plans (B, N, H, m)`` -> ``(B, N)``: with ``s_0`` the row's state and
    ``(s_{t+1}, r_t, d_t) = model_env.step(s_t, a_t)``, ``G = sum_t gamma^t r_t prod_{k<t} (1 - d_k)``
    (no reward after a termination), averaged over ``particles`` rollouts of each sequence.
    The B * N * particles rollouts run as one batch.
    """
    B, N, H, m = plans.shape
    P = int(particles)
    x = states.to(plans.dtype).repeat_interleave(N * P, dim=0)  # (B*N*P, n): row b, candidate i, particle p
    actions = plans.repeat_interleave(P, dim=1).reshape(B * N * P, H, m)
    total = torch.zeros(B * N * P, dtype=plans.dtype, device=plans.device)
    alive = None  # (B*N*P,) 1 until a row terminates; None while no row has a termination signal
    discount = 1.0
    for t in range(H):
        x, r, terminated = model_env.step(x, actions[:, t])
        r = r.reshape(-1).to(plans.dtype)
        if alive is None:
            total.add_(r, alpha=discount)
        else:
            total.add_(alive * r, alpha=discount)
        if terminated is not None:
            still = (~terminated.reshape(-1)).to(plans.dtype)
            alive = still if alive is None else alive * still
        discount *= gamma
    return total.view(B, N, P).mean(2)
