"""Known dynamics of environments, for planners (MPC with shooting/CEM/MPPI, iLQR).

:func:`known_dynamics` ``(env_id)`` returns a :class:`KnownDynamics`: the env's true
transition function in a state space of its own, written in differentiable, batched torch
(``deeprl.envs.dynamics``), its cost (the env's reward negated, or a documented surrogate),
a smooth cost for gradient-based planners, and how observations map to states and planned
controls to env actions. :meth:`KnownDynamics.model` wraps it as the batched NumPy model
interface that MPC uses and that a learned model can implement later::

    model(s (N, n), a (N, m)) -> (s' (N, n), r (N,))

Supported ids (anything else raises a one-line ``ConfigError`` naming them):

- ``Pendulum-v1``: state ``[theta, theta_dot]`` (``theta = atan2(sin, cos)`` of the
  observation), ``pendulum_step`` (exactly the env's map), cost = ``pendulum_cost`` (the env's
  reward negated); for gradient-based planners ``pendulum_step`` without the clips (the 8 rad/s
  speed clip has zero derivative, which traps iLQR in plans that spin the pendulum; the planner
  keeps torques in ``[-2, 2]`` itself) and the smooth cost ``pendulum_cost_smooth`` with terminal
  cost ``terminal_weight * pendulum_cost_smooth(x)``; controls in ``[-2, 2]``.
- ``CartPole-v1``: state = observation, ``cartpole_swingup_step`` (the env's equations); a
  planned control ``u in [-1, 1]`` is the env action ``1`` (push right, +10 N) if ``u > 0``
  else ``0`` (-10 N), and the model applies exactly that force. The env pays +1 per step until
  the pole falls (``|theta| > 12 deg``) or the cart leaves ``|x| <= 2.4``; the planning cost is
  the surrogate ``1[outside] + 0.01 (theta / 12 deg)^2 + 0.001 (x / 2.4)^2`` (the small terms break
  ties among sequences that all survive the horizon). Not differentiable: MPC only.
- ``deeprl/LinearQuadratic-v0``: ``x' = A x + B u`` and ``1/2 x^T Q x + 1/2 u^T R u`` with the
  registered env's matrices (terminal ``1/2 x^T Q_final x``); noise is ignored by the planner.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from deeprl.core.errors import ConfigError
from deeprl.envs.dynamics import (
    cartpole_swingup_step,
    pendulum_cost,
    pendulum_cost_smooth,
    pendulum_step,
)

__all__ = ["KNOWN_DYNAMICS_ENVS", "KnownDynamics", "known_dynamics"]

KNOWN_DYNAMICS_ENVS = ("Pendulum-v1", "CartPole-v1", "deeprl/LinearQuadratic-v0")


@dataclass(frozen=True, eq=False)
class KnownDynamics:
    """One environment's model (see the module docstring). Torch functions are batched over
    rows: ``step(x (B, n), u (B, m)) -> (B, n)``, ``cost(x, u) -> (B,)``, ``smooth_cost``
    likewise (``None``: not differentiable), ``final_cost(x (B, n)) -> (B,)`` or ``None``."""

    env_id: str
    state_dim: int
    action_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    obs_to_state: Callable[[np.ndarray], np.ndarray]
    step: Callable
    cost: Callable
    smooth_cost: Callable | None = None
    final_cost: Callable | None = None
    smooth_step: Callable | None = None  # dynamics for gradient-based planners (default: step)
    to_env_action: Callable[[np.ndarray], np.ndarray] | None = None  # (B, m) plans -> env actions
    angle_dims: tuple[int, ...] = ()  # state entries that are angles (wrap differences)

    @property
    def differentiable(self) -> bool:
        return self.smooth_cost is not None

    def model(self) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """``model(s (N, n), a (N, m)) -> (s' (N, n), r (N,))`` in NumPy, ``r = -cost(s, a)``."""
        return NumpyModel(self.step, self.cost)

    def env_action(self, u: np.ndarray) -> np.ndarray:
        """Planned controls ``(B, m)`` -> actions for the env (clipped to the control box)."""
        u = np.clip(u, self.action_low, self.action_high)
        return u if self.to_env_action is None else self.to_env_action(u)

    def state_error(self, x: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """``x - ref`` with angle entries wrapped to ``[-pi, pi)``."""
        d = np.array(x, dtype=np.float64) - ref
        for i in self.angle_dims:
            d[..., i] = (d[..., i] + np.pi) % (2 * np.pi) - np.pi
        return d


class NumpyModel:
    """``model(s, a) -> (s', r)`` in NumPy on a torch ``step`` and ``cost`` (``r = -cost``); picklable."""

    def __init__(self, step, cost):
        self.step, self.cost = step, cost

    @torch.no_grad()
    def __call__(self, s, a):
        x = torch.from_numpy(np.array(s, dtype=np.float64))
        u = torch.from_numpy(np.array(a, dtype=np.float64))
        return self.step(x, u).numpy(), (-self.cost(x, u)).numpy()


# The models' pieces are module-level functions (or partials of them), so that a model, and a
# planner policy holding one, pickles.
def _pendulum_obs_to_state(obs):
    obs = np.asarray(obs, dtype=np.float64)
    return np.stack([np.arctan2(obs[:, 1], obs[:, 0]), obs[:, 2]], axis=1)


def _pendulum_final(terminal_weight, x):
    return terminal_weight * pendulum_cost_smooth(x)


def _state_is_obs(obs):
    return np.asarray(obs, dtype=np.float64)


def _pendulum(terminal_weight: float) -> KnownDynamics:
    return KnownDynamics("Pendulum-v1", 2, 1, np.array([-2.0]), np.array([2.0]), _pendulum_obs_to_state,
                         step=pendulum_step, cost=pendulum_cost, smooth_cost=pendulum_cost_smooth,
                         final_cost=functools.partial(_pendulum_final, terminal_weight), angle_dims=(0,),
                         smooth_step=functools.partial(pendulum_step, clip_torque=False, clip_speed=False))


_THETA_MAX = 12 * 2 * math.pi / 360
_X_MAX = 2.4


def _cartpole_step(x, u):
    force = torch.where(u > 0, 10.0, -10.0).to(x.dtype)
    return cartpole_swingup_step(x, force)


def _cartpole_cost(x, u):
    outside = (x[:, 0].abs() > _X_MAX) | (x[:, 2].abs() > _THETA_MAX)
    return outside.to(x.dtype) + 0.01 * (x[:, 2] / _THETA_MAX) ** 2 + 0.001 * (x[:, 0] / _X_MAX) ** 2


def _push_direction(u):
    return (u[:, 0] > 0).astype(np.int64)


def _cartpole() -> KnownDynamics:
    return KnownDynamics("CartPole-v1", 4, 1, np.array([-1.0]), np.array([1.0]), obs_to_state=_state_is_obs,
                         step=_cartpole_step, cost=_cartpole_cost, to_env_action=_push_direction)


class _LinearQuadratic:
    """x' = A x + B u, cost 1/2 x^T Q x + 1/2 u^T R u, final 1/2 x^T Q_f x (torch, batched rows)."""

    def __init__(self, A, B, Q, R, Qf):
        self.A, self.B, self.Q, self.R, self.Qf = A, B, Q, R, Qf

    def step(self, x, u):
        return x @ self.A.T + u @ self.B.T

    def cost(self, x, u):
        return 0.5 * ((x @ self.Q) * x).sum(1) + 0.5 * ((u @ self.R) * u).sum(1)

    def final(self, x):
        return 0.5 * ((x @ self.Qf) * x).sum(1)


def _linear_quadratic(env_id: str) -> KnownDynamics:
    from deeprl.envs.make import make_env

    env = make_env(env_id)
    u_env = env.unwrapped
    A, B, Q, R, Qf = (torch.as_tensor(m) for m in (u_env.A, u_env.B, u_env.Q, u_env.R, u_env.Q_final))
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    env.close()

    lq = _LinearQuadratic(A, B, Q, R, Qf)
    return KnownDynamics(env_id, A.shape[0], B.shape[1], low, high, obs_to_state=_state_is_obs, step=lq.step,
                         cost=lq.cost, smooth_cost=lq.cost, final_cost=lq.final)


def known_dynamics(env_id: str, algo: str = "planner", *, differentiable: bool = False,
                   terminal_weight: float = 10.0) -> KnownDynamics:
    """The model of ``env_id``; ``ConfigError`` (naming the supported ids) when there is none,
    or when ``differentiable`` and the model has no smooth cost (iLQR)."""
    supported = [e for e in KNOWN_DYNAMICS_ENVS if not differentiable or e != "CartPole-v1"]
    if env_id == "Pendulum-v1":
        kd = _pendulum(terminal_weight)
    elif env_id == "CartPole-v1" and not differentiable:
        kd = _cartpole()
    elif env_id == "deeprl/LinearQuadratic-v0":
        kd = _linear_quadratic(env_id)
    else:
        what = "differentiable known dynamics" if differentiable else "known (analytic) dynamics"
        raise ConfigError(f"{algo} needs {what}; {env_id!r} has none (supported: {', '.join(supported)})")
    return kd
