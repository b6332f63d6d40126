"""REINFORCE policy gradient with the course's variance-reduction switches; CS285 lecture 5.

Each iteration samples complete trajectories (at least ``batch_size`` steps) and ascends

    grad J = 1/|D| sum_{i,t} grad log pi(a_it | s_it) * A_it

where A_it is, depending on the switches,
- ``reward_to_go=false``: the whole trajectory's discounted return sum_t' gamma^t' r_t',
- ``reward_to_go=true``: the discounted reward-to-go sum_{t'>=t} gamma^(t'-t) r_t',
- ``baseline=true``: minus a learned V(s_t) (fit by regression on the reward-to-go with its
  own learning rate and ``baseline_gradient_steps``), or GAE(gamma, ``gae_lambda``) when set
  (GAE needs the baseline; it then replaces the Monte Carlo estimate),
- ``normalize_advantages=true``: standardised over the batch.
With a baseline, episodes cut by a time limit are bootstrapped with V(final state).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deeprl.agent import Agent
from deeprl.algos.pg._common import explained_variance, flat, values_of
from deeprl.core.config import param
from deeprl.core.errors import ConfigError
from deeprl.core.returns import discounted_return, gae, normalize, reward_to_go
from deeprl.data.collect import to_tensor
from deeprl.nn.networks import ACTIVATIONS
from deeprl.nn.optim import Adam
from deeprl.nn.policies import Actor, Critic


@dataclass
class ReinforceConfig:
    batch_size: int = param(1000, "minimum environment steps per iteration (complete episodes)", low=1)
    gamma: float = param(1.0, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    reward_to_go: bool = param(False, "weight log-probs by the reward-to-go instead of the full return")
    baseline: bool = param(False, "subtract a learned state-value baseline V(s)")
    gae_lambda: float | None = param(None, "with a baseline, use GAE(lambda) advantages (None: off)",
                                     low=0.0, high=1.0)
    normalize_advantages: bool = param(False, "standardise advantages over the batch")
    learning_rate: float = param(5e-3, "policy Adam learning rate", low=0.0, low_open=True, aliases=("lr",))
    baseline_learning_rate: float = param(5e-3, "baseline Adam learning rate", low=0.0, low_open=True)
    baseline_gradient_steps: int = param(5, "baseline regression steps per iteration", low=1)
    hidden_sizes: tuple[int, ...] = param((64, 64), "hidden layers of the policy and the baseline", low=1)
    activation: str = param("tanh", "hidden activation", choices=tuple(ACTIVATIONS))
    log_std_init: float = param(0.0, "initial log std of the Gaussian policy")
    max_grad_norm: float = param(0.0, "clip the policy gradient norm (0: off)", low=0.0)

    def __post_init__(self):
        if self.gae_lambda is not None and not self.baseline:
            raise ConfigError("gae_lambda: GAE needs a value function; set baseline=true or gae_lambda=None")


class REINFORCE(Agent):
    name = "reinforce"
    Config = ReinforceConfig

    def build(self):
        c = self.cfg
        self.actor = Actor(self.obs_space, self.act_space, c.hidden_sizes, c.activation,
                           log_std_init=c.log_std_init).to(self.device)
        self.actor_optimizer = Adam(self.actor.parameters(), lr=c.learning_rate, fused=True)
        self.critic = self.critic_optimizer = None
        if c.baseline:
            self.critic = Critic(self.obs_space, c.hidden_sizes, c.activation).to(self.device)
            self.critic_optimizer = Adam(self.critic.parameters(), lr=c.baseline_learning_rate,
                                                     fused=True)

    def modules(self):
        m = {"actor": self.actor, "actor_optimizer": self.actor_optimizer}
        if self.critic is not None:
            m.update(critic=self.critic, critic_optimizer=self.critic_optimizer)
        return m

    def rollout_spec(self):
        return "episodes", self.cfg.batch_size

    def update(self, batch, progress):
        c = self.cfg
        b = batch
        metrics = {}
        # 1. Monte Carlo estimates of Q(s_t, a_t); with a baseline, a time-limit cut is
        #    bootstrapped with V(final state) instead of treating it as the end of the task
        values = next_values = None
        if c.baseline:
            values, next_values = values_of(self.critic, b, self.device)
        rtg = reward_to_go(b.rewards, b.terminated, b.truncated, c.gamma, next_values)
        q = rtg if c.reward_to_go else discounted_return(b.rewards, b.terminated, b.truncated, c.gamma)
        # 2. advantages
        if c.baseline and c.gae_lambda is not None:
            adv = gae(b.rewards, values, next_values, b.terminated, b.truncated, c.gamma, c.gae_lambda)
        elif c.baseline:
            adv = q - values
        else:
            adv = q
        adv = flat(adv, b.valid)
        if c.normalize_advantages:
            adv = normalize(adv)
        # 3. policy gradient step
        obs = to_tensor(flat(b.obs, b.valid), self.device)
        actions = torch.as_tensor(flat(b.actions, b.valid), device=self.device)
        logp = self.actor(obs).log_prob(actions)
        policy_loss = -(logp * torch.as_tensor(adv, dtype=torch.float32, device=self.device)).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward()
        if c.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.actor.parameters(), c.max_grad_norm)
        self.actor_optimizer.step()
        metrics["loss/policy"] = float(policy_loss.detach())
        metrics["train/gradient_steps"] = 1.0  # policy steps (the baseline's regression steps are extra)
        # 4. baseline regression on the reward-to-go targets
        if c.baseline:
            target = torch.as_tensor(flat(rtg, b.valid), dtype=torch.float32, device=self.device)
            for _ in range(c.baseline_gradient_steps):
                value_loss = (self.critic(obs) - target).pow(2).mean()
                self.critic_optimizer.zero_grad(set_to_none=True)
                value_loss.backward()
                self.critic_optimizer.step()
            metrics["loss/value"] = float(value_loss.detach())
            metrics["train/explained_variance"] = explained_variance(flat(values, b.valid), flat(rtg, b.valid))
        metrics["train/batch_steps"] = float(b.num_steps)
        metrics["train/advantage_std"] = float(np.std(adv))
        return metrics
