"""MBPO: model-based policy optimisation (Janner et al. 2019); CS285 lecture 12, "model-based
acceleration" and the Dyna-style recipe.

In the replay loop, with B the real replay buffer (the loop's) and D_model the model buffer:

1. act with the SAC policy in the real env; the loop adds each step to B (and ``observe`` to D,
   the dataset the model is fit on);
2. every ``model_train_freq`` env steps: fit the dynamics ensemble on D (bootstrap members,
   validation split, early stopping, elites); then from ``rollout_batch_size`` states s ~ D
   roll the current policy out for k steps in the model (a ~ pi(.|s), each row's member drawn
   from the elites at every step: TS-1), with the env's known reward and termination (or a
   learned reward), and add every imagined transition to D_model (FIFO, ``model_buffer_size``);
   k follows ``rollout_length`` (a linear schedule over env steps from ``rollout_min_length``);
3. ``gradient_steps`` SAC updates per env step, each on a minibatch of which a fraction
   ``real_ratio`` comes from B and the rest from D_model (all real while D_model is empty).

SAC is used as it is: its update takes the mixed batch (deeprl.algos.offpolicy.sac, whose losses
are plain functions). ``rollout_length=0`` makes no model data, so MBPO is then SAC with an
idle model; ``real_ratio=1`` likewise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.model_based._common import (
    SACWithModelConfig,
    TransitionData,
    build_model,
    check_spaces,
    load_model_schedule_state,
    make_model_env,
    make_sac,
    model_schedule_state,
    observe_real_steps,
)
from deeprl.core.config import param
from deeprl.core.errors import ConfigError
from deeprl.core.seeding import rng_state, set_rng_state
from deeprl.core.types import ReplaySpec
from deeprl.data.replay import ReplayBatch, available_memory
from deeprl.nn.acting import ActorPolicy, RandomPolicy

__all__ = ["MBPO", "MBPOConfig", "ModelBuffer", "ROLLOUT_ACTIONS", "rollout_length_at"]

ROLLOUT_ACTIONS = ("policy", "buffer", "random")


@dataclass
class MBPOConfig(SACWithModelConfig):
    real_ratio: float = param(0.05, "fraction of each minibatch drawn from the real buffer", low=0.0, high=1.0)
    # branched rollouts (every model_train_freq env steps, after the refit)
    rollout_batch_size: int = param(10_000, "start states per round of model rollouts", low=1)
    rollout_length: int = param(1, "model rollout length k at the end of the schedule (0: no model data)", low=0)
    rollout_min_length: int | None = param(None, "k at the start of the schedule (None: rollout_length)", low=0)
    rollout_schedule: tuple[int, ...] = param((0, 1), "env steps (start, end) over which k goes from "
                                                      "rollout_min_length to rollout_length", low=0)
    model_buffer_size: int | None = param(None, "imagined transitions kept, FIFO (None: the rollouts of the "
                                                "last model_retain_steps env steps)", low=1)
    model_retain_steps: int = param(1000, "env steps whose rollouts the model buffer keeps, when "
                                          "model_buffer_size is None (MBPO keeps one epoch's)", low=1)
    rollout_action: str = param("policy", "first imagined action: the policy's, the one taken in the real "
                                          "data, or uniform (later steps: the policy's)",
                                choices=ROLLOUT_ACTIONS)

    def __post_init__(self):
        super().__post_init__()
        if len(self.rollout_schedule) != 2 or self.rollout_schedule[1] <= self.rollout_schedule[0]:
            raise ConfigError(f"rollout_schedule: must be (start, end) env steps with end > start, "
                              f"got {self.rollout_schedule}")


def rollout_length_at(env_steps: int, k_min: int, k_max: int, schedule) -> int:
    """MBPO's linear schedule: ``k_min`` until ``schedule[0]`` env steps, ``k_max`` from ``schedule[1]``."""
    start, end = schedule
    frac = min(max((env_steps - start) / (end - start), 0.0), 1.0)
    return int(round(k_min + frac * (k_max - k_min)))


