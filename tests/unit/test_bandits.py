"""Tests for deeprl.tabular.bandits against closed forms and hand-computed references.

Regret curves are averaged over 20 seeds on a 5-arm Bernoulli problem with gaps 0.2..0.8 and
compared with what theory predicts: O(log T) for UCB1 and Thompson sampling (a good a + b ln T
fit, constant regret per doubling of T, Reg(T)/T -> 0, UCB1 below the Auer et al. 2002 bound)
and linear growth at the closed-form rate epsilon * sum_a Delta_a / k for fixed-epsilon
greedy. The log-growth check is also run on epsilon-greedy, which it must reject.
"""
from __future__ import annotations

import functools
import math

import gymnasium as gym
import numpy as np
import pytest

from deeprl.core.errors import ConfigError
from deeprl.tabular.bandits import (
    BERNOULLI_ID,
    GAUSSIAN_ID,
    UCB1,
    BernoulliBandit,
    EpsilonGreedy,
    GaussianBandit,
    ThompsonBernoulli,
    ThompsonGaussian,
    register_envs,
    run_bandit,
)

PROBS = np.array([0.9, 0.7, 0.5, 0.3, 0.1])
GAPS = PROBS.max() - PROBS
K = PROBS.size
T_MAX = 16_000
N_SEEDS = 20
GRID = np.unique(np.geomspace(250, T_MAX, 13).astype(int))  # log-spaced horizons
EPSILON = 0.1

register_envs()

ALGORITHMS = {
    "ucb1": lambda: UCB1(K),
    "thompson": lambda: ThompsonBernoulli(K),
    "epsilon_greedy": lambda: EpsilonGreedy(K, EPSILON),
}


@functools.lru_cache(maxsize=None)
def mean_regret(name: str) -> np.ndarray:
    """(T_MAX,) cumulative expected regret averaged over N_SEEDS runs (computed once per name)."""
    runs = [run_bandit(PROBS, ALGORITHMS[name](), T_MAX, np.random.default_rng(seed)) for seed in range(N_SEEDS)]
    return np.mean([r["cumulative_regret"] for r in runs], axis=0)


def r_squared(X: np.ndarray, y: np.ndarray) -> float:
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return 1.0 - np.sum((y - X @ coef) ** 2) / np.sum((y - y.mean()) ** 2)


