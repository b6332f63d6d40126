"""A tiny Gymnasium environment whose observations turn NaN, for the non-finite tests.

``NanEnv`` counts the steps it has taken since construction (across episodes). Its
observation is finite until step ``nan_after`` (1-based), which returns NaN; with
``nan_on_reset=True`` the NaN instead appears in the first observation of the episode that
starts after ``nan_after`` steps (an autoreset observation, not a step's successor).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

NAN_ENV_ID = "DeeprlTestNan-v0"
NAN_RESET_ENV_ID = "DeeprlTestNanReset-v0"
NAN_REWARD_ENV_ID = "DeeprlTestNanReward-v0"


class NanEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, nan_after: int = 50, episode_length: int = 10, nan_on_reset: bool = False,
                 nan_reward: bool = False, render_mode=None):
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.nan_after, self.episode_length = nan_after, episode_length
        self.nan_on_reset, self.nan_reward = nan_on_reset, nan_reward
        self.total_steps = 0
        self.t = 0

    def _obs(self) -> np.ndarray:
        return self.np_random.uniform(-1, 1, 3).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        obs = self._obs()
        if self.nan_on_reset and self.total_steps >= self.nan_after:
            obs[:] = np.nan
        return obs, {}

    def step(self, action):
        self.total_steps += 1
        self.t += 1
        obs = self._obs()
        reward = float(action == 0)
        bad = self.total_steps >= self.nan_after
        if bad and not (self.nan_on_reset or self.nan_reward):
            obs[:] = np.nan
        if bad and self.nan_reward:
            reward = float("nan")
        return obs, reward, False, self.t >= self.episode_length, {}


def register() -> None:
    for env_id, kwargs in ((NAN_ENV_ID, {}), (NAN_RESET_ENV_ID, {"nan_on_reset": True}),
                           (NAN_REWARD_ENV_ID, {"nan_reward": True})):
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=NanEnv, kwargs=kwargs)
