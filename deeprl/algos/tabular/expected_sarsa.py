"""Expected SARSA: TD control whose target averages over the next action; Sutton & Barto 6.6.

For every transition (s, a, r, s') of the epsilon-greedy behaviour policy

    Q(s, a) <- Q(s, a) + alpha [r + gamma sum_a' pi(a' | s') Q(s', a') - Q(s, a)]

with pi the current epsilon-greedy policy of Q (no bootstrap if s' is terminal). It removes
SARSA's variance from sampling a'; with epsilon = 0 it is Q-learning.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.tabular._common import (
    LOG_EVERY,
    EpsilonGreedyTable,
    ema,
    epsilon_at,
    learning_rate_at,
    steps_of,
    table_act,
    table_shape,
)
from deeprl.core.config import param
from deeprl.core.schedules import SCHEDULES
from deeprl.tabular.model_free import expected_sarsa_update


@dataclass
class ExpectedSarsaConfig:
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    learning_rate: float = param(0.1, "step size alpha", low=0.0, high=1.0, low_open=True, aliases=("lr", "alpha"))
    learning_rate_schedule: str = param("constant", "alpha constant, or linear decay to 0", choices=SCHEDULES)
    epsilon: float = param(0.1, "probability of a uniformly random action (start value if decayed); the "
                           "target policy uses the same epsilon", low=0.0, high=1.0)
    epsilon_final: float | None = param(None, "decay epsilon linearly to this value (None: constant)", low=0.0,
                                        high=1.0)
    epsilon_decay: float = param(1.0, "fraction of training over which epsilon decays", low=0.0, high=1.0)
    q_init: float = param(0.0, "initial Q(s, a) (optimistic if above every return)")
    steps_per_update: int = param(1, "env steps per env collected per update (behaviour fixed within)", low=1)


class ExpectedSarsa(Agent):
    name = "expected_sarsa"
    Config = ExpectedSarsaConfig
    action_spaces = (spaces.Discrete,)
    log_every = LOG_EVERY

    def build(self):
        S, A = table_shape(self.name, self.run.env_id, self.obs_space, self.act_space)
        self.Q = np.full((S, A), self.cfg.q_init)
        self.td_error = 0.0

    def epsilon(self) -> float:
        return epsilon_at(self.cfg, self.train_state["env_steps"] / self.run.total_steps)

    def act(self, obs, deterministic: bool = False):
        return table_act(self.Q, obs, deterministic, self.epsilon(), self.rng)

    def behaviour_policy(self):
        return EpsilonGreedyTable(self.Q, self.epsilon(), self.rng)

    def rollout_spec(self):
        return "steps", self.cfg.steps_per_update

    def update(self, batch, progress):
        c = self.cfg
        alpha, eps = learning_rate_at(c, progress), self.epsilon()
        for _, _, s, a, r, s_next, terminated, _ in steps_of(batch):
            delta = expected_sarsa_update(self.Q, s, a, r, s_next, terminated, alpha, c.gamma, eps)
            self.td_error = ema(self.td_error, delta)
        return {"train/td_error_abs": self.td_error, "train/learning_rate": alpha, "train/epsilon": eps}

    def modules(self):
        return {}

    def extra_state(self):
        return {"Q": self.Q, "td_error": self.td_error}

    def load_extra_state(self, state):
        self.Q = np.array(state["Q"], dtype=np.float64)
        self.td_error = float(state["td_error"])
