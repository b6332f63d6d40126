"""Tests for deeprl.tabular (known-dynamics MDPs and dynamic programming) against independent references.

References never reuse the implementation: optimal values come from a linear program built
straight from Gymnasium's ``env.unwrapped.P`` tables (V* is the smallest V with
V(s) >= r(s,a) + gamma E[V(s')] for all s, a), Bellman residuals and soft backups are
recomputed from those tables or with scipy, small MDPs are solved by enumerating every
deterministic policy, and the value-iteration policy is rolled out in the real environment.
"""
from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import linprog
from scipy.special import logsumexp

from deeprl.core.errors import ConfigError, SpaceError
from deeprl.tabular import (
    TabularMDP,
    from_gym,
    policy_evaluation,
    policy_evaluation_exact,
    policy_iteration,
    q_from_v,
    soft_value_iteration,
    value_iteration,
)

TOY_TEXT = ["FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1", "Taxi-v4"]
GAMMA = 0.99


def table_of(env_id):
    env = gym.make(env_id)
    inner = env.unwrapped
    return inner.P, inner.observation_space.n, inner.action_space.n


# --------------------------------------------------------------------------------------
# Independent references
# --------------------------------------------------------------------------------------


def q_from_table(table, n_states, n_actions, V, gamma):
    """Q(s,a) = sum over the table's entries of prob * (reward + gamma * (0 if done else V[next]))."""
    Q = np.zeros((n_states, n_actions))
    for s in range(n_states):
        for a in range(n_actions):
            Q[s, a] = sum(p * (r + (0.0 if done else gamma * V[int(s2)])) for p, s2, r, done in table[s][a])
    return Q


def lp_optimal_values(table, n_states, n_actions, gamma):
    """V* = argmin sum_s V(s)  s.t.  V(s) >= r(s,a) + gamma sum_{s' not done} p V(s') for all (s, a)."""
    A_ub = sparse.lil_matrix((n_states * n_actions, n_states))
    b_ub = np.zeros(n_states * n_actions)
    for s in range(n_states):
        for a in range(n_actions):
            row = s * n_actions + a
            A_ub[row, s] -= 1.0
            for p, s2, r, done in table[s][a]:
                b_ub[row] -= p * r
                if not done:
                    A_ub[row, int(s2)] += gamma * p
    res = linprog(np.ones(n_states), A_ub=A_ub.tocsr(), b_ub=b_ub, bounds=(None, None), method="highs")
    assert res.status == 0, res.message
    return res.x


def solve_deterministic(P, R, terminal, actions, gamma):
    """V of a deterministic policy by a direct linear solve, terminal states pinned to 0."""
    S = P.shape[0]
    P_pi = P[np.arange(S), actions].copy()
    P_pi[:, terminal] = 0.0
    return np.linalg.solve(np.eye(S) - gamma * P_pi, R[np.arange(S), actions])


def brute_force_optimum(P, R, terminal, gamma):
    """Evaluate all A^S deterministic policies; return the values of the one that dominates them all."""
    S, A = R.shape
    policies = itertools.product(range(A), repeat=S)
    values = [solve_deterministic(P, R, terminal, np.array(actions), gamma) for actions in policies]
    best = max(values, key=np.sum)
    assert all((best >= v - 1e-12).all() for v in values), "an optimal policy dominates every other one"
    return best


def random_mdp(rng, n_states, n_actions, with_terminal):
    P = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))
    R = rng.normal(size=(n_states, n_actions))
    terminal = np.zeros(n_states, bool)
    if with_terminal:
        terminal[-1] = True
        P[-1] = 0.0
        P[-1, :, -1] = 1.0
        R[-1] = 0.0
    return TabularMDP(P, R, terminal)


# --------------------------------------------------------------------------------------
# The model: from_gym and validation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", TOY_TEXT)
def test_from_gym_adds_one_absorbing_end_state(env_id):
    table, S, A = table_of(env_id)
    mdp = from_gym(gym.make(env_id))
    assert mdp.P.shape == (S + 1, A, S + 1) and mdp.R.shape == (S + 1, A)
    assert np.flatnonzero(mdp.terminal).tolist() == [S]
    np.testing.assert_allclose(mdp.P.sum(axis=2), 1.0, atol=1e-12)
    # Mass into the end state = probability of `done`; expected reward = sum of prob * reward.
    for s in range(S):
        for a in range(A):
            assert mdp.P[s, a, S] == pytest.approx(sum(p for p, _, _, d in table[s][a] if d))
            assert mdp.R[s, a] == pytest.approx(sum(p * r for p, _, r, _ in table[s][a]))


