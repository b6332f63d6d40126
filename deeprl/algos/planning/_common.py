"""Small helpers the planning agents share (plain functions and one counter, no base class)."""
from __future__ import annotations

import time

import numpy as np


def as_numpy(obs) -> np.ndarray:
    """A batch of observations (tensor or array) as a NumPy array."""
    if hasattr(obs, "detach"):
        obs = obs.detach().cpu().numpy()
    return np.asarray(obs)


class ActionClock:
    """Wall time spent choosing actions: ``with clock.timing(n): ...`` adds the time of the
    block and ``n`` actions. Saved in checkpoints as a 2-vector ``[seconds, actions]``."""

    def __init__(self):
        self.seconds, self.actions = 0.0, 0
        self._start = None

    def timing(self, n_actions: int):
        self._n = int(n_actions)
        return self

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._start
        self.actions += self._n
        return False

    @property
    def per_action(self) -> float:
        return self.seconds / self.actions if self.actions else float("nan")

    def state(self) -> np.ndarray:
        return np.array([self.seconds, float(self.actions)])

    def load(self, state) -> None:
        s = np.asarray(state, dtype=np.float64)
        self.seconds, self.actions = float(s[0]), int(s[1])

