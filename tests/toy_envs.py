"""Small environments for tests: image and Dict observations."""
import gymnasium as gym
import numpy as np
from gymnasium import spaces


class ImageTargetEnv(gym.Env):
    """36x36 uint8 image with a bright pixel column on the left or right; reward 1 for choosing that side."""

    def __init__(self):
        self.observation_space = spaces.Box(0, 255, (36, 36, 1), np.uint8)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def _obs(self):
        img = np.zeros((36, 36, 1), np.uint8)
        img[:, 2 if self.side == 0 else 33] = 255
        return img

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.side, self.t = int(self.np_random.integers(2)), 0
        return self._obs(), {}

    def step(self, a):
        r = float(int(a) == self.side)
        self.t += 1
        self.side = int(self.np_random.integers(2))
        return self._obs(), r, False, self.t >= 20, {}


class DictPointEnv(gym.Env):
    """Dict observation {'pos': (2,), 'goal': (2,)}; continuous action moves the point."""

    def __init__(self):
        self.observation_space = spaces.Dict({"pos": spaces.Box(-5, 5, (2,), np.float32),
                                              "goal": spaces.Box(-5, 5, (2,), np.float32)})
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)

    def _obs(self):
        return {"pos": self.pos.astype(np.float32), "goal": self.goal.astype(np.float32)}

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-2, 2, 2)
        self.goal = self.np_random.uniform(-2, 2, 2)
        self.t = 0
        return self._obs(), {}

    def step(self, a):
        self.pos = np.clip(self.pos + 0.2 * np.clip(a, -1, 1), -5, 5)
        self.t += 1
        r = -float(np.linalg.norm(self.pos - self.goal))
        return self._obs(), r, False, self.t >= 25, {}


def register_toy_envs():
    for name, cls in (("ImageTarget-v0", ImageTargetEnv), ("DictPoint-v0", DictPointEnv)):
        if name not in gym.registry:
            gym.register(name, entry_point=cls)
