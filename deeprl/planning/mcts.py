"""Monte Carlo tree search with UCT on a deterministic, clonable simulator (CS285 lecture 10).

The lecture's generic sketch, repeated ``num_simulations`` times from the current state ``s_1``:

1. **TreePolicy** -- walk down the tree: at a node that is not fully expanded, try a new action
   (*expansion*: restore the node's state in the simulator, step once, store the child's state);
   otherwise pick the child with the best UCT score (Browne et al. 2012, the lecture's formula)::

       Score(s_t) = Q(s_t) / N(s_t) + 2 C sqrt(2 ln N(s_{t-1}) / N(s_t))

   ``Q / N`` is the child's mean return, rescaled to ``[0, 1]`` with the smallest and largest
   returns backed up so far (so one ``C`` suits any reward scale; ``C = 1/sqrt(2)`` is the
   classic choice for returns in ``[0, 1]``).
2. **DefaultPolicy** -- evaluate the new leaf with a uniformly random rollout of at most
   ``rollout_steps`` steps (its discounted return; 0 at a terminal state).
3. **Backup** -- add the return to every node on the path: a node reached by reward ``r`` from its
   parent is credited ``G = r + gamma * G_below`` (its return from the parent's point of view).

Then act with the root's most visited action (ties: higher mean return, then lower index).
Nodes store cloned simulator states, so walking down the tree never re-simulates; the tree
stops growing at ``max_depth``. Rewards are maximised (the env's own rewards).

The simulator is any env that :mod:`deeprl.envs.clonable` can clone and restore: use
``search(env, state)`` with ``state = clone_state(env)`` or ``state_from_observation(env, obs)``.
Only deterministic dynamics make stored child states exact; that is why the MCTS agent accepts
only the ids in ``deeprl.envs.clonable.SEARCH_ENVS``.

Reference: Kocsis & Szepesvari 2006, "Bandit based Monte-Carlo planning"; Browne et al. 2012,
"A survey of Monte Carlo tree search methods".
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from deeprl.core.errors import ConfigError
from deeprl.envs.clonable import clone_state, restore_state

__all__ = ["MCTS", "MCTSResult"]


@dataclass(frozen=True, eq=False)
class MCTSResult:
    """One search: the chosen ``action``; per root action ``visits (A,)`` and ``values (A,)``
    (mean discounted return, NaN if never tried); ``sim_steps``: simulator steps taken
    (expansions and rollouts); ``max_depth_reached``; ``wall_time`` in seconds."""

    action: int
    visits: np.ndarray
    values: np.ndarray
    num_simulations: int
    sim_steps: int
    max_depth_reached: int
    wall_time: float


class _Node:
    __slots__ = ("state", "reward", "terminal", "children", "untried", "visits", "total")

    def __init__(self, state, reward: float, terminal: bool, untried: list[int]):
        self.state, self.reward, self.terminal = state, reward, terminal
        self.children: dict[int, _Node] = {}
        self.untried = untried  # actions not expanded yet, in the (random) order they will be
        self.visits, self.total = 0, 0.0


@dataclass(eq=False)
class MCTS:
    """UCT search (see the module docstring). ``rng``: a NumPy Generator, a seed or None."""

    num_simulations: int = 100
    exploration: float = 1.0 / math.sqrt(2.0)
    gamma: float = 1.0
    max_depth: int = 50
    rollout_steps: int = 50
    rng: object = None
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self):
        for name in ("num_simulations", "max_depth"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {v!r}")
        if isinstance(self.rollout_steps, bool) or int(self.rollout_steps) != self.rollout_steps \
                or self.rollout_steps < 0:
            raise ConfigError(f"rollout_steps must be an integer >= 0, got {self.rollout_steps!r}")
        if not (math.isfinite(self.exploration) and self.exploration >= 0):
            raise ConfigError(f"exploration must be a finite number >= 0, got {self.exploration!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in [0, 1], got {self.gamma!r}")
        self._rng = self.rng if isinstance(self.rng, np.random.Generator) else np.random.default_rng(self.rng)

    def search(self, env, state) -> MCTSResult:
        """Search from ``state`` of the simulator ``env`` (left in an arbitrary state afterwards)."""
        start = time.perf_counter()
        n_actions = int(env.action_space.n)
        rng, gamma = self._rng, self.gamma
        root = _Node(state, 0.0, False, list(rng.permutation(n_actions)))
        lo, hi = math.inf, -math.inf  # range of backed-up returns, for the normalised Q
        sim_steps = deepest = 0
        for _ in range(self.num_simulations):
            node, path, depth = root, [root], 0
            # 1. tree policy: descend through fully expanded nodes by UCT, then expand one action
            while not node.terminal and depth < self.max_depth and not node.untried:
                log_n = math.log(node.visits)
                best, best_score = None, -math.inf
                for child in node.children.values():
                    q = child.total / child.visits
                    q = (q - lo) / (hi - lo) if hi > lo else 0.5
                    score = q + 2.0 * self.exploration * math.sqrt(2.0 * log_n / child.visits)
                    if score > best_score:
                        best, best_score = child, score
                node = best
                path.append(node)
                depth += 1
            if not node.terminal and depth < self.max_depth:
                a = int(node.untried.pop())
                restore_state(env, node.state)
                _, r, term, trunc, _ = env.step(a)
                sim_steps += 1
                child = _Node(clone_state(env), float(r), bool(term),
                              [] if term else list(rng.permutation(n_actions)))
                node.children[a] = child
                node, depth = child, depth + 1
                path.append(node)
                ready = True  # env is in the child's state
            else:
                ready = False
            deepest = max(deepest, depth)
            # 2. default policy: random rollout from the leaf
            g = 0.0
            if not node.terminal and self.rollout_steps > 0:
                if not ready:
                    restore_state(env, node.state)
                discount = 1.0
                for _ in range(self.rollout_steps):
                    _, r, term, trunc, _ = env.step(int(rng.integers(n_actions)))
                    sim_steps += 1
                    g += discount * float(r)
                    discount *= gamma
                    if term or trunc:
                        break
            # 3. backup: each node is credited its return from its parent's point of view
            for nd in reversed(path):
                if nd is not root:
                    g = nd.reward + gamma * g
                    lo, hi = min(lo, g), max(hi, g)
                nd.visits += 1
                nd.total += g
        visits = np.zeros(n_actions, dtype=np.int64)
        values = np.full(n_actions, np.nan)
        for a, child in root.children.items():
            visits[a], values[a] = child.visits, child.total / child.visits
        order = np.lexsort((np.arange(n_actions), -np.nan_to_num(values, nan=-np.inf), -visits))
        return MCTSResult(action=int(order[0]), visits=visits, values=values, num_simulations=self.num_simulations,
                          sim_steps=sim_steps, max_depth_reached=deepest, wall_time=time.perf_counter() - start)
