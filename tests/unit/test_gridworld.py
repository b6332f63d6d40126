"""GridWorld: the table P against the simulator (statistically), against Gymnasium's own
FrozenLake and CliffWalking tables (same layouts, independent code), and DP on it."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import deeprl.envs  # noqa: F401  (registers the ids)
from deeprl.core.errors import ConfigError
from deeprl.envs.gridworld import CLIFF_ID, FOUR_ROOMS_ID, GRIDWORLD_ID, LAYOUTS, GridWorld
from deeprl.tabular import from_gym, policy_evaluation_exact, q_from_v, value_iteration

GAMMA = 0.95


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("slip", [0.0, 0.2, 2 / 3])
def test_table_rows_are_distributions_and_from_gym_accepts_it(layout, slip):
    env = GridWorld(layout, slip=slip)
    S = env.observation_space.n
    for s in range(S):
        for a in range(4):
            entries = env.P[s][a]
            assert math.isclose(sum(p for p, *_ in entries), 1.0, abs_tol=1e-12)
            assert all(0 <= nxt < S and env.grid.flat[nxt] != "#" or env.grid.flat[s] == "#"
                       for _, nxt, _, _ in entries)
    mdp = from_gym(env)
    assert mdp.n_states == S + 1 and mdp.n_actions == 4
    np.testing.assert_allclose(env.initial_state_distrib.sum(), 1.0)


@pytest.mark.parametrize("layout, slip, checks", [
    ("bridge", 0.2, [(8, 0), (12, 1), (12, 2), (11, 3)]),  # next to walls, pits, the goal
    ("cliff", 0.3, [(24, 1), (36, 2), (35, 1)]),  # into the cliff (back to start), goal
    ("four_rooms", 2 / 3, [(27, 2), (80, 1), (80, 2)]),  # at a doorway
])
def test_simulator_matches_the_table(layout, slip, checks):
    """Empirical next-state/reward/done frequencies of ``step`` agree with ``P`` (4.5 sigma)."""
    env = GridWorld(layout, slip=slip)
    env.reset(seed=123)
    n = 3000
    for s, a in checks:
        expected: dict[tuple, float] = {}
        for p, nxt, r, done in env.P[s][a]:
            expected[(nxt, r, done)] = expected.get((nxt, r, done), 0.0) + p
        counts: dict[tuple, int] = {}
        for _ in range(n):
            env.s = s
            nxt, r, term, trunc, _ = env.step(a)
            counts[(nxt, r, term)] = counts.get((nxt, r, term), 0) + 1
        assert set(counts) <= set(expected), (s, a, counts, expected)
        for key, p in expected.items():
            freq = counts.get(key, 0) / n
            assert abs(freq - p) <= 4.5 * math.sqrt(p * (1 - p) / n) + 1e-12, (s, a, key, freq, p)


def test_frozen_lake_layout_reproduces_gymnasiums_frozen_lake():
    ours = from_gym(GridWorld("frozen_lake_4x4", slip=2 / 3, step_reward=0.0, goal_reward=1.0, pit_reward=0.0))
    theirs = from_gym(gym.make("FrozenLake-v1"))
    np.testing.assert_allclose(ours.P, theirs.P, atol=1e-12)
    np.testing.assert_allclose(ours.R, theirs.R, atol=1e-12)
    V_ours, pi_ours, _ = value_iteration(ours, GAMMA)
    V_theirs, _, _ = value_iteration(theirs, GAMMA)
    np.testing.assert_allclose(V_ours, V_theirs, atol=1e-9)


def test_cliff_layout_reproduces_gymnasiums_cliff_walking():
    ours = from_gym(GridWorld("cliff", goal_reward=-1.0))
    theirs = from_gym(gym.make("CliffWalking-v1"))
    V_ours, pi, _ = value_iteration(ours, GAMMA)
    V_theirs, _, _ = value_iteration(theirs, GAMMA)
    occupied = np.r_[0:37, 48]  # all but the cliff cells and the goal (never occupied); 48: the end state
    np.testing.assert_allclose(V_ours[occupied], V_theirs[occupied], atol=1e-9)
    # Gymnasium's actions are up, right, down, left; ours left, down, right, up.
    Q_ours, Q_theirs = q_from_v(ours, V_ours, GAMMA), q_from_v(theirs, V_theirs, GAMMA)
    np.testing.assert_allclose(Q_ours[occupied][:, [3, 2, 1, 0]], Q_theirs[occupied], atol=1e-9)
    # The optimal path hugs the cliff: up from the start, right along row 2, down into the goal.
    assert pi[36] == 3 and all(pi[24:35] == 2) and pi[35] == 1


def test_dynamic_programming_solves_the_bridge():
    """Without slip the shortest path runs along the pits; with slip the detour via the top row wins."""
    start = 2 * 7 + 1
    mdp = from_gym(GridWorld("bridge", slip=0.0))
    V, pi, _ = value_iteration(mdp, GAMMA)
    assert V[start] == pytest.approx(-(1 + GAMMA + GAMMA**2))  # three steps at -1, then the goal pays 0
    assert pi[start] == 2
    mdp = from_gym(GridWorld("bridge", slip=0.2))
    V, pi, _ = value_iteration(mdp, GAMMA)
    assert pi[start] == 3  # up, away from the pits
    straight = pi.copy()
    straight[[15, 16, 17, 18]] = 2  # along the pits
    assert policy_evaluation_exact(mdp, straight, GAMMA)[start] < V[start] - 1.0


def test_registered_ids_reset_render_and_truncate():
    env = gym.make(GRIDWORLD_ID, render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert obs == 15 and env.render().splitlines()[2] == "#A...G#"
    env = gym.make(FOUR_ROOMS_ID)
    assert env.spec.max_episode_steps == 200 and env.reset(seed=0)[0] == 14
    env = gym.make(CLIFF_ID)
    obs, _ = env.reset(seed=0)
    assert obs == 36
    obs, r, term, _, _ = env.step(2)  # into the cliff: -100 and back to the start, episode goes on
    assert (obs, r, term) == (36, -100.0, False)
    env = GridWorld(["S.S", "#G#"])
    starts = {env.reset(seed=s)[0] for s in range(20)}
    assert starts == {0, 2}


@pytest.mark.parametrize("kwargs, name", [
    ({"layout": "nope"}, "layout"),
    ({"layout": ["S.", "."]}, "equal length"),
    ({"layout": ["S.Q"]}, "unknown cells"),
    ({"layout": ["..G"]}, "start"),
    ({"slip": 1.5}, "slip"),
    ({"step_reward": float("nan")}, "step_reward"),
])
def test_bad_arguments_raise_config_error(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        GridWorld(**kwargs)
