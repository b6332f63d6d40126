"""Cart-pole with a continuous force, as mbrl-lib's ``cartpole_continuous`` (the env of its PETS
example): ``deeprl/ContinuousCartPole-v0``.

Gymnasium's ``CartPole-v1`` physics (explicit Euler, ``tau = 0.02``, ``force_mag = 10``) with the
action ``a in [-1, 1]`` scaling the force, ``F = 10 a``:

- Observation ``(x, x_dot, theta, theta_dot)``, float64 (as mbrl-lib returns it).
- Reward ``1`` on every step, the terminating one included; terminated when ``|x| > 2.4`` or
  ``|theta| > 12 degrees``; a 200-step time limit (mbrl-lib's ``trial_length``).
- Starts uniform on ``[-0.05, 0.05]^4`` from the seeded generator.

Differences from mbrl-lib's env: the action is clipped to ``[-1, 1]`` (mbrl-lib scales whatever
it gets), and the observation space is declared float64, the dtype both return. Rendering is
Gymnasium's cart-pole renderer. The known reward and termination are ``deeprl.envs.rewards``.
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

CONTINUOUS_CARTPOLE_ID = "deeprl/ContinuousCartPole-v0"
X_THRESHOLD = 2.4
THETA_THRESHOLD = 12 * 2 * math.pi / 360


class ContinuousCartPoleEnv(CartPoleEnv):
    def __init__(self, render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        high = np.array([X_THRESHOLD * 2, np.finfo(np.float32).max, THETA_THRESHOLD * 2,
                         np.finfo(np.float32).max])
        self.observation_space = spaces.Box(-high, high, dtype=np.float64)

    def step(self, action):
        assert self.state is not None, "call reset before step"
        force = self.force_mag * float(np.clip(np.asarray(action, np.float64).reshape(-1)[0], -1.0, 1.0))
        x, x_dot, theta, theta_dot = (float(v) for v in self.state)
        cos, sin = math.cos(theta), math.sin(theta)
        temp = (force + self.polemass_length * theta_dot**2 * sin) / self.total_mass
        theta_acc = (self.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * cos**2 / self.total_mass))
        x_acc = temp - self.polemass_length * theta_acc * cos / self.total_mass
        x, x_dot = x + self.tau * x_dot, x_dot + self.tau * x_acc
        theta, theta_dot = theta + self.tau * theta_dot, theta_dot + self.tau * theta_acc
        self.state = np.array([x, x_dot, theta, theta_dot])
        terminated = abs(x) > X_THRESHOLD or abs(theta) > THETA_THRESHOLD
        if self.render_mode == "human":
            self.render()
        return self.state.copy(), 1.0, bool(terminated), False, {}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed, options=options)
        return np.array(self.state, dtype=np.float64), {}


def register_envs() -> None:
    if CONTINUOUS_CARTPOLE_ID not in gym.registry:
        gym.register(CONTINUOUS_CARTPOLE_ID, entry_point=ContinuousCartPoleEnv, max_episode_steps=200)
