"""Normalized Advantage Functions (Gu et al. 2016, arXiv:1603.00748); CS285 lecture 8.

Q-learning with continuous actions made easy by a Q-function whose maximum over actions is
analytic. In action coordinates u = (a - center) / half_range in [-1, 1]^d:

    Q(s, a) = V(s) + A(s, a),   A(s, a) = -1/2 (u - mu(s))^T P(s) (u - mu(s)),   P = L L^T,

with L(s) lower-triangular with a positive (exponentiated) diagonal, so P is positive definite,
argmax_a Q(s, a) = mu(s) and max_a Q(s, a) = V(s). The target is y = R + gamma^m V_target(s'),
the loss (Q(s, a) - y)^2, the target network a Polyak average. Exploration adds Gaussian noise
to mu(s).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from deeprl.agent import Agent
from deeprl.algos.offpolicy._common import check_off_policy_run, polyak_, replay_spec_of, target_copy
from deeprl.core.config import param
from deeprl.core.errors import SpaceError
from deeprl.nn.acting import Policy, RandomPolicy, as_tensor
from deeprl.nn.flat import FlatParams, fast_adam_kwargs
from deeprl.nn.networks import ACTIVATIONS, FlattenEncoder, make_encoder, mlp
from deeprl.nn.optim import Adam


class NAFNetwork(nn.Module):
    """V(s), mu(s) in [-1, 1]^d and L(s) from one MLP torso."""

    def __init__(self, obs_space, act_space: spaces.Box, hidden=(256, 256), activation="relu"):
        super().__init__()
        self.encoder = make_encoder(obs_space)
        if not isinstance(self.encoder, FlattenEncoder):
            raise SpaceError(f"naf supports vector observations, not {obs_space}")
        self.d = d = int(np.prod(act_space.shape))
        self.torso = mlp(self.encoder.out_dim, tuple(hidden), None, activation, ortho_init=False)
        h = hidden[-1]
        self.value = nn.Linear(h, 1)
        self.mu = nn.Linear(h, d)
        self.l_entries = nn.Linear(h, d * (d + 1) // 2)
        rows, cols = torch.tril_indices(d, d)
        self.register_buffer("rows", rows)
        self.register_buffer("cols", cols)
        self.register_buffer("diag", rows == cols)

    def forward(self, obs):
        """(V (B,), mu (B, d), P (B, d, d))."""
        h = self.torso(self.encoder(obs))
        entries = self.l_entries(h)
        entries = torch.where(self.diag, entries.clamp(max=10.0).exp(), entries)
        L = torch.zeros(h.shape[0], self.d, self.d, dtype=h.dtype, device=h.device)
        L[:, self.rows, self.cols] = entries
        return self.value(h).squeeze(-1), torch.tanh(self.mu(h)), L @ L.transpose(1, 2)


def naf_q(v, mu, P, u):
    """Q = V - 1/2 (u - mu)^T P (u - mu) for a batch."""
    diff = (u - mu).unsqueeze(-1)
    return v - 0.5 * (diff.transpose(1, 2) @ P @ diff).squeeze(-1).squeeze(-1)


@dataclass
class NAFConfig:
    buffer_size: int = param(1_000_000, "replay buffer capacity (transitions)", low=2)
    learning_starts: int = param(1000, "env steps of uniform random actions before learning starts", low=0)
    batch_size: int = param(128, "minibatch size", low=1)
    learning_rate: float = param(1e-3, "Adam learning rate", low=0.0, low_open=True, aliases=("lr",))
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    tau: float = param(0.005, "Polyak rate of the target network", low=0.0, high=1.0, low_open=True)
    train_freq: int = param(1, "env steps per env between updates", low=1)
    gradient_steps: int = param(1, "gradient steps per update (-1: as many as env steps collected)", low=-1)
    n_step: int = param(1, "n-step returns", low=1)
    action_noise: float = param(0.1, "exploration noise std (fraction of half the action range)", low=0.0)
    max_grad_norm: float = param(10.0, "clip the global gradient norm (0: off)", low=0.0)
    hidden_sizes: tuple[int, ...] = param((256, 256), "hidden layers", low=1)
    activation: str = param("relu", "hidden activation", choices=tuple(ACTIVATIONS))


class NAF(Agent):
    name = "naf"
    Config = NAFConfig
    action_spaces = (spaces.Box,)
    loop = "replay"
    log_every = 1000
    default_torch_threads = 2

    def build(self):
        c = self.cfg
        check_off_policy_run(self)
        self.q_net = NAFNetwork(self.obs_space, self.act_space, c.hidden_sizes, c.activation).to(self.device)
        self.q_target, self.target_flat = target_copy(self.q_net)
        self.flat = FlatParams(self.q_net)
        self.optimizer = Adam([self.flat.param], lr=c.learning_rate, **fast_adam_kwargs(self.device))
        low, high = self.act_space.low.astype(np.float32), self.act_space.high.astype(np.float32)
        self.center = torch.as_tensor((high + low) / 2, device=self.device)
        self.half = torch.as_tensor((high - low) / 2, device=self.device)

    def modules(self):
        return {"q_net": self.q_net, "q_target": self.q_target, "optimizer": self.optimizer}

    def rollout_spec(self):
        return "steps", self.cfg.train_freq

    def replay_spec(self):
        return replay_spec_of(self.cfg)

    def act(self, obs, deterministic: bool = False):
        _, mu, _ = self.q_net(obs)
        if not deterministic:
            mu = (mu + self.cfg.action_noise * torch.randn_like(mu)).clamp(-1.0, 1.0)
        return self.center + self.half * mu, None

    def behaviour_policy(self):
        if self.train_state["env_steps"] < self.cfg.learning_starts:
            return RandomPolicy(self.act_space, self.rng)
        return NAFPolicy(self.q_net, self.device, self.cfg.action_noise, self.center.cpu().numpy(),
                         self.half.cpu().numpy(), self.rng)

    def update(self, b, progress) -> dict:
        """One gradient step on a replay minibatch."""
        c = self.cfg
        loss, info = naf_loss(self.q_net, self.q_target, b, self.center, self.half)
        self.flat.zero_grad()
        loss.backward()
        if c.max_grad_norm > 0:
            self.flat.clip_grad_norm_(c.max_grad_norm)
        self.optimizer.step()
        polyak_(self.target_flat, self.flat, c.tau)
        return {"loss/q": loss.detach(), "train/q_mean": info["q_mean"], "train/v_mean": info["v_mean"]}


class NAFPolicy(Policy):
    """NAF's exploration: a = center + half * clip(mu(s) + sigma eps, -1, 1), eps ~ N(0, I), with mu
    the greedy action of the quadratic advantage (in [-1, 1]^d)."""

    def __init__(self, q_net, device, sigma: float, center, half, rng: np.random.Generator):
        self.q_net, self.device, self.sigma, self.center, self.half, self.rng = q_net, device, sigma, center, half, rng

    def __call__(self, obs):
        with torch.inference_mode():
            mu = self.q_net(as_tensor(obs, self.device))[1].cpu().numpy()
        u = np.clip(mu + self.sigma * self.rng.standard_normal(mu.shape), -1.0, 1.0)
        return (self.center + self.half * u).astype(np.float32), None


def naf_loss(q_net, q_target, batch, center, half):
    """NAF's TD loss on one minibatch; returns ``(loss, info)``.

        Q_phi(s, a) = V_phi(s) - 1/2 (u - mu_phi(s))^T P_phi(s) (u - mu_phi(s)),   u = (a - center) / half,
        y = R + gamma^m V_phi'(s')  (= max_a' Q_phi'(s', a')),   L(phi) = 1/B sum_i (Q_phi(s_i, a_i) - y_i)^2.

    ``q_net``/``q_target`` are :class:`NAFNetwork` s returning (V, mu, P); ``center``/``half`` are
    the action box's centre and half-width. info: ``q_mean``, ``v_mean`` (detached).
    """
    b = batch
    with torch.no_grad():
        y = b.rewards + b.discounts * q_target(b.next_obs)[0]
    v, mu, P = q_net(b.obs)
    q = naf_q(v, mu, P, (b.actions - center) / half)
    return (q - y).pow(2).mean(), {"q_mean": q.detach().mean(), "v_mean": v.detach().mean()}
