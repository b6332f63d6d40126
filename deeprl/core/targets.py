"""Bootstrapped TD targets (pure torch functions, CS285 lectures 7-8 and the soft-optimality
lecture). ``rewards`` are (n-step) reward sums and ``discounts`` are gamma^m, zero after a
termination, as the replay buffer returns them; every target is ``rewards + discounts * V'``.
"""
from __future__ import annotations

import torch


def q_learning_target(rewards, discounts, next_q_target, next_q_online=None):
    """y = r + gamma^m max_a' Q_target(s', a') (DQN), or with ``next_q_online`` the double-Q
    target y = r + gamma^m Q_target(s', argmax_a' Q_online(s', a')) (van Hasselt et al. 2016)."""
    if next_q_online is None:
        v = next_q_target.max(-1).values
    else:
        v = next_q_target.gather(-1, next_q_online.argmax(-1, keepdim=True)).squeeze(-1)
    return rewards + discounts * v


def soft_q_target(rewards, discounts, next_q, temperature: float):
    """Soft Q-learning: V(s') = alpha log sum_a' exp(Q(s', a') / alpha), the soft maximum."""
    v = temperature * torch.logsumexp(next_q / temperature, dim=-1)
    return rewards + discounts * v


def ensemble_backup(next_q, mode: str):
    """Combine an ensemble's next-state values (E, B) into one (B,): ``min`` (clipped double Q,
    Fujimoto et al. 2018), ``mean``, or ``doubleq`` (each member bootstraps from another:
    member e uses member (e + 1) mod E, returned as (E, B))."""
    if mode == "min":
        return next_q.min(0).values
    if mode == "mean":
        return next_q.mean(0)
    if mode == "doubleq":
        return next_q.roll(-1, dims=0)
    raise ValueError(f"unknown backup {mode!r}; valid: min, mean, doubleq")


def categorical_projection(next_probs, rewards, discounts, support):
    """Project the distribution of r + gamma^m Z(s', a*) onto the fixed ``support`` (C51).

    ``next_probs`` (B, K) are probabilities on ``support`` (K,) (evenly spaced); each atom z_j
    moves to Tz_j = clamp(r + gamma^m z_j, v_min, v_max) and splits its mass between the two
    nearest atoms in proportion to closeness (Bellemare et al. 2017, Algorithm 1).
    """
    K = support.numel()
    v_min, v_max = support[0], support[-1]
    dz = (v_max - v_min) / (K - 1)
    tz = (rewards.unsqueeze(-1) + discounts.unsqueeze(-1) * support).clamp(v_min, v_max)
    b = (tz - v_min) / dz
    lower = b.floor().clamp(max=K - 1)
    frac = b - lower
    upper = (lower + 1).clamp(max=K - 1)
    out = torch.zeros_like(next_probs)
    out.scatter_add_(-1, lower.long(), next_probs * (1 - frac))
    out.scatter_add_(-1, upper.long(), next_probs * frac)
    return out
