"""The planning environments: the linear-quadratic system against the LQR solver (its return is
-J, and the closed-loop cost of the LQR gains matches the value function, exactly without
noise and within Monte Carlo error with it), the deterministic maze against an independent BFS,
and the clone/restore API on the maze, the LQ env and Gymnasium's envs."""
from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest

import deeprl.envs  # noqa: F401  (registers the ids)
from deeprl.core.errors import ConfigError
from deeprl.envs.clonable import SEARCH_ENVS, clone_state, restore_state, search_simulator, state_from_observation
from deeprl.envs.linear_quadratic import LQ_ID, LinearQuadraticEnv
from deeprl.envs.maze import MAZE_ID
from deeprl.planning.lqr import lqr_backward, lqr_cost, lqr_problem_of


def run_gains(env, sol, seed):
    """One episode of u_t = K_t x_t + k_t; returns (x_0, return, states, actions)."""
    x, _ = env.reset(seed=seed)
    xs, us, ret = [x], [], 0.0
    for t in range(env.unwrapped.horizon):
        u = sol.K[t] @ x + sol.k[t]
        x, r, term, trunc, _ = env.step(u)
        xs.append(x), us.append(u)
        ret += r
        assert term == (t == env.unwrapped.horizon - 1) and not trunc
    return xs[0], ret, np.array(xs), np.array(us)


def test_lq_return_is_minus_the_lqr_cost_of_the_trajectory():
    env = gym.make(LQ_ID)
    prob = lqr_problem_of(env)
    rng = np.random.default_rng(0)
    x, _ = env.reset(seed=3)
    xs, us, ret, done = [x], [], 0.0, False
    while not done:
        u = rng.normal(size=1)
        x, r, done, _, _ = env.step(u)
        xs.append(x), us.append(u)
        ret += r
    assert len(us) == 100
    np.testing.assert_allclose(ret, -lqr_cost(prob, np.array(xs), np.array(us)), rtol=1e-12)


def test_lq_closed_loop_cost_matches_value_function_without_noise():
    A = [[1.1, 0.2, 0.0], [0.0, 0.9, 0.3], [0.1, 0.0, 1.05]]  # open-loop unstable
    B = [[0.0, 0.1], [0.5, 0.0], [0.0, 0.4]]
    env = LinearQuadraticEnv(A=A, B=B, Q=np.diag([1.0, 0.5, 2.0]), R=0.2 * np.eye(2), Q_final=5 * np.eye(3),
                             horizon=30, init_scale=2.0)
    sol = lqr_backward(lqr_problem_of(env))
    for seed in range(3):
        x0, ret, _, _ = run_gains(env, sol, seed)
        np.testing.assert_allclose(-ret, sol.cost_to_go(x0), rtol=1e-10)
    # a perturbed (suboptimal) controller costs strictly more than the prediction
    worse = type(sol)(K=sol.K * 1.1, k=sol.k, V=sol.V, v=sol.v, const=sol.const, Q_uu=sol.Q_uu, q_u=sol.q_u)
    x0, ret, _, _ = run_gains(env, worse, 0)
    assert -ret > sol.cost_to_go(x0) * 1.0001


def test_lq_closed_loop_cost_matches_value_function_with_noise():
    env = LinearQuadraticEnv(noise_std=0.05, horizon=40, init_scale=0.0)  # x0 = 0: the cost is all noise
    sol = lqr_backward(lqr_problem_of(env))
    assert sol.const[0] > 0
    costs = np.array([-run_gains(env, sol, seed)[1] for seed in range(400)])
    predicted = sol.cost_to_go(np.zeros(2))
    se = costs.std() / np.sqrt(len(costs))
    assert abs(costs.mean() - predicted) < 4 * se, (costs.mean(), predicted, se)
    assert 0.5 * predicted < costs.mean() < 1.5 * predicted


