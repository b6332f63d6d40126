"""The course's point robot among rectangular obstacles (CS285 HW4's ``obstacles`` env), for
model-based RL: ``deeprl/Obstacles-v0``.

- Observation ``(x, y, goal_x, goal_y)``, float32; the goal is fixed at ``(0.7, -0.8)``.
- Action: a velocity in ``[-0.99, 0.99]^2`` (the action box; the env clips to ``[-1, 1]``), moving
  the point by ``a / 10`` per step. A move that would leave the open square ``(-0.99, 0.99)^2`` or
  end strictly inside one of five rectangles is refused: the point stays where it is.
- Reward ``-||p' - goal||`` after the step. The episode terminates when the point is within
  ``0.1`` of the goal (and, as in the course's reward function, outside the square, which the
  real env never reaches); a 100-step time limit truncates it.
- Starts: uniform on ``[-0.99, 0.59] x [0.26, 0.99]`` (redrawn until outside every obstacle) from
  the seeded ``np_random``; ``reset(options={"start": (x, y)})`` starts at a given point.

Differences from the course's env: the time limit is fixed at 100 steps, randomness comes from
Gymnasium's seeded generator, and rendering is an RGB array drawn with NumPy (no matplotlib).
The known reward and termination functions are ``deeprl.envs.rewards`` (``Obstacles-v0``).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

OBSTACLES_ID = "deeprl/Obstacles-v0"
BOUNDARY = 0.99
GOAL = (0.7, -0.8)
GOAL_RADIUS = 0.1
# rectangles as (left x, top y, width, height): they cover x in [left, left + width], y in [top - height, top]
RECTANGLES = ((-0.4, 0.8, 0.4, 0.3), (-0.9, 0.3, 0.2, 0.6), (0.6, -0.1, 0.12, 0.4), (-0.1, 0.2, 0.15, 0.4),
              (0.1, -0.7, 0.3, 0.15))


def inside_obstacle(p: np.ndarray) -> bool:
    return any(left < p[0] < left + w and top - h < p[1] < top for left, top, w, h in RECTANGLES)


def valid_position(p: np.ndarray) -> bool:
    return bool(np.all(np.abs(p) < BOUNDARY)) and not inside_obstacle(p)


class ObstaclesEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None):
        self.action_space = spaces.Box(-BOUNDARY, BOUNDARY, (2,), np.float32)
        self.observation_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.goal = np.asarray(GOAL, np.float64)
        self.render_mode = render_mode
        self.pos = np.zeros(2)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.pos, self.goal]).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if options and "start" in options:
            start = np.asarray(options["start"], np.float64)
            if start.shape != (2,) or not valid_position(start):
                raise ValueError(f"start {options['start']} must be a point inside the square and outside "
                                 "the obstacles")
            self.pos = start.copy()
        else:
            while True:
                self.pos = self.np_random.uniform([-BOUNDARY, -BOUNDARY + 1.25], [BOUNDARY - 0.4, BOUNDARY])
                if valid_position(self.pos):
                    break
        return self._obs(), {}

    def step(self, action):
        a = np.clip(np.asarray(action, np.float64).reshape(2), -1.0, 1.0) / 10.0
        target = self.pos + a
        if valid_position(target):
            self.pos = target
        obs = self._obs()
        dist = float(np.linalg.norm(obs[:2].astype(np.float64) - obs[2:].astype(np.float64)))
        terminated = dist < GOAL_RADIUS or bool(np.any(np.abs(obs[:2]) > BOUNDARY))
        return obs, -dist, terminated, False, {}

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        n = 128
        img = np.full((n, n, 3), 255, np.uint8)
        to_px = lambda v: int(np.clip((v + 1.0) / 2.0 * (n - 1), 0, n - 1))  # noqa: E731
        for left, top, w, h in RECTANGLES:
            img[n - 1 - to_px(top):n - to_px(top - h), to_px(left):to_px(left + w) + 1] = (200, 60, 60)
        gx, gy = to_px(self.goal[0]), n - 1 - to_px(self.goal[1])
        img[max(gy - 2, 0):gy + 3, max(gx - 2, 0):gx + 3] = (40, 160, 40)
        px, py = to_px(self.pos[0]), n - 1 - to_px(self.pos[1])
        img[max(py - 2, 0):py + 3, max(px - 2, 0):px + 3] = (0, 0, 0)
        return img


def register_envs() -> None:
    """Register ``deeprl/Obstacles-v0`` (100-step limit); safe to call twice."""
    if OBSTACLES_ID not in gym.registry:
        gym.register(id=OBSTACLES_ID, entry_point="deeprl.envs.point_obstacles:ObstaclesEnv", max_episode_steps=100)
