"""Deep Deterministic Policy Gradient (Lillicrap et al. 2016, arXiv:1509.02971); CS285 lecture 8.

Q-learning with a continuous action, where a deterministic actor mu(s) ~ argmax_a Q(s, a)
is learned by ascending Q. Each gradient step on a replay minibatch (s, a, R, gamma^m, s'):

1. critic: minimise (Q(s, a) - y)^2 with y = R + gamma^m Q'(s', mu'(s'));
2. actor: maximise Q(s, mu(s)) (gradient through the critic into the actor);
3. targets: Polyak averaging theta' <- tau theta + (1 - tau) theta'.

Exploration adds Gaussian (``noise_type=normal``) or Ornstein-Uhlenbeck (``ou``) noise to
mu(s), its scale a fraction of half the action range.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.offpolicy._common import check_off_policy_run, polyak_, replay_spec_of, target_copy
from deeprl.core.config import param
from deeprl.nn.acting import Policy, RandomPolicy, as_tensor
from deeprl.nn.ensemble import DeterministicActor, QEnsemble
from deeprl.nn.flat import FlatParams, fast_adam_kwargs
from deeprl.nn.networks import ACTIVATIONS
from deeprl.nn.optim import Adam


@dataclass
class DDPGConfig:
    buffer_size: int = param(1_000_000, "replay buffer capacity (transitions)", low=2)
    learning_starts: int = param(100, "env steps of uniform random actions before learning starts", low=0)
    batch_size: int = param(256, "minibatch size", low=1)
    learning_rate: float = param(1e-3, "Adam learning rate (actor and critic)", low=0.0, low_open=True,
                                 aliases=("lr",))
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    tau: float = param(0.005, "Polyak rate of the target networks", low=0.0, high=1.0, low_open=True)
    train_freq: int = param(1, "env steps (or episodes) per env between updates", low=1)
    train_freq_unit: str = param("step", "unit of train_freq", choices=("step", "episode"))
    gradient_steps: int = param(1, "gradient steps per update (-1: as many as env steps collected)", low=-1)
    n_step: int = param(1, "n-step returns", low=1)
    noise_type: str = param("normal", "exploration noise process", choices=("normal", "ou"))
    action_noise: float = param(0.1, "exploration noise std (fraction of half the action range)", low=0.0)
    ou_theta: float = param(0.15, "mean reversion of Ornstein-Uhlenbeck noise", low=0.0)
    hidden_sizes: tuple[int, ...] = param((400, 300), "hidden layers of actor and critic", low=1)
    activation: str = param("relu", "hidden activation", choices=tuple(ACTIVATIONS))


class DDPG(Agent):
    name = "ddpg"
    Config = DDPGConfig
    action_spaces = (spaces.Box,)
    loop = "replay"
    log_every = 1000
    default_torch_threads = 2

    def build(self):
        c = self.cfg
        check_off_policy_run(self)
        self.actor = DeterministicActor(self.obs_space, self.act_space, c.hidden_sizes, c.activation).to(self.device)
        self.critic = QEnsemble(self.obs_space, self.act_space, 1, c.hidden_sizes, c.activation).to(self.device)
        self.actor_target, self.actor_target_flat = target_copy(self.actor)
        self.critic_target, self.critic_target_flat = target_copy(self.critic)
        self.actor_flat, self.critic_flat = FlatParams(self.actor), FlatParams(self.critic)
        adam = dict(lr=c.learning_rate, **fast_adam_kwargs(self.device))
        self.actor_opt = Adam([self.actor_flat.param], **adam)
        self.critic_opt = Adam([self.critic_flat.param], **adam)
        self.ou_state = np.zeros((self.run.num_envs,) + self.act_space.shape)

    def modules(self):
        return {"actor": self.actor, "critic": self.critic, "actor_target": self.actor_target,
                "critic_target": self.critic_target, "actor_opt": self.actor_opt, "critic_opt": self.critic_opt}

    def extra_state(self):
        return {"ou_state": self.ou_state}

    def load_extra_state(self, state):
        self.ou_state = np.asarray(state["ou_state"], np.float64).copy()

    def rollout_spec(self):
        return ("episodes" if self.cfg.train_freq_unit == "episode" else "steps"), self.cfg.train_freq

    def replay_spec(self):
        return replay_spec_of(self.cfg)

    # -- acting -------------------------------------------------------------------------------
    def act(self, obs, deterministic: bool = False):
        a = self.actor(obs)
        if not deterministic:
            a = (a + self.cfg.action_noise * self.actor.scale * torch.randn_like(a)).clamp(
                self.actor.center - self.actor.scale, self.actor.center + self.actor.scale)
        return a, None

    def behaviour_policy(self):
        c = self.cfg
        if self.train_state["env_steps"] < c.learning_starts:
            return RandomPolicy(self.act_space, self.rng)
        half = (self.act_space.high - self.act_space.low) / 2
        return NoisyActorPolicy(self.actor, self.device, c.action_noise * half, self.act_space.low,
                                self.act_space.high, self.rng,
                                ou=(c.ou_theta, self.ou_state) if c.noise_type == "ou" else None)

    # -- learning -----------------------------------------------------------------------------
    def observe(self, rollout):
        """OU noise restarts with each episode."""
        ended = rollout.terminated | rollout.truncated
        if ended.any():
            self.ou_state[ended.any(0)] = 0.0
        return {}

    def update(self, b, progress) -> dict:
        """One gradient step on a replay minibatch."""
        c = self.cfg
        critic_loss, info = ddpg_critic_loss(self.critic, self.critic_target, self.actor_target, b)
        self.critic_flat.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()

        actor_loss, _ = ddpg_actor_loss(self.actor, self.critic, b)
        self.actor_flat.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()

        polyak_(self.critic_target_flat, self.critic_flat, c.tau)
        polyak_(self.actor_target_flat, self.actor_flat, c.tau)
        return {"loss/critic": critic_loss.detach(), "loss/actor": actor_loss.detach(),
                "train/q_mean": info["q_mean"]}


class NoisyActorPolicy(Policy):
    """A deterministic actor mu(s) plus exploration noise: a = clip(mu(s) + scale * eps, low, high),
    eps ~ N(0, I), or (``ou = (theta, x)``) Ornstein-Uhlenbeck noise eps = x updated in place by
    dx = -theta x + dW (unit time step; ``x`` is the algorithm's noise state, reset at episode ends)."""

    def __init__(self, actor, device, scale, low, high, rng: np.random.Generator, ou=None):
        self.actor, self.device, self.scale, self.low, self.high, self.rng = actor, device, scale, low, high, rng
        self.ou = ou

    def __call__(self, obs):
        with torch.inference_mode():
            mu = self.actor(as_tensor(obs, self.device)).cpu().numpy()
        eps = self.rng.standard_normal(mu.shape)
        if self.ou is not None:
            theta, x = self.ou
            x += -theta * x + eps
            eps = x
        return np.clip(mu + self.scale * eps, self.low, self.high).astype(np.float32), None


def ddpg_critic_loss(critic, critic_target, actor_target, batch):
    """Critic regression onto the deterministic-policy target; returns ``(loss, info)``.

        y = R + gamma^m Q_phi'(s', mu_theta'(s')),   L(phi) = 1/B sum_i (Q_phi(s_i, a_i) - y_i)^2

    (``batch.discounts`` = gamma^m is zero after a termination). ``critic``/``critic_target``
    are one-member :class:`QEnsemble` s. info: ``q_mean`` (detached).
    """
    b = batch
    with torch.no_grad():
        y = b.rewards + b.discounts * critic_target(b.next_obs, actor_target(b.next_obs))[0]
    q = critic(b.obs, b.actions)[0]
    return (q - y).pow(2).mean(), {"q_mean": q.detach().mean()}


def ddpg_actor_loss(actor, critic, batch):
    """Deterministic policy gradient: L(theta) = -1/B sum_i Q_phi(s_i, mu_theta(s_i)); returns
    ``(loss, {})``. The critic is frozen while the graph is built, so ``loss.backward()`` reaches
    the actor's parameters only."""
    with frozen(critic):
        q = critic(batch.obs, actor(batch.obs))[0]
    return -q.mean(), {}


@contextlib.contextmanager
def frozen(module: torch.nn.Module):
    """Build a graph through ``module`` without gradients for its parameters (their
    ``requires_grad`` is restored afterwards). Shared by the actor losses of DDPG, TD3 and SAC."""
    params = list(module.parameters())
    before = [p.requires_grad for p in params]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(params, before):
            p.requires_grad_(flag)
