"""MVE: model-based value expansion (Feinberg et al. 2018); CS285 lecture 12, "model-based
acceleration".

SAC on real data whose critic targets look ``horizon`` = H steps further through the learned
model. For a real transition (s, a, r, s') with discount d_0 = gamma (1 - terminated), imagine
s'_0 = s' and, for i = 1..H, a_i ~ pi(.|s'_{i-1}), (s'_i, r_i, done_i) = model(s'_{i-1}, a_i):

    R_H = r + sum_{i=1..H} d_{i-1} r_i,      d_i = d_{i-1} gamma (1 - done_i),

and hand SAC the batch (s, a, R_H, d_H, s'_H): its critic then regresses onto
``R_H + d_H (Q'(s'_H, a') - alpha log pi(a'|s'_H))``, the H-step expanded target (the entropy bonus
only at the bootstrap state, as SAC's n-step targets). The actor and temperature updates see the
real states unchanged. ``horizon=0`` is SAC. Simplifications, against the paper: no TD-k training
of the critic on the imagined states, and the model's elites are drawn per row and step (TS-1).

The model schedule is MBPO's (deeprl.algos.model_based._common.observe_real_steps): D grows with
every real step and the ensemble is refit every ``model_train_freq`` env steps.
"""
from __future__ import annotations

from dataclasses import dataclass

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
from deeprl.core.seeding import rng_state, set_rng_state
from deeprl.core.types import ReplaySpec
from deeprl.data.replay import ReplayBatch
from deeprl.nn.acting import ActorPolicy, RandomPolicy

__all__ = ["MVE", "MVEConfig", "value_expansion"]


@dataclass
class MVEConfig(SACWithModelConfig):
    horizon: int = param(3, "model steps H in every critic target (0: SAC)", low=0)
    gradient_steps: int = param(1, "SAC gradient steps per env step", low=1)


@torch.no_grad()
def value_expansion(batch: ReplayBatch, model_env, policy, horizon: int, gamma: float) -> ReplayBatch:
    """The H-step model-expanded batch (see the module docstring): ``rewards`` R_H, ``discounts`` d_H,
    ``next_obs`` s'_H; ``policy(obs) -> actions`` (torch). Rows whose real or imagined episode
    ended keep their reward sum and discount 0."""
    total, disc, x = batch.rewards.clone(), batch.discounts.clone(), batch.next_obs
    for _ in range(horizon):
        a = policy(x)
        x2, r, done = model_env.step(x, a)
        total = total + disc * r
        disc = disc * gamma * (1.0 - done.to(disc.dtype)) if done is not None else disc * gamma
        x = x2
    return ReplayBatch(batch.obs, batch.actions, total, disc, x, batch.weights, batch.indices)


class MVE(Agent):
    name = "mve"
    Config = MVEConfig
    loop = "replay"
    action_spaces = (spaces.Box,)
    log_every = 1000
    default_torch_threads = 2

    def build(self):
        check_spaces(self)
        c = self.cfg
        self.sac = make_sac(self)
        self.actor = self.sac.actor
        self.model, self.model_opt = build_model(self)
        self.data = TransitionData(self.obs_space.shape[0], self.act_space.shape[0], c.dataset_size)
        self.elites = list(range(c.num_model_elites))
        self.model_env = make_model_env(self, self.model, self.elites, "ts1")  # ConfigError: no known reward
        self.fits, self.last_fit_step = 0, 0
        self.fresh: list[dict] = []

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

    def observe(self, rollout) -> dict:
        return observe_real_steps(self, rollout) or {}

    def update(self, batch, progress) -> dict:
        c = self.cfg
        if c.horizon > 0 and self.fits:
            batch = value_expansion(batch, self.model_env, lambda x: self.sac.actor(x).sample(), c.horizon, c.gamma)
        metrics = self.sac.update(batch, progress)
        if c.horizon > 0 and self.fits:
            metrics["train/expanded_discount_mean"] = batch.discounts.mean()
        return metrics

    def modules(self):
        return {**self.sac.modules(), "model": self.model, "model_optimizer": self.model_opt}

    def policy_modules(self):
        return ("actor",)

    def extra_state(self):
        return {"sac": self.sac.extra_state(), "sac_rng": rng_state(self.sac.rng), **model_schedule_state(self)}

    def load_extra_state(self, state):
        self.sac.load_extra_state(state["sac"])
        set_rng_state(self.sac.rng, state["sac_rng"])
        load_model_schedule_state(self, state)