@pytest.mark.parametrize("kwargs, match", [
    (dict(R=[[0.0]]), "R must be positive definite"),
    (dict(Q=[[1.0, 0.0], [0.0, -1.0]]), "Q must be positive semi-definite"),
    (dict(A=[[1.0, 0.0]]), "A must be a square"),
    (dict(B=[[1.0]]), "B must have shape"),
    (dict(noise_std=-1.0), "noise_std"),
    (dict(A=[[np.nan, 0.0], [0.0, 1.0]]), "NaN"),
    (dict(horizon=0), "horizon"),
])
def test_lq_env_rejects_ill_posed_problems(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        LinearQuadraticEnv(**kwargs)


def test_lq_clone_restore_replays_noise():
    env = gym.make(LQ_ID, noise_std=0.1)
    env.reset(seed=0)
    snap = clone_state(env)
    first = [env.step(np.array([0.3]))[0] for _ in range(5)]
    restore_state(env, snap)
    again = [env.step(np.array([0.3]))[0] for _ in range(5)]
    np.testing.assert_array_equal(first, again)


# -- maze -----------------------------------------------------------------------------------------
def bfs_distances(walls: np.ndarray, goal) -> dict:
    dist, queue = {goal: 0}, deque([goal])
    while queue:
        c = queue.popleft()
        for di, dj in ((-1, 0), (0, 1), (1, 0), (0, -1)):
            n = (c[0] + di, c[1] + dj)
            if not walls[n] and n not in dist:
                dist[n] = dist[c] + 1
                queue.append(n)
    return dist


def test_maze_steps_match_bfs_distances():
    env = gym.make(MAZE_ID, random_start=False)
    u = env.unwrapped
    dist = bfs_distances(u.walls, u.goal)
    assert set(dist) == set(u.free_cells) | {u.goal}  # every free cell reaches the goal
    obs, _ = env.reset(seed=0)
    # greedy descent of the BFS distance reaches the goal in exactly dist(start) steps of -1
    ret, steps, done = 0.0, 0, False
    while not done:
        pos = u.state_from_observation(obs)
        a = next(a for a, (di, dj) in enumerate(((-1, 0), (0, 1), (1, 0), (0, -1)))
                 if dist.get((pos[0] + di, pos[1] + dj), 10**9) == dist[pos] - 1)
        obs, r, done, trunc, _ = env.step(a)
        ret, steps = ret + r, steps + 1
        assert not trunc
    assert steps == dist[u.start] and ret == -steps
    # bumping into a wall stays put
    env.reset(seed=0)
    assert u.pos == u.start and env.step(0)[0] == u.start[0] * u.shape[1] + u.start[1]


def test_maze_random_starts_are_seeded_and_cover_the_maze():
    env = gym.make(MAZE_ID)
    starts = {env.reset(seed=s)[0] for s in range(200)}
    assert len(starts) > 30
    assert env.reset(seed=7)[0] == env.reset(seed=7)[0]


@pytest.mark.parametrize("env_id", SEARCH_ENVS)
def test_clone_restore_and_state_from_observation(env_id):
    env = gym.make(env_id)
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(0)
    actions = rng.integers(env.action_space.n, size=8)
    snap = clone_state(env)
    first = [env.step(int(a))[:2] for a in actions]
    restore_state(env, snap)
    again = [env.step(int(a))[:2] for a in actions]
    for (o1, r1), (o2, r2) in zip(first, again):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
    # a fresh simulator put into the state behind the first observation replays the same steps
    sim = search_simulator(env_id)
    restore_state(sim, state_from_observation(sim, obs))
    for (o1, r1), a in zip(first, actions):
        o2, r2, *_ = sim.step(int(a))
        np.testing.assert_allclose(o2, o1, atol=1e-5)  # CartPole observations are float32 roundings
        assert r1 == r2


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "FrozenLake-v1", LQ_ID])
def test_search_simulator_refuses_unsupported_envs(env_id):
    with pytest.raises(ConfigError, match="supported: deeprl/DeterministicMaze-v0, CartPole-v1"):
        search_simulator(env_id)