def test_from_gym_frozenlake_entries_by_hand():
    mdp = TabularMDP.from_gym(gym.make("FrozenLake-v1"))  # slippery: intended move or either side, 1/3 each
    LEFT, RIGHT, END = 0, 2, 16
    # State 0, LEFT: left and up both hit walls (stay, 2/3), down slips to 4 (1/3): duplicates add up.
    np.testing.assert_allclose(mdp.P[0, LEFT, [0, 4]], [2 / 3, 1 / 3])
    # State 14, RIGHT: goal (done, reward 1) 1/3, up to 10 1/3, down hits the wall 1/3.
    np.testing.assert_allclose(mdp.P[14, RIGHT, [END, 10, 14]], [1 / 3, 1 / 3, 1 / 3])
    assert mdp.R[14, RIGHT] == pytest.approx(1 / 3)
    # A hole (5) only leads to the end state, without reward.
    np.testing.assert_allclose(mdp.P[5, :, END], 1.0)
    np.testing.assert_allclose(mdp.R[5], 0.0)


def test_from_gym_rejects_continuous_observations():
    with pytest.raises(SpaceError) as info:
        from_gym(gym.make("CartPole-v1"))
    message = str(info.value)
    assert "\n" not in message
    assert "Discrete observation and action spaces" in message and "transition table P" in message
    assert "Box" in message  # names what it got


class DiscreteWithoutTable(gym.Env):
    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)


def test_from_gym_rejects_env_without_transition_table():
    with pytest.raises(SpaceError, match=r"no transition table env\.unwrapped\.P"):
        from_gym(DiscreteWithoutTable())


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda P, R, T: (P * 0.9, R, T), "sum to 1"),
        (lambda P, R, T: (P, R[:, :1], T), "R must have shape"),
        (lambda P, R, T: (P, np.where(R > 0, np.nan, R), T), "finite"),
        (lambda P, R, T: (P, R, T[:2]), "terminal must have shape"),
        (lambda P, R, T: (P, R, np.array([True, False, False])), "must be absorbing"),
    ],
)
def test_tabular_mdp_validation(change, match):
    mdp = random_mdp(np.random.default_rng(0), 3, 2, with_terminal=False)
    P, R, T = change(mdp.P, mdp.R, mdp.terminal)
    with pytest.raises(ValueError, match=match):
        TabularMDP(P, R, T)


def test_hyperparameters_out_of_range_raise_config_error():
    mdp = random_mdp(np.random.default_rng(0), 3, 2, with_terminal=True)
    for gamma in (1.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match=r"gamma must be in \[0, 1\)"):
            value_iteration(mdp, gamma)
        with pytest.raises(ConfigError, match="gamma"):
            policy_iteration(mdp, gamma)
        with pytest.raises(ConfigError, match="gamma"):
            policy_evaluation_exact(mdp, np.zeros(3, int), gamma)
    for temperature in (0.0, -1.0, np.inf):
        with pytest.raises(ConfigError, match="temperature must be"):
            soft_value_iteration(mdp, 0.9, temperature)
    with pytest.raises(ConfigError, match="tol"):
        value_iteration(mdp, 0.9, tol=0.0)


def test_bad_policy_arrays_raise_value_error():
    mdp = random_mdp(np.random.default_rng(0), 3, 2, with_terminal=False)
    with pytest.raises(ValueError, match="rows must be probabilities"):
        policy_evaluation_exact(mdp, np.full((3, 2), 0.6), 0.9)
    with pytest.raises(ValueError, match="actions must lie"):
        policy_evaluation_exact(mdp, np.array([0, 1, 2]), 0.9)


# --------------------------------------------------------------------------------------
# Policy evaluation, policy iteration, value iteration
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", TOY_TEXT)
def test_policy_and_value_iteration_agree_with_linear_program(env_id):
    table, S, _ = table_of(env_id)
    mdp = from_gym(gym.make(env_id))
    V_pi, pi_pi, _ = policy_iteration(mdp, GAMMA)
    V_vi, pi_vi, _ = value_iteration(mdp, GAMMA, tol=1e-9)
    V_lp = lp_optimal_values(table, S, mdp.n_actions, GAMMA)
    for V in (V_pi, V_vi, policy_evaluation_exact(mdp, pi_pi, GAMMA), policy_evaluation_exact(mdp, pi_vi, GAMMA)):
        np.testing.assert_allclose(V[:S], V_lp, rtol=0, atol=1e-6)
        assert V[S] == 0.0  # the end-of-episode state


