"""A configurable gridworld with known dynamics (Sutton & Barto style), as a Gymnasium env.

The layout is a list of equal-length strings, one character per cell:

    ``.``  empty cell              ``#``  wall (cannot be entered)
    ``S``  start cell (several: the episode starts in one of them uniformly at random)
    ``G``  goal: entering it pays ``goal_reward`` and ends the episode
    ``X``  pit: entering it pays ``pit_reward`` and ends the episode
    ``C``  cliff: entering it pays ``cliff_reward`` and sends the agent back to a start cell
           (the episode goes on, as in Gymnasium's CliffWalking)

Entering any other cell pays ``step_reward``. Actions follow FrozenLake: 0 left, 1 down,
2 right, 3 up. With probability ``1 - slip`` the agent moves in the chosen direction, with
probability ``slip / 2`` each in one of the two perpendicular directions (``slip = 2/3`` is
FrozenLake's ``is_slippery``: each of the three directions with probability 1/3). A move
into a wall or off the grid leaves the agent where it is (and pays ``step_reward``).

Observations are ``Discrete(rows * cols)``: ``row * cols + col`` (wall cells are states that
are never visited). Like Gymnasium's toy-text environments the env carries its transition
table ``P[s][a] = [(prob, next_state, reward, done), ...]`` and ``initial_state_distrib``,
so ``deeprl.tabular.TabularMDP.from_gym`` reads its exact model. ``step`` does not consult
``P``: it samples a direction and moves, so the table and the simulator are two independent
descriptions of the same dynamics (the tests compare them).

Registered ids (``register_envs()``): ``deeprl/GridWorld-v0`` (layout ``"bridge"`` by default,
100 steps per episode; pass ``layout=...``, ``slip=...`` etc. to ``gym.make``),
``deeprl/FourRooms-v0`` (``"four_rooms"``, 200 steps) and ``deeprl/CliffGridWorld-v0``
(``"cliff"``, 200 steps). ``LAYOUTS`` holds the named layouts.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from deeprl.core.errors import ConfigError

LAYOUTS: dict[str, tuple[str, ...]] = {
    # A bridge between two pits: the short path along the pits is risky when slip > 0.
    "bridge": (
        "#######",
        "#.....#",
        "#S...G#",
        "#XXXXX#",
        "#######",
    ),
    # FrozenLake 4x4 (holes as pits, goal pays 1, no step cost with step_reward=0).
    "frozen_lake_4x4": (
        "SFFF".replace("F", "."),
        "FXFX".replace("F", "."),
        "FFFX".replace("F", "."),
        "XFFG".replace("F", "."),
    ),
    # Sutton, Precup & Singh (1999): four rooms joined by doorways.
    "four_rooms": (
        "#############",
        "#S....#.....#",
        "#.....#.....#",
        "#...........#",
        "#.....#.....#",
        "#.....#.....#",
        "##.####.....#",
        "#.....###.###",
        "#.....#.....#",
        "#.....#.....#",
        "#...........#",
        "#.....#....G#",
        "#############",
    ),
    # Sutton & Barto Example 6.6 (cliff walking) on a 4 x 12 grid.
    "cliff": (
        "............",
        "............",
        "............",
        "SCCCCCCCCCCG",
    ),
}

CELLS = ".#SGXC"
ACTIONS = ("left", "down", "right", "up")
_MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))  # (d_row, d_col) of each action
GRIDWORLD_ID = "deeprl/GridWorld-v0"
FOUR_ROOMS_ID = "deeprl/FourRooms-v0"
CLIFF_ID = "deeprl/CliffGridWorld-v0"


def _parse_layout(layout) -> np.ndarray:
    """A named layout or a list of strings -> (rows, cols) array of single characters."""
    if isinstance(layout, str):
        if layout not in LAYOUTS:
            raise ConfigError(f"layout: unknown name {layout!r}; valid: {', '.join(LAYOUTS)} or a list of strings")
        layout = LAYOUTS[layout]
    if not isinstance(layout, (list, tuple)) or not layout or not all(isinstance(r, str) for r in layout):
        raise ConfigError(f"layout must be a layout name or a non-empty list of strings, got {layout!r}")
    if len({len(r) for r in layout}) != 1 or not layout[0]:
        raise ConfigError(f"layout rows must be non-empty and of equal length, got lengths {[len(r) for r in layout]}")
    bad = sorted(set("".join(layout)) - set(CELLS))
    if bad:
        raise ConfigError(f"layout has unknown cells {bad}; valid: {' '.join(CELLS)} (. # S G X C)")
    grid = np.array([list(r) for r in layout])
    if not (grid == "S").any():
        raise ConfigError("layout needs at least one start cell 'S'")
    return grid


class GridWorld(gym.Env):
    """Gridworld with walls, start/goal/pit/cliff cells, slip probability and a known table ``P``."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, layout="bridge", slip: float = 0.0, step_reward: float = -1.0, goal_reward: float = 0.0,
                 pit_reward: float = -100.0, cliff_reward: float = -100.0, render_mode: str | None = None):
        self.grid = _parse_layout(layout)
        if not (isinstance(slip, (int, float)) and 0.0 <= slip <= 1.0):
            raise ConfigError(f"slip must be a probability in [0, 1], got {slip!r}")
        for name, value in (("step_reward", step_reward), ("goal_reward", goal_reward),
                            ("pit_reward", pit_reward), ("cliff_reward", cliff_reward)):
            if not (isinstance(value, (int, float)) and np.isfinite(value)):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode must be 'ansi' or None, got {render_mode!r}")
        self.slip = float(slip)
        self.rewards = {".": float(step_reward), "S": float(step_reward), "G": float(goal_reward),
                        "X": float(pit_reward), "C": float(cliff_reward)}
        self.render_mode = render_mode
        self.n_rows, self.n_cols = self.grid.shape
        n_states = self.n_rows * self.n_cols
        self.observation_space = spaces.Discrete(n_states)
        self.action_space = spaces.Discrete(4)
        cells = self.grid.ravel()
        self.start_states = np.flatnonzero(cells == "S")
        self.initial_state_distrib = (cells == "S").astype(np.float64) / len(self.start_states)
        self.P = self._table()
        self.s = int(self.start_states[0])
        self.lastaction = None

    # -- dynamics ---------------------------------------------------------------------------
    def _cell(self, s: int) -> str:
        return str(self.grid.flat[s])

    def _move(self, s: int, direction: int) -> int:
        """Cell reached from ``s`` moving in ``direction`` (walls and the border block)."""
        row, col = divmod(s, self.n_cols)
        dr, dc = _MOVES[direction]
        r, c = row + dr, col + dc
        if not (0 <= r < self.n_rows and 0 <= c < self.n_cols) or self.grid[r, c] == "#":
            return s
        return r * self.n_cols + c

    def _outcome(self, s: int, direction: int) -> list[tuple[float, int, float, bool]]:
        """``(prob, next_state, reward, done)`` of moving from non-terminal ``s`` in ``direction``:
        one entry, or one per start cell after falling off a cliff."""
        nxt = self._move(s, direction)
        cell = self._cell(nxt)
        reward = self.rewards[cell]
        if cell == "C":
            return [(1.0 / len(self.start_states), int(st), reward, False) for st in self.start_states]
        return [(1.0, nxt, reward, cell in "GX")]

    def _directions(self, action: int) -> list[tuple[float, int]]:
        """(probability, direction) of the actual move for a chosen action."""
        perpendicular = [(action - 1) % 4, (action + 1) % 4]
        out = [(1.0 - self.slip, action)] + [(self.slip / 2.0, d) for d in perpendicular]
        return [(p, d) for p, d in out if p > 0]

    def _table(self) -> dict:
        P = {}
        for s in range(self.n_rows * self.n_cols):
            cell = self._cell(s)
            P[s] = {}
            for a in range(4):
                if cell in "GX":  # terminal: nothing happens (never stepped from)
                    P[s][a] = [(1.0, s, 0.0, True)]
                elif cell in "#C":  # never occupied: stay put
                    P[s][a] = [(1.0, s, 0.0, False)]
                else:
                    P[s][a] = [(p * q, nxt, r, done) for p, d in self._directions(a)
                               for q, nxt, r, done in self._outcome(s, d)]
        return P

    # -- Gymnasium API ----------------------------------------------------------------------
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = int(self.np_random.choice(self.start_states))
        self.lastaction = None
        return self.s, {"prob": 1.0}

    def step(self, action):
        a = int(action)
        if not 0 <= a < 4:
            raise ValueError(f"action must lie in 0..3, got {action!r}")
        u = self.np_random.random()
        direction = a
        if u >= 1.0 - self.slip:  # slipped: one of the two perpendicular directions
            direction = (a - 1) % 4 if u < 1.0 - self.slip / 2.0 else (a + 1) % 4
        nxt = self._move(self.s, direction)
        cell = self._cell(nxt)
        reward = self.rewards[cell]
        if cell == "C":
            nxt = int(self.np_random.choice(self.start_states))
        self.s, self.lastaction = int(nxt), a
        return self.s, reward, cell in "GX", False, {"prob": 1.0}

    def render(self):
        if self.render_mode != "ansi":
            return None
        grid = self.grid.copy()
        grid.flat[self.s] = "A"
        return "\n".join("".join(row) for row in grid) + "\n"


def register_envs() -> None:
    """Register ``deeprl/GridWorld-v0``, ``deeprl/FourRooms-v0`` and ``deeprl/CliffGridWorld-v0``;
    safe to call twice."""
    entry = "deeprl.envs.gridworld:GridWorld"
    for env_id, kwargs, steps in ((GRIDWORLD_ID, {"layout": "bridge"}, 100),
                                  (FOUR_ROOMS_ID, {"layout": "four_rooms"}, 200),
                                  (CLIFF_ID, {"layout": "cliff"}, 200)):
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry, kwargs=kwargs, max_episode_steps=steps)
