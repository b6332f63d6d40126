"""A small deterministic grid maze with a copyable state: the test bed for tree search (MCTS).

The layout is a list of strings: ``#`` wall, ``.`` free, ``S`` start, ``G`` goal. Actions
``0 up, 1 right, 2 down, 3 left``; a move into a wall (or off the grid) leaves the agent where
it is. Every step costs ``-1``; reaching ``G`` ends the episode (``terminated``), so the return
of an episode is minus its length and the optimal return from a cell is minus its shortest-path
(BFS) distance to the goal. ``deeprl/DeterministicMaze-v0`` has a time limit of 100 steps.

Observation: the agent's cell as ``row * cols + col`` (``Discrete(rows * cols)``), which is
the whole state, so a simulator can be put into the state behind any observation
(``state_from_observation``). ``random_start=True`` (the registered default) starts each
episode in a uniformly random free cell other than the goal, drawn from the env's seeded RNG;
``random_start=False`` starts at ``S``.

Clonable simulator API (see :mod:`deeprl.envs.clonable`): ``clone_state() -> (row, col)``,
``restore_state(state)``, ``state_from_observation(obs) -> state``.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from deeprl.core.errors import ConfigError

MAZE_ID = "deeprl/DeterministicMaze-v0"

DEFAULT_LAYOUT = (
    "###########",
    "#S..#.....#",
    "#.#.#.###.#",
    "#.#...#...#",
    "#.#####.#.#",
    "#...#...#.#",
    "###.#.#####",
    "#.....#..G#",
    "#.###...#.#",
    "#.........#",
    "###########",
)

MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left


class DeterministicMazeEnv(gym.Env):
    """See the module docstring."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, layout=DEFAULT_LAYOUT, random_start: bool = True, render_mode: str | None = None):
        rows = [str(r) for r in layout]
        if not rows or any(len(r) != len(rows[0]) for r in rows):
            raise ConfigError("maze layout must be a non-empty list of equally long strings")
        chars = set("".join(rows))
        if not chars <= set("#.SG"):
            raise ConfigError(f"maze layout may only contain '#', '.', 'S', 'G', got {sorted(chars - set('#.SG'))}")
        starts = [(i, j) for i, r in enumerate(rows) for j, ch in enumerate(r) if ch == "S"]
        goals = [(i, j) for i, r in enumerate(rows) for j, ch in enumerate(r) if ch == "G"]
        if len(goals) != 1 or len(starts) > 1:
            raise ConfigError("maze layout needs exactly one 'G' and at most one 'S'")
        self.layout = tuple(rows)
        self.shape = (len(rows), len(rows[0]))
        self.walls = np.array([[ch == "#" for ch in r] for r in rows])
        self.goal = goals[0]
        self.start = starts[0] if starts else None
        self.random_start = bool(random_start)
        if not self.random_start and self.start is None:
            raise ConfigError("random_start=False needs an 'S' in the maze layout")
        self.free_cells = [(i, j) for i in range(self.shape[0]) for j in range(self.shape[1])
                           if not self.walls[i, j] and (i, j) != self.goal]
        self.render_mode = render_mode
        self.observation_space = spaces.Discrete(self.shape[0] * self.shape[1])
        self.action_space = spaces.Discrete(4)
        self.pos = self.start or self.free_cells[0]

    def _obs(self) -> int:
        return self.pos[0] * self.shape[1] + self.pos[1]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if self.random_start:
            self.pos = self.free_cells[int(self.np_random.integers(len(self.free_cells)))]
        else:
            self.pos = self.start
        return self._obs(), {}

    def step(self, action):
        a = int(action)
        if not 0 <= a < 4:
            raise ValueError(f"action must be in 0..3, got {action!r}")
        i, j = self.pos[0] + MOVES[a][0], self.pos[1] + MOVES[a][1]
        if 0 <= i < self.shape[0] and 0 <= j < self.shape[1] and not self.walls[i, j]:
            self.pos = (i, j)
        return self._obs(), -1.0, self.pos == self.goal, False, {}

    def render(self):
        rows = [list(r.replace("S", ".")) for r in self.layout]
        rows[self.pos[0]][self.pos[1]] = "A"
        return "\n".join("".join(r) for r in rows)

    # -- clonable simulator API --------------------------------------------------------------
    def clone_state(self) -> tuple[int, int]:
        return self.pos

    def restore_state(self, state) -> None:
        i, j = int(state[0]), int(state[1])
        if not (0 <= i < self.shape[0] and 0 <= j < self.shape[1]) or self.walls[i, j]:
            raise ValueError(f"({i}, {j}) is not a free cell of the maze")
        self.pos = (i, j)

    def state_from_observation(self, obs) -> tuple[int, int]:
        return divmod(int(obs), self.shape[1])


def register_envs() -> None:
    """Register ``deeprl/DeterministicMaze-v0`` (100-step limit); safe to call twice."""
    if MAZE_ID not in gym.registry:
        gym.register(id=MAZE_ID, entry_point="deeprl.envs.maze:DeterministicMazeEnv", max_episode_steps=100)
