"""Running mean/std of observations and of discounted returns (for reward scaling).

Both are learner-side: the policy applies frozen statistics while it acts, and the learner
folds each collected batch into them (``Agent.absorb``), so a snapshot taken in a worker acts
exactly like the learner's policy did when the batch was collected."""
from __future__ import annotations

import numpy as np


class RunningMeanStd:
    """Streaming mean and variance (Chan et al. parallel update) over the batch axis."""

    def __init__(self, shape=(), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = epsilon

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64)
        b_mean, b_var, b_count = x.mean(0), x.var(0), x.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": float(self.count)}

    def load_state_dict(self, d: dict) -> None:
        self.mean = np.asarray(d["mean"], np.float64).copy()
        self.var = np.asarray(d["var"], np.float64).copy()
        self.count = float(d["count"])


class ObsNormalizer:
    """obs -> clip((obs - mean) / sqrt(var + eps), -clip, clip)."""

    def __init__(self, shape, clip: float = 10.0, eps: float = 1e-8):
        self.rms = RunningMeanStd(shape)
        self.clip, self.eps = clip, eps

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Normalise with the current statistics (never changes them)."""
        out = (obs - self.rms.mean) / np.sqrt(self.rms.var + self.eps)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)

    def update(self, raw_obs: np.ndarray) -> None:
        """Fold raw observations (rows are samples) into the statistics."""
        self.rms.update(raw_obs)

    def state_dict(self):
        return self.rms.state_dict()

    def load_state_dict(self, d):
        self.rms.load_state_dict(d)


class RewardScaler:
    """Divide rewards by the running std of the discounted return (as in VecNormalize).

    The return accumulator ``R <- gamma * R + r`` runs per env across batches and restarts after
    every episode end. ``update`` folds a batch's returns into the statistics; ``scale`` then
    divides by their std, so every reward of a batch is scaled alike.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8):
        self.rms = RunningMeanStd(())
        self.ret = np.zeros(num_envs)
        self.gamma, self.clip, self.eps = gamma, clip, eps

    def update(self, rewards: np.ndarray, dones: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Time-major (T, N) raw rewards and episode ends; steps where ``valid`` is False (idle
        envs after their last episode) neither advance the accumulator nor count."""
        returns = np.empty(rewards.shape, np.float64)
        ret = self.ret.copy()
        for t in range(rewards.shape[0]):
            live = True if valid is None else valid[t]
            ret = np.where(live, ret * self.gamma + rewards[t], ret)
            returns[t] = ret
            ret = np.where(dones[t] & live, 0.0, ret)
        self.ret = ret
        self.rms.update(returns.reshape(-1) if valid is None else returns[valid])

    def scale(self, rewards: np.ndarray) -> np.ndarray:
        return np.clip(rewards / np.sqrt(self.rms.var + self.eps), -self.clip, self.clip)

    def state_dict(self):
        return {"rms": self.rms.state_dict(), "ret": self.ret.copy()}

    def load_state_dict(self, d):
        self.rms.load_state_dict(d["rms"])
        self.ret = np.asarray(d["ret"], np.float64).copy()
