"""UCB1 bandit algorithm: optimism in the face of uncertainty; CS285 "Exploration".

Auer, Cesa-Bianchi & Fischer (2002).

Play each arm once, then the arm with the highest upper confidence bound

    a_n = argmax_a  mu_hat_a + sqrt(c ln n / N_a)          (n plays so far, c = 2: UCB1)

Its expected regret grows as O(sum_a ln n / Delta_a). Training is one bandit run of
``total_steps`` plays (the env's episodes of ``horizon`` plays only pace the logging); the
metrics and summary report the cumulative expected regret sum_n (mu* - mu_{a_n}).
Evaluation plays the arm with the best sample mean.
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
from deeprl.tabular.bandits import UCB1


@dataclass
class UCBConfig:
    c: float = param(2.0, "exploration constant c in sqrt(c ln n / N_a) (2: UCB1)", low=0.0,
                     aliases=("exploration",))


class UCB(Agent):
    name = "ucb"
    Config = UCBConfig
    action_spaces = (spaces.Discrete,)
    log_every = LOG_EVERY

    def build(self):
        bandit = bandit_env(self.name, self.run.env_id)
        self.algorithm = UCB1(bandit.k, self.cfg.c)
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
