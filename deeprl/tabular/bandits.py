"""Multi-armed bandits: environments, classic exploration algorithms and regret (NumPy).

CS285 lecture notes, "Exploration" (exploration in bandits: optimistic exploration / UCB,
probability matching / Thompson sampling). Notation, for a bandit with ``k`` arms:

- ``means``      (k,) expected reward mu_a of each arm a; mu* = max_a mu_a (``optimal_mean``).
- ``gap``        Delta_a = mu* - mu_a >= 0.
- regret         Reg(T) = T mu* - sum_{t=1}^T mu_{a_t}  (the *expected* regret of the arms
                 actually chosen: the reward noise is taken out, the algorithm's randomness is not).
- ``counts``     (k,) N_a, how often each arm was played; ``values`` (k,) sample means mu_hat_a.

The environments (``deeprl/BernoulliBandit-v0``, ``deeprl/GaussianBandit-v0``) live in
:mod:`deeprl.envs.bandits`; ``BernoulliBandit``, ``GaussianBandit`` and their ids are
re-exported here for convenience.

Algorithms share one interface: ``select(t, rng) -> arm`` for the t-th play (t = 1, 2, ...),
``update(arm, reward)`` afterwards, ``reset()`` back to the prior / no data.

- ``EpsilonGreedy(k, epsilon)``  uniform arm with probability epsilon, else argmax mu_hat.
  With fixed epsilon the regret grows linearly: Reg(T) / T -> epsilon * sum_a Delta_a / k.
- ``UCB1(k, c=2)``               each arm once, then argmax_a mu_hat_a + sqrt(c ln n / N_a) with
  n the number of plays so far (Auer, Cesa-Bianchi & Fischer 2002; c = 2 is their UCB1). For
  rewards in [0, 1]: E[Reg(n)] <= sum_{Delta_a > 0} 8 ln n / Delta_a + (1 + pi^2 / 3) sum_a Delta_a.
- ``ThompsonBernoulli(k, alpha=1, beta=1)``  Beta(alpha_a, beta_a) posteriors, sample one mean
  per arm and play the argmax; reward r in [0, 1] updates alpha_a += r, beta_a += 1 - r.
- ``ThompsonGaussian(k, prior_mean=0, prior_var=1, noise_var=1)``  N(m_a, v_a) posteriors over
  the means of arms with Gaussian rewards of known variance noise_var; a reward r updates
  1 / v_a <- 1 / v_a + 1 / noise_var and m_a <- v_a' (m_a / v_a + r / noise_var).

``run_bandit(env_or_means, algorithm, horizon, rng)`` plays one run and returns the arms,
rewards, per-step expected regret and cumulative expected regret.

Bad hyperparameters (probabilities outside [0, 1], non-positive standard deviations or
variances, epsilon outside [0, 1], ...) raise ``ConfigError``; a reward or arm an algorithm
cannot accept raises ValueError.
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from deeprl.core.errors import ConfigError
from deeprl.envs.bandits import (  # noqa: F401 (re-exported)
    BERNOULLI_ID,
    DEFAULT_MEANS,
    DEFAULT_PROBS,
    GAUSSIAN_ID,
    BanditEnv,
    BernoulliBandit,
    GaussianBandit,
    check_horizon,
    register_envs,
)

# ------------------------------------------------------------------------------------------
# Argument checks
# ------------------------------------------------------------------------------------------


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k (number of arms) must be an integer >= 1, got {k!r}")
    return int(k)


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number > 0, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _argmax_random(values: np.ndarray, rng: np.random.Generator) -> int:
    """argmax with ties broken uniformly at random (so untried arms are not biased to index 0)."""
    best = np.flatnonzero(values == values.max())
    return int(best[0]) if best.size == 1 else int(rng.choice(best))


# ------------------------------------------------------------------------------------------
# Algorithms
# ------------------------------------------------------------------------------------------


class BanditAlgorithm:
    """Base class: play counts N_a (k,) and sample means mu_hat_a (k,), updated incrementally."""

    def __init__(self, k: int):
        self.k = _check_k(k)
        self.reset()

    def reset(self) -> None:
        self.counts = np.zeros(self.k, dtype=np.int64)
        self.values = np.zeros(self.k, dtype=np.float64)

    def _check_arm(self, arm) -> int:
        arm = int(arm)
        if not 0 <= arm < self.k:
            raise ValueError(f"arm must lie in 0..{self.k - 1}, got {arm!r}")
        return arm

    def select(self, t: int, rng: np.random.Generator) -> int:
        raise NotImplementedError

    def update(self, arm: int, reward: float) -> None:
        arm = self._check_arm(arm)
        self.counts[arm] += 1
        self.values[arm] += (float(reward) - self.values[arm]) / self.counts[arm]


class EpsilonGreedy(BanditAlgorithm):
    """With probability epsilon a uniform arm (any of the k), else argmax_a mu_hat_a (random ties)."""

    def __init__(self, k: int, epsilon: float = 0.1):
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.integer, np.floating)) \
                or not 0.0 <= epsilon <= 1.0:
            raise ConfigError(f"epsilon must be a number in [0, 1], got {epsilon!r}")
        self.epsilon = float(epsilon)
        super().__init__(k)

    def select(self, t: int, rng: np.random.Generator) -> int:
        if rng.random() < self.epsilon:
            return int(rng.integers(self.k))
        return _argmax_random(self.values, rng)


class UCB1(BanditAlgorithm):
    """Each arm once (in index order), then argmax_a mu_hat_a + sqrt(c ln n / N_a), n = sum_a N_a.

    ``t`` is not used: n is the algorithm's own count of plays so far (t - 1 in ``run_bandit``).
    """

    def __init__(self, k: int, c: float = 2.0):
        if isinstance(c, bool) or not isinstance(c, (int, float, np.integer, np.floating)) \
                or not (math.isfinite(c) and c >= 0):
            raise ConfigError(f"c must be a finite number >= 0, got {c!r}")
        self.c = float(c)
        super().__init__(k)

    def select(self, t: int, rng: np.random.Generator) -> int:
        untried = np.flatnonzero(self.counts == 0)
        if untried.size:
            return int(untried[0])
        n = self.counts.sum()
        return _argmax_random(self.values + np.sqrt(self.c * math.log(n) / self.counts), rng)


class ThompsonBernoulli(BanditAlgorithm):
    """Beta posteriors: ``alpha`` (k,), ``beta`` (k,). Sample theta_a ~ Beta(alpha_a, beta_a), play argmax.

    A reward r in [0, 1] adds r to alpha_a and 1 - r to beta_a (the exact conjugate update for
    r in {0, 1}).
    """

    def __init__(self, k: int, alpha: float = 1.0, beta: float = 1.0):
        self.prior_alpha = _check_positive("alpha", alpha)
        self.prior_beta = _check_positive("beta", beta)
        super().__init__(k)

    def reset(self) -> None:
        super().reset()
        self.alpha = np.full(self.k, self.prior_alpha)
        self.beta = np.full(self.k, self.prior_beta)

    def select(self, t: int, rng: np.random.Generator) -> int:
        return _argmax_random(rng.beta(self.alpha, self.beta), rng)

    def update(self, arm: int, reward: float) -> None:
        reward = float(reward)
        if not 0.0 <= reward <= 1.0:
            raise ValueError(f"ThompsonBernoulli needs rewards in [0, 1], got {reward!r}")
        super().update(arm, reward)
        self.alpha[arm] += reward
        self.beta[arm] += 1.0 - reward


class ThompsonGaussian(BanditAlgorithm):
    """Gaussian posteriors N(``post_mean`` (k,), ``post_var`` (k,)) over the arm means.

    Rewards are modelled as N(mu_a, noise_var) with known noise_var; prior mu_a ~ N(prior_mean,
    prior_var). After N_a rewards with sum S_a: post_var = 1 / (1 / prior_var + N_a / noise_var),
    post_mean = post_var (prior_mean / prior_var + S_a / noise_var).
    """

    def __init__(self, k: int, prior_mean: float = 0.0, prior_var: float = 1.0, noise_var: float = 1.0):
        if isinstance(prior_mean, bool) or not isinstance(prior_mean, (int, float, np.integer, np.floating)) \
                or not math.isfinite(prior_mean):
            raise ConfigError(f"prior_mean must be a finite number, got {prior_mean!r}")
        self.prior_mean = float(prior_mean)
        self.prior_var = _check_positive("prior_var", prior_var)
        self.noise_var = _check_positive("noise_var", noise_var)
        super().__init__(k)

    def reset(self) -> None:
        super().reset()
        self.post_mean = np.full(self.k, self.prior_mean)
        self.post_var = np.full(self.k, self.prior_var)

    def select(self, t: int, rng: np.random.Generator) -> int:
        return _argmax_random(self.post_mean + np.sqrt(self.post_var) * rng.standard_normal(self.k), rng)

    def update(self, arm: int, reward: float) -> None:
        reward = float(reward)
        if not math.isfinite(reward):
            raise ValueError(f"ThompsonGaussian needs finite rewards, got {reward!r}")
        super().update(arm, reward)
        precision = 1.0 / self.post_var[arm] + 1.0 / self.noise_var
        self.post_mean[arm] = (self.post_mean[arm] / self.post_var[arm] + reward / self.noise_var) / precision
        self.post_var[arm] = 1.0 / precision


# ------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------


def run_bandit(env_or_means, algorithm: BanditAlgorithm, horizon: int, rng: np.random.Generator) -> dict:
    """Play ``horizon`` steps of ``algorithm`` (reset first) and measure its expected regret.

    ``env_or_means``: a bandit env (``BernoulliBandit``/``GaussianBandit``, possibly wrapped,
    e.g. from ``gym.make``) or a (k,) sequence of probabilities, which makes a
    ``BernoulliBandit``. The env is reset with a seed drawn from ``rng`` and again whenever an
    episode ends (the arms' distributions do not change), and ``rng`` also drives the
    algorithm, so one ``rng`` seed fixes the whole run.

    Returns a dict of (horizon,) arrays: ``actions`` (int), ``rewards``, ``expected_regret``
    (mu* - mu_{a_t}) and ``cumulative_regret`` (its running sum, Reg(t) for t = 1..horizon).
    """
    horizon = check_horizon(horizon)
    env = env_or_means if isinstance(env_or_means, gym.Env) else BernoulliBandit(env_or_means, horizon=horizon)
    bandit = env.unwrapped
    if not isinstance(bandit, BanditEnv):
        raise ConfigError(f"run_bandit needs a BernoulliBandit or GaussianBandit, got {type(bandit).__name__}")
    if algorithm.k != bandit.k:
        raise ConfigError(f"algorithm has k={algorithm.k} arms but the bandit has {bandit.k}")
    algorithm.reset()
    actions = np.empty(horizon, dtype=np.int64)
    rewards = np.empty(horizon, dtype=np.float64)
    env.reset(seed=int(rng.integers(2**63 - 1)))
    for t in range(1, horizon + 1):
        arm = algorithm.select(t, rng)
        _, reward, terminated, truncated, _ = env.step(arm)
        algorithm.update(arm, reward)
        actions[t - 1], rewards[t - 1] = arm, reward
        if terminated or truncated:
            env.reset()
    expected_regret = bandit.gaps[actions]
    return {
        "actions": actions,
        "rewards": rewards,
        "expected_regret": expected_regret,
        "cumulative_regret": np.cumsum(expected_regret),
    }
