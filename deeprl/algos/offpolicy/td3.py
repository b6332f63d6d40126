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

import torch
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.offpolicy._common import check_off_policy_run, polyak_, replay_spec_of, target_copy
from deeprl.algos.offpolicy.ddpg import NoisyActorPolicy, frozen
from deeprl.core.config import param
from deeprl.nn.acting import RandomPolicy
from deeprl.nn.ensemble import DeterministicActor, QEnsemble
from deeprl.nn.flat import FlatParams, fast_adam_kwargs
from deeprl.nn.networks import ACTIVATIONS
from deeprl.nn.optim import Adam


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
    loop = "replay"
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
        self.actor_opt = Adam([self.actor_flat.param], **adam)
        self.critic_opt = Adam([self.critic_flat.param], **adam)
        self.grad_steps = 0
        self.low = torch.as_tensor(self.act_space.low, dtype=torch.float32, device=self.device)
        self.high = torch.as_tensor(self.act_space.high, dtype=torch.float32, device=self.device)

    def modules(self):
        return {"actor": self.actor, "critic": self.critic, "actor_target": self.actor_target,
                "critic_target": self.critic_target, "actor_opt": self.actor_opt, "critic_opt": self.critic_opt}

    def extra_state(self):
        return {"grad_steps": self.grad_steps}

    def load_extra_state(self, state):
        self.grad_steps = int(state["grad_steps"])

    def rollout_spec(self):
        return ("episodes" if self.cfg.train_freq_unit == "episode" else "steps"), self.cfg.train_freq

    def replay_spec(self):
        return replay_spec_of(self.cfg)

    # -- acting -------------------------------------------------------------------------------
    def act(self, obs, deterministic: bool = False):
        a = self.actor(obs)
        if not deterministic:
            a = a + self.cfg.action_noise * self.actor.scale * torch.randn_like(a)
        return torch.max(torch.min(a, self.high), self.low), None

    def behaviour_policy(self):
        if self.train_state["env_steps"] < self.cfg.learning_starts:
            return RandomPolicy(self.act_space, self.rng)
        noise = self.cfg.action_noise * (self.act_space.high - self.act_space.low) / 2
        return NoisyActorPolicy(self.actor, self.device, noise, self.act_space.low, self.act_space.high, self.rng)

    # -- learning -----------------------------------------------------------------------------
    def update(self, batch, progress) -> dict:
        """One gradient step on a replay minibatch (the actor's on every ``policy_delay``-th)."""
        with self.autocast():
            return self._gradient_step(batch)

    def _gradient_step(self, b) -> dict:
        c = self.cfg

        # critics: clipped double-Q target with target policy smoothing
        critic_loss, info = td3_critic_loss(self.critic, self.critic_target, self.actor_target, b,
                                            target_noise=c.target_noise, target_noise_clip=c.target_noise_clip,
                                            low=self.low, high=self.high, scale=self.actor.scale)
        self.critic_flat.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        self.grad_steps += 1
        metrics = {"loss/critic": critic_loss.detach(), "train/q_mean": info["q_mean"]}

        # delayed actor and target updates
        if self.grad_steps % c.policy_delay == 0:
            actor_loss, _ = td3_actor_loss(self.actor, self.critic, b)
            self.actor_flat.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            polyak_(self.critic_target_flat, self.critic_flat, c.tau)
            polyak_(self.actor_target_flat, self.actor_flat, c.tau)
            metrics["loss/actor"] = actor_loss.detach()
        return metrics


def td3_critic_loss(critic, critic_target, actor_target, batch, *, target_noise: float, target_noise_clip: float,
                    low, high, scale=None):
    """Clipped double-Q regression with target policy smoothing; returns ``(loss, info)``.

        a' = clip(mu_theta'(s') + clip(eps, -c, c) * scale, low, high),   eps ~ N(0, sigma^2)
        y = R + gamma^m min_j Q_phi'_j(s', a'),   L(phi) = sum_j 1/B sum_i (Q_phi_j(s_i, a_i) - y_i)^2

    sigma = ``target_noise`` and c = ``target_noise_clip`` are fractions of half the action range
    ``scale`` (default: ``actor_target.scale``); ``low``/``high`` are the action bounds (tensors).
    eps is drawn by ``torch.randn_like`` from torch's global generator. info: ``q_mean`` (detached,
    over all critics).
    """
    b = batch
    scale = actor_target.scale if scale is None else scale
    with torch.no_grad():
        eps = (torch.randn_like(b.actions) * target_noise).clamp(-target_noise_clip, target_noise_clip)
        next_a = actor_target(b.next_obs) + eps * scale
        next_a = torch.max(torch.min(next_a, high), low)
        y = b.rewards + b.discounts * critic_target(b.next_obs, next_a).min(0).values
    q = critic(b.obs, b.actions)
    return (q - y).pow(2).mean(1).sum(), {"q_mean": q.detach().mean()}


def td3_actor_loss(actor, critic, batch):
    """L(theta) = -1/B sum_i Q_phi_1(s_i, mu_theta(s_i)) (first critic only); returns
    ``(loss, {})``; the critic gets no gradient."""
    with frozen(critic):
        q1 = critic(batch.obs, actor(batch.obs), slice(0, 1))[0]
    return -q1.mean(), {}
