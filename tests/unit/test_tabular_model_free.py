"""Tests for deeprl.tabular.model_free against independent references.

- Prediction: first-/every-visit MC, TD(0) and TD(lambda) converge to the exact
  ``policy_evaluation_exact`` values of a small stochastic MDP; offline TD(lambda) equals the
  forward-view lambda-return algorithm (lambda = 1: every-visit constant-alpha MC).
- Control: every update rule against a hand-computed single step; Q-learning's greedy policy
  on FrozenLake 4x4 against value iteration (success probability within the 100-step limit,
  computed exactly and checked by simulation); SARSA vs Q-learning on CliffWalking (the safe
  path vs the cliff edge); Dyna-Q's model against the true table.
"""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from deeprl.core.errors import ConfigError
from deeprl.tabular import TabularMDP, from_gym, policy_evaluation_exact, value_iteration
from deeprl.tabular.model_free import (
    Episode,
    TabularModel,
    discounted_returns,
    double_q_update,
    dyna_planning,
    epsilon_greedy_action,
    epsilon_greedy_probs,
    expected_sarsa_update,
    first_visit_mask,
    lambda_returns,
    mc_control_update,
    mc_prediction,
    q_learning_update,
    sample_episode,
    sarsa_lambda_update,
    sarsa_update,
    td0_update,
    td_lambda_episode,
)

GAMMA = 0.9


def small_mdp() -> TabularMDP:
    """4 states + 1 terminal, 2 actions: random dynamics that end the episode with
    probability >= 0.15 per step, random rewards in [-1, 1]; revisits are frequent."""
    rng = np.random.default_rng(7)
    S, A = 5, 2
    P = np.zeros((S, A, S))
    P[:4, :, :4] = rng.dirichlet(np.ones(4), size=(4, A)) * 0.85
    P[:4, :, 4] = 0.15
    P[:4] /= P[:4].sum(axis=2, keepdims=True)
    P[4, :, 4] = 1.0
    R = np.zeros((S, A))
    R[:4] = rng.uniform(-1, 1, size=(4, A))
    return TabularMDP(P, R, np.array([False] * 4 + [True]))


