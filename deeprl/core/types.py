"""Typed batches passed from collection to the update (no dynamic dict batches)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Union

import numpy as np

Obs = Union[np.ndarray, dict]  # an array, or a dict of arrays for Dict observations


@dataclass
class Rollout:
    """On-policy experience, time-major: every array is (T, N, ...) for T steps of N envs.

    ``next_obs[t]`` is the true successor of ``obs[t]`` (the final observation when the
    episode ended at ``t``); both are network inputs, normalised with the statistics the
    policy acted with. ``raw_obs`` holds the observations as the env returned them when a
    normaliser needs them (else None). ``rewards`` are the env's until the learner scales
    them (``Agent.absorb``). ``valid`` marks the steps that belong to the batch (False for
    idle envs when collecting whole episodes).
    """

    obs: Obs
    actions: np.ndarray
    log_probs: np.ndarray | None  # None where the behaviour policy reports none
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_obs: Obs
    valid: np.ndarray
    raw_obs: Obs | None = None

    @property
    def num_steps(self) -> int:
        return int(self.valid.sum())


# The counter each kind of training loop spends its budget (``RunConfig.total_steps``) on, and that
# evaluation, checkpoint and log intervals are measured in. ``env_steps`` counts real environment
# interactions only; ``grad_steps`` gradient steps; ``iterations`` rounds of the loop.
BUDGET_COUNTER = {"collect": "env_steps", "replay": "env_steps", "offline": "grad_steps", "solve": "iterations"}
LOOPS = tuple(BUDGET_COUNTER)


@dataclass(frozen=True)
class ReplaySpec:
    """What the replay loop (deeprl/runners/replay_loop.py) needs from an off-policy algorithm:
    the buffer it builds and owns, and the schedule of gradient steps.

    After each collection of ``train_freq`` steps the loop stores the rollout (``sign_rewards``:
    rewards replaced by their sign, Atari), and once more than ``learning_starts`` env steps
    were taken it takes ``gradient_steps`` steps (-1: as many as env steps were collected).
    Each ``update`` receives ``minibatches_per_update`` minibatches of ``batch_size`` drawn in
    one block (rows ``i*batch_size:(i+1)*batch_size`` are minibatch ``i``; more than one only
    where the sampling distribution is fixed during the steps: uniform replay). Prioritized
    replay anneals the importance exponent beta linearly from ``priority_beta`` to 1 over the
    budget, and takes new priorities from the update's ``PRIORITIES`` entry.
    """

    capacity: int
    batch_size: int
    learning_starts: int
    gradient_steps: int = 1
    n_step: int = 1
    prioritized: bool = False
    priority_alpha: float = 0.6
    priority_beta: float = 0.4
    priority_eps: float = 1e-6
    sign_rewards: bool = False
    minibatches_per_update: int = 1


# An update's metrics entry holding the new priorities (|TD error|, per sampled row) for
# prioritized replay; the replay loop removes it and updates the buffer.
PRIORITIES = "replay/priorities"


class RewardTransform(Protocol):
    """The reward-transform slot (exploration bonuses, learned IRL rewards): the loops call
    ``relabel`` on every batch before the algorithm's ``update`` sees it (a collected Rollout in
    the collecting loop, a sampled ReplayBatch in the replay loop), then ``update`` on the same
    batch, so the transform learns from what it relabelled; its metrics join the row."""

    def relabel(self, batch): ...

    def update(self, batch, progress: float) -> dict: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


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