@pytest.mark.parametrize("env_id", TOY_TEXT)
def test_optimal_values_satisfy_bellman_optimality(env_id):
    table, S, A = table_of(env_id)
    mdp = from_gym(gym.make(env_id))
    V, pi, _ = policy_iteration(mdp, GAMMA)
    Q = q_from_table(table, S, A, V, GAMMA)  # straight from the env's table
    np.testing.assert_allclose(Q.max(axis=1), V[:S], rtol=0, atol=1e-6)
    np.testing.assert_allclose(Q[np.arange(S), pi[:S]], V[:S], rtol=0, atol=1e-6)  # pi is greedy
    np.testing.assert_allclose(q_from_v(mdp, V, GAMMA)[:S], Q, rtol=0, atol=1e-9)


@pytest.mark.parametrize("env_id", ["FrozenLake8x8-v1", "Taxi-v4"])
def test_iterative_and_exact_policy_evaluation_agree(env_id):
    mdp = from_gym(gym.make(env_id))
    policy = np.random.default_rng(1).dirichlet(np.ones(mdp.n_actions), size=mdp.n_states)
    V_exact = policy_evaluation_exact(mdp, policy, 0.95)
    V_iter = policy_evaluation(mdp, policy, 0.95, tol=1e-10)
    np.testing.assert_allclose(V_iter, V_exact, rtol=0, atol=1e-10)
    assert np.ptp(V_exact[:-1]) > 1e-2  # not a trivially constant value function


def test_value_iteration_stopping_rule_bounds_error_to_tol():
    mdp = from_gym(gym.make("FrozenLake8x8-v1"))
    V_star, _, _ = policy_iteration(mdp, GAMMA)
    sweeps = {}
    for tol in (1e-2, 1e-4, 1e-8):
        V, _, sweeps[tol] = value_iteration(mdp, GAMMA, tol=tol)
        error = np.max(np.abs(V - V_star))
        assert error <= tol
    assert sweeps[1e-2] < sweeps[1e-4] < sweeps[1e-8]


def test_value_iteration_reports_non_convergence():
    mdp = from_gym(gym.make("FrozenLake-v1"))
    with pytest.raises(RuntimeError, match="did not reach tol"):
        value_iteration(mdp, GAMMA, tol=1e-6, max_iter=5)


def test_gamma_zero_is_the_myopic_optimum():
    mdp = random_mdp(np.random.default_rng(3), 4, 3, with_terminal=True)
    V, pi, sweeps = value_iteration(mdp, 0.0)
    np.testing.assert_array_equal(V, mdp.R.max(axis=1))
    np.testing.assert_array_equal(pi[:-1], mdp.R[:-1].argmax(axis=1))
    assert sweeps == 1


def test_policy_iteration_on_hand_made_mdp_matches_brute_force_and_hand_solution():
    # s0: "cash out" (a0) -> end with reward 1, or "wait" (a1) -> s1.
    # s1: "cash out" -> end with reward 10, or "gamble" -> reward 2, then s0 or s1 with 1/2 each.
    # s2: terminal. Myopically a0 is best in s0 and in s1; with gamma = 0.9 waiting and gambling
    # forever is optimal: V(s1) = 2 + 0.9 (V(s0) + V(s1)) / 2 and V(s0) = 0.9 V(s1).
    P = np.zeros((3, 2, 3))
    P[0, 0, 2] = P[0, 1, 1] = P[1, 0, 2] = 1.0
    P[1, 1, 0] = P[1, 1, 1] = 0.5
    P[2, :, 2] = 1.0
    R = np.array([[1.0, 0.0], [10.0, 2.0], [0.0, 0.0]])
    terminal = np.array([False, False, True])
    mdp = TabularMDP(P, R, terminal)
    V, pi, _ = policy_iteration(mdp, 0.9)
    v1 = 2.0 / (1.0 - 0.9 * 0.5 * 0.9 - 0.9 * 0.5)
    np.testing.assert_allclose(V, [0.9 * v1, v1, 0.0], rtol=1e-12)
    np.testing.assert_array_equal(pi[:2], [1, 1])
    np.testing.assert_allclose(V, brute_force_optimum(P, R, terminal, 0.9), rtol=1e-12)


