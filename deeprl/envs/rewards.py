"""Known reward and termination functions of environments, batched in torch, on observations.

A model-based algorithm that learns only the dynamics scores imagined transitions with these::

    reward(obs (B, n), action (B, m), next_obs (B, n)) -> (B,)
    terminated(obs, action, next_obs) -> (B,) bool, or None for an env whose episodes never end

They are written from each env's source and tested against the env's own rewards and
terminations on real transitions (``tests/unit/test_known_rewards.py``).

- ``Pendulum-v1``: ``-(angle_normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2)`` with ``theta =
  atan2(sin, cos)`` and ``theta_dot`` of ``obs`` (the state before the step) and ``u`` the action
  clipped to ``[-2, 2]``; never terminates (the 200-step limit is a truncation).
- ``InvertedPendulum-v5``: terminated when ``next_obs`` is not finite or the pole angle
  ``|next_obs[1]| > 0.2``; reward ``1`` for a step that does not terminate, else ``0``.
- ``InvertedPendulum-v4`` (the version mbrl-lib and MBPO's papers use): the same termination;
  reward ``1`` on every step, the terminating one included, so a learned reward is a constant.
- ``deeprl/Obstacles-v0`` (HW4's point robot): reward ``-||p' - goal||`` on ``next_obs = (p', goal)``;
  terminated when ``||p' - goal|| < 0.1`` or ``p'`` is outside the square ``|x|, |y| <= 0.99``.
- ``deeprl/Cheetah-v0`` (HW4's cheetah): ``next_obs[9] - 10 ([next_obs[6] > 0.2] + [next_obs[7] > 0]
  + [next_obs[8] > 0])``, the forward velocity less the front-leg penalties; never terminates.
- ``deeprl/ContinuousCartPole-v0`` (mbrl-lib's ``cartpole_continuous``): reward ``1`` on every
  step, the terminating one included; terminated when ``|next_obs[0]| > 2.4`` or
  ``|next_obs[2]| > 12`` degrees.
- ``Reacher-v5``: ``-||fingertip - target||`` after the step (``next_obs[8:10]``) ``- ||a||^2``; never
  terminates. (The course's reacher is a 7-DoF arm reaching a 3-D goal; this is the 2-link one.)
- ``Pusher-v5`` (a 7-DoF arm pushing an object to a goal): ``-0.5 ||object - fingertip|| -
  ||object - goal|| - 0.1 ||a||^2``, all after the step (``next_obs[14:17]``, ``[17:20]``,
  ``[20:23]``); never terminates.

Terminations only (their rewards pay the change of the x position over the step, which the
observation leaves out, so a model-based agent learns them: ``learn_reward=true``):

- ``HalfCheetah-v5``: never terminates.
- ``Hopper-v5``: unhealthy after the step: ``next_obs[0]`` (the torso height) ``<= 0.7``, the
  torso angle ``|next_obs[1]| >= 0.2``, or ``|next_obs[1:]| >= 100`` (the env checks the
  unclipped velocities; the observation clips them to 10, so only positions can trigger it).
- ``Walker2d-v5``: the height ``next_obs[0]`` outside ``(0.8, 2.0)`` or the angle ``next_obs[1]``
  outside ``(-1, 1)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from deeprl.core.errors import ConfigError

__all__ = ["KNOWN_REWARD_ENVS", "KNOWN_TERMINATION_ENVS", "KnownReward", "known_reward", "known_termination"]


def _pendulum_reward(obs, action, next_obs):
    theta = torch.atan2(obs[:, 1], obs[:, 0])  # already in (-pi, pi]: angle_normalize is the identity
    u = action[:, 0].clamp(-2.0, 2.0)
    return -(theta.pow(2) + 0.1 * obs[:, 2].pow(2) + 0.001 * u.pow(2))


def _inverted_pendulum_terminated(obs, action, next_obs):
    return ~(torch.isfinite(next_obs).all(-1) & (next_obs[:, 1].abs() <= 0.2))


def _inverted_pendulum_reward(obs, action, next_obs):
    return (~_inverted_pendulum_terminated(obs, action, next_obs)).to(next_obs.dtype)


def _obstacles_distance(next_obs):
    return (next_obs[:, :2] - next_obs[:, 2:4]).norm(dim=-1)


def _obstacles_reward(obs, action, next_obs):
    return -_obstacles_distance(next_obs)


def _obstacles_terminated(obs, action, next_obs):
    return (_obstacles_distance(next_obs) < 0.1) | (next_obs[:, :2].abs() > 0.99).any(-1)


def _cheetah_reward(obs, action, next_obs):
    bent = (next_obs[:, 6] > 0.2).to(next_obs.dtype) + (next_obs[:, 7] > 0) + (next_obs[:, 8] > 0)
    return next_obs[:, 9] - 10.0 * bent


def _cartpole_terminated(obs, action, next_obs):
    return (next_obs[:, 0].abs() > 2.4) | (next_obs[:, 2].abs() > 12 * 2 * math.pi / 360)


def _one_per_step(obs, action, next_obs):  # mbrl-lib's cart-pole and InvertedPendulum-v4
    return torch.ones_like(next_obs[:, 0])


def _reacher_reward(obs, action, next_obs):
    return -next_obs[:, 8:10].norm(dim=-1) - action.pow(2).sum(-1)


def _pusher_reward(obs, action, next_obs):
    tips, obj, goal = next_obs[:, 14:17], next_obs[:, 17:20], next_obs[:, 20:23]
    return -0.5 * (obj - tips).norm(dim=-1) - (obj - goal).norm(dim=-1) - 0.1 * action.pow(2).sum(-1)


def _hopper_terminated(obs, action, next_obs):
    healthy = (next_obs[:, 1:].abs() < 100).all(-1) & (next_obs[:, 0] > 0.7) & (next_obs[:, 1].abs() < 0.2)
    return ~healthy


def _walker_terminated(obs, action, next_obs):
    z, angle = next_obs[:, 0], next_obs[:, 1]
    return ~((z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0))


@dataclass(frozen=True)
class KnownReward:
    env_id: str
    reward: Callable | None  # None: not a function of the observations (learn it)
    terminated: Callable | None  # None: the env's episodes only end by truncation


_KNOWN = {
    "Pendulum-v1": KnownReward("Pendulum-v1", _pendulum_reward, None),
    "InvertedPendulum-v5": KnownReward("InvertedPendulum-v5", _inverted_pendulum_reward,
                                       _inverted_pendulum_terminated),
    "InvertedPendulum-v4": KnownReward("InvertedPendulum-v4", _one_per_step, _inverted_pendulum_terminated),
    "deeprl/Obstacles-v0": KnownReward("deeprl/Obstacles-v0", _obstacles_reward, _obstacles_terminated),
    "deeprl/Cheetah-v0": KnownReward("deeprl/Cheetah-v0", _cheetah_reward, None),
    "deeprl/ContinuousCartPole-v0": KnownReward("deeprl/ContinuousCartPole-v0", _one_per_step,
                                                _cartpole_terminated),
    "Reacher-v5": KnownReward("Reacher-v5", _reacher_reward, None),
    "Pusher-v5": KnownReward("Pusher-v5", _pusher_reward, None),
    "HalfCheetah-v5": KnownReward("HalfCheetah-v5", None, None),
    "Hopper-v5": KnownReward("Hopper-v5", None, _hopper_terminated),
    "Walker2d-v5": KnownReward("Walker2d-v5", None, _walker_terminated),
}
KNOWN_REWARD_ENVS = tuple(k for k, v in _KNOWN.items() if v.reward is not None)
KNOWN_TERMINATION_ENVS = tuple(_KNOWN)  # (a None termination is known too: "never terminates")


def known_reward(env_id: str, algo: str = "this algorithm") -> KnownReward:
    """The env's reward and termination functions; a one-line ConfigError naming the envs that
    have them, and the switch that learns the reward instead, for any other env."""
    if env_id not in _KNOWN or _KNOWN[env_id].reward is None:
        raise ConfigError(f"{algo}: no known reward function for {env_id!r} (known: {', '.join(KNOWN_REWARD_ENVS)}); "
                          "set learn_reward=true to learn one with the dynamics")
    return _KNOWN[env_id]


def known_termination(env_id: str, algo: str = "this algorithm"):
    """The env's termination function (None: it never terminates); a one-line ConfigError for an
    env whose terminations are unknown, since a model that never ends its rollouts would be wrong."""
    if env_id not in _KNOWN:
        raise ConfigError(f"{algo}: no known termination function for {env_id!r} "
                          f"(known: {', '.join(KNOWN_TERMINATION_ENVS)})")
    return _KNOWN[env_id].terminated
