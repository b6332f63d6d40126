"""Differentiable, batched analytic dynamics and costs for planning (iLQR, shooting).

Every function takes torch tensors with a leading batch dimension, ``x (B, n)``, ``u (B, m)``,
returns ``(B, n)`` (dynamics) or ``(B,)`` (costs), treats rows independently and is written
with differentiable torch ops only, so ``torch.autograd`` / ``torch.func`` Jacobians and
Hessians work (and finite differences agree with them away from the clipping kinks).

Pendulum (``pendulum_step``): Gymnasium ``Pendulum-v1`` exactly, state ``[theta, theta_dot]``
with ``theta = 0`` upright and ``theta = pi`` hanging down, ``g = 10``, ``m = 1``, ``l = 1``,
``dt = 0.05``, ``max_speed = 8``, ``max_torque = 2``, semi-implicit Euler::

    u'          = clip(u, -2, 2)
    theta_dot'  = clip(theta_dot + (3 g / (2 l) sin(theta) + 3 / (m l^2) u') dt, -8, 8)
    theta'      = theta + theta_dot' dt            (theta is NOT wrapped, as in the env)

Clipping and differentiability: both clips are ``torch.clamp`` as in the env, so the model is
exactly the env's map. ``clamp`` is piecewise linear: its derivative is 1 inside the bounds
(boundaries included) and 0 outside. Planners should therefore keep controls inside
``[-max_torque, max_torque]`` themselves (``ilqr(..., u_bounds=(-2, 2))`` clamps or
tanh-squashes its controls, so the torque clip is then the identity and has derivative 1);
pass ``clip_torque=False`` to drop the clip entirely. The speed clip is kept (``clip_speed=True``)
so that predictions match the env; where it is active the linearisation says "speed cannot
change" (zero derivative), which is the true local behaviour of the env.

Pendulum costs: Gymnasium's reward negated is
``pendulum_cost = angle_normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2``. ``angle_normalize(theta)^2``
is continuous but has a kink at ``theta = pi`` (its gradient jumps from ``+2pi`` to ``-2pi``, and
finite differences across it are meaningless), exactly where a swing-up starts, so for iLQR use
``pendulum_cost_smooth``: ``2 (1 - cos theta)`` replaces ``angle_normalize(theta)^2``. It agrees
to second order at upright (``2(1 - cos t) = t^2 - t^4/12 + ...``), is ``2pi``-periodic and smooth,
and has maximum 4 (instead of ``pi^2``) when hanging. Its Hessian ``2 cos theta`` is negative
near the bottom: the quadratised cost is non-convex there and iLQR needs regularisation.

Cart-pole (``cartpole_swingup_step``): the standard Barto-Sutton-Anderson cart-pole
(Gymnasium ``CartPole-v1``'s equations, its constants and explicit Euler) with a continuous
horizontal force ``u`` in newtons instead of the discrete ``+-10``. State
``[x, x_dot, theta, theta_dot]``, ``theta = 0`` upright, ``theta = pi`` hanging; constants
``gravity = 9.8``, ``masscart = 1.0``, ``masspole = 0.1``, ``length = 0.5`` (half the pole),
``dt = 0.02``, ``max_force = 10`` (clipped like the pendulum's torque, ``clip_force=False``
drops it). No track limits or termination (swing-up needs the full circle)::

    temp       = (u + m_p l theta_dot^2 sin theta) / (m_c + m_p)
    theta_acc  = (g sin theta - cos theta temp) / (l (4/3 - m_p cos^2 theta / (m_c + m_p)))
    x_acc      = temp - m_p l theta_acc cos theta / (m_c + m_p)
    x' = x + dt x_dot,  x_dot' = x_dot + dt x_acc,  theta' = theta + dt theta_dot,
    theta_dot' = theta_dot + dt theta_acc

``cartpole_swingup_cost`` is ``2 (1 - cos theta) + 0.1 x^2 + 0.01 (x_dot^2 + theta_dot^2) +
0.001 u^2`` (smooth, upright at ``x = 0`` is its minimum).
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "CARTPOLE",
    "PENDULUM",
    "angle_normalize",
    "cartpole_swingup_cost",
    "cartpole_swingup_step",
    "pendulum_cost",
    "pendulum_cost_smooth",
    "pendulum_step",
]

PENDULUM = dict(g=10.0, m=1.0, l=1.0, dt=0.05, max_speed=8.0, max_torque=2.0)
CARTPOLE = dict(gravity=9.8, masscart=1.0, masspole=0.1, length=0.5, dt=0.02, max_force=10.0)


def _check(x: torch.Tensor, u: torch.Tensor | None, n: int, m: int, name: str) -> None:
    if x.ndim != 2 or x.shape[1] != n:
        raise ValueError(f"{name}: x must have shape (B, {n}), got {tuple(x.shape)}")
    if u is not None and (u.ndim != 2 or u.shape != (x.shape[0], m)):
        raise ValueError(f"{name}: u must have shape (B, {m}) = ({x.shape[0]}, {m}), got {tuple(u.shape)}")


def angle_normalize(theta: torch.Tensor) -> torch.Tensor:
    """Wrap to ``[-pi, pi)`` like Gymnasium's ``angle_normalize`` (non-smooth at ``+-pi``)."""
    return torch.remainder(theta + math.pi, 2 * math.pi) - math.pi


