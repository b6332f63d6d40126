"""Soft Q-learning for discrete actions (Haarnoja et al. 2017; CS285 lecture 19, control as
inference).

The maximum-entropy analogue of DQN: the hard max in the backup becomes a soft maximum and
the policy is the Boltzmann distribution of the Q-values at temperature alpha,

    y = R + gamma^m V'(s'),   V'(s') = alpha log sum_a' exp(Q_target(s', a') / alpha),
    pi(a|s) = exp((Q(s, a) - V(s)) / alpha),

trained with the Huber or squared TD loss from a replay buffer, with a target network
updated every ``target_update_interval`` env steps. As alpha -> 0 it becomes DQN with a
greedy policy; acting samples from pi (deterministic evaluation takes its mode).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.offpolicy._common import (
    check_off_policy_run,
    replay_spec_of,
    sync_target_per_env_steps,
    target_copy,
)
from deeprl.core.config import param
from deeprl.core.targets import soft_q_target
from deeprl.nn.acting import Policy, RandomPolicy, as_tensor
from deeprl.nn.flat import FlatParams, fast_adam_kwargs
from deeprl.nn.networks import ACTIVATIONS
from deeprl.nn.optim import Adam
from deeprl.nn.qnets import QNetwork


@dataclass
class SoftQConfig:
    buffer_size: int = param(100_000, "replay buffer capacity (transitions)", low=2)
    learning_starts: int = param(1000, "env steps of uniform random actions before learning starts", low=0)
    batch_size: int = param(64, "minibatch size", low=1)
    learning_rate: float = param(1e-3, "Adam learning rate", low=0.0, low_open=True, aliases=("lr",))
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    alpha: float = param(0.1, "temperature of the soft maximum and the Boltzmann policy", low=0.0, low_open=True,
                         aliases=("temperature",))
    train_freq: int = param(4, "env steps per env between updates", low=1)
    gradient_steps: int = param(1, "gradient steps per update (-1: as many as env steps collected)", low=-1)
    target_update_interval: int = param(500, "env steps between target-network updates", low=1)
    tau: float = param(1.0, "target update rate (1: hard copy, < 1: Polyak averaging)", low=0.0, high=1.0,
                       low_open=True)
    n_step: int = param(1, "n-step returns (entropy bonus only at the bootstrap step)", low=1)
    loss: str = param("huber", "TD loss", choices=("huber", "mse"))
    max_grad_norm: float = param(10.0, "clip the global gradient norm (0: off)", low=0.0)
    hidden_sizes: tuple[int, ...] = param((64, 64), "hidden layers of the Q-network", low=1)
    activation: str = param("relu", "hidden activation", choices=tuple(ACTIVATIONS))


class SoftQ(Agent):
    name = "soft_q"
    Config = SoftQConfig
    loop = "replay"
    action_spaces = (spaces.Discrete,)
    log_every = 1000
    default_torch_threads = 2

    def build(self):
        c = self.cfg
        check_off_policy_run(self)
        self.q_net = QNetwork(self.obs_space, int(self.act_space.n), c.hidden_sizes, c.activation).to(self.device)
        self.q_target, self.target_flat = target_copy(self.q_net)
        self.flat = FlatParams(self.q_net)
        self.optimizer = Adam([self.flat.param], lr=c.learning_rate, **fast_adam_kwargs(self.device))

    def modules(self):
        return {"q_net": self.q_net, "q_target": self.q_target, "optimizer": self.optimizer}

    def rollout_spec(self):
        return "steps", self.cfg.train_freq

    def replay_spec(self):
        return replay_spec_of(self.cfg)

    def policy_logits(self, obs):
        """log pi(.|s) up to a constant: Q(s, .) / alpha."""
        return self.q_net(obs) / self.cfg.alpha

    def act(self, obs, deterministic: bool = False):
        logits = self.policy_logits(obs)
        if deterministic:
            a = logits.argmax(-1)
        else:  # Gumbel-max sample from the Boltzmann policy
            a = (logits - torch.log(-torch.log(torch.rand_like(logits).clamp_(1e-20, 1.0)))).argmax(-1)
        return a, logits.log_softmax(-1).gather(-1, a.unsqueeze(-1)).squeeze(-1)

    def behaviour_policy(self):
        if self.train_state["env_steps"] < self.cfg.learning_starts:
            return RandomPolicy(self.act_space, self.rng)
        return BoltzmannPolicy(self.q_net, self.cfg.alpha, self.device, self.rng)

    def observe(self, rollout):
        """Target updates every ``target_update_interval`` env steps."""
        c = self.cfg
        sync_target_per_env_steps(self.target_flat, self.flat, self.train_state["env_steps"], int(rollout.rewards.size),
                                  c.target_update_interval, c.tau)
        return {}

    def update(self, b, progress) -> dict:
        """One gradient step on a replay minibatch."""
        c = self.cfg
        loss, info = soft_q_loss(self.q_net, self.q_target, b, c.alpha, loss=c.loss)
        self.flat.zero_grad()
        loss.backward()
        if c.max_grad_norm > 0:
            self.flat.clip_grad_norm_(c.max_grad_norm)
        self.optimizer.step()
        return {"loss/q": loss.detach(), "train/q_mean": info["q_mean"],
                "train/policy_entropy": info["policy_entropy"]}


class BoltzmannPolicy(Policy):
    """pi(a|s) = softmax_a(Q(s, a) / alpha), sampled by Gumbel-max with ``rng``; returns log pi(a|s)."""

    def __init__(self, q_net, alpha: float, device, rng: np.random.Generator):
        self.q_net, self.alpha, self.device, self.rng = q_net, alpha, device, rng

    def __call__(self, obs):
        with torch.inference_mode():
            logp = (self.q_net(as_tensor(obs, self.device)) / self.alpha).log_softmax(-1).cpu().numpy()
        g = -np.log(-np.log(self.rng.random(logp.shape).clip(1e-20, 1.0)))
        a = (logp + g).argmax(-1)
        return a, np.take_along_axis(logp, a[:, None], -1)[:, 0].astype(np.float32)


def soft_q_loss(q_net, q_target, batch, alpha: float, *, loss: str = "huber"):
    """Soft Q-learning TD loss on one minibatch; returns ``(loss, info)``.

        y = R + gamma^m alpha log sum_a' exp(Q_phi'(s', a') / alpha),
        L(phi) = 1/B sum_i l(Q_phi(s_i, a_i) - y_i),   l = Huber (``loss="huber"``) or square.

    info (detached): ``q_mean`` and ``policy_entropy``, the mean entropy of the Boltzmann policy
    pi(a|s) = softmax_a(Q_phi(s, a) / alpha) on ``batch.obs``.
    """
    b = batch
    with torch.no_grad():
        y = soft_q_target(b.rewards, b.discounts, q_target(b.next_obs), alpha)
    q_all = q_net(b.obs)
    q = q_all.gather(1, b.actions.long().unsqueeze(1)).squeeze(1)
    out = F.huber_loss(q, y) if loss == "huber" else (q - y).pow(2).mean()
    with torch.no_grad():
        logp = (q_all / alpha).log_softmax(-1)
        entropy = -(logp.exp() * logp).sum(-1).mean()
    return out, {"q_mean": q.detach().mean(), "policy_entropy": entropy}
