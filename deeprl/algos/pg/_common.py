"""Small helpers the on-policy algorithms share (pure functions on tensors/arrays)."""
from __future__ import annotations

import numpy as np
import torch

from deeprl.core.returns import gae
from deeprl.core.types import Rollout
from deeprl.data.collect import map_obs, to_tensor


def flat(x, valid=None):
    """(T, N, ...) -> (T*N, ...) keeping only ``valid`` steps when given."""
    def f(a):
        a = a.reshape((-1,) + a.shape[2:])
        return a if valid is None else a[valid.reshape(-1)]
    return map_obs(f, x)


@torch.no_grad()
def values_of(critic, batch: Rollout, device) -> tuple[np.ndarray, np.ndarray]:
    """V(s_t) and V(s_{t+1}) for every step of a rollout, shaped (T, N), in two batched passes."""
    T, N = batch.rewards.shape
    v = critic(to_tensor(flat(batch.obs), device)).cpu().numpy().reshape(T, N)
    nv = critic(to_tensor(flat(batch.next_obs), device)).cpu().numpy().reshape(T, N)
    return v, nv


def gae_advantages(critic, batch: Rollout, gamma: float, gae_lambda: float, device):
    """(V(s_t), GAE advantages, TD(lambda) returns = advantages + values), each (T, N)."""
    values, next_values = values_of(critic, batch, device)
    adv = gae(batch.rewards, values, next_values, batch.terminated, batch.truncated, gamma, gae_lambda)
    return values, adv, adv + values


def explained_variance(pred: np.ndarray, target: np.ndarray) -> float:
    """1 - Var[target - pred] / Var[target] (1 is perfect, <= 0 no better than a constant)."""
    var = np.var(target)
    return float("nan") if var == 0 else float(1 - np.var(target - pred) / var)
