"""Twin Delayed DDPG (Fujimoto et al. 2018, arXiv:1802.09477); CS285 lecture 8.

DDPG with three fixes against Q overestimation. Each gradient step on a replay minibatch:

1. target policy smoothing: a' = clip(mu'(s') + clip(eps, -c, c), low, high), eps ~ N(0, sigma^2)
   (``target_noise``, ``target_noise_clip``, as fractions of half the action range);
2. clipped double Q: y = R + gamma^m min(Q'_1(s', a'), Q'_2(s', a')); both critics regress on y;
3. delayed updates: every ``policy_delay`` steps the actor ascends Q_1(s, mu(s)) and the target
   networks move by Polyak averaging with rate ``tau``.

Exploration adds Gaussian noise (``action_noise``, fraction of half the action range) to mu(s).
``train_freq_unit=episode`` collects whole episodes between updates (the zoo's Pendulum setting).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from deeprl.algos.offpolicy._common import (
    check_off_policy_run,
    make_replay,
    num_gradient_steps,
    polyak_,
    random_policy,
    target_copy,
)
from deeprl.core.agent import Agent
from deeprl.core.config import param
from deeprl.data.collect import to_tensor
from deeprl.nn.ensemble import DeterministicActor, QEnsemble
from deeprl.nn.flat import FlatParams, fast_adam_kwargs
from deeprl.nn.networks import ACTIVATIONS


@dataclass
class TD3Config:
    buffer_size: int = param(1_000_000, "replay buffer capacity (transitions)", low=2)
    learning_starts: int = param(100, "env steps of uniform random actions before learning starts", low=0)
    batch_size: int = param(256, "minibatch size", low=1)
    learning_rate: float = param(1e-3, "Adam learning rate (actor and critics)", low=0.0, low_open=True,
                                 aliases=("lr",))
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    tau: float = param(0.005, "Polyak rate of the target networks", low=0.0, high=1.0, low_open=True)
    train_freq: int = param(1, "env steps (or episodes) per env between updates", low=1)
    train_freq_unit: str = param("step", "unit of train_freq", choices=("step", "episode"))
    gradient_steps: int = param(1, "gradient steps per update (-1: as many as env steps collected)", low=-1)
    n_step: int = param(1, "n-step returns", low=1)
    policy_delay: int = param(2, "critic steps per actor and target update", low=1)
    action_noise: float = param(0.1, "exploration noise std (fraction of half the action range)", low=0.0)
    target_noise: float = param(0.2, "target policy smoothing noise std (fraction of half the range)", low=0.0)
    target_noise_clip: float = param(0.5, "clip of the smoothing noise (fraction of half the range)", low=0.0)
    hidden_sizes: tuple[int, ...] = param((400, 300), "hidden layers of actor and critics", low=1)
    activation: str = param("relu", "hidden activation", choices=tuple(ACTIVATIONS))


class TD3(Agent):
    name = "td3"
    Config = TD3Config
    action_spaces = (spaces.Box,)
    log_every = 1000
    default_torch_threads = 2

    def build(self):
        c = self.cfg
        check_off_policy_run(self)
        self.actor = DeterministicActor(self.obs_space, self.act_space, c.hidden_sizes, c.activation).to(self.device)
        self.critic = QEnsemble(self.obs_space, self.act_space, 2, c.hidden_sizes, c.activation).to(self.device)
        self.actor_target, self.actor_target_flat = target_copy(self.actor)
        self.critic_target, self.critic_target_flat = target_copy(self.critic)
        self.actor_flat, self.critic_flat = FlatParams(self.actor), FlatParams(self.critic)
        adam = dict(lr=c.learning_rate, **fast_adam_kwargs(self.device))
        self.actor_opt = torch.optim.Adam([self.actor_flat.param], **adam)
        self.critic_opt = torch.optim.Adam([self.critic_flat.param], **adam)
        self.replay = make_replay(self, c.n_step)
        self.grad_steps = 0
        self.low = torch.as_tensor(self.act_space.low, dtype=torch.float32, device=self.device)
        self.high = torch.as_tensor(self.act_space.high, dtype=torch.float32, device=self.device)

    def modules(self):
        return {"actor": self.actor, "critic": self.critic, "actor_target": self.actor_target,
                "critic_target": self.critic_target, "actor_opt": self.actor_opt, "critic_opt": self.critic_opt}

    def extra_state(self):
        return {"grad_steps": self.grad_steps, "replay": self.replay.state_dict()}

    def load_extra_state(self, state):
        self.grad_steps = int(state["grad_steps"])
        self.replay.load_state_dict(state["replay"])

    def rollout_spec(self):
        return ("episodes" if self.cfg.train_freq_unit == "episode" else "steps"), self.cfg.train_freq

    # -- acting -------------------------------------------------------------------------------
    def act(self, obs, deterministic: bool = False):
        a = self.actor(obs)
        if not deterministic:
            a = a + self.cfg.action_noise * self.actor.scale * torch.randn_like(a)
        return torch.max(torch.min(a, self.high), self.low), torch.zeros(a.shape[0])

    def behaviour_policy(self):
        if self.train_state["env_steps"] < self.cfg.learning_starts:
            return random_policy(self.act_space, self.rng)
        noise = self.cfg.action_noise * (self.act_space.high - self.act_space.low) / 2
        low, high, rng = self.act_space.low, self.act_space.high, self.rng

        def act(obs):
            with torch.inference_mode():
                mu = self.actor(to_tensor(obs, self.device)).cpu().numpy()
            a = np.clip(mu + noise * rng.standard_normal(mu.shape), low, high).astype(np.float32)
            return a, np.zeros(len(a), np.float32)
        return act

    # -- learning -----------------------------------------------------------------------------
    def update(self, batch, progress):
        self.replay.add(batch)
        if self.train_state["env_steps"] <= self.cfg.learning_starts:
            return {}
        metrics = {}
        for _ in range(num_gradient_steps(self.cfg.gradient_steps, batch)):
            metrics.update(self.gradient_step())
        return metrics

    def gradient_step(self) -> dict:
        with self.autocast():
            return self._gradient_step()

    def _gradient_step(self) -> dict:
        c = self.cfg
        b = self.replay.sample(c.batch_size, device=self.device)
        scale = self.actor.scale

        # critics: clipped double-Q target with target policy smoothing
        with torch.no_grad():
            eps = (torch.randn_like(b.actions) * c.target_noise).clamp(-c.target_noise_clip, c.target_noise_clip)
            next_a = self.actor_target(b.next_obs) + eps * scale
            next_a = torch.max(torch.min(next_a, self.high), self.low)
            y = b.rewards + b.discounts * self.critic_target(b.next_obs, next_a).min(0).values
        q = self.critic(b.obs, b.actions)
        critic_loss = (q - y).pow(2).mean(1).sum()
        self.critic_flat.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        self.grad_steps += 1
        metrics = {"loss/critic": critic_loss.detach(), "train/q_mean": q.detach().mean()}

        # delayed actor and target updates
        if self.grad_steps % c.policy_delay == 0:
            self.critic.requires_grad_(False)
            actor_loss = -self.critic(b.obs, self.actor(b.obs), slice(0, 1))[0].mean()  # Q_1 only
            self.critic.requires_grad_(True)
            self.actor_flat.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            polyak_(self.critic_target_flat, self.critic_flat, c.tau)
            polyak_(self.actor_target_flat, self.actor_flat, c.tau)
            metrics["loss/actor"] = actor_loss.detach()
        return metrics
