"""Experience replay: preallocated ring storage of transitions, uniform or prioritized
sampling, and n-step targets computed at sampling time (CS285 lecture 8).

Layout: every array is ``(T, N, ...)`` for ``T = capacity // N`` time slots of ``N`` parallel
environments, written in the order they were collected. Each observation is stored once:
the successor of step ``t`` is the observation at ``t + 1`` of the same environment, except
when the episode ended at ``t``. After a termination the successor is never used (the target
does not bootstrap); after a truncation the true final observation is needed to bootstrap,
and these few observations (one per truncated episode) live in a small side table. Storing
``next_obs`` separately would double the memory, which matters for images.

The newest time slot has no successor yet, so it is not sampled until the next ``add``.

n-step targets: for a sampled step ``t`` the buffer sums ``sum_{k<m} gamma^k r_{t+k}`` over the
``m <= n`` steps up to and including the first episode end (or the newest stored step) and
returns ``discount = gamma^m`` (zero if that last step terminated) and the observation to
bootstrap from, so every algorithm's target is ``R + discount * V(next_obs)``.

Frame stacks (``frame_stack=k``, Atari): an observation ``(k, H, W)`` holds the last ``k`` frames,
so consecutive observations of an episode share ``k - 1`` of them. Only the newest frame of
each step is stored (k times less memory); a step's stack is rebuilt from the frames of the
``k - 1`` steps before it. Where those belong to no stored step of the same episode (the first
step of an episode, and the oldest stored step once older ones are overwritten) the older
``k - 1`` frames of that step's stack are kept in a side table. ``add`` checks that the stream
really is a frame stack (``obs[t][:-1] == obs[t-1][1:]`` within an episode).

Prioritized replay (Schaul et al. 2016): ``P(i) = p_i^alpha / sum_k p_k^alpha`` through a sum
tree; importance weights ``w_i = (M P(i))^-beta / max_j w_j`` over the ``M`` sampleable
transitions (the maximum from a min tree); new transitions get the largest priority seen.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from gymnasium import spaces

from deeprl.core.errors import ConfigError
from deeprl.core.types import Rollout


class ReplayBatch(NamedTuple):
    obs: torch.Tensor | dict
    actions: torch.Tensor
    rewards: torch.Tensor  # n-step discounted reward sums
    discounts: torch.Tensor  # gamma^m, zero where the last step terminated
    next_obs: torch.Tensor | dict  # the observation to bootstrap from
    weights: torch.Tensor | None  # importance weights (prioritized replay), else None
    indices: np.ndarray  # flat indices, for update_priorities


def _map(fn, x):
    return {k: fn(v) for k, v in x.items()} if isinstance(x, dict) else fn(x)


def _space_bytes(space: spaces.Space) -> int:
    if isinstance(space, spaces.Dict):
        return sum(_space_bytes(s) for s in space.spaces.values())
    if isinstance(space, spaces.Discrete):
        return 8
    return int(np.prod(space.shape)) * _storage_dtype(space).itemsize


def _storage_dtype(space: spaces.Space) -> np.dtype:
    if isinstance(space, spaces.Discrete):
        return np.dtype(np.int64)
    return np.dtype(np.float32) if space.dtype == np.float64 else np.dtype(space.dtype)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux), else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class SumTree:
    """Binary sum tree (and min tree) over ``capacity`` non-negative leaves, vectorised over
    batches: O(log capacity) NumPy operations per update or sample."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.size = 1 << max(0, math.ceil(math.log2(max(capacity, 1))))
        self.sums = np.zeros(2 * self.size)
        self.mins = np.full(2 * self.size, np.inf)

    @property
    def total(self) -> float:
        return float(self.sums[1])

    @property
    def min(self) -> float:
        return float(self.mins[1])

    def leaves(self) -> np.ndarray:
        return self.sums[self.size:self.size + self.capacity].copy()

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        indices = np.asarray(indices, np.int64)
        priorities = np.asarray(priorities, np.float64)
        # with repeated indices the last value wins (reverse, keep the first occurrence)
        rev_idx, first = np.unique(indices[::-1], return_index=True)
        pos = rev_idx + self.size
        vals = priorities[::-1][first]
        self.sums[pos] = vals
        self.mins[pos] = np.where(vals > 0, vals, np.inf)
        while pos[0] > 1:
            pos = np.unique(pos >> 1)
            self.sums[pos] = self.sums[2 * pos] + self.sums[2 * pos + 1]
            self.mins[pos] = np.minimum(self.mins[2 * pos], self.mins[2 * pos + 1])

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """Leaf index ``i`` with ``sum(p[:i]) <= prefix < sum(p[:i+1])`` for each prefix."""
        node = np.ones(len(prefix), np.int64)
        prefix = np.asarray(prefix, np.float64).copy()
        while node[0] < self.size:
            left = 2 * node
            go_right = prefix >= self.sums[left]
            prefix -= np.where(go_right, self.sums[left], 0.0)
            node = left + go_right
        return node - self.size