def test_policy_and_value_iteration_match_brute_force_on_random_small_mdps():
    rng = np.random.default_rng(2)
    for i in range(30):
        scale = (1e-4, 1.0, 1e4)[i % 3]  # no absolute tolerance hides inside the solvers
        mdp = random_mdp(rng, 3, 3, with_terminal=i % 2 == 0)
        mdp = TabularMDP(mdp.P, scale * mdp.R, mdp.terminal)
        best = brute_force_optimum(mdp.P, mdp.R, mdp.terminal, 0.9)
        np.testing.assert_allclose(policy_iteration(mdp, 0.9)[0], best, rtol=0, atol=1e-10 * scale)
        np.testing.assert_allclose(value_iteration(mdp, 0.9, tol=1e-11 * scale)[0], best, rtol=0, atol=1e-10 * scale)


def test_iterative_solvers_converge_when_tol_is_below_float_resolution():
    # |V| ~ 1e10: a change of tol * (1 - gamma) / gamma ~ 1e-12 is far below float64 resolution,
    # so the sweeps must stop on an exact floating-point fixed point, within max_iter.
    mdp = random_mdp(np.random.default_rng(5), 5, 2, with_terminal=False)
    mdp = TabularMDP(mdp.P, 1e8 * np.abs(mdp.R), mdp.terminal)
    policy = np.full((5, 2), 0.5)
    V = policy_evaluation(mdp, policy, 0.99, tol=1e-10, max_iter=20_000)
    np.testing.assert_allclose(V, policy_evaluation_exact(mdp, policy, 0.99), rtol=1e-12)
    V, _, _ = value_iteration(mdp, 0.99, tol=1e-10, max_iter=20_000)
    np.testing.assert_allclose(V, policy_iteration(mdp, 0.99)[0], rtol=1e-12)


# --------------------------------------------------------------------------------------
# Soft value iteration
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id, temperature", [("FrozenLake-v1", 0.05), ("CliffWalking-v1", 0.5), ("Taxi-v4", 1.0)])
def test_soft_value_iteration_satisfies_soft_bellman_equation(env_id, temperature):
    table, S, A = table_of(env_id)
    mdp = from_gym(gym.make(env_id))
    V, Q, pi = soft_value_iteration(mdp, 0.95, temperature, tol=1e-9)
    np.testing.assert_allclose(Q[:S], q_from_table(table, S, A, V, 0.95), rtol=0, atol=1e-9)
    np.testing.assert_allclose(V[:S], temperature * logsumexp(Q[:S] / temperature, axis=1), rtol=0, atol=1e-8)
    assert V[S] == 0.0
    np.testing.assert_allclose(pi.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pi[:S], np.exp((Q[:S] - V[:S, None]) / temperature), rtol=0, atol=1e-7)


def test_soft_optimal_policy_value_includes_entropy_bonus():
    # V_soft is the value of the Boltzmann policy for the reward r + alpha * H(pi(.|s)),
    # the bonus stopping at terminal states.
    mdp = from_gym(gym.make("FrozenLake-v1"))
    alpha, gamma = 0.1, 0.95
    V, _, pi = soft_value_iteration(mdp, gamma, alpha, tol=1e-11)
    entropy = -np.sum(pi * np.log(pi), axis=1)
    R_bonus = mdp.R + np.where(mdp.terminal, 0.0, alpha * entropy)[:, None]
    V_bonus = policy_evaluation_exact(TabularMDP(mdp.P, R_bonus, mdp.terminal), pi, gamma)
    np.testing.assert_allclose(V, V_bonus, rtol=0, atol=1e-9)


def test_soft_values_decrease_monotonically_to_hard_optimum_as_temperature_falls():
    gamma = 0.95
    mdp = from_gym(gym.make("FrozenLake-v1"))
    V_star, _, _ = policy_iteration(mdp, gamma)
    bound_per_unit = np.log(mdp.n_actions) / (1 - gamma)
    previous = None
    for temperature in (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001):
        V, _, _ = soft_value_iteration(mdp, gamma, temperature, tol=1e-12)
        gap = V - V_star
        assert (gap >= -1e-10).all()
        assert (gap <= temperature * bound_per_unit + 1e-10).all()
        if previous is not None:
            assert (V <= previous + 1e-10).all() and (V[:-1] < previous[:-1]).any()
        previous = V
    # The gap bound shrinks with the temperature, so V reaches V* (holes and goal keep exactly
    # temperature * log A: the model lets one act there once, the environment never does).
    assert np.max(previous - V_star) == pytest.approx(0.001 * np.log(mdp.n_actions), rel=1e-6)


def test_soft_value_iteration_is_stable_for_small_temperature_and_large_rewards():
    # CliffWalking has rewards of -100; Q / 0.01 ~ -1e4 would underflow a naive logsumexp.
    mdp = from_gym(gym.make("CliffWalking-v1"))
    V_star, _, _ = policy_iteration(mdp, 0.9)
    V, Q, pi = soft_value_iteration(mdp, 0.9, 0.01)
    assert np.isfinite(V).all() and np.isfinite(Q).all() and np.isfinite(pi).all()
    assert (V - V_star >= -1e-9).all() and (V - V_star <= 0.01 * np.log(4) / 0.1 + 1e-9).all()


