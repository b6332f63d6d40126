"""Model-predictive control (MPC) with a sampling planner: replan every step (CS285 lecture 10).

At every step, from the current state ``s``::

    A* = argmax_A  sum_{t<H} gamma^t r_t,   s_0 = s,  (s_{t+1}, r_t) = model(s_t, a_t)     A = (a_0..a_{H-1})
    execute a*_0, observe the next state, repeat

with any planner of :mod:`deeprl.planning.shooting` (random shooting, CEM, MPPI; built by
:func:`make_planner` with ``maximize=True``). ``model(s (N, n), a (N, m)) -> (s' (N, n),
r (N,))`` is any batched NumPy callable: the analytic dynamics of
:func:`deeprl.planning.models.known_dynamics` or, later, a learned model.

Warm start: the previous plan shifted by one step, ``(a*_1, ..., a*_{H-1}, fill)`` with
``fill`` the middle of the action box, is the next initial guess (the mean CEM and MPPI start
from; random shooting ignores it). :class:`MPCController` keeps one plan per row of a batch
of states, so parallel environments each warm-start from their own plan.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from deeprl.core.errors import ConfigError
from deeprl.planning.shooting import CEM, MPPI, RandomShooting

__all__ = ["PLANNERS", "MPCController", "make_planner", "model_objective", "shift_plan"]

PLANNERS = ("random", "cem", "mppi")


def model_objective(model: Callable, s0, gamma: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    """``objective(actions (N, H, m)) -> (N,)`` discounted model return from state ``s0 (n,)``."""
    s0 = np.asarray(s0, dtype=np.float64)

    def objective(actions: np.ndarray) -> np.ndarray:
        N, H, _ = actions.shape
        s = np.broadcast_to(s0, (N, s0.shape[0]))
        total, discount = np.zeros(N), 1.0
        for t in range(H):
            s, r = model(s, actions[:, t])
            total += discount * np.asarray(r, dtype=np.float64).reshape(N)
            discount *= gamma
        return total

    return objective


def shift_plan(plan: np.ndarray, fill) -> np.ndarray:
    """``(a_1, ..., a_{H-1}, fill)`` from a plan ``(H, m)``."""
    return np.concatenate([plan[1:], np.broadcast_to(fill, (1, plan.shape[1]))], axis=0)


def make_planner(name: str, low, high, *, num_samples: int, num_elites: int, num_iterations: int,
                 alpha: float, temperature: float, noise_std: float, rng):
    """A maximising planner of :mod:`deeprl.planning.shooting` over the box ``[low, high]``.
    ``noise_std`` (MPPI) is a fraction of the half-width of the box."""
    if name == "random":
        return RandomShooting(num_samples=num_samples, lower=low, upper=high, rng=rng, maximize=True)
    if name == "cem":
        return CEM(num_samples=num_samples, num_elites=num_elites, num_iterations=num_iterations, lower=low,
                   upper=high, alpha=alpha, rng=rng, maximize=True)
    if name == "mppi":
        std = noise_std * (np.asarray(high) - np.asarray(low)) / 2.0
        return MPPI(num_samples=num_samples, num_iterations=num_iterations, temperature=temperature, noise_std=std,
                    lower=low, upper=high, alpha=alpha, rng=rng, maximize=True)
    raise ConfigError(f"planner: {name!r} is not one of {', '.join(PLANNERS)}")


class MPCController:
    """Receding-horizon control of a batch of states with one planner and one model.

    ``act(states (B, n)) -> controls (B, m)``: plans each row (warm-started from that row's
    shifted previous plan when ``warm_start``) and returns the first action of each plan.
    ``reset()`` forgets the plans.
    """

    def __init__(self, planner, model: Callable, horizon: int, low, high, gamma: float = 1.0,
                 warm_start: bool = True):
        if int(horizon) != horizon or horizon < 1:
            raise ConfigError(f"horizon must be an integer >= 1, got {horizon}")
        self.planner, self.model, self.horizon, self.gamma = planner, model, int(horizon), float(gamma)
        self.low, self.high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        self.fill = (self.low + self.high) / 2.0
        self.warm_start = warm_start
        self.plans: np.ndarray | None = None  # (B, H, m)
        self.last_info = None

    def reset(self) -> None:
        self.plans = None

    def act(self, states: np.ndarray) -> np.ndarray:
        states = np.asarray(states, dtype=np.float64)
        B, m = states.shape[0], self.low.shape[0]
        if self.plans is None or self.plans.shape[0] != B or not self.warm_start:
            self.plans = np.broadcast_to(self.fill, (B, self.horizon, m)).copy()
        out = np.empty((B, m))
        for i in range(B):
            plan = self.planner.optimize(model_objective(self.model, states[i], self.gamma), self.plans[i])
            out[i] = plan[0]
            self.plans[i] = shift_plan(plan, self.fill)
            self.last_info = self.planner.info
        return out