def check_fits(capacity: int, obs_space: spaces.Space, act_space: spaces.Space, prioritized: bool = False,
               frame_stack: int = 0) -> None:
    """Refuse (ConfigError) a buffer whose storage would not fit in the available memory, or a
    frame stack that does not match the observations; nothing is allocated."""
    k = int(frame_stack)
    if k > 1 and (isinstance(obs_space, spaces.Dict) or not obs_space.shape or obs_space.shape[0] != k):
        raise ConfigError(f"frame_stack={k} needs observations of shape ({k}, ...), got {obs_space}")
    need = ReplayBuffer.nbytes_needed(capacity, obs_space, act_space, prioritized, k)
    avail = available_memory()
    if avail is not None and need > 0.9 * avail:
        raise ConfigError(f"buffer_size={capacity} needs {need / 2**30:.2f} GiB for the replay buffer but only "
                          f"{avail / 2**30:.2f} GiB of memory is available; lower buffer_size")


class ReplayBuffer:
    def __init__(self, capacity: int, obs_space: spaces.Space, act_space: spaces.Space, num_envs: int = 1,
                 n_step: int = 1, gamma: float = 0.99, prioritized: bool = False, alpha: float = 0.6,
                 priority_eps: float = 1e-6, rng: np.random.Generator | None = None, frame_stack: int = 0):
        if capacity < 2 * num_envs:
            raise ConfigError(f"buffer_size={capacity} must hold at least two steps of {num_envs} envs")
        self.T, self.N = capacity // num_envs, num_envs
        self.n_step, self.gamma = int(n_step), float(gamma)
        self.prioritized, self.alpha, self.priority_eps = prioritized, float(alpha), float(priority_eps)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.obs_space, self.act_space = obs_space, act_space
        self.k = int(frame_stack)
        check_fits(capacity, obs_space, act_space, prioritized, self.k)
        TN = (self.T, self.N)
        if isinstance(obs_space, spaces.Dict):
            self.obs = {k: np.zeros(TN + s.shape, _storage_dtype(s)) for k, s in obs_space.spaces.items()}
        elif self.k > 1:  # the newest frame of each step; see the module docstring
            self.obs = np.zeros(TN + obs_space.shape[1:], _storage_dtype(obs_space))
        else:
            self.obs = np.zeros(TN + obs_space.shape, _storage_dtype(obs_space))
        self.is_start = np.zeros(TN, bool)  # frame stacks: the step's older frames are in self.heads
        self.heads: dict[int, np.ndarray] = {}  # flat index -> the k - 1 older frames of its stack
        self.actions = np.zeros(TN + act_space.shape, _storage_dtype(act_space))
        self.rewards = np.zeros(TN, np.float32)
        self.terminated = np.zeros(TN, bool)
        self.truncated = np.zeros(TN, bool)
        self.final_obs: dict[int, object] = {}  # flat index -> final observation of a truncated episode
        self.pos, self.full = 0, False
        self._last_next = None  # successors of the newest step (to detect discontinuities)
        self.tree = SumTree(self.T * self.N) if prioritized else None
        self.max_priority = 1.0

    @staticmethod
    def nbytes_needed(capacity, obs_space, act_space, prioritized=False, frame_stack=0) -> int:
        per = _space_bytes(obs_space) // max(frame_stack, 1) + _space_bytes(act_space) + 4 + 3
        return int(capacity * per + (4 * 2 ** math.ceil(math.log2(capacity)) * 8 if prioritized else 0))

    def __len__(self) -> int:
        return (self.T if self.full else self.pos) * self.N

    @property
    def num_sampleable(self) -> int:
        return max(len(self) - self.N, 0)

    # -- writing ------------------------------------------------------------------------------
    def add(self, batch: Rollout) -> None:
        """Append the (T, N) steps of a rollout from the same N environments, in order."""
        steps = batch.rewards.shape[0]
        if batch.rewards.shape[1] != self.N:
            raise ValueError(f"rollout has {batch.rewards.shape[1]} envs, the buffer {self.N}")
        if self._last_next is not None:
            self._check_continuity(batch.obs)
        for s0 in range(0, steps, self.T):  # a rollout longer than the buffer keeps its tail
            self._write(batch, s0, min(s0 + self.T, steps))
        self._last_next = _map(lambda x: x[-1].copy(), batch.next_obs)

    def _write(self, b: Rollout, s0: int, s1: int) -> None:
        n = s1 - s0
        t = (self.pos + np.arange(n)) % self.T
        prev_newest = (self.pos - 1) % self.T
        had_data = self.full or self.pos > 0
        if self.k > 1 and n < self.T and (self.full or self.pos + n >= self.T):
            self._keep_oldest_stack((self.pos + n) % self.T)
        slots = set(t.tolist())
        for table in (self.final_obs, self.heads):  # forget side entries of overwritten steps
            for flat in [k for k in table if k // self.N in slots]:
                del table[flat]
        if isinstance(self.obs, dict):
            for k in self.obs:
                self.obs[k][t] = b.obs[k][s0:s1]
        elif self.k > 1:
            self._write_frames(b, s0, s1, t, had_data and n < self.T, prev_newest)
        else:
            self.obs[t] = b.obs[s0:s1]
        self.actions[t] = b.actions[s0:s1]
        self.rewards[t] = b.rewards[s0:s1]
        self.terminated[t] = b.terminated[s0:s1]
        self.truncated[t] = b.truncated[s0:s1]
        for i, e in zip(*np.nonzero(b.truncated[s0:s1] & ~b.terminated[s0:s1])):
            self.final_obs[int(t[i]) * self.N + int(e)] = _map(lambda x, i=i, e=e: x[s0 + i, e].copy(), b.next_obs)
        self.full = self.full or self.pos + n >= self.T
        self.pos = (self.pos + n) % self.T
        if self.tree is not None:
            envs = np.arange(self.N)
            ready = t[:-1] if not had_data else np.concatenate([[prev_newest], t[:-1]])
            if len(ready):
                self.tree.update((ready[:, None] * self.N + envs).ravel(),
                                 np.full(len(ready) * self.N, self.max_priority))
            self.tree.update(t[-1] * self.N + envs, np.zeros(self.N))

    def _check_continuity(self, obs) -> None:
        """A rollout that does not continue from the last stored successor (an env reset on
        resume, say) cuts the last stored episodes: mark them truncated at their true end."""
        newest = (self.pos - 1) % self.T
        last, first = self._last_next, obs
        for e in range(self.N):
            same = (all(np.array_equal(last[k][e], first[k][0, e]) for k in last) if isinstance(last, dict)
                    else np.array_equal(last[e], first[0, e]))
            if not same and not self.terminated[newest, e] and not self.truncated[newest, e]:
                self.truncated[newest, e] = True
                self.final_obs[newest * self.N + e] = _map(lambda x, e=e: x[e].copy(), last)

    # -- frame stacks -------------------------------------------------------------------------------
    def _write_frames(self, b: Rollout, s0: int, s1: int, t: np.ndarray, continues: bool, prev_newest: int) -> None:
        """Store the newest frame of each step; steps that start an episode (or the first step
        when nothing before it is kept) get their older frames in ``heads``."""
        obs = np.asarray(b.obs[s0:s1])
        ended = b.terminated[s0:s1] | b.truncated[s0:s1]
        start = np.empty(ended.shape, bool)
        start[0] = (self.terminated[prev_newest] | self.truncated[prev_newest]) if continues else True
        start[1:] = ended[:-1]
        same = ~start[1:]  # consecutive steps of one episode must share k - 1 frames
        if same.any() and not np.array_equal(obs[1:, :, :-1][same], obs[:-1, :, 1:][same]):
            raise ValueError(f"frame_stack={self.k}: consecutive observations do not share {self.k - 1} frames "
                             "(obs[t][:-1] != obs[t-1][1:]); these observations are not frame stacks")
        self.obs[t] = obs[:, :, -1]
        self.is_start[t] = start
        for i, e in zip(*np.nonzero(start)):
            self.heads[int(t[i]) * self.N + int(e)] = obs[i, e, :-1].copy()

    def _keep_oldest_stack(self, oldest: int) -> None:
        """Before the steps preceding ``oldest`` are overwritten, keep its stack's older frames."""
        envs = np.arange(self.N)
        todo = envs[~self.is_start[oldest]]
        if len(todo):
            stacks = self._stacks(np.full(len(todo), oldest), todo)
            for j, e in enumerate(todo):
                self.heads[oldest * self.N + int(e)] = stacks[j, :-1].copy()
            self.is_start[oldest, todo] = True

    def _stacks(self, t: np.ndarray, e: np.ndarray) -> np.ndarray:
        """The ``(B, k, ...)`` observations of steps ``(t, e)``, rebuilt from stored frames."""
        k = self.k
        back = np.full(len(t), k - 1)  # steps back to the first step of the episode kept, capped
        open_ = np.ones(len(t), bool)
        for j in range(k - 1):
            hit = open_ & self.is_start[(t - j) % self.T, e]
            back[hit] = j
            open_ &= ~hit
        out = np.empty((len(t), k) + self.obs.shape[2:], self.obs.dtype)
        for p in range(k):  # stack position p holds the frame of step t - (k - 1 - p)
            d = k - 1 - p
            ok = d <= back
            out[ok, p] = self.obs[(t[ok] - d) % self.T, e[ok]]
        for i in np.flatnonzero(back < k - 1):  # positions before the episode's first kept step
            d = int(back[i])
            out[i, :k - 1 - d] = self.heads[int((t[i] - d) % self.T) * self.N + int(e[i])][d:]
        return out

    def _observations(self, t: np.ndarray, e: np.ndarray):
        return _map(lambda x: x[t, e], self.obs) if self.k <= 1 else self._stacks(t, e)

    # -- sampling -------------------------------------------------------------------------------
    def sample(self, batch_size: int, beta: float = 0.4, device: str | torch.device = "cpu") -> ReplayBatch:
        if self.num_sampleable == 0:
            raise ValueError("the replay buffer has no complete transition to sample yet")
        weights = None
        if self.tree is None:
            newest = (self.pos - 1) % self.T
            span = (self.T if self.full else self.pos) - 1  # every slot but the newest
            t = (newest + 1 + self.rng.integers(0, span, batch_size)) % self.T if self.full else \
                self.rng.integers(0, span, batch_size)
            e = self.rng.integers(0, self.N, batch_size)
            flat = t * self.N + e
        else:
            total = self.tree.total
            seg = total / batch_size
            prefix = np.minimum((np.arange(batch_size) + self.rng.random(batch_size)) * seg, total * (1 - 1e-12))
            flat = self.tree.find(prefix)
            p = self.tree.sums[flat + self.tree.size]
            bad = p <= 0  # float round-off at a boundary: take the next sampleable leaf
            if bad.any():
                flat[bad] = self.tree.find(np.full(bad.sum(), total * 0.5))
                p = self.tree.sums[flat + self.tree.size]
            m = self.num_sampleable
            w = (m * p / total) ** (-beta)
            weights = torch.from_numpy((w / (m * self.tree.min / total) ** (-beta)).astype(np.float32))
            t, e = flat // self.N, flat % self.N
        rewards, discounts, next_t = self._n_step(t, e)
        obs = _map(torch.from_numpy, self._observations(t, e))
        next_obs = self._gather_next(next_t, e)
        actions = torch.from_numpy(self.actions[t, e])
        batch = ReplayBatch(obs, actions, torch.from_numpy(rewards), torch.from_numpy(discounts), next_obs,
                            weights, flat)
        if torch.device(device).type != "cpu":
            batch = ReplayBatch(*[_map(lambda x: x.to(device), v) if isinstance(v, (torch.Tensor, dict)) else v
                                  for v in batch])
        return batch

    def _n_step(self, t: np.ndarray, e: np.ndarray):
        """n-step reward sums, bootstrap discounts and the index of each window's last step."""
        newest = (self.pos - 1) % self.T
        ahead = (newest - t) % self.T  # stored steps after t (>= 1 for sampleable t)
        k = np.arange(self.n_step)
        idx = (t[:, None] + k) % self.T
        inside = k < ahead[:, None]
        done = (self.terminated[idx, e[:, None]] | self.truncated[idx, e[:, None]]) & inside
        # included steps: inside the window and no episode end strictly before
        ended_before = np.concatenate([np.zeros((len(t), 1), bool), np.cumsum(done, 1)[:, :-1] > 0], 1)
        included = inside & ~ended_before
        m = included.sum(1)
        powers = self.gamma ** k
        rewards = (self.rewards[idx, e[:, None]] * powers * included).sum(1)
        last = (t + m - 1) % self.T
        discounts = np.where(self.terminated[last, e], 0.0, self.gamma ** m)
        return rewards.astype(np.float32), discounts.astype(np.float32), last

    def _gather_next(self, last: np.ndarray, e: np.ndarray):
        """The observation after step ``last``: the next slot, or the stored final observation
        of a truncated episode (terminated ones are never bootstrapped from)."""
        out = self._observations((last + 1) % self.T, e)
        cut = np.flatnonzero(self.truncated[last, e] & ~self.terminated[last, e])
        for i in cut:
            fo = self.final_obs[int(last[i]) * self.N + int(e[i])]
            if isinstance(out, dict):
                for k in out:
                    out[k][i] = fo[k]
            else:
                out[i] = fo
        return _map(torch.from_numpy, out)

    def update_priorities(self, indices: np.ndarray, td_errors) -> None:
        """Set p_i = (|delta_i| + eps)^alpha for the sampled transitions."""
        if self.tree is None:
            return
        err = td_errors.detach().abs().cpu().numpy() if isinstance(td_errors, torch.Tensor) else np.abs(td_errors)
        p = (err.astype(np.float64) + self.priority_eps) ** self.alpha
        newest = (self.pos - 1) % self.T
        p[indices // self.N == newest] = 0.0  # (only if the newest slot was overwritten meanwhile)
        self.tree.update(indices, p)
        self.max_priority = max(self.max_priority, float(p.max(initial=0.0)))

    # -- checkpointing ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        n = self.T if self.full else self.pos
        keys = sorted(self.final_obs)
        final = None
        if keys:
            if isinstance(self.obs, dict):
                final = {k: np.stack([self.final_obs[i][k] for i in keys]) for k in self.obs}
            else:
                final = np.stack([self.final_obs[i] for i in keys])
        return {"pos": self.pos, "full": self.full, "T": self.T, "N": self.N,
                "obs": _map(lambda x: x[:n].copy(), self.obs), "actions": self.actions[:n].copy(),
                "rewards": self.rewards[:n].copy(), "terminated": self.terminated[:n].copy(),
                "truncated": self.truncated[:n].copy(), "final_keys": np.asarray(keys, np.int64),
                "final_obs": final, "last_next": self._last_next,
                "priorities": self.tree.leaves() if self.tree is not None else None,
                "max_priority": self.max_priority, **self._heads_state(n)}

    def _heads_state(self, n: int) -> dict:
        if self.k <= 1:
            return {}
        keys = sorted(self.heads)
        heads = np.stack([self.heads[i] for i in keys]) if keys else np.zeros((0, self.k - 1) + self.obs.shape[2:],
                                                                            self.obs.dtype)
        return {"frame_stack": self.k, "is_start": self.is_start[:n].copy(), "head_keys": np.asarray(keys, np.int64),
                "heads": heads}

    def load_state_dict(self, d: dict) -> None:
        if (int(d["T"]), int(d["N"])) != (self.T, self.N):
            raise ValueError(f"replay buffer shape {(d['T'], d['N'])} != configured {(self.T, self.N)}")
        n = len(d["rewards"])
        if isinstance(self.obs, dict):
            for k in self.obs:
                self.obs[k][:n] = d["obs"][k]
        else:
            self.obs[:n] = d["obs"]
        self.actions[:n], self.rewards[:n] = d["actions"], d["rewards"]
        self.terminated[:n], self.truncated[:n] = d["terminated"], d["truncated"]
        self.pos, self.full = int(d["pos"]), bool(d["full"])
        keys = [int(k) for k in np.asarray(d["final_keys"]).tolist()]
        fo = d["final_obs"]
        self.final_obs = {k: (_map(lambda x, j=j: np.asarray(x[j]).copy(), fo)) for j, k in enumerate(keys)}
        self._last_next = d["last_next"]
        if max(int(d.get("frame_stack", 0)), 1) != max(self.k, 1):
            raise ValueError(f"replay buffer saved with frame_stack={d.get('frame_stack', 0)}, configured {self.k}")
        if self.k > 1:
            self.is_start[:n] = d["is_start"]
            self.heads = {int(k): np.asarray(h).copy() for k, h in zip(np.asarray(d["head_keys"]).tolist(), d["heads"])}
        self.max_priority = float(d["max_priority"])
        if self.tree is not None:
            pri = np.asarray(d["priorities"], np.float64)
            self.tree.update(np.arange(len(pri)), pri)
