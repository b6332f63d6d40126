"""Finite MDPs with known dynamics, as dense NumPy arrays.

A ``TabularMDP`` with ``S`` states and ``A`` actions holds

- ``P[s, a, s']``  transition probability p(s' | s, a), shape (S, A, S); rows sum to 1.
- ``R[s, a]``      expected immediate reward r(s, a) = E[r | s, a], shape (S, A).
- ``terminal[s]``  absorbing states, shape (S,) bool: p(s | s, a) = 1 and r(s, a) = 0 for
                   every action. Their value is 0 by definition (no reward, and no entropy
                   bonus either in soft value iteration).

Terminal transitions of Gymnasium's toy-text environments (``from_gym``). Their tables
``env.unwrapped.P[s][a]`` list ``(prob, next_state, reward, done)``; after a ``done``
transition the episode is over, so its value is ``reward`` with nothing bootstrapped from
``next_state``. ``from_gym`` models this with ONE extra absorbing state, index ``S_env``
(the last one): every ``done`` transition goes there, whatever ``next_state`` it names.
The environment's own states keep their indices ``0 .. S_env-1``, so ``V[obs]`` reads the
value of an observation directly. A state the environment only ever enters through a
``done`` transition (FrozenLake's holes and goal, CliffWalking's goal, Taxi's
"delivered" states) keeps its own row from ``P`` but is unreachable in the model; its value
describes starting there, which the environment never does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deeprl.core.errors import SpaceError

ROW_SUM_TOL = 1e-8


@dataclass(frozen=True)
class TabularMDP:
    """Known dynamics ``P`` (S, A, S), expected rewards ``R`` (S, A), absorbing ``terminal`` (S,)."""

    P: np.ndarray
    R: np.ndarray
    terminal: np.ndarray

    def __post_init__(self):
        P = np.asarray(self.P, dtype=np.float64)
        R = np.asarray(self.R, dtype=np.float64)
        terminal = np.asarray(self.terminal, dtype=bool)
        _validate(P, R, terminal)
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "terminal", terminal)

    @classmethod
    def from_gym(cls, env) -> TabularMDP:
        """The model of a Gymnasium toy-text environment: see the module-level ``from_gym``."""
        return from_gym(env)

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]


def _validate(P: np.ndarray, R: np.ndarray, terminal: np.ndarray) -> None:
    """Raise ValueError unless the arrays describe a finite MDP with absorbing terminal states."""
    if P.ndim != 3 or P.shape[0] != P.shape[2] or P.shape[0] == 0 or P.shape[1] == 0:
        raise ValueError(f"P must have shape (S, A, S) with S, A >= 1, got {P.shape}")
    S, A, _ = P.shape
    if R.shape != (S, A):
        raise ValueError(f"R must have shape (S, A) = {(S, A)}, got {R.shape}")
    if terminal.shape != (S,):
        raise ValueError(f"terminal must have shape (S,) = {(S,)}, got {terminal.shape}")
    if not (np.isfinite(P).all() and np.isfinite(R).all()):
        raise ValueError("P and R must be finite")
    if (P < 0).any():
        raise ValueError("P must be non-negative")
    row_error = np.abs(P.sum(axis=2) - 1.0)
    if (row_error > ROW_SUM_TOL).any():
        s, a = np.unravel_index(np.argmax(row_error), row_error.shape)
        raise ValueError(f"rows of P must sum to 1 (within {ROW_SUM_TOL}): P[{s}, {a}] sums to {P[s, a].sum()!r}")
    for s in np.flatnonzero(terminal):
        if not (np.abs(P[s, :, s] - 1.0) <= ROW_SUM_TOL).all() or (R[s] != 0).any():
            raise ValueError(f"terminal state {s} must be absorbing: P[{s}, a, {s}] = 1 and R[{s}, a] = 0 for all a")


def from_gym(env) -> TabularMDP:
    """Build the model of a Gymnasium toy-text environment from its table ``env.unwrapped.P``.

    Works for FrozenLake-v1, FrozenLake8x8-v1, CliffWalking-v1, Taxi-v4 and any environment
    with ``Discrete`` observation and action spaces (starting at 0) and a table
    ``P[s][a] = [(prob, next_state, reward, done), ...]``. Returns an MDP with
    ``S = S_env + 1`` states, the last one the absorbing end of episode (see the module
    docstring):

        P[s, a, s'] = sum of prob over entries with next_state = s' and not done
        P[s, a, S_env] = sum of prob over entries with done
        R[s, a] = sum of prob * reward over all entries

    Raises ``SpaceError`` when the environment has no such spaces or table.
    """
    from gymnasium import spaces

    need = "a tabular model needs Discrete observation and action spaces (starting at 0) and a transition table P"
    inner = env.unwrapped
    obs_space, act_space = inner.observation_space, inner.action_space
    if not (isinstance(obs_space, spaces.Discrete) and isinstance(act_space, spaces.Discrete)):
        raise SpaceError(f"{need}; got observation space {obs_space} and action space {act_space}")
    if obs_space.start != 0 or act_space.start != 0:
        raise SpaceError(f"{need}; got spaces starting at {obs_space.start} and {act_space.start}")
    table = getattr(inner, "P", None)
    if not isinstance(table, dict):
        raise SpaceError(f"{need}; {type(inner).__name__} has no transition table env.unwrapped.P")
    S, A = int(obs_space.n), int(act_space.n)
    end = S  # the extra absorbing state
    P = np.zeros((S + 1, A, S + 1))
    R = np.zeros((S + 1, A))
    for s in range(S):
        for a in range(A):
            try:
                entries = table[s][a]
            except (KeyError, IndexError, TypeError):
                raise SpaceError(f"{need}; P[{s}][{a}] is missing") from None
            for prob, next_state, reward, done in entries:
                if not done and not 0 <= next_state < S:
                    raise SpaceError(f"{need}; P[{s}][{a}] names next state {next_state} outside 0..{S - 1}")
                P[s, a, end if done else int(next_state)] += prob
                R[s, a] += prob * reward
    P[end, :, end] = 1.0
    terminal = np.zeros(S + 1, dtype=bool)
    terminal[end] = True
    return TabularMDP(P, R, terminal)
