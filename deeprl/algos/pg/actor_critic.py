"""Actor-critic with a bootstrapped critic, as in CS285 lecture 6 (batch and online variants).

Each iteration collects ``n_steps`` steps from ``num_envs`` environments (the online
variant is ``n_steps=1, num_envs=1``), then

1. fits V_phi: ``num_target_updates`` times, recompute the targets
   y_t = sum_{k<n} gamma^k r_{t+k} + gamma^n V_phi(s_{t+n})  (``n_step``; stopping at episode
   ends, bootstrapping through truncation) with the current critic, and take
   ``num_grad_steps_per_target_update`` gradient steps on (V_phi(s_t) - y_t)^2;
2. evaluates A_t = y_t - V_phi(s_t) with the refitted critic (optionally standardised);
3. takes ``num_actor_updates`` gradient steps on -E[log pi(a_t|s_t) A_t].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from deeprl.agent import Agent
from deeprl.algos.pg._common import explained_variance, flat, values_of
from deeprl.core.config import param
from deeprl.core.returns import n_step_returns, normalize
from deeprl.data.collect import to_tensor
from deeprl.nn.networks import ACTIVATIONS
from deeprl.nn.optim import Adam
from deeprl.nn.policies import Actor, Critic


@dataclass
class ActorCriticConfig:
    n_steps: int = param(1000, "steps collected per env per iteration (1 with num_envs=1: online)", low=1)
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    n_step: int = param(1, "steps summed before bootstrapping the critic target", low=1)
    num_target_updates: int = param(10, "times the critic targets are recomputed per iteration", low=1)
    num_grad_steps_per_target_update: int = param(10, "critic gradient steps per target recomputation", low=1)
    num_actor_updates: int = param(1, "actor gradient steps per iteration", low=1)
    actor_learning_rate: float = param(5e-3, "actor Adam learning rate", low=0.0, low_open=True,
                                       aliases=("learning_rate", "lr"))
    critic_learning_rate: float = param(5e-3, "critic Adam learning rate", low=0.0, low_open=True)
    normalize_advantages: bool = param(True, "standardise advantages over the batch")
    entropy_coef: float = param(0.0, "entropy bonus coefficient", low=0.0)
    hidden_sizes: tuple[int, ...] = param((64, 64), "hidden layers of the actor and the critic", low=1)
    activation: str = param("tanh", "hidden activation", choices=tuple(ACTIVATIONS))
    log_std_init: float = param(0.0, "initial log std of the Gaussian policy")


class ActorCritic(Agent):
    name = "actor_critic"
    Config = ActorCriticConfig

    def build(self):
        c = self.cfg
        self.actor = Actor(self.obs_space, self.act_space, c.hidden_sizes, c.activation,
                           log_std_init=c.log_std_init).to(self.device)
        self.critic = Critic(self.obs_space, c.hidden_sizes, c.activation).to(self.device)
        self.actor_optimizer = Adam(self.actor.parameters(), lr=c.actor_learning_rate, fused=True)
        self.critic_optimizer = Adam(self.critic.parameters(), lr=c.critic_learning_rate, fused=True)

    def modules(self):
        return {"actor": self.actor, "critic": self.critic, "actor_optimizer": self.actor_optimizer,
                "critic_optimizer": self.critic_optimizer}

    def rollout_spec(self):
        return "steps", self.cfg.n_steps

    def _targets(self, batch):
        _, next_values = values_of(self.critic, batch, self.device)
        y = n_step_returns(batch.rewards, batch.terminated, batch.truncated, next_values, self.cfg.gamma,
                           self.cfg.n_step)
        return torch.as_tensor(flat(y), dtype=torch.float32, device=self.device)

    def update(self, batch, progress):
        c = self.cfg
        obs = to_tensor(flat(batch.obs), self.device)
        # 1. critic: fit V to bootstrapped targets, recomputed num_target_updates times
        for _ in range(c.num_target_updates):
            y = self._targets(batch)
            for _ in range(c.num_grad_steps_per_target_update):
                critic_loss = (self.critic(obs) - y).pow(2).mean()
                self.critic_optimizer.zero_grad(set_to_none=True)
                critic_loss.backward()
                self.critic_optimizer.step()
        # 2. advantages with the refitted critic
        y = self._targets(batch)
        with torch.no_grad():
            v = self.critic(obs)
        adv = (y - v).numpy()
        ev = explained_variance(v.numpy(), y.numpy())
        if c.normalize_advantages and adv.size > 1:
            adv = normalize(adv)
        adv_t = torch.as_tensor(adv, dtype=torch.float32, device=self.device)
        # 3. actor
        actions = torch.as_tensor(flat(batch.actions), device=self.device)
        for _ in range(c.num_actor_updates):
            dist = self.actor(obs)
            entropy = dist.entropy().mean()
            actor_loss = -(dist.log_prob(actions) * adv_t).mean() - c.entropy_coef * entropy
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_optimizer.step()
        return {"loss/critic": float(critic_loss.detach()), "loss/policy": float(actor_loss.detach()),
                "loss/entropy": float(entropy.detach()),
                "train/explained_variance": ev, "train/gradient_steps": float(c.num_actor_updates)}
