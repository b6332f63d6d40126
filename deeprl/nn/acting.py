"""Policies: what acts, and nothing else.

A policy is called on a batch of network inputs (NumPy) and returns ``(actions, log_probs)``
as NumPy, with ``log_probs`` None unless the algorithm learns from them (policy gradients,
soft Q's Boltzmann policy, epsilon-greedy tabular control). It holds the networks and the
exploration state it acts with, and a NumPy generator, but no reference to the learner.

In the learner's process a policy reads the live networks (references, or NumPy views of the
torch parameters) and draws from the algorithm's generator, so a seeded run is one random
stream. ``snapshot()`` is a frozen copy: the weights at that moment, the exploration state
(epsilon's step, noise state) and a copy of the generator; it pickles, so a worker process
acts as the learner would have. Policies that sample through torch (a Gaussian, a squashed
Gaussian, a mixture head) are :class:`TorchSampledPolicy`: live, they draw from torch's global
generator like the rest of the learner; a snapshot carries a copy of that generator's state as
its own stream, whatever the worker's torch seed.
"""
from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
from gymnasium import spaces


def as_tensor(obs, device):
    return {k: torch.as_tensor(v, device=device) for k, v in obs.items()} if isinstance(obs, dict) else \
        torch.as_tensor(obs, device=device)


def batch_size_of(obs) -> int:
    return len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)


class Policy:
    """``policy(obs) -> (actions, log_probs or None)``, NumPy in and out; ``snapshot()`` a frozen,
    picklable copy. (deeprl.nn.numpy_actor.NumpyActor is one too: an MLP actor in NumPy.)"""

    def __call__(self, obs):
        raise NotImplementedError

    def snapshot(self) -> Policy:
        return copy.deepcopy(self)


class RawObsPolicy(Policy):
    """Raw environment observations in: the observation normaliser's frozen statistics (or
    float64 -> float32, as the learner's ``preprocess``), then ``policy`` on the network inputs.
    What a worker process runs (``Agent.policy_snapshot()``)."""

    def __init__(self, policy, normalizer=None):
        self.policy, self.normalizer = policy, normalizer

    def __call__(self, obs):
        if self.normalizer is not None:
            obs = self.normalizer(obs)
        elif not isinstance(obs, dict) and obs.dtype == np.float64:
            obs = obs.astype(np.float32)
        return self.policy(obs)


class RandomPolicy(Policy):
    """Uniform random actions (off-policy algorithms before ``learning_starts``)."""

    def __init__(self, act_space: spaces.Space, rng: np.random.Generator):
        self.rng = rng
        self.n = int(act_space.n) if isinstance(act_space, spaces.Discrete) else None
        if self.n is None:
            self.low, self.high = act_space.low.astype(np.float32), act_space.high.astype(np.float32)

    def __call__(self, obs):
        n = batch_size_of(obs)
        if self.n is not None:
            return self.rng.integers(0, self.n, n), None
        return self.rng.uniform(self.low, self.high, (n,) + self.low.shape).astype(np.float32), None


class TorchSampledPolicy(Policy):
    """A policy that samples through torch. ``torch_rng`` is None in the learner (torch's global
    generator: one seeded stream); ``snapshot()`` sets it to a copy of the global CPU generator's
    state, and ``sampling()`` then draws from that copy and advances it, leaving the process's
    generator untouched. (On a GPU device the CUDA generator is the worker's own.)"""

    torch_rng: torch.Tensor | None = None

    def snapshot(self) -> Policy:
        snap = copy.deepcopy(self)
        snap.torch_rng = torch.get_rng_state() if self.torch_rng is None else self.torch_rng.clone()
        return snap

    @contextlib.contextmanager
    def sampling(self):
        if self.torch_rng is None:
            yield
            return
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.torch_rng)
            yield
            self.torch_rng = torch.get_rng_state()


class ActorPolicy(TorchSampledPolicy):
    """Samples ``actor(obs)`` (a torch distribution); its log-probs when ``log_probs``."""

    def __init__(self, actor: torch.nn.Module, device, log_probs: bool = True):
        self.actor, self.device, self.log_probs = actor, device, log_probs

    def __call__(self, obs):
        with torch.inference_mode(), self.sampling():
            dist = self.actor(as_tensor(obs, self.device))
            a = dist.sample()
            logp = dist.log_prob(a).cpu().numpy() if self.log_probs else None
        return a.cpu().numpy(), logp
