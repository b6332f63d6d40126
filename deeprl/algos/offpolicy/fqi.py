"""Fitted Q-iteration (Ernst et al. 2005; Riedmiller 2005), the course's batch-mode
Q-learning (CS285 lecture 7).

1. collect a fixed dataset {(s_i, a_i, s'_i, r_i)} of ``total_steps`` transitions with a
   uniformly random policy;
2. repeat ``iterations`` times:
   a. y_i <- r_i + gamma max_a' Q_phi(s'_i, a') for the whole dataset (no bootstrap after a
      termination), with phi frozen;
   b. phi <- argmin_phi sum_i (Q_phi(s_i, a_i) - y_i)^2, approximately, by ``fit_steps`` Adam
      steps on random minibatches (from scratch when ``reinitialize``).

Everything after collection happens in one update; the logged row reports the last iteration
and ``train/bellman_residual`` (the mean squared error of the final fit).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.core.config import param
from deeprl.core.errors import ConfigError
from deeprl.data.collect import map_obs
from deeprl.nn.acting import RandomPolicy
from deeprl.nn.flat import FlatParams, fast_adam_kwargs
from deeprl.nn.networks import ACTIVATIONS
from deeprl.nn.optim import Adam
from deeprl.nn.qnets import QNetwork


@dataclass
class FQIConfig:
    iterations: int = param(50, "fitted Q-iterations (target recomputations)", low=1)
    fit_steps: int = param(200, "gradient steps fitting Q to each iteration's targets", low=1)
    batch_size: int = param(256, "minibatch size", low=1)
    learning_rate: float = param(1e-3, "Adam learning rate", low=0.0, low_open=True, aliases=("lr",))
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    reinitialize: bool = param(False, "fit every iteration from a fresh network (else warm start)")
    hidden_sizes: tuple[int, ...] = param((64, 64), "hidden layers of the Q-network", low=1)
    activation: str = param("relu", "hidden activation", choices=tuple(ACTIVATIONS))


class FQI(Agent):
    name = "fqi"
    Config = FQIConfig
    action_spaces = (spaces.Discrete,)
    log_every = 1
    default_torch_threads = 2

    def build(self):
        if self.run.normalize_obs or self.run.normalize_reward:
            raise ConfigError("fqi: normalize_obs/normalize_reward are not supported on a fixed dataset")
        self._new_network()

    def _new_network(self):
        c = self.cfg
        self.q_net = QNetwork(self.obs_space, int(self.act_space.n), c.hidden_sizes, c.activation).to(self.device)
        self.flat = FlatParams(self.q_net)
        self.optimizer = Adam([self.flat.param], lr=c.learning_rate, **fast_adam_kwargs(self.device))

    def modules(self):
        return {"q_net": self.q_net, "optimizer": self.optimizer}

    def rollout_spec(self):
        return "steps", -(-self.run.total_steps // self.run.num_envs)  # the whole dataset at once

    def behaviour_policy(self):
        return RandomPolicy(self.act_space, self.rng)

    def act(self, obs, deterministic: bool = False):
        a = self.q_net(obs).argmax(-1)
        return a, None

    def update(self, batch, progress):
        c = self.cfg
        flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
        obs = map_obs(lambda x: torch.as_tensor(flat(x), device=self.device), batch.obs)
        next_obs = map_obs(lambda x: torch.as_tensor(flat(x), device=self.device), batch.next_obs)
        actions = torch.as_tensor(flat(batch.actions), device=self.device).long()
        rewards = torch.as_tensor(flat(batch.rewards), dtype=torch.float32, device=self.device)
        discounts = c.gamma * (1.0 - torch.as_tensor(flat(batch.terminated), dtype=torch.float32, device=self.device))
        n = rewards.shape[0]
        take = lambda x, i: {k: v[i] for k, v in x.items()} if isinstance(x, dict) else x[i]  # noqa: E731
        for _ in range(c.iterations):
            with torch.no_grad():  # a. targets from the frozen current Q
                y = rewards + discounts * self.q_net(next_obs).max(-1).values
            if c.reinitialize:
                self._new_network()
            for _ in range(c.fit_steps):  # b. regression onto y
                idx = torch.from_numpy(self.rng.integers(0, n, c.batch_size))
                q = self.q_net(take(obs, idx)).gather(1, actions[idx].unsqueeze(1)).squeeze(1)
                loss = (q - y[idx]).pow(2).mean()
                self.flat.zero_grad()
                loss.backward()
                self.optimizer.step()
        with torch.no_grad():
            q_all = self.q_net(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
            residual = (q_all - y).pow(2).mean()
        return {"loss/q": loss.detach(), "train/bellman_residual": residual, "train/q_mean": q_all.mean(),
                "train/fqi_iterations": float(c.iterations), "train/dataset_size": float(n)}
