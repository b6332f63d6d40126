"""Q-learning: off-policy TD control with a table; CS285 "Value based methods", Sutton & Barto 6.5.

For every transition (s, a, r, s') collected by the epsilon-greedy behaviour policy

    Q(s, a) <- Q(s, a) + alpha [r + gamma max_a' Q(s', a') - Q(s, a)]      (no bootstrap if s' is terminal)

A time-limit cut is not terminal: it bootstraps from s'. The learned greedy policy
argmax_a Q(s, a) is what evaluation runs. Q lives in the checkpoint as a NumPy array.
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
from deeprl.tabular.model_free import q_learning_update


@dataclass
class QLearningConfig:
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    learning_rate: float = param(0.1, "step size alpha", low=0.0, high=1.0, low_open=True, aliases=("lr", "alpha"))
    learning_rate_schedule: str = param("constant", "alpha constant, or linear decay to 0", choices=SCHEDULES)
    epsilon: float = param(0.1, "probability of a uniformly random action (start value if decayed)", low=0.0,
                           high=1.0)
    epsilon_final: float | None = param(None, "decay epsilon linearly to this value (None: constant)", low=0.0,
                                        high=1.0)
    epsilon_decay: float = param(1.0, "fraction of training over which epsilon decays", low=0.0, high=1.0)
    q_init: float = param(0.0, "initial Q(s, a) (optimistic if above every return)")
    steps_per_update: int = param(1, "env steps per env collected per update (behaviour fixed within)", low=1)


class QLearning(Agent):
    name = "q_learning"
    Config = QLearningConfig
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
        alpha = learning_rate_at(c, progress)
        for _, _, s, a, r, s_next, terminated, _ in steps_of(batch):
            self.td_error = ema(self.td_error, q_learning_update(self.Q, s, a, r, s_next, terminated, alpha, c.gamma))
        return {"train/td_error_abs": self.td_error, "train/learning_rate": alpha, "train/epsilon": self.epsilon()}

    def modules(self):
        return {}

    def extra_state(self):
        return {"Q": self.Q, "td_error": self.td_error}

    def load_extra_state(self, state):
        self.Q = np.array(state["Q"], dtype=np.float64)
        self.td_error = float(state["td_error"])