def model_buffer_capacity(c) -> int:
    """``model_buffer_size``, or the rollouts of ``model_retain_steps`` env steps: rounds of
    ``rollout_batch_size`` starts times the longest rollout length, one round per ``model_train_freq``."""
    if c.model_buffer_size is not None:
        return c.model_buffer_size
    rounds = -(-c.model_retain_steps // c.model_train_freq)
    return max(1, rounds * c.rollout_batch_size * max(c.rollout_length, c.rollout_min_length or 0, 1))


class ModelBuffer:
    """D_model: imagined transitions (s, a, r, gamma (1 - terminated), s') in a FIFO ring of tensors."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        need = capacity * (2 * obs_dim + act_dim + 2) * 4
        avail = available_memory()
        if avail is not None and need > 0.9 * avail:
            raise ConfigError(f"model_buffer_size={capacity} needs {need / 2**30:.2f} GiB but only "
                              f"{avail / 2**30:.2f} GiB of memory is available; lower model_buffer_size")
        self.capacity, self.size, self.pos = int(capacity), 0, 0
        self.obs = torch.zeros(capacity, obs_dim)
        self.actions = torch.zeros(capacity, act_dim)
        self.rewards = torch.zeros(capacity)
        self.discounts = torch.zeros(capacity)
        self.next_obs = torch.zeros(capacity, obs_dim)

    def __len__(self) -> int:
        return self.size

    def add(self, obs, actions, rewards, discounts, next_obs) -> None:
        n = obs.shape[0]
        if n > self.capacity:  # keep the newest
            obs, actions, rewards, discounts, next_obs = (x[-self.capacity:] for x in
                                                          (obs, actions, rewards, discounts, next_obs))
            n = self.capacity
        idx = (self.pos + torch.arange(n)) % self.capacity
        for name, x in zip(("obs", "actions", "rewards", "discounts", "next_obs"),
                           (obs, actions, rewards, discounts, next_obs)):
            getattr(self, name)[idx] = x.to(torch.float32)
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> tuple:
        idx = torch.as_tensor(rng.integers(0, self.size, n))
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.discounts[idx], self.next_obs[idx]

    def state_dict(self) -> dict:
        s = slice(0, self.size)
        return {"obs": self.obs[s].clone(), "actions": self.actions[s].clone(), "rewards": self.rewards[s].clone(),
                "discounts": self.discounts[s].clone(), "next_obs": self.next_obs[s].clone(), "pos": self.pos}

    def load_state_dict(self, d: dict) -> None:
        n = d["rewards"].shape[0]
        for name in ("obs", "actions", "rewards", "discounts", "next_obs"):
            getattr(self, name)[:n] = torch.as_tensor(d[name])
        self.size, self.pos = n, int(d["pos"])


class MBPO(Agent):
    name = "mbpo"
    Config = MBPOConfig
    loop = "replay"
    action_spaces = (spaces.Box,)
    log_every = 1000
    default_torch_threads = 2

    def build(self):
        check_spaces(self)
        c = self.cfg
        self.sac = make_sac(self)  # the model-free learner
        self.actor = self.sac.actor
        self.model, self.model_opt = build_model(self)
        self.data = TransitionData(self.obs_space.shape[0], self.act_space.shape[0], c.dataset_size)
        self.model_buffer = ModelBuffer(self.obs_space.shape[0], self.act_space.shape[0], model_buffer_capacity(c))
        self.elites = list(range(c.num_model_elites))
        # MBPO's propagation is TS-1: a random elite for every row at every step
        self.model_env = make_model_env(self, self.model, self.elites, "ts1")  # ConfigError: no known reward
        self.fits, self.last_fit_step = 0, 0
        self.fresh: list[dict] = []  # real rows collected since the last fit (held out from it)

    # -- acting ---------------------------------------------------------------------------
    def behaviour_policy(self):
        if self.train_state["env_steps"] < self.cfg.learning_starts:
            return RandomPolicy(self.act_space, self.rng)
        return ActorPolicy(self.sac.actor, self.device, log_probs=False)

    def act(self, obs, deterministic: bool = False):
        return self.sac.act(obs, deterministic)

    def rollout_spec(self):
        return "steps", 1

    def replay_spec(self):
        return ReplaySpec(capacity=self.cfg.buffer_size, batch_size=self.cfg.batch_size,
                          learning_starts=self.cfg.learning_starts, gradient_steps=self.cfg.gradient_steps)

    # -- the model ------------------------------------------------------------------------
    def observe(self, rollout) -> dict:
        metrics = observe_real_steps(self, rollout)  # D, and a refit when due
        if metrics is None:
            return {}
        c = self.cfg
        k = rollout_length_at(self.train_state["env_steps"], c.rollout_length if c.rollout_min_length is None
                              else c.rollout_min_length, c.rollout_length, c.rollout_schedule)
        metrics.update(self._branched_rollouts(k))
        metrics["model/rollout_length"] = k
        return metrics

    @torch.no_grad()
    def _branched_rollouts(self, k: int) -> dict:
        """k policy steps in the model from ``rollout_batch_size`` real states, into D_model."""
        c = self.cfg
        if k == 0:
            return {"model/buffer_size": len(self.model_buffer)}
        idx = torch.as_tensor(self.rng.integers(0, len(self.data), c.rollout_batch_size))
        s = self.data.obs[idx]
        added, ended = 0, 0
        for step in range(k):
            a = self._first_actions(idx, s) if step == 0 else self.sac.actor(s).sample()
            s2, r, term = self.model_env.step(s, a)
            done = term if term is not None else torch.zeros(s.shape[0], dtype=torch.bool)
            self.model_buffer.add(s, a, r, c.gamma * (~done).float(), s2)
            added += s.shape[0]
            ended += int(done.sum())
            s = s2[~done]
            if s.shape[0] == 0:
                break
        return {"model/buffer_size": len(self.model_buffer), "model/rollout_transitions": added,
                "model/rollout_terminations": ended}

    def _first_actions(self, idx, s):
        """``rollout_action``: the policy's (MBPO), the real data's (Dyna-Q's replay of (s, a)), or uniform."""
        if self.cfg.rollout_action == "buffer":
            return self.data.actions[idx]
        if self.cfg.rollout_action == "random":
            low, high = self.act_space.low, self.act_space.high
            return torch.as_tensor(self.rng.uniform(low, high, (s.shape[0],) + low.shape), dtype=s.dtype)
        return self.sac.actor(s).sample()

    # -- learning -------------------------------------------------------------------------
    def update(self, batch, progress) -> dict:
        """One SAC gradient step on real rows (``real_ratio``) and model rows (the rest)."""
        c = self.cfg
        n_real = c.batch_size if len(self.model_buffer) == 0 else int(math.ceil(c.real_ratio * c.batch_size))
        if n_real < c.batch_size:
            obs, act, rew, disc, nxt = self.model_buffer.sample(c.batch_size - n_real, self.rng)
            dev = self.device
            batch = ReplayBatch(torch.cat([batch.obs[:n_real], obs.to(dev)]),
                                torch.cat([batch.actions[:n_real], act.to(dev)]),
                                torch.cat([batch.rewards[:n_real], rew.to(dev)]),
                                torch.cat([batch.discounts[:n_real], disc.to(dev)]),
                                torch.cat([batch.next_obs[:n_real], nxt.to(dev)]), None, batch.indices[:n_real])
        metrics = self.sac.update(batch, progress)
        metrics["train/real_fraction"] = n_real / c.batch_size
        return metrics

    # -- checkpoints ----------------------------------------------------------------------
    def modules(self):
        return {**self.sac.modules(), "model": self.model, "model_optimizer": self.model_opt}

    def policy_modules(self):
        return ("actor",)

    def extra_state(self):
        return {"sac": self.sac.extra_state(), "sac_rng": rng_state(self.sac.rng),
                "model_buffer": self.model_buffer.state_dict(), **model_schedule_state(self)}

    def load_extra_state(self, state):
        self.sac.load_extra_state(state["sac"])
        set_rng_state(self.sac.rng, state["sac_rng"])
        self.model_buffer.load_state_dict(state["model_buffer"])
        load_model_schedule_state(self, state)