def logarithmic_growth_problems(R: np.ndarray) -> list[str]:
    """Everything that contradicts Reg(T) = a + b ln T on GRID; empty when the curve is logarithmic."""
    y = R[GRID - 1]
    ones = np.ones(GRID.size)
    problems = []
    r2_log = r_squared(np.c_[ones, np.log(GRID)], y)
    r2_lin = r_squared(np.c_[ones, GRID], y)
    if r2_log < 0.97:
        problems.append(f"R^2 of a + b ln T is {r2_log:.4f} < 0.97")
    if r2_log <= r2_lin:
        problems.append(f"a + b T fits better (R^2 {r2_lin:.4f} >= {r2_log:.4f})")
    # Log growth adds the same regret b ln 2 per doubling of T; linear growth doubles it.
    late = R[T_MAX - 1] - R[T_MAX // 2 - 1]
    early = R[T_MAX // 4 - 1] - R[T_MAX // 8 - 1]
    if late > 2.0 * early:  # log: ratio 1, linear: ratio 4
        problems.append(f"regret added over [T/2, T] is {late / early:.2f}x that over [T/8, T/4]")
    # Reg(T) / T -> 0: decreasing along the grid, and late per-step regret far below uniform play's.
    per_step = y / GRID
    if not np.all(np.diff(per_step) < 0):
        problems.append(f"Reg(T)/T does not decrease along the grid: {np.round(per_step, 4).tolist()}")
    late_rate, uniform_rate = late / (T_MAX / 2), GAPS.mean()
    if late_rate > 0.02 * uniform_rate:
        problems.append(f"per-step regret over [T/2, T] is {late_rate:.4f} > 2% of uniform play's {uniform_rate}")
    return problems


# ------------------------------------------------------------------------------------------
# Environments
# ------------------------------------------------------------------------------------------


def test_register_envs_is_idempotent_and_envs_are_made_by_id():
    register_envs()
    register_envs()
    assert BERNOULLI_ID in gym.registry and GAUSSIAN_ID in gym.registry
    env = gym.make(BERNOULLI_ID, probs=[0.2, 0.8], horizon=3)
    assert isinstance(env.unwrapped, BernoulliBandit)
    assert env.action_space == gym.spaces.Discrete(2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (1,) and env.observation_space.contains(obs)
    ends = [env.step(1)[3] for _ in range(3)]
    assert ends == [False, False, True]  # an episode is `horizon` plays, ended by truncation
    assert env.unwrapped.optimal_mean == 0.8 and env.unwrapped.means.tolist() == [0.2, 0.8]
    env = gym.make(GAUSSIAN_ID, means=[0.0, -1.0], stds=2.0)
    assert isinstance(env.unwrapped, GaussianBandit) and env.unwrapped.horizon == 1000
    assert env.unwrapped.stds.tolist() == [2.0, 2.0]


def test_bernoulli_rewards_have_the_right_means():
    n = 20_000
    env = BernoulliBandit([0.05, 0.5, 0.93], horizon=n)
    env.reset(seed=1)
    for arm, p in enumerate(env.probs):
        rewards = np.array([env.step(arm)[1] for _ in range(n)])
        assert set(np.unique(rewards)) <= {0.0, 1.0}
        assert abs(rewards.mean() - p) < 4 * math.sqrt(p * (1 - p) / n)
        env.reset()


def test_gaussian_rewards_have_the_right_means_and_stds():
    n = 20_000
    means, stds = np.array([-1.0, 0.0, 2.5]), np.array([0.5, 1.0, 3.0])
    env = GaussianBandit(means, stds, horizon=n)
    env.reset(seed=2)
    for arm in range(3):
        rewards = np.array([env.step(arm)[1] for _ in range(n)])
        assert abs(rewards.mean() - means[arm]) < 4 * stds[arm] / math.sqrt(n)
        assert abs(rewards.std() - stds[arm]) < 0.03 * stds[arm]
        env.reset()


# ------------------------------------------------------------------------------------------
# Regret
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ucb1", "thompson"])
def test_regret_grows_logarithmically(name):
    assert logarithmic_growth_problems(mean_regret(name)) == []


def test_log_growth_check_rejects_fixed_epsilon_greedy():
    assert len(logarithmic_growth_problems(mean_regret("epsilon_greedy"))) >= 3


def test_epsilon_greedy_regret_is_linear_at_the_closed_form_rate():
    # Once the greedy arm is the best one, every exploration step costs a uniform arm's gap.
    rate = EPSILON * GAPS.sum() / K
    R = mean_regret("epsilon_greedy")
    late_rate = (R[-1] - R[T_MAX // 2 - 1]) / (T_MAX / 2)
    assert late_rate == pytest.approx(rate, rel=0.1)
    assert R[-1] / T_MAX == pytest.approx(rate, rel=0.15)


def test_ucb1_regret_is_below_the_auer_bound():
    gaps = GAPS[GAPS > 0]
    bound = 8 * np.log(GRID) * np.sum(1 / gaps) + (1 + math.pi**2 / 3) * gaps.sum()
    assert np.all(mean_regret("ucb1")[GRID - 1] <= bound)


def test_thompson_beats_ucb1_and_ucb1_beats_epsilon_greedy_at_the_horizon():
    assert mean_regret("thompson")[-1] < mean_regret("ucb1")[-1] < mean_regret("epsilon_greedy")[-1]


# ------------------------------------------------------------------------------------------
# Algorithms in detail
# ------------------------------------------------------------------------------------------


def test_ucb1_plays_each_arm_once_then_maximises_the_index():
    out = run_bandit(PROBS, UCB1(K), 50, np.random.default_rng(0))
    assert out["actions"][:K].tolist() == list(range(K))
    algo = UCB1(2)
    algo.counts[:] = [1, 4]
    algo.values[:] = [0.5, 0.6]
    # n = 5: 0.5 + sqrt(2 ln 5 / 1) = 2.294 > 0.6 + sqrt(2 ln 5 / 4) = 1.497
    assert algo.select(6, np.random.default_rng(0)) == 0
    algo.c = 0.0
    assert algo.select(6, np.random.default_rng(0)) == 1


def test_thompson_bernoulli_posterior_is_the_beta_conjugate_update():
    algo = ThompsonBernoulli(3, alpha=2.0, beta=0.5)
    for arm, reward in [(0, 1.0), (0, 1.0), (1, 0.0), (0, 0.0)]:
        algo.update(arm, reward)
    # arm 0: 2 successes, 1 failure; arm 1: 1 failure; arm 2: prior
    assert algo.alpha.tolist() == [4.0, 2.0, 2.0]
    assert algo.beta.tolist() == [1.5, 1.5, 0.5]
    assert algo.counts.tolist() == [3, 1, 0]
    algo.reset()
    assert algo.alpha.tolist() == [2.0] * 3 and algo.beta.tolist() == [0.5] * 3
    with pytest.raises(ValueError, match="rewards in"):
        algo.update(0, 1.5)


def test_thompson_gaussian_posterior_is_the_normal_conjugate_update():
    algo = ThompsonGaussian(3, prior_mean=1.0, prior_var=2.0, noise_var=0.5)
    for arm, reward in [(0, 1.0), (1, -1.0), (0, 2.0)]:
        algo.update(arm, reward)
    # arm 0: precision 1/2 + 2/0.5 = 4.5, mean (1/2 + 3/0.5) / 4.5 = 13/9
    # arm 1: precision 1/2 + 1/0.5 = 2.5, mean (1/2 - 1/0.5) / 2.5 = -0.6
    np.testing.assert_allclose(algo.post_var, [2 / 9, 0.4, 2.0], rtol=1e-12)
    np.testing.assert_allclose(algo.post_mean, [13 / 9, -0.6, 1.0], rtol=1e-12)


def test_thompson_gaussian_finds_the_best_arm_of_a_gaussian_bandit():
    env = GaussianBandit([0.0, 1.0, 0.5], stds=1.0, horizon=500)
    out = run_bandit(env, ThompsonGaussian(3), 2000, np.random.default_rng(3))  # spans 4 episodes
    assert np.mean(out["actions"][-500:] == 1) > 0.9


def test_run_bandit_outputs_are_consistent_and_seeded():
    env = gym.make(BERNOULLI_ID, probs=PROBS.tolist(), horizon=100)
    a = run_bandit(env, EpsilonGreedy(K, 0.3), 250, np.random.default_rng(7))
    b = run_bandit(env, EpsilonGreedy(K, 0.3), 250, np.random.default_rng(7))
    c = run_bandit(env, EpsilonGreedy(K, 0.3), 250, np.random.default_rng(8))
    assert {k: v.shape for k, v in a.items()} == dict.fromkeys(a, (250,))
    np.testing.assert_array_equal(a["expected_regret"], GAPS[a["actions"]])
    np.testing.assert_allclose(a["cumulative_regret"], np.cumsum(a["expected_regret"]))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["actions"], c["actions"])


# ------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: BernoulliBandit([0.5, 1.2]), "probs"),
        (lambda: BernoulliBandit([-0.1, 0.5]), "probs"),
        (lambda: BernoulliBandit([]), "probs"),
        (lambda: gym.make(BERNOULLI_ID, probs=[2.0]), "probs"),
        (lambda: BernoulliBandit([0.5], horizon=0), "horizon"),
        (lambda: GaussianBandit([0.0, 1.0], [1.0, 0.0]), "stds"),
        (lambda: GaussianBandit([0.0, 1.0], -1.0), "stds"),
        (lambda: GaussianBandit([0.0, 1.0], [1.0, 1.0, 1.0]), "stds"),
        (lambda: GaussianBandit([0.0, np.nan]), "means"),
        (lambda: EpsilonGreedy(3, 1.5), "epsilon"),
        (lambda: EpsilonGreedy(3, -0.1), "epsilon"),
        (lambda: EpsilonGreedy(0, 0.1), "k"),
        (lambda: UCB1(3, c=-1.0), "c"),
        (lambda: ThompsonBernoulli(3, alpha=0.0), "alpha"),
        (lambda: ThompsonBernoulli(3, beta=-1.0), "beta"),
        (lambda: ThompsonGaussian(3, prior_var=0.0), "prior_var"),
        (lambda: ThompsonGaussian(3, noise_var=-1.0), "noise_var"),
        (lambda: run_bandit([0.5, 0.6], UCB1(3), 10, np.random.default_rng(0)), "k="),
        (lambda: run_bandit([0.5, 0.6], UCB1(2), 0, np.random.default_rng(0)), "horizon"),
    ],
)
def test_bad_parameters_raise_config_error_naming_them(make, name):
    register_envs()
    with pytest.raises(ConfigError) as info:
        make()
    message = str(info.value)
    assert name in message and "\n" not in message
