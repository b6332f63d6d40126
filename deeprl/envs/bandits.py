"""Multi-armed bandit environments (Gymnasium): ``deeprl/BernoulliBandit-v0`` and
``deeprl/GaussianBandit-v0``, registered by ``register_envs()``.

CS285 lecture notes, "Exploration" (exploration in bandits). A bandit with ``k`` arms has
``means`` (k,), the expected reward mu_a of each arm a; mu* = max_a mu_a (``optimal_mean``) and
the gaps Delta_a = mu* - mu_a >= 0. The envs have ``k`` discrete actions, a constant
observation (a (1,) float32 zero vector, so any MLP-based agent accepts it), and episodes of
``horizon`` plays that end by truncation: one episode is one bandit run. Each step's info
holds ``expected_regret`` = Delta_a of the arm played.

The algorithms that play them (epsilon-greedy, UCB1, Thompson sampling) and ``run_bandit``
live in :mod:`deeprl.tabular.bandits`. Bad arms (probabilities outside [0, 1], non-positive
standard deviations) raise ``ConfigError``.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from deeprl.core.errors import ConfigError

BERNOULLI_ID = "deeprl/BernoulliBandit-v0"
GAUSSIAN_ID = "deeprl/GaussianBandit-v0"
DEFAULT_PROBS = (0.1, 0.3, 0.5, 0.7, 0.8)  # registered default arms: gaps 0.7, 0.5, 0.3, 0.1, 0
DEFAULT_MEANS = (0.0, 0.5, 1.0, 1.5, 2.0)  # with the default stds = 1

# ------------------------------------------------------------------------------------------
# Argument checks
# ------------------------------------------------------------------------------------------


def as_vector(name: str, values) -> np.ndarray:
    """A non-empty, finite 1-D float array, else ConfigError naming ``name``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a 1-D sequence of numbers, got {values!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ConfigError(f"{name} must be a non-empty 1-D sequence of numbers, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ConfigError(f"{name} must be finite, got {arr.tolist()!r}")
    return arr


def check_horizon(horizon) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ConfigError(f"horizon must be an integer >= 1, got {horizon!r}")
    return int(horizon)


# ------------------------------------------------------------------------------------------
# Environments
# ------------------------------------------------------------------------------------------


class BanditEnv(gym.Env):
    """Shared machinery: constant (1,) zero observation, ``horizon`` plays per episode."""

    metadata = {"render_modes": []}

    def __init__(self, means: np.ndarray, horizon: int):
        self.means = means
        self.k = int(means.size)
        self.optimal_mean = float(means.max())
        self.optimal_arm = int(means.argmax())
        self.gaps = self.optimal_mean - means
        self.horizon = check_horizon(horizon)
        self.action_space = spaces.Discrete(self.k)
        self.observation_space = spaces.Box(low=0.0, high=1.0, shape=(1,), dtype=np.float32)  # always 0
        self._obs = np.zeros(1, dtype=np.float32)
        self._t = 0

    def _sample(self, arm: int) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs.copy(), {}

    def step(self, action):
        arm = int(action)
        if not 0 <= arm < self.k:
            raise ValueError(f"action must lie in 0..{self.k - 1}, got {action!r}")
        self._t += 1
        reward = self._sample(arm)
        info = {"expected_regret": float(self.gaps[arm])}
        return self._obs.copy(), reward, False, self._t >= self.horizon, info


class BernoulliBandit(BanditEnv):
    """Arm a pays 1 with probability ``probs[a]``, else 0. ``probs``: (k,) in [0, 1]."""

    def __init__(self, probs, horizon: int = 1000):
        probs = as_vector("probs", probs)
        if ((probs < 0) | (probs > 1)).any():
            raise ConfigError(f"probs must lie in [0, 1], got {probs.tolist()!r}")
        self.probs = probs
        super().__init__(probs.copy(), horizon)

    def _sample(self, arm: int) -> float:
        return float(self.np_random.random() < self.probs[arm])


class GaussianBandit(BanditEnv):
    """Arm a pays ``N(means[a], stds[a]^2)``. ``means``: (k,); ``stds``: (k,) or a scalar, > 0."""

    def __init__(self, means, stds=1.0, horizon: int = 1000):
        means = as_vector("means", means)
        stds = as_vector("stds", [stds] * means.size if np.ndim(stds) == 0 else stds)
        if stds.shape != means.shape:
            raise ConfigError(f"stds must be a scalar or have the shape of means {means.shape}, got {stds.shape}")
        if (stds <= 0).any():
            raise ConfigError(f"stds must be > 0, got {stds.tolist()!r}")
        self.stds = stds
        super().__init__(means, horizon)

    def _sample(self, arm: int) -> float:
        return float(self.means[arm] + self.stds[arm] * self.np_random.standard_normal())


def register_envs() -> None:
    """Register ``deeprl/BernoulliBandit-v0`` and ``deeprl/GaussianBandit-v0``; safe to call twice.

    Use ``gym.make(BERNOULLI_ID, probs=[...], horizon=1000)`` or
    ``gym.make(GAUSSIAN_ID, means=[...], stds=1.0, horizon=1000)``; without ``probs`` or
    ``means`` (e.g. ``deeprl train ucb --env deeprl/BernoulliBandit-v0``) the arms are
    ``DEFAULT_PROBS`` or ``DEFAULT_MEANS``.
    """
    if BERNOULLI_ID not in gym.registry:
        gym.register(id=BERNOULLI_ID, entry_point="deeprl.envs.bandits:BernoulliBandit",
                     kwargs={"probs": DEFAULT_PROBS})
    if GAUSSIAN_ID not in gym.registry:
        gym.register(id=GAUSSIAN_ID, entry_point="deeprl.envs.bandits:GaussianBandit",
                     kwargs={"means": DEFAULT_MEANS})
