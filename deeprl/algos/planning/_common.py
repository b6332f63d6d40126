"""Small helpers the planning agents share: plain functions, a counter of planning time, and the
policy that acts with a planner (no base class)."""
from __future__ import annotations

import contextlib
import time

import numpy as np

from deeprl.nn.acting import Policy


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



class PlannerPolicy(Policy):
    """A planner acting: observations -> ``dynamics.obs_to_state`` -> ``controller.act(states)`` ->
    ``dynamics.env_action`` (no dynamics: observations are the states, controls the actions),
    timed by ``clock``; no log-probs. In the learner's process it shares the agent's controller
    (its plans and warm starts) and clock; ``snapshot()`` copies both, with the controller's
    generator. ``autograd``: planning differentiates the model (iLQR), even under
    ``torch.inference_mode`` (as in ``Agent.predict``)."""

    def __init__(self, controller, dynamics=None, clock: ActionClock | None = None, autograd: bool = False):
        self.controller, self.dynamics, self.autograd = controller, dynamics, autograd
        self.clock = clock if clock is not None else ActionClock()

    def __call__(self, obs):
        import torch

        obs = as_numpy(obs)
        with self.clock.timing(len(obs)), torch.inference_mode(False) if self.autograd else contextlib.nullcontext():
            states = self.dynamics.obs_to_state(obs) if self.dynamics is not None else obs
            controls = self.controller.act(states)
        return (self.dynamics.env_action(controls) if self.dynamics is not None else controls), None