def test_soft_policy_tends_to_uniform_at_high_temperature_without_terminal_states():
    mdp = random_mdp(np.random.default_rng(4), 6, 3, with_terminal=False)
    uniform = 1.0 / mdp.n_actions
    deviation = {}
    for temperature in (0.1, 10.0, 1e4):
        _, _, pi = soft_value_iteration(mdp, 0.95, temperature)
        deviation[temperature] = np.max(np.abs(pi - uniform))
    assert deviation[0.1] > 0.1  # genuinely non-uniform at a low temperature
    assert deviation[0.1] > deviation[10.0] > deviation[1e4]
    assert deviation[1e4] < 1e-4


def test_soft_policy_at_high_temperature_prefers_to_keep_the_episode_going():
    # With a terminal state the entropy bonus is a reward for staying alive, whatever the
    # temperature: in the hand-made MDP's s0, "wait" beats "cash out" at any large alpha.
    P = np.zeros((3, 2, 3))
    P[0, 0, 2] = P[0, 1, 1] = P[1, 0, 2] = 1.0
    P[1, 1, 0] = P[1, 1, 1] = 0.5
    P[2, :, 2] = 1.0
    mdp = TabularMDP(P, np.array([[1.0, 0.0], [10.0, 2.0], [0.0, 0.0]]), np.array([False, False, True]))
    # alpha -> inf limit: rewards vanish next to the bonus and v = V / alpha solves
    # v0 = log(1 + exp(0.9 v1)), v1 = log(1 + exp(0.9 (v0 + v1) / 2)); pi(wait | s) = 1 - exp(-v(s)).
    v0 = v1 = 0.0
    for _ in range(2000):
        v0, v1 = np.log1p(np.exp(0.9 * v1)), np.log1p(np.exp(0.9 * (v0 + v1) / 2))
    limit = 1 - np.exp(-np.array([v0, v1]))
    assert (limit > 0.8).all()
    for temperature in (1e3, 1e5):
        _, _, pi = soft_value_iteration(mdp, 0.9, temperature)
        np.testing.assert_allclose(pi[:2, 1], limit, rtol=0, atol=20 / temperature)
        np.testing.assert_allclose(pi[2], 0.5)


# --------------------------------------------------------------------------------------
# The model predicts the real environment
# --------------------------------------------------------------------------------------


def success_probability_within(mdp, actions, start_distribution, horizon):
    """P(reach FrozenLake's goal within `horizon` steps): push the state distribution through
    the policy's absorbing chain and add up the mass that collects reward 1 (entering the goal)."""
    S = mdp.n_states
    P_pi = mdp.P[np.arange(S), actions]
    reward = mdp.R[np.arange(S), actions]  # = probability of entering the goal on this step
    d = np.append(start_distribution, 0.0)
    total = 0.0
    for _ in range(horizon):
        total += d @ reward
        d = d @ P_pi
    return total


def test_value_iteration_policy_success_rate_matches_rollouts_on_frozenlake():
    env = gym.make("FrozenLake-v1")  # slippery 4x4, TimeLimit of 100 steps
    horizon = env.spec.max_episode_steps
    mdp = from_gym(env)
    _, actions, _ = value_iteration(mdp, GAMMA)
    start = env.unwrapped.initial_state_distrib
    predicted = success_probability_within(mdp, actions, start, horizon)
    # Without the time limit (gamma -> 1), the success probability is higher; the rollouts must
    # be able to tell the two apart, or this test could not catch a wrong prediction.
    unlimited = policy_evaluation_exact(mdp, actions, 1 - 1e-9) @ np.append(start, 0.0)

    n = 2000
    successes = 0
    obs, _ = env.reset(seed=0)
    for episode in range(n):
        if episode:
            obs, _ = env.reset()
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(actions[obs]))
            done = terminated or truncated
        successes += reward
    rate = successes / n
    # Binomial standard error; 4 sigma gives a two-sided false-alarm rate of about 6e-5.
    tolerance = 4 * np.sqrt(predicted * (1 - predicted) / n)
    assert abs(rate - predicted) <= tolerance, (rate, predicted, tolerance)
    assert abs(unlimited - predicted) > 2 * tolerance
    assert predicted > 0.7  # the optimal policy, not a poor one (a uniform policy succeeds ~1.5%)
