"""Collecting experience from real (vector) environments into typed batches.

The collector owns the environments' running state between iterations (current
observation, per-episode accumulators) so on-policy algorithms can continue episodes across
rollouts, and so that all of it can be checkpointed. It never changes the policy's state:
observation normalisation is a frozen ``preprocess``, and the learner updates the statistics
from the batch's ``raw_obs``.
"""
from __future__ import annotations

from collections import deque

import numpy as np
import torch

from deeprl.core.errors import NonFiniteError
from deeprl.core.types import Rollout
from deeprl.envs.state import get_vec_state, set_vec_state


def map_obs(fn, obs):
    return {k: fn(v) for k, v in obs.items()} if isinstance(obs, dict) else fn(obs)


def to_tensor(obs, device="cpu"):
    return map_obs(lambda x: torch.as_tensor(x, device=device), obs)


def _alloc(example, lead: tuple[int, ...]):
    return map_obs(lambda x: np.zeros(lead + x.shape[1:], dtype=x.dtype), example)


def _put(buf, t, value, mask=None):
    if isinstance(buf, dict):
        for k in buf:
            _put(buf[k], t, value[k], mask)
    elif mask is None:
        buf[t] = value
    else:
        buf[t][mask] = value[mask]


class Collector:
    """Steps a vector env with a policy and returns :class:`Rollout` batches.

    ``act(obs) -> (actions, log_probs or None)`` is the behaviour policy, NumPy in and out
    (``Agent.behaviour_policy()``; the rollout's ``log_probs`` are None when it returns None);
    ``preprocess(obs) -> obs`` maps raw observations to network inputs (normalisation with
    frozen statistics); with ``keep_raw_obs`` the rollout also carries the raw observations.
    Rewards are the env's, unscaled.
    """

    def __init__(self, envs, seed: int, preprocess=None, keep_raw_obs: bool = False, action_low=None,
                 action_high=None):
        self.envs = envs
        self.num_envs = envs.num_envs
        self.seed = seed
        self.preprocess = preprocess or (lambda obs: obs)
        self.keep_raw_obs = keep_raw_obs
        self.clip = (action_low, action_high) if action_low is not None else None
        self.obs = None  # raw current observation of every env
        self.ep_return = np.zeros(self.num_envs)
        self.ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self.completed = deque(maxlen=100)  # (return, length, env step at its end) of finished episodes
        self.finished: list[tuple] = []  # the same, every episode since the last drain_finished()
        self.episodes = 0
        self.env_steps = 0
        self._resets = 0

    # -- episode bookkeeping ------------------------------------------------------------
    def reset(self):
        seeds = [self.seed + 10_000 * self._resets + i for i in range(self.num_envs)]
        self._resets += 1
        self.obs, _ = self.envs.reset(seed=seeds)
        self._check_obs(self.obs, self.env_steps)
        self.ep_return[:] = 0
        self.ep_length[:] = 0

    def drain_finished(self) -> list[tuple]:
        """(return, length, env step at its end) of every episode finished since the last call
        (the run's per-episode log; ``completed`` keeps only the last 100)."""
        out, self.finished = self.finished, []
        return out

    def _step(self, actions, t, counted=None, steps_after=None):
        """One vector step; ``steps_after``: the env-step count once this step is done (the
        episode log's end step; default: a fixed-length rollout's ``env_steps + (t + 1) N``)."""
        env_actions = actions
        if self.clip is not None:
            env_actions = np.clip(actions, *self.clip)
        next_obs, rewards, terminated, truncated, info = self.envs.step(env_actions)
        rewards = np.asarray(rewards, np.float64)
        if not np.all(np.isfinite(rewards)):
            raise NonFiniteError(f"non-finite reward {rewards} from the environment at env step "
                                 f"{self.env_steps + (t + 1) * self.num_envs}")
        dones = terminated | truncated
        true_next = next_obs
        if dones.any() and "final_obs" in info:
            true_next = map_obs(np.copy, next_obs)
            for i in np.flatnonzero(dones):
                fo = info["final_obs"][i]
                if isinstance(true_next, dict):
                    for k in true_next:
                        true_next[k][i] = fo[k]
                else:
                    true_next[i] = fo
        self.ep_return += rewards
        self.ep_length += 1
        end = self.env_steps + (t + 1) * self.num_envs if steps_after is None else steps_after
        for i in np.flatnonzero(dones if counted is None else dones & counted):
            ep = (float(self.ep_return[i]), int(self.ep_length[i]), int(end))
            self.completed.append(ep)
            self.finished.append(ep)
            self.episodes += 1
        self.ep_return[dones] = 0
        self.ep_length[dones] = 0
        return next_obs, true_next, rewards, terminated, truncated

    def _successor(self, obs_p, next_raw, true_next):
        """Network input of the true next state: the next observation unless an episode ended."""
        return obs_p if true_next is next_raw else self.preprocess(true_next)

    def _check_obs(self, obs, step, final_obs=None):
        """Raise on NaN/inf in ``obs`` (and in ``final_obs`` when it is a different array)."""
        def check(x):
            if x.dtype.kind == "f" and not np.isfinite(x).all():
                raise NonFiniteError(f"non-finite observation from the environment at env step {step}")
        map_obs(check, obs)
        if final_obs is not None and final_obs is not obs:
            map_obs(check, final_obs)

    # -- collection modes ---------------------------------------------------------------
    def collect_steps(self, act, n_steps: int) -> Rollout:
        """``n_steps`` steps of every env, continuing the episodes in progress."""
        if self.obs is None:
            self.reset()
        N, T = self.num_envs, n_steps
        obs_p = self.preprocess(self.obs)
        obs_buf = _alloc(obs_p, (T, N))
        next_buf = _alloc(obs_p, (T, N))
        raw_buf = _alloc(self.obs, (T, N)) if self.keep_raw_obs else None
        rew = np.zeros((T, N), np.float32)
        term = np.zeros((T, N), bool)
        trunc = np.zeros((T, N), bool)
        actions_buf = logp_buf = None
        for t in range(T):
            a, logp = act(obs_p)
            if actions_buf is None:
                actions_buf = np.zeros((T,) + a.shape, a.dtype)
                logp_buf = np.zeros((T, N), np.float32) if logp is not None else None
            actions_buf[t] = a
            if logp_buf is not None:
                logp_buf[t] = logp
            _put(obs_buf, t, obs_p)
            if raw_buf is not None:
                _put(raw_buf, t, self.obs)
            next_raw, true_next, r, te, tr = self._step(a, t)
            self._check_obs(next_raw, self.env_steps + (t + 1) * N, true_next)
            self.obs = next_raw
            obs_p = self.preprocess(next_raw)
            _put(next_buf, t, self._successor(obs_p, next_raw, true_next))  # next_obs[t] == obs[t+1]
            rew[t], term[t], trunc[t] = r, te, tr
        self.env_steps += T * N
        return Rollout(obs_buf, actions_buf, logp_buf, rew, term, trunc, next_buf, np.ones((T, N), bool),
                       raw_buf)

    def collect_episodes(self, act, min_steps: int) -> Rollout:
        """Complete episodes from fresh resets until at least ``min_steps`` steps are
        collected (the course's ``sample_trajectories``): an env starts no new episode once
        the steps collected and in progress reach ``min_steps``; its later steps are
        marked invalid."""
        self.reset()
        N = self.num_envs
        cap = 256
        obs_p = self.preprocess(self.obs)
        bufs = None
        active = np.ones(N, bool)
        steps = 0
        t = 0
        while active.any():
            if bufs is None or t == cap:
                cap = t * 2 if bufs is not None else cap
                bufs = self._grow(bufs, obs_p, self.obs if self.keep_raw_obs else None, cap, N)
            a, logp = act(obs_p)
            if bufs["actions"] is None:
                bufs["actions"] = np.zeros((cap,) + a.shape, a.dtype)
                if logp is None:
                    bufs["log_probs"] = None
            bufs["actions"][t] = a
            if bufs["log_probs"] is not None:
                bufs["log_probs"][t] = logp
            _put(bufs["obs"], t, obs_p)
            if bufs["raw_obs"] is not None:
                _put(bufs["raw_obs"], t, self.obs)
            next_raw, true_next, r, te, tr = self._step(a, t, counted=active,
                                                        steps_after=self.env_steps + steps + int(active.sum()))
            self._check_obs(next_raw, self.env_steps + steps, true_next)
            self.obs = next_raw
            obs_p = self.preprocess(next_raw)
            _put(bufs["next_obs"], t, self._successor(obs_p, next_raw, true_next))
            bufs["rewards"][t], bufs["terminated"][t], bufs["truncated"][t] = r, te, tr
            bufs["valid"][t] = active
            steps += int(active.sum())
            active &= ~((te | tr) & (steps >= min_steps))
            t += 1
        self.env_steps += steps
        sl = slice(0, t)
        trim = lambda x: map_obs(lambda y: y[sl], x)  # noqa: E731
        self.obs = None  # episodes always restart from a reset
        logp = bufs["log_probs"][sl] if bufs["log_probs"] is not None else None
        raw = trim(bufs["raw_obs"]) if bufs["raw_obs"] is not None else None
        return Rollout(trim(bufs["obs"]), bufs["actions"][sl], logp, bufs["rewards"][sl],
                       bufs["terminated"][sl], bufs["truncated"][sl], trim(bufs["next_obs"]), bufs["valid"][sl],
                       raw)

    @staticmethod
    def _grow(bufs, obs_p, raw, cap, N):
        new = {"obs": _alloc(obs_p, (cap, N)), "next_obs": _alloc(obs_p, (cap, N)),
               "raw_obs": _alloc(raw, (cap, N)) if raw is not None else None,
               "actions": None, "log_probs": np.zeros((cap, N), np.float32),
               "rewards": np.zeros((cap, N), np.float32), "terminated": np.zeros((cap, N), bool),
               "truncated": np.zeros((cap, N), bool), "valid": np.zeros((cap, N), bool)}
        if bufs is not None:
            old = bufs["valid"].shape[0]
            for k, v in bufs.items():
                if v is None:
                    new[k] = None  # (log-probs of a policy that reports none; no raw obs kept)
                    continue
                if k == "actions":
                    new[k] = np.zeros((cap,) + v.shape[1:], v.dtype)
                if isinstance(v, dict):
                    for kk in v:
                        new[k][kk][:old] = v[kk]
                else:
                    new[k][:old] = v
        return new

    # -- checkpointing ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"obs": None if self.obs is None else map_obs(np.copy, self.obs),
                "ep_return": self.ep_return.copy(), "ep_length": self.ep_length.copy(),
                "completed": list(self.completed), "episodes": self.episodes,
                "env_steps": self.env_steps, "resets": self._resets,
                "env_state": get_vec_state(self.envs) if self.obs is not None else None}

    def load_state_dict(self, d: dict) -> bool:
        """Restore; returns False when the envs' own state could not be restored (the next
        rollout then starts from fresh resets)."""
        self.ep_return = np.asarray(d["ep_return"], np.float64).copy()
        self.ep_length = np.asarray(d["ep_length"], np.int64).copy()
        # checkpoints written before the episode log kept (return, length): the end step is unknown
        self.completed = deque([tuple(x) if len(x) == 3 else (*x, None) for x in d["completed"]], maxlen=100)
        self.finished = []
        self.episodes, self.env_steps, self._resets = int(d["episodes"]), int(d["env_steps"]), int(d["resets"])
        if d["obs"] is None:
            self.obs = None
            return True
        if d["env_state"] is None:
            self.obs = None
            return False
        self.envs.reset(seed=[self.seed + i for i in range(self.num_envs)])
        set_vec_state(self.envs, d["env_state"])
        self.obs = d["obs"]
        return True
