"""Synchronous advantage actor-critic, A2C (Mnih et al. 2016, arXiv:1602.01783, synchronous
variant); CS285 lecture 6.

Every iteration steps ``num_envs`` environments for ``n_steps`` steps, computes advantages
with GAE(gamma, ``gae_lambda``) (``gae_lambda=1``: n-step returns bootstrapped from the
critic at the end of the rollout) and takes one gradient step on

    L = -E[log pi(a_t|s_t) A_t] + vf_coef * E[(V(s_t) - R_t)^2] - ent_coef * E[H(pi(.|s_t))]

with RMSprop (or Adam), clipping the global gradient norm.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from deeprl.agent import Agent
from deeprl.algos.pg._common import explained_variance, flat, gae_advantages
from deeprl.core.config import param
from deeprl.core.schedules import SCHEDULES, scheduled, set_lr
from deeprl.data.collect import to_tensor
from deeprl.nn.networks import ACTIVATIONS
from deeprl.nn.optim import Adam, RMSprop
from deeprl.nn.policies import Actor, Critic


@dataclass
class A2CConfig:
    n_steps: int = param(5, "steps collected per env per update", low=1)
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    gae_lambda: float = param(1.0, "GAE lambda (1: plain n-step returns)", low=0.0, high=1.0)
    learning_rate: float = param(7e-4, "learning rate", low=0.0, low_open=True, aliases=("lr",))
    lr_schedule: str = param("constant", "learning-rate schedule over training", choices=SCHEDULES)
    optimizer: str = param("rmsprop", "optimiser", choices=("rmsprop", "adam"))
    rms_alpha: float = param(0.99, "RMSprop smoothing constant", low=0.0, high=1.0)
    eps: float = param(1e-5, "optimiser epsilon", low=0.0, low_open=True)
    ent_coef: float = param(0.0, "entropy bonus coefficient", low=0.0)
    vf_coef: float = param(0.5, "value loss coefficient", low=0.0)
    max_grad_norm: float = param(0.5, "clip the global gradient norm (0: off)", low=0.0)
    normalize_advantages: bool = param(False, "standardise advantages per update")
    hidden_sizes: tuple[int, ...] = param((64, 64), "hidden layers of the actor and the critic", low=1)
    activation: str = param("tanh", "hidden activation", choices=tuple(ACTIVATIONS))
    log_std_init: float = param(0.0, "initial log std of the Gaussian policy")


class A2C(Agent):
    name = "a2c"
    Config = A2CConfig

    def build(self):
        c = self.cfg
        self.actor = Actor(self.obs_space, self.act_space, c.hidden_sizes, c.activation,
                           log_std_init=c.log_std_init).to(self.device)
        self.critic = Critic(self.obs_space, c.hidden_sizes, c.activation).to(self.device)
        self.params = list(self.actor.parameters()) + list(self.critic.parameters())
        if c.optimizer == "rmsprop":
            self.optimizer = RMSprop(self.params, lr=c.learning_rate, alpha=c.rms_alpha, eps=c.eps)
        else:
            self.optimizer = Adam(self.params, lr=c.learning_rate, eps=c.eps, fused=True)

    def modules(self):
        return {"actor": self.actor, "critic": self.critic, "optimizer": self.optimizer}

    def rollout_spec(self):
        return "steps", self.cfg.n_steps

    def update(self, batch, progress):
        c = self.cfg
        lr = scheduled(c.learning_rate, c.lr_schedule, progress)
        set_lr(self.optimizer, lr)
        values, adv, returns = gae_advantages(self.critic, batch, c.gamma, c.gae_lambda, self.device)

        obs = to_tensor(flat(batch.obs), self.device)
        adv_t = torch.as_tensor(flat(adv), dtype=torch.float32, device=self.device)
        if c.normalize_advantages and adv_t.numel() > 1:
            adv_t = (adv_t - adv_t.mean()) / (adv_t.std() + 1e-8)
        dist = self.actor(obs)
        logp = dist.log_prob(torch.as_tensor(flat(batch.actions), device=self.device))
        policy_loss = -(logp * adv_t).mean()
        value_loss = (self.critic(obs) - torch.as_tensor(flat(returns), dtype=torch.float32)).pow(2).mean()
        entropy = dist.entropy().mean()
        loss = policy_loss + c.vf_coef * value_loss - c.ent_coef * entropy
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, c.max_grad_norm, foreach=True)
        self.optimizer.step()
        return {"loss/policy": float(policy_loss.detach()), "loss/value": float(value_loss.detach()),
                "loss/entropy": float(entropy.detach()),
                "train/learning_rate": lr, "train/gradient_steps": 1.0,
                "train/explained_variance": explained_variance(values.ravel(), returns.ravel())}
