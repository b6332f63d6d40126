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
