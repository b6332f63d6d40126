"""MCTS (UCT) against answers computed independently: shortest paths of the deterministic maze
by BFS. It must pick a shortest-path move near the goal, get better with more simulations,
and as an agent reach the goal on the optimal path and keep CartPole up."""
from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest

from deeprl.algos.planning.mcts import MCTSAgent
from deeprl.core.errors import ConfigError
from deeprl.envs.clonable import clone_state, search_simulator
from deeprl.envs.maze import MAZE_ID, MOVES
from deeprl.planning.mcts import MCTS


def bfs_distances(walls: np.ndarray, goal) -> dict:
    """Shortest-path distance of every reachable cell to the goal, by breadth-first search."""
    dist, queue = {goal: 0}, deque([goal])
    while queue:
        c = queue.popleft()
        for di, dj in ((-1, 0), (0, 1), (1, 0), (0, -1)):
            n = (c[0] + di, c[1] + dj)
            if not walls[n] and n not in dist:
                dist[n] = dist[c] + 1
                queue.append(n)
    return dist


@pytest.fixture(scope="module")
def maze():
    sim = search_simulator(MAZE_ID)
    return sim, bfs_distances(sim.walls, sim.goal)


def optimal_actions(sim, dist, cell) -> set[int]:
    out = set()
    for a, (di, dj) in enumerate(MOVES):
        n = (cell[0] + di, cell[1] + dj)
        if not sim.walls[n] and dist[n] == dist[cell] - 1:
            out.add(a)
    return out


def success_rate(sim, dist, cells, num_simulations, seed) -> float:
    search = MCTS(num_simulations=num_simulations, rng=seed)
    return float(np.mean([search.search(sim, c).action in optimal_actions(sim, dist, c) for c in cells]))


def test_finds_shortest_path_moves_near_the_goal(maze):
    sim, dist = maze
    cells = [c for c in sim.free_cells if dist[c] <= 6]
    assert len(cells) >= 12
    assert success_rate(sim, dist, cells, 300, seed=0) == 1.0


def test_success_improves_with_more_simulations(maze):
    sim, dist = maze
    cells = sim.free_cells
    few = np.mean([success_rate(sim, dist, cells, 10, seed) for seed in (0, 1)])
    many = np.mean([success_rate(sim, dist, cells, 300, seed) for seed in (0, 1)])
    assert many > few + 0.15, (few, many)


def test_result_statistics_and_terminal_children(maze):
    sim, dist = maze
    next_to_goal = (sim.goal[0], sim.goal[1] - 1)
    assert dist[next_to_goal] == 1
    res = MCTS(num_simulations=50, rng=0).search(sim, next_to_goal)
    assert res.action == 1  # right: into the goal, return -1, the best possible
    assert res.values[1] == -1.0 and np.nanmax(res.values) == -1.0
    assert res.visits.sum() == 50 and res.sim_steps > 0 and res.max_depth_reached >= 1
    # the search leaves no trace in the state it was given
    state = clone_state(sim)
    assert state == sim.clone_state()


def test_rejects_bad_parameters():
    for kw in (dict(num_simulations=0), dict(exploration=-1.0), dict(gamma=1.5), dict(rollout_steps=-1)):
        with pytest.raises(ConfigError):
            MCTS(**kw)


def test_agent_walks_shortest_paths_in_the_maze():
    agent = MCTSAgent(MAZE_ID, seed=0, num_simulations=300)
    env = gym.make(MAZE_ID)
    sim = env.unwrapped
    dist = bfs_distances(sim.walls, sim.goal)
    # starts within 6 steps of the goal: the whole episode is optimal
    for seed in range(40):
        obs, _ = env.reset(seed=seed)
        start = sim.pos
        if dist[start] > 6:
            continue
        ret, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(agent.predict(obs))
            ret, done = ret + r, term or trunc
        assert ret == -dist[start], (start, ret)
    assert agent.clock.actions > 0 and agent.clock.per_action > 0


def test_agent_keeps_cartpole_up():
    agent = MCTSAgent("CartPole-v1", seed=0, num_simulations=30, max_depth=20, rollout_steps=20)
    env = gym.make("CartPole-v1", max_episode_steps=150)
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        obs, r, term, trunc, _ = env.step(agent.predict(obs))
        total, done = total + r, term or trunc
    assert total == 150


def test_agent_refuses_unsupported_env():
    with pytest.raises(ConfigError, match="mcts needs a deterministic, clonable simulator.*supported: "):
        MCTSAgent("Pendulum-v1")
