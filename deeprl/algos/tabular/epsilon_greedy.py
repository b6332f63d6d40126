"""Epsilon-greedy for multi-armed bandits; CS285 "Exploration".

With probability epsilon play a uniformly random arm, otherwise the arm with the best sample
mean mu_hat_a (ties at random). With a fixed epsilon the regret grows linearly, at the rate
epsilon * sum_a Delta_a / k per play. Training is one bandit run of ``total_steps`` plays;
the metrics and summary report the cumulative expected regret. Evaluation plays the arm with
the best sample mean.
"""
from __future__ import annotations

from dataclasses import dataclass

from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.tabular._common import (
    LOG_EVERY,
    BanditPolicy,
    Regret,
    bandit_act,
    bandit_env,
    bandit_state,
    bandit_update,
    load_bandit_state,
)
from deeprl.core.config import param
from deeprl.tabular.bandits import EpsilonGreedy


@dataclass
class EpsilonGreedyConfig:
    epsilon: float = param(0.1, "probability of a uniformly random arm", low=0.0, high=1.0)


class EpsilonGreedyBandit(Agent):
    name = "epsilon_greedy"
    Config = EpsilonGreedyConfig
    action_spaces = (spaces.Discrete,)
    log_every = LOG_EVERY

    def build(self):
        bandit = bandit_env(self.name, self.run.env_id)
        self.algorithm = EpsilonGreedy(bandit.k, self.cfg.epsilon)
        self.regret = Regret(bandit.gaps)

    def act(self, obs, deterministic: bool = False):
        return bandit_act(self.algorithm, obs, deterministic, self.regret.plays, self.rng)

    def behaviour_policy(self):
        return BanditPolicy(self.algorithm, self.regret.plays, self.rng)

    def rollout_spec(self):
        return "steps", 1

    def update(self, batch, progress):
        return bandit_update(self.algorithm, self.regret, batch)

    def summary(self) -> dict:
        return self.regret.summary()

    def modules(self):
        return {}

    def extra_state(self):
        return bandit_state(self.algorithm, self.regret)

    def load_extra_state(self, state):
        load_bandit_state(self.algorithm, self.regret, state)
