"""Double Q-learning: one table picks the next action, the other values it; Sutton & Barto 6.7.

Van Hasselt (2010); removes Q-learning's maximisation bias.

For every transition (s, a, r, s'), with probability 1/2 each,

    Q1(s, a) <- Q1(s, a) + alpha [r + gamma Q2(s', argmax_a' Q1(s', a')) - Q1(s, a)]
    or the same with Q1 and Q2 swapped                       (no bootstrap if s' is terminal).

Ties in the argmax are broken at random (see ``deeprl.tabular.model_free.double_q_update``).
The behaviour policy is epsilon-greedy and the evaluated policy greedy in Q1 + Q2.
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
from deeprl.tabular.model_free import double_q_update


@dataclass
class DoubleQLearningConfig:
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    learning_rate: float = param(0.1, "step size alpha", low=0.0, high=1.0, low_open=True, aliases=("lr", "alpha"))
    learning_rate_schedule: str = param("constant", "alpha constant, or linear decay to 0", choices=SCHEDULES)
    epsilon: float = param(0.1, "probability of a uniformly random action (start value if decayed)", low=0.0,
                           high=1.0)
    epsilon_final: float | None = param(None, "decay epsilon linearly to this value (None: constant)", low=0.0,
                                        high=1.0)
    epsilon_decay: float = param(1.0, "fraction of training over which epsilon decays", low=0.0, high=1.0)
    q_init: float = param(0.0, "initial Q1(s, a) and Q2(s, a)")
    steps_per_update: int = param(1, "env steps per env collected per update (behaviour fixed within)", low=1)


class DoubleQLearning(Agent):
    name = "double_q_learning"
    Config = DoubleQLearningConfig
    action_spaces = (spaces.Discrete,)
    log_every = LOG_EVERY

    def build(self):
        S, A = table_shape(self.name, self.run.env_id, self.obs_space, self.act_space)
        self.Q1 = np.full((S, A), self.cfg.q_init)
        self.Q2 = np.full((S, A), self.cfg.q_init)
        self.td_error = 0.0

    def epsilon(self) -> float:
        return epsilon_at(self.cfg, self.train_state["env_steps"] / self.run.total_steps)

    def act(self, obs, deterministic: bool = False):
        return table_act(self.Q1 + self.Q2, obs, deterministic, self.epsilon(), self.rng)

    def behaviour_policy(self):
        return EpsilonGreedyTable(self.Q1 + self.Q2, self.epsilon(), self.rng)

    def rollout_spec(self):
        return "steps", self.cfg.steps_per_update

    def update(self, batch, progress):
        c = self.cfg
        alpha = learning_rate_at(c, progress)
        for _, _, s, a, r, s_next, terminated, _ in steps_of(batch):
            first = bool(self.rng.random() < 0.5)
            delta = double_q_update(self.Q1, self.Q2, s, a, r, s_next, terminated, alpha, c.gamma, first, self.rng)
            self.td_error = ema(self.td_error, delta)
        return {"train/td_error_abs": self.td_error, "train/learning_rate": alpha, "train/epsilon": self.epsilon()}

    def modules(self):
        return {}

    def extra_state(self):
        return {"Q1": self.Q1, "Q2": self.Q2, "td_error": self.td_error}

    def load_extra_state(self, state):
        self.Q1 = np.array(state["Q1"], dtype=np.float64)
        self.Q2 = np.array(state["Q2"], dtype=np.float64)
        self.td_error = float(state["td_error"])
