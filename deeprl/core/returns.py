"""Return and advantage estimators (pure NumPy functions).

Conventions shared by every function here (time is the first axis, any trailing
axes are independent streams, e.g. parallel environments):

- ``rewards[t]``     reward received after the action at step ``t``.
- ``terminated[t]``  the episode reached a terminal state after step ``t``:
                     nothing is bootstrapped past it.
- ``truncated[t]``   the episode was cut (time limit) after step ``t``: the return
                     is bootstrapped with ``next_values[t]``.
- ``next_values[t]`` value estimate V(s_{t+1}) of the *true* next state, i.e. the
                     final observation of an episode that ended at ``t``, not the
                     reset observation. Ignored where ``terminated[t]``.
The last step of a batch is treated like a truncation when it is not terminal:
the estimators bootstrap from ``next_values[-1]``.

References: CS285 lecture 6 (actor-critic: reward-to-go, n-step returns, GAE);
Schulman et al. 2016, "High-Dimensional Continuous Control Using GAE".
"""
from __future__ import annotations

import numpy as np


def _as_float(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def _zeros_like_rewards(rewards, next_values):
    return np.zeros_like(rewards) if next_values is None else np.asarray(next_values, np.float64)


def discounted_return(rewards, terminated, truncated, gamma: float) -> np.ndarray:
    """Whole-trajectory discounted return, repeated at every step of the episode.

    The course's policy gradient without reward-to-go weights every log-prob of an
    episode by ``sum_{t'=0}^{T-1} gamma^{t'} r_{t'}`` (the *episode's* return, discounted
    from its first step). Episodes must be complete inside the batch, except the last
    one, which is summed as far as it goes.
    """
    rewards, = _as_float(rewards)
    ends = np.asarray(terminated, bool) | np.asarray(truncated, bool)
    partial = np.empty_like(rewards)  # discounted sum from the episode's first step
    acc = np.zeros(rewards.shape[1:])
    disc = np.ones(rewards.shape[1:])
    for t in range(rewards.shape[0]):
        acc = acc + disc * rewards[t]
        partial[t] = acc
        acc = np.where(ends[t], 0.0, acc)
        disc = np.where(ends[t], 1.0, disc * gamma)
    out = np.empty_like(rewards)
    fill = partial[-1]
    for t in range(rewards.shape[0] - 1, -1, -1):
        fill = np.where(ends[t], partial[t], fill)
        out[t] = fill
    return out


def reward_to_go(rewards, terminated, truncated, gamma: float, next_values=None) -> np.ndarray:
    """Discounted reward-to-go ``sum_{t'>=t} gamma^{t'-t} r_{t'}`` inside each episode.

    With ``next_values`` the tail of a truncated episode (or of the batch) is
    bootstrapped: ``... + gamma^{T-t} V(s_T)``; without it the sum just stops there
    (the Monte Carlo estimate the course uses when trajectories are complete).
    """
    rewards, = _as_float(rewards)
    term = np.asarray(terminated, bool)
    ends = term | np.asarray(truncated, bool)
    boot = np.where(term, 0.0, _zeros_like_rewards(rewards, next_values))
    out = np.empty_like(rewards)
    running = boot[-1].copy()
    for t in range(rewards.shape[0] - 1, -1, -1):
        if t < rewards.shape[0] - 1:
            running = np.where(ends[t], boot[t], running)
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def n_step_returns(rewards, terminated, truncated, next_values, gamma: float, n: int) -> np.ndarray:
    """n-step bootstrapped targets ``sum_{k<n} gamma^k r_{t+k} + gamma^n V(s_{t+n})``.

    The sum stops early at an episode end (bootstrapping from ``next_values`` on a
    truncation, from 0 on a termination) and at the end of the batch.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rewards, next_values = _as_float(rewards, next_values)
    term = np.asarray(terminated, bool)
    ends = term | np.asarray(truncated, bool)
    T = rewards.shape[0]
    out = np.empty_like(rewards)
    for t in range(T):
        acc = np.zeros(rewards.shape[1:])
        alive = np.ones(rewards.shape[1:], bool)
        for k in range(n):
            i = t + k
            acc = acc + alive * gamma**k * rewards[i]
            stop = alive & (ends[i] | (k == n - 1) | (i == T - 1))
            acc = acc + np.where(stop & ~term[i], gamma ** (k + 1) * next_values[i], 0.0)
            alive = alive & ~stop
            if i == T - 1 or not alive.any():
                break
        out[t] = acc
    return out


def gae(rewards, values, next_values, terminated, truncated, gamma: float, gae_lambda: float) -> np.ndarray:
    """Generalized advantage estimation, GAE(gamma, lambda).

    ``A_t = sum_{l>=0} (gamma*lambda)^l delta_{t+l}`` with
    ``delta_t = r_t + gamma * (1 - terminated_t) V(s_{t+1}) - V(s_t)``; the sum stops at
    episode ends. ``lambda=0`` is the one-step TD advantage, ``lambda=1`` the Monte
    Carlo return minus the baseline. Returns ``advantages``; ``advantages + values``
    are the TD(lambda) value targets.
    """
    rewards, values, next_values = _as_float(rewards, values, next_values)
    term = np.asarray(terminated, bool)
    ends = term | np.asarray(truncated, bool)
    deltas = rewards + gamma * np.where(term, 0.0, next_values) - values
    adv = np.empty_like(rewards)
    running = np.zeros(rewards.shape[1:])
    decay = gamma * gae_lambda
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = deltas[t] + decay * running * (~ends[t])
        adv[t] = running
    return adv


def normalize(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Standardize to zero mean and unit standard deviation."""
    return (x - x.mean()) / (x.std() + eps)