# --------------------------------------------------------------------------------------
# Pendulum-v1
# --------------------------------------------------------------------------------------


def pendulum_step(x: torch.Tensor, u: torch.Tensor, *, clip_torque: bool = True,
                  clip_speed: bool = True) -> torch.Tensor:
    """One ``Pendulum-v1`` step: ``x (B, 2) = [theta, theta_dot]``, ``u (B, 1)`` -> ``x' (B, 2)``."""
    _check(x, u, 2, 1, "pendulum_step")
    p = PENDULUM
    th, thdot = x[:, 0], x[:, 1]
    torque = u[:, 0]
    if clip_torque:
        torque = torch.clamp(torque, -p["max_torque"], p["max_torque"])
    new_thdot = thdot + (3 * p["g"] / (2 * p["l"]) * torch.sin(th) + 3.0 / (p["m"] * p["l"] ** 2) * torque) * p["dt"]
    if clip_speed:
        new_thdot = torch.clamp(new_thdot, -p["max_speed"], p["max_speed"])
    new_th = th + new_thdot * p["dt"]
    return torch.stack([new_th, new_thdot], dim=1)


def pendulum_cost(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Gymnasium's per-step cost (reward negated), ``(B,)``; non-smooth at ``theta = pi``."""
    _check(x, u, 2, 1, "pendulum_cost")
    return angle_normalize(x[:, 0]) ** 2 + 0.1 * x[:, 1] ** 2 + 0.001 * u[:, 0] ** 2


def pendulum_cost_smooth(x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
    """``2 (1 - cos theta) + 0.1 theta_dot^2 + 0.001 u^2``, ``(B,)``; ``u=None``: state part only
    (use it, scaled, as a terminal cost)."""
    _check(x, u, 2, 1, "pendulum_cost_smooth")
    c = 2.0 * (1.0 - torch.cos(x[:, 0])) + 0.1 * x[:, 1] ** 2
    return c if u is None else c + 0.001 * u[:, 0] ** 2


# --------------------------------------------------------------------------------------
# Cart-pole with a continuous force
# --------------------------------------------------------------------------------------


def cartpole_swingup_step(x: torch.Tensor, u: torch.Tensor, *, clip_force: bool = True) -> torch.Tensor:
    """One cart-pole step: ``x (B, 4) = [x, x_dot, theta, theta_dot]``, ``u (B, 1)`` force -> ``(B, 4)``."""
    _check(x, u, 4, 1, "cartpole_swingup_step")
    p = CARTPOLE
    pos, vel, th, thdot = x.unbind(dim=1)
    force = u[:, 0]
    if clip_force:
        force = torch.clamp(force, -p["max_force"], p["max_force"])
    total_mass = p["masscart"] + p["masspole"]
    polemass_length = p["masspole"] * p["length"]
    cos, sin = torch.cos(th), torch.sin(th)
    temp = (force + polemass_length * thdot ** 2 * sin) / total_mass
    thacc = (p["gravity"] * sin - cos * temp) / (p["length"] * (4.0 / 3.0 - p["masspole"] * cos ** 2 / total_mass))
    xacc = temp - polemass_length * thacc * cos / total_mass
    dt = p["dt"]
    return torch.stack([pos + dt * vel, vel + dt * xacc, th + dt * thdot, thdot + dt * thacc], dim=1)


def cartpole_swingup_cost(x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
    """``2 (1 - cos theta) + 0.1 x^2 + 0.01 (x_dot^2 + theta_dot^2) + 0.001 u^2``, ``(B,)``;
    ``u=None``: state part only."""
    _check(x, u, 4, 1, "cartpole_swingup_cost")
    pos, vel, th, thdot = x.unbind(dim=1)
    c = 2.0 * (1.0 - torch.cos(th)) + 0.1 * pos ** 2 + 0.01 * (vel ** 2 + thdot ** 2)
    return c if u is None else c + 0.001 * u[:, 0] ** 2
