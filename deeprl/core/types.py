"""Typed batches passed from collection to the update (no dynamic dict batches)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

Obs = Union[np.ndarray, dict]  # an array, or a dict of arrays for Dict observations


@dataclass
class Rollout:
    """On-policy experience, time-major: every array is (T, N, ...) for T steps of N envs.

    ``next_obs[t]`` is the true successor of ``obs[t]`` (the final observation when the
    episode ended at ``t``). ``rewards`` are after any reward scaling. ``valid`` marks the
    steps that belong to the batch (False for idle envs when collecting whole episodes).
    """

    obs: Obs
    actions: np.ndarray
    log_probs: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_obs: Obs
    valid: np.ndarray

    @property
    def num_steps(self) -> int:
        return int(self.valid.sum())


# The counter each kind of training loop spends its budget (``RunConfig.total_steps``) on, and that
# evaluation, checkpoint and log intervals are measured in. ``env_steps`` counts real environment
# interactions only; ``grad_steps`` gradient steps; ``iterations`` rounds of the loop.
BUDGET_COUNTER = {"collect": "env_steps", "offline": "grad_steps", "solve": "iterations"}
LOOPS = tuple(BUDGET_COUNTER)


@dataclass(frozen=True)
class Labelled:
    """Inputs and targets of supervised data (e.g. observations and expert actions), as tensors;
    ``data[idx]`` is the minibatch ``(inputs[idx], targets[idx])``."""

    inputs: object
    targets: object

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, idx):
        return self.inputs[idx], self.targets[idx]
