"""A point that must pass a round obstacle on the left or on the right: multimodal demonstrations.

CS285 lecture 2's "tree" example: an expert that goes around an obstacle either way produces
demonstrations with two modes at the states where both are optimal, and a unimodal
(Gaussian) behaviour-cloning policy averages them into "straight into the tree".

Dynamics (``deeprl/ObstacleCourse-v0``, 40-step time limit):

* state = observation = the position ``(x, y)`` as float32 (the obstacle and goal are fixed, so the
  position alone is Markov); the arena is ``x in [-5, 5]``, ``y in [-2, goal_y + 1]``, and the
  position is clipped to it (the walls stop the point, they do not end the episode);
* start ``(0, 0)``; ``start_jitter = j > 0`` adds ``U[-j, j]^2`` from the seeded ``np_random``
  (default 0: every episode starts exactly on the centre line, where the expert's choice is a
  coin flip; a jitter larger than the expert's ``eps`` makes the side a function of the start);
* action = velocity in ``[-1, 1]^2`` (``Box(-1, 1, (2,), float32)``; out-of-range actions are
  clipped), moving the point by ``step_size * a`` (0.5) per step;
* obstacle = the closed disc of radius 1.5 centred at ``(0, 4)``. A step collides when its
  *segment* touches the disc (so a step cannot jump across the rim); the point then stops at the
  first contact point and the episode terminates;
* goal: ``y >= goal_y`` (8) terminates the episode;
* reward = progress ``y_new - y_old`` minus ``collision_penalty`` (10) on the colliding step, so
  any collision-free path to the goal returns 8 (the expert's takes 16 steps);
* ``info = {"collided": bool, "reached_goal": bool}`` after every step (and ``False, False`` at reset).

``reset(options={"start": (x, y)})`` starts at a given position (outside the disc), e.g. to test
the expert from arbitrary states.

:class:`ObstacleExpert` is a scripted expert that can label any state (for DAgger).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from deeprl.core.errors import ConfigError

OBSTACLE_ID = "deeprl/ObstacleCourse-v0"

OBSTACLE_CENTER = (0.0, 4.0)
OBSTACLE_RADIUS = 1.5
GOAL_Y = 8.0
STEP_SIZE = 0.5
X_LIMIT = 5.0
Y_BOTTOM = -2.0


def _first_contact(p: np.ndarray, q: np.ndarray, c: np.ndarray, r: float) -> float | None:
    """Smallest t in [0, 1] with |p + t (q - p) - c| <= r, or None if the segment misses the disc."""
    d, f = q - p, p - c
    cc = f @ f - r * r
    if cc <= 0.0:
        return 0.0
    a, b = d @ d, 2.0 * (f @ d)
    disc = b * b - 4.0 * a * cc
    if a == 0.0 or disc < 0.0:
        return None
    t = (-b - np.sqrt(disc)) / (2.0 * a)  # entry point (the smaller root; p is outside the disc)
    return float(t) if 0.0 <= t <= 1.0 else None


class ObstacleCourseEnv(gym.Env):
    """See the module docstring."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, obstacle_center=OBSTACLE_CENTER, obstacle_radius: float = OBSTACLE_RADIUS,
                 goal_y: float = GOAL_Y, step_size: float = STEP_SIZE, collision_penalty: float = 10.0,
                 start_jitter: float = 0.0, render_mode: str | None = None):
        self.center = np.array(obstacle_center, dtype=np.float64).reshape(2)
        self.radius = float(obstacle_radius)
        self.goal_y = float(goal_y)
        self.step_size = float(step_size)
        self.collision_penalty = float(collision_penalty)
        self.start_jitter = float(start_jitter)
        if self.radius <= 0 or self.step_size <= 0 or self.start_jitter < 0:
            raise ConfigError("obstacle_radius and step_size must be > 0 and start_jitter >= 0")
        if np.linalg.norm(self.center) <= self.radius + np.sqrt(2) * self.start_jitter:
            raise ConfigError("the start (0, 0) must lie outside the obstacle")
        self.low = np.array([-X_LIMIT, Y_BOTTOM])
        self.high = np.array([X_LIMIT, self.goal_y + 1.0])
        self.render_mode = render_mode
        self.observation_space = spaces.Box(self.low.astype(np.float32), self.high.astype(np.float32),
                                            dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.pos = np.zeros(2)

    def _obs(self) -> np.ndarray:
        return self.pos.astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if options and options.get("start") is not None:
            start = np.array(options["start"], dtype=np.float64).reshape(2)
            if np.linalg.norm(start - self.center) <= self.radius:
                raise ValueError(f"start {tuple(start)} is inside the obstacle")
            self.pos = np.clip(start, self.low, self.high)
        else:
            j = self.start_jitter
            self.pos = self.np_random.uniform(-j, j, size=2) if j > 0 else np.zeros(2)
        return self._obs(), {"collided": False, "reached_goal": False}

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        old = self.pos
        new = np.clip(old + self.step_size * a, self.low, self.high)
        t = _first_contact(old, new, self.center, self.radius)
        collided = t is not None
        if collided:
            new = old + t * (new - old)
        self.pos = new
        reached = (not collided) and new[1] >= self.goal_y
        reward = float(new[1] - old[1]) - (self.collision_penalty if collided else 0.0)
        return self._obs(), reward, bool(collided or reached), False, {"collided": collided, "reached_goal": reached}

    def render(self):
        """A 0.5-unit character grid: ``#`` obstacle, ``=`` goal line, ``A`` the point."""
        xs = np.arange(-X_LIMIT, X_LIMIT + 1e-9, 0.5)
        ys = np.arange(self.high[1], Y_BOTTOM - 1e-9, -0.5)
        ai, aj = np.abs(ys - self.pos[1]).argmin(), np.abs(xs - self.pos[0]).argmin()
        rows = []
        for i, y in enumerate(ys):
            row = ["#" if np.hypot(x - self.center[0], y - self.center[1]) <= self.radius
                   else "=" if abs(y - self.goal_y) < 0.25 else "." for x in xs]
            if i == ai:
                row[aj] = "A"
            rows.append("".join(row))
        return "\n".join(rows)


class ObstacleExpert:
    """Scripted expert for :class:`ObstacleCourseEnv`: never collides, labels any state.

    ``predict(obs)`` takes one ``(2,)`` observation or a batch ``(N, 2)`` and returns float32
    actions of the same leading shape. The expert passes on the side ``s = sign(x)``; on the centre
    line ``|x| <= eps``, where left and right are equally good, it draws ``s`` uniformly from its own
    generator (``seed``) on every call, so its labels are bimodal exactly at the ambiguous states.
    On the centre line below ``commit_y`` (1.0) it drives straight up first, so the demonstrations
    share one path before they split, as in the lecture's picture: a unimodal policy that averages
    the split arrives at the obstacle on the centre line. Past the middle of the obstacle
    (``y >= centre_y``) going up moves away from the disc and the expert goes straight up to the
    goal line (``(0, 1)``). Below it the expert heads for the lane
    ``x = s (radius + margin)`` at full lateral speed (proportionally when close) and goes up as
    fast as it can while the step's segment keeps at least ``min(radius + safety, current
    distance)`` from the centre: it tries ``a_y = 1, 0.5, 0, -0.5, -1`` in that order, and falls
    back to moving straight away from the centre. From ``(0, 0)`` this is 2 steps up, 4 diagonal
    steps to ``(±2, 3)`` and 10 steps up (16 in all).
    """

    def __init__(self, seed: int | None = None, eps: float = 0.05, margin: float = 0.5, safety: float = 0.25,
                 commit_y: float = 1.0, obstacle_center=OBSTACLE_CENTER, obstacle_radius: float = OBSTACLE_RADIUS,
                 step_size: float = STEP_SIZE):
        if not 0 < safety < margin:
            raise ConfigError(f"need 0 < safety < margin, got safety={safety}, margin={margin}")
        self.rng = np.random.default_rng(seed)
        self.eps, self.margin, self.safety, self.commit_y = float(eps), float(margin), float(safety), float(commit_y)
        self.center = np.array(obstacle_center, dtype=np.float64).reshape(2)
        self.radius = float(obstacle_radius)
        self.step_size = float(step_size)

    @classmethod
    def for_env(cls, env: gym.Env, seed: int | None = None, **kw) -> "ObstacleExpert":
        """An expert using ``env``'s obstacle geometry and step size."""
        u = env.unwrapped
        return cls(seed, obstacle_center=u.center, obstacle_radius=u.radius, step_size=u.step_size, **kw)

    def side(self, obs) -> np.ndarray:
        """+1 (right) or -1 (left) per state; random on the centre line (draws from the generator)."""
        x = np.asarray(obs, dtype=np.float64).reshape(-1, 2)[:, 0] - self.center[0]
        coin = np.where(self.rng.random(len(x)) < 0.5, -1.0, 1.0)
        return np.where(np.abs(x) <= self.eps, coin, np.sign(x))

    def _min_distance(self, p: np.ndarray, a: np.ndarray) -> float:
        d, f = self.step_size * a, p - self.center
        t = np.clip(-(f @ d) / max(d @ d, 1e-12), 0.0, 1.0)
        return float(np.linalg.norm(f + t * d))

    def _act(self, p: np.ndarray, s: float) -> np.ndarray:
        rel = p - self.center
        if rel[1] >= 0.0 or (abs(rel[0]) <= self.eps and p[1] < self.commit_y):
            return np.array([0.0, 1.0])
        lane = s * (self.radius + self.margin)
        ax = float(np.clip((lane - rel[0]) / self.step_size, -1.0, 1.0))
        keep = min(self.radius + self.safety, float(np.linalg.norm(rel)))
        for ay in (1.0, 0.5, 0.0, -0.5, -1.0):
            a = np.array([ax, ay])
            if self._min_distance(p, a) >= keep:
                return a
        return rel / np.abs(rel).max()  # straight away from the centre, at full speed

    def predict(self, obs) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        batch = obs.reshape(-1, 2)
        sides = self.side(batch)
        actions = np.array([self._act(p, s) for p, s in zip(batch, sides)], dtype=np.float32).reshape(-1, 2)
        return actions if obs.ndim > 1 else actions[0]


def rollout_stats(predict, episodes: int, seed: int = 0) -> dict:
    """Roll out ``predict(obs) -> action`` for ``episodes`` seeded episodes and count how many
    reach the goal, collide, and (of those reaching the goal) pass left or right."""
    env = gym.make(OBSTACLE_ID)
    out = {"goal": 0, "collided": 0, "left": 0, "right": 0}
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            xs, done = [], False
            while not done:
                obs, _, term, trunc, info = env.step(predict(obs))
                xs.append(float(obs[0]))
                done = term or trunc
            out["goal"] += int(info["reached_goal"])
            out["collided"] += int(info["collided"])
            if info["reached_goal"]:
                out["left" if np.mean(xs[:8]) < OBSTACLE_CENTER[0] else "right"] += 1
    finally:
        env.close()
    return out


def register_envs() -> None:
    """Register ``deeprl/ObstacleCourse-v0`` (40-step limit); safe to call twice."""
    if OBSTACLE_ID not in gym.registry:
        gym.register(id=OBSTACLE_ID, entry_point="deeprl.envs.obstacle:ObstacleCourseEnv", max_episode_steps=40)