MDP = small_mdp()
POLICY = np.array([[0.3, 0.7], [0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
START = np.array([0.25, 0.25, 0.25, 0.25, 0.0])
V_TRUE = policy_evaluation_exact(MDP, POLICY, GAMMA)


def episodes(n: int, seed: int) -> list[Episode]:
    rng = np.random.default_rng(seed)
    return [sample_episode(MDP, POLICY, rng, START) for _ in range(n)]


EPISODES = episodes(10_000, seed=0)
TOL = 0.04  # |estimate - exact|: 2-3x the largest error seen over several episode seeds


def test_reference_values_are_far_apart():
    """The tolerances below (TOL) are meaningful: values differ by more, and ignoring the
    discount would move them by more."""
    assert np.ptp(V_TRUE[:4]) > 0.5
    assert np.abs(policy_evaluation_exact(MDP, POLICY, 0.99)[:4] - V_TRUE[:4]).min() > 0.1


# ------------------------------------------------------------------------------------------
# Monte Carlo
# ------------------------------------------------------------------------------------------


def test_discounted_returns_and_first_visits_by_hand():
    np.testing.assert_allclose(discounted_returns([1.0, 0.0, 2.0], 0.5), [1.5, 1.0, 2.0])
    assert first_visit_mask([3, 1, 3, 2, 1]).tolist() == [True, True, False, True, False]


@pytest.mark.parametrize("first_visit", [True, False])
def test_mc_prediction_converges_to_exact_values(first_visit):
    V, N = mc_prediction(EPISODES, MDP.n_states, GAMMA, first_visit=first_visit)
    assert (N[:4] > 5000).all() and N[4] == 0
    if not first_visit:
        assert N.sum() > mc_prediction(EPISODES, MDP.n_states, GAMMA)[1].sum()  # revisits counted
    np.testing.assert_allclose(V[:4], V_TRUE[:4], atol=TOL)


def test_first_visit_mc_is_the_sample_mean_of_first_visit_returns():
    eps = EPISODES[:200]
    V, _ = mc_prediction(eps, MDP.n_states, GAMMA, first_visit=True)
    for s in range(4):
        samples = [discounted_returns(e.rewards, GAMMA)[np.flatnonzero(e.states[:-1] == s)[0]]
                   for e in eps if s in e.states[:-1]]
        assert V[s] == pytest.approx(np.mean(samples), abs=1e-12)


# ------------------------------------------------------------------------------------------
# TD prediction
# ------------------------------------------------------------------------------------------


def step_size(episode: int) -> float:
    """Robbins-Monro step sizes (sum infinite, sum of squares finite): 0.1 down to 0.0002."""
    return 2.0 / (20.0 + episode)


def test_td0_converges_to_exact_values():
    V = np.zeros(MDP.n_states)
    for i, ep in enumerate(EPISODES):
        alpha = step_size(i)
        for t in range(len(ep.rewards)):
            td0_update(V, ep.states[t], ep.rewards[t], ep.states[t + 1], ep.terminated and t == len(ep.rewards) - 1,
                       alpha, GAMMA)
    np.testing.assert_allclose(V, V_TRUE, atol=TOL)


@pytest.mark.parametrize("lam, trace", [(0.5, "accumulating"), (0.8, "replacing"), (1.0, "accumulating")])
def test_td_lambda_converges_to_exact_values(lam, trace):
    V = np.zeros(MDP.n_states)
    for i, ep in enumerate(EPISODES):
        td_lambda_episode(V, ep, step_size(i), GAMMA, lam, trace)
    np.testing.assert_allclose(V, V_TRUE, atol=TOL)


def revisiting_episode(terminated: bool) -> Episode:
    return Episode(np.array([0, 1, 0, 2, 0, 3 if not terminated else 4]), np.zeros(5, dtype=int),
                   np.array([1.0, -0.5, 2.0, 0.25, -1.0]), terminated)


@pytest.mark.parametrize("terminated", [True, False])
@pytest.mark.parametrize("lam", [0.0, 0.4, 0.9, 1.0])
def test_offline_td_lambda_equals_the_lambda_return_algorithm(lam, terminated):
    """Backward view with accumulating traces, offline == forward view: V(s_t) += alpha (G^lambda_t - V(s_t))."""
    ep = revisiting_episode(terminated)
    V0 = np.array([0.3, -0.2, 0.5, 1.0, 0.7])
    alpha = 0.1
    forward = V0.copy()
    np.add.at(forward, ep.states[:-1], alpha * (lambda_returns(ep, V0, GAMMA, lam) - V0[ep.states[:-1]]))
    backward = td_lambda_episode(V0.copy(), ep, alpha, GAMMA, lam, "accumulating", online=False)
    np.testing.assert_allclose(backward, forward, atol=1e-12)
    if lam == 1.0 and terminated:  # every-visit constant-alpha MC, written out independently
        mc = V0.copy()
        G = discounted_returns(ep.rewards, GAMMA)
        for t, s in enumerate(ep.states[:-1]):
            mc[s] += alpha * (G[t] - V0[s])
        np.testing.assert_allclose(backward, mc, atol=1e-12)


def test_online_td_lambda_zero_is_td0_and_traces_differ_only_on_revisits():
    ep = revisiting_episode(True)
    V0 = np.array([0.3, -0.2, 0.5, 1.0, 0.7])
    td0 = V0.copy()
    for t in range(5):
        td0_update(td0, ep.states[t], ep.rewards[t], ep.states[t + 1], t == 4, 0.1, GAMMA)
    np.testing.assert_allclose(td_lambda_episode(V0.copy(), ep, 0.1, GAMMA, 0.0), td0, atol=1e-12)
    acc = td_lambda_episode(V0.copy(), ep, 0.1, GAMMA, 0.9, "accumulating")
    rep = td_lambda_episode(V0.copy(), ep, 0.1, GAMMA, 0.9, "replacing")
    assert not np.allclose(acc, rep)  # state 0 is revisited
    no_revisit = Episode(np.array([0, 1, 2, 4]), np.zeros(3, dtype=int), np.array([1.0, 2.0, 3.0]), True)
    np.testing.assert_allclose(td_lambda_episode(V0.copy(), no_revisit, 0.1, GAMMA, 0.9, "accumulating"),
                               td_lambda_episode(V0.copy(), no_revisit, 0.1, GAMMA, 0.9, "replacing"))


# ------------------------------------------------------------------------------------------
# Single-step control updates, by hand
# ------------------------------------------------------------------------------------------


def q_table() -> np.ndarray:
    return np.array([[1.0, 2.0, 0.0], [4.0, -1.0, 3.0], [0.5, 0.5, 0.5]])


def test_sarsa_update_by_hand():
    Q = q_table()
    delta = sarsa_update(Q, 0, 1, 1.0, 1, 2, False, 0.5, 0.9)  # target 1 + 0.9 * 3 = 3.7
    assert delta == pytest.approx(1.7) and Q[0, 1] == pytest.approx(2.85)
    assert sarsa_update(Q, 0, 0, -1.0, 1, 0, True, 0.5, 0.9) == pytest.approx(-2.0)  # terminal: target -1
    assert Q[0, 0] == pytest.approx(0.0)
    Q0 = q_table()
    assert np.array_equal(np.delete(Q, [0], axis=0), np.delete(Q0, [0], axis=0))


def test_q_learning_update_by_hand():
    Q = q_table()
    assert q_learning_update(Q, 0, 2, 1.0, 1, False, 0.5, 0.9) == pytest.approx(1 + 0.9 * 4.0)
    assert Q[0, 2] == pytest.approx(0.5 * 4.6)


def test_expected_sarsa_update_by_hand():
    Q = q_table()
    # epsilon-greedy at state 1 (eps = 0.3, 3 actions): probs [0.8, 0.1, 0.1] -> E Q = 3.2 - 0.1 + 0.3 = 3.4
    np.testing.assert_allclose(epsilon_greedy_probs(Q[1], 0.3), [0.8, 0.1, 0.1])
    assert expected_sarsa_update(Q, 0, 0, 0.0, 1, False, 0.1, 1.0, 0.3) == pytest.approx(2.4)
    assert Q[0, 0] == pytest.approx(1.24)
    # ties share the greedy mass; epsilon = 0 is Q-learning
    np.testing.assert_allclose(epsilon_greedy_probs(Q[2], 0.3), [1 / 3] * 3)
    Q1, Q2 = q_table(), q_table()
    expected_sarsa_update(Q1, 2, 1, 0.5, 0, False, 0.3, 0.9, 0.0)
    q_learning_update(Q2, 2, 1, 0.5, 0, False, 0.3, 0.9)
    np.testing.assert_allclose(Q1, Q2)


@pytest.mark.parametrize("update_first", [True, False])
def test_double_q_update_by_hand(update_first):
    Q1, Q2 = q_table(), q_table()[::-1].copy()  # Q2 rows: [0.5,.5,.5], [4,-1,3], [1,2,0]
    rng = np.random.default_rng(0)
    # next state 1: the updated table picks argmax over its row, the other one values it
    A, B = (Q1, Q2) if update_first else (Q2, Q1)
    pick = int(np.argmax(A[1]))  # no ties in row 1 of either table
    before = A[0, 0]
    other = B.copy()
    delta = double_q_update(Q1, Q2, 0, 0, 1.0, 1, False, 0.5, 0.9, update_first, rng)
    assert delta == pytest.approx(1.0 + 0.9 * B[1, pick] - before)
    assert A[0, 0] == pytest.approx(before + 0.5 * delta)
    np.testing.assert_array_equal(B, other)  # the other table is untouched
    if update_first:  # Q1 row 1 = [4, -1, 3] picks action 0, Q2 row 1 = [4, -1, 3] values it: 1 + 3.6
        assert delta == pytest.approx(4.6 - 1.0)
    # terminal: no bootstrap
    expected = -1.0 - A[2, 2]
    assert double_q_update(Q1, Q2, 2, 2, -1.0, 0, True, 1.0, 0.9, update_first, rng) == pytest.approx(expected)
    assert A[2, 2] == pytest.approx(-1.0)


def test_double_q_breaks_ties_in_the_argmax_at_random():
    """Q1's row at s' is all tied, so each of Q2's values there is picked about 1/3 of the time."""
    rng = np.random.default_rng(0)
    targets = []
    for _ in range(3000):
        Q1, Q2 = np.zeros((2, 3)), np.array([[0.0, 0.0, 0.0], [3.0, 6.0, 9.0]])
        targets.append(double_q_update(Q1, Q2, 0, 0, 0.0, 1, False, 1.0, 1.0, True, rng))
    values, counts = np.unique(targets, return_counts=True)
    assert values.tolist() == [3.0, 6.0, 9.0] and (np.abs(counts / 3000 - 1 / 3) < 0.04).all()


@pytest.mark.parametrize("trace", ["accumulating", "replacing"])
def test_sarsa_lambda_update_by_hand(trace):
    Q, E = np.zeros((2, 2)), np.zeros((2, 2))
    E[1, 0] = 0.5  # left over from an earlier step
    # step 1: (0, 1) -> r = 1 -> (1, 0): delta = 1, E[0,1] = 1, Q += 0.5 * E, E *= 0.8
    sarsa_lambda_update(Q, E, 0, 1, 1.0, 1, 0, False, 0.5, 1.0, 0.8, trace)
    np.testing.assert_allclose(Q, [[0, 0.5], [0.25, 0]])
    np.testing.assert_allclose(E, [[0, 0.8], [0.4, 0]])
    # step 2: (1, 0) -> r = 0 -> (0, 1): delta = 0 + 0.5 - 0.25 = 0.25; E[1,0] = 1.4 or 1
    sarsa_lambda_update(Q, E, 1, 0, 0.0, 0, 1, False, 0.5, 1.0, 0.8, trace)
    e10 = 1.4 if trace == "accumulating" else 1.0
    np.testing.assert_allclose(Q, [[0, 0.5 + 0.125 * 0.8], [0.25 + 0.125 * e10, 0]])
    np.testing.assert_allclose(E, [[0, 0.64], [0.8 * e10, 0]])


def test_mc_control_update_first_and_every_visit_by_hand():
    ep = Episode(np.array([0, 1, 0, 2]), np.array([1, 0, 1]), np.array([1.0, 2.0, 3.0]), True)
    # returns (gamma = 0.5): G = [1 + 0.5 * (2 + 0.5 * 3), 2 + 1.5, 3] = [2.75, 3.5, 3]
    Q, N = np.zeros((3, 2)), np.zeros((3, 2), dtype=int)
    mc_control_update(Q, N, ep, 0.5, first_visit=True)
    assert Q[0, 1] == pytest.approx(2.75) and Q[1, 0] == pytest.approx(3.5) and N[0, 1] == 1
    Q, N = np.zeros((3, 2)), np.zeros((3, 2), dtype=int)
    mc_control_update(Q, N, ep, 0.5, first_visit=False)
    assert Q[0, 1] == pytest.approx((2.75 + 3.0) / 2) and N[0, 1] == 2
    Q = np.ones((3, 2))
    mc_control_update(Q, np.zeros((3, 2), dtype=int), ep, 0.5, first_visit=True, alpha=0.1)
    assert Q[0, 1] == pytest.approx(1 + 0.1 * 1.75)


def test_epsilon_greedy_action_frequencies_and_random_ties():
    rng = np.random.default_rng(0)
    q = np.array([0.0, 1.0, 1.0, -2.0])
    n = 20_000
    counts = np.bincount([epsilon_greedy_action(q, 0.2, rng) for _ in range(n)], minlength=4) / n
    expected = epsilon_greedy_probs(q, 0.2)  # [0.05, 0.45, 0.45, 0.05]
    np.testing.assert_allclose(expected, [0.05, 0.45, 0.45, 0.05])
    assert np.all(np.abs(counts - expected) < 4.5 * np.sqrt(expected * (1 - expected) / n))


# ------------------------------------------------------------------------------------------
# Control on Gymnasium's toy-text environments
# ------------------------------------------------------------------------------------------


def success_probability(env, actions, horizon: int = 100) -> float:
    """Exact probability that a deterministic policy reaches FrozenLake's goal within ``horizon``
    steps, by backward induction on the environment's table (reward 1 only at the goal)."""
    P, n = env.unwrapped.P, env.observation_space.n
    p = np.zeros(n)
    for _ in range(horizon):
        p = np.array([sum(prob * (r if done else p[nxt]) for prob, nxt, r, done in P[s][int(actions[s])])
                      for s in range(n)])
    return float(env.unwrapped.initial_state_distrib @ p)


def simulate_success(env, actions, episodes: int, seed: int, horizon: int = 100) -> float:
    u = env.unwrapped
    u.reset(seed=seed)
    wins = 0
    for _ in range(episodes):
        s, _ = u.reset()
        for _ in range(horizon):
            s, r, term, _, _ = u.step(int(actions[s]))
            if term:
                wins += r > 0
                break
    return wins / episodes


def test_q_learning_finds_an_optimal_frozen_lake_policy():
    """Q-learning (epsilon = 0.5 behaviour, alpha 0.1 -> 0 over 100k steps) on the slippery 4x4
    lake: its greedy policy succeeds within the 100-step limit as often as value iteration's
    (exact probabilities, within 0.03; VI: 0.740), and the exact numbers agree with simulation."""
    env = gym.make("FrozenLake-v1")
    u = env.unwrapped
    rng = np.random.default_rng(0)
    Q = np.zeros((16, 4))
    n_steps = 100_000
    s, _ = u.reset(seed=0)
    k = 0
    for t in range(n_steps):
        a = epsilon_greedy_action(Q[s], 0.5, rng)
        s_next, r, term, _, _ = u.step(a)
        q_learning_update(Q, s, a, r, s_next, term, 0.1 * (1 - t / n_steps), 0.99)
        s, k = s_next, k + 1
        if term or k == 100:  # the registered time limit; truncation still bootstraps
            (s, _), k = u.reset(), 0
    _, pi_star, _ = value_iteration(from_gym(env), 0.99)
    p_star = success_probability(env, pi_star)
    p_q = success_probability(env, np.argmax(Q, axis=1))
    assert p_star == pytest.approx(0.740, abs=0.001)
    assert abs(p_q - p_star) <= 0.03, (p_q, p_star)
    random_policy = np.random.default_rng(1).integers(4, size=16)
    assert success_probability(env, random_policy) < p_star - 0.3  # the measure can tell policies apart
    n = 1500
    sim = simulate_success(env, np.argmax(Q, axis=1), n, seed=3)
    assert abs(sim - p_q) < 4 * math.sqrt(p_q * (1 - p_q) / n), (sim, p_q)


def cliff_control(method: str, seed: int, episodes: int = 500):
    """SARSA or Q-learning with epsilon = 0.1, alpha = 0.5, gamma = 1 (Sutton & Barto, Example 6.6)."""
    u = gym.make("CliffWalking-v1").unwrapped
    rng = np.random.default_rng(seed)
    Q = np.zeros((48, 4))
    returns = []
    for ep in range(episodes):
        s, _ = u.reset(seed=seed * 10_000 + ep)
        a = epsilon_greedy_action(Q[s], 0.1, rng)
        total, term = 0.0, False
        while not term:
            s_next, r, term, _, _ = u.step(a)
            a_next = epsilon_greedy_action(Q[s_next], 0.1, rng)
            if method == "sarsa":
                sarsa_update(Q, s, a, r, s_next, a_next, term, 0.5, 1.0)
            else:
                q_learning_update(Q, s, a, r, s_next, term, 0.5, 1.0)
            s, a, total = s_next, a_next, total + r
        returns.append(total)
    return Q, np.array(returns)


def greedy_path(Q) -> list[int]:
    u = gym.make("CliffWalking-v1").unwrapped
    s, _ = u.reset(seed=0)
    path = [s]
    for _ in range(50):
        s, _, term, _, _ = u.step(int(np.argmax(Q[s])))
        path.append(s)
        if term:
            break
    return path


def test_sarsa_takes_the_safe_path_and_q_learning_the_cliff_edge():
    Q_sarsa, ret_sarsa = cliff_control("sarsa", seed=0)
    Q_q, ret_q = cliff_control("q_learning", seed=0)
    edge = set(range(25, 35))  # row 2, next to the cliff
    path_q, path_sarsa = greedy_path(Q_q), greedy_path(Q_sarsa)
    assert path_q[-1] == path_sarsa[-1] == 47  # both reach the goal
    assert len(path_q) - 1 == 13 and edge <= set(path_q)  # optimal: along the edge
    assert len(path_sarsa) - 1 > 13 and not edge & set(path_sarsa)  # away from the edge
    # ... and the online returns of the epsilon-greedy behaviour tell the opposite story
    assert ret_sarsa[-200:].mean() > ret_q[-200:].mean() + 10


def test_dyna_model_matches_the_true_table_and_planning_converges_to_q_star():
    env = gym.make("FrozenLake-v1")
    mdp = from_gym(env)
    u = env.unwrapped
    rng = np.random.default_rng(0)
    model = TabularModel(16, 4)
    u.reset(seed=0)
    for s in range(16):
        for a in range(4):
            for _ in range(300):
                u.s = s
                s_next, r, term, _, _ = u.step(a)
                model.update(s, a, r, s_next, term)
    p_hat = model.counts / model.counts.sum(axis=2, keepdims=True)
    np.testing.assert_allclose(p_hat[:, :, :16], mdp.P[:16, :, :16], atol=0.1)
    np.testing.assert_allclose(p_hat[:, :, 16], mdp.P[:16, :, 16], atol=0.1)
    # Planning alone (no real steps) solves the learned model: close to the true Q*.
    Q = np.zeros((16, 4))
    dyna_planning(Q, model, 30_000, 0.5, 0.9, rng)
    V_star, _, _ = value_iteration(mdp, 0.9)
    np.testing.assert_allclose(Q.max(axis=1), V_star[:16], atol=0.05)


def test_bad_hyperparameters_raise_config_error():
    ep = revisiting_episode(True)
    with pytest.raises(ConfigError, match="trace"):
        td_lambda_episode(np.zeros(5), ep, 0.1, 0.9, 0.5, trace="dutchy")
    with pytest.raises(ConfigError, match="gamma"):
        mc_prediction([ep], 5, 1.5)
    with pytest.raises(ConfigError, match="alpha"):
        mc_prediction([ep], 5, 0.9, alpha=0.0)
