"""Dyna-Q: Q-learning plus planning with a learned tabular model; Sutton & Barto 8.2.

CS285 "Dyna" (model-based RL lecture).

For every real transition (s, a, r, s'):

    1. Q-learning:   Q(s, a) <- Q(s, a) + alpha [r + gamma max_a' Q(s', a') - Q(s, a)]
    2. model:        count (s, a) -> s' (or "terminal") and add r: p_hat(s'|s,a), r_hat(s,a)
    3. planning, K = ``planning_steps`` times: (s, a) uniformly among the pairs seen so far,
                     Q(s, a) <- Q(s, a) + alpha [r_hat + gamma E_{s'~p_hat}[max_a' Q(s', a')] - Q(s, a)]

The model is the maximum-likelihood one (counts), so it also fits stochastic environments
(for deterministic ones it is the textbook "last seen" table); the model arrays
(S x A x (S + 1) counts) are part of the checkpoint.
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
from deeprl.tabular.model_free import TabularModel, dyna_planning, q_learning_update


@dataclass
class DynaQConfig:
    planning_steps: int = param(10, "model-based Q backups per real step (0: plain Q-learning)", low=0,
                                aliases=("n_planning",))
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    learning_rate: float = param(0.1, "step size alpha (real and planned backups)", low=0.0, high=1.0,
                                 low_open=True, aliases=("lr", "alpha"))
    learning_rate_schedule: str = param("constant", "alpha constant, or linear decay to 0", choices=SCHEDULES)
    epsilon: float = param(0.1, "probability of a uniformly random action (start value if decayed)", low=0.0,
                           high=1.0)
    epsilon_final: float | None = param(None, "decay epsilon linearly to this value (None: constant)", low=0.0,
                                        high=1.0)
    epsilon_decay: float = param(1.0, "fraction of training over which epsilon decays", low=0.0, high=1.0)
    q_init: float = param(0.0, "initial Q(s, a) (optimistic if above every return)")
    steps_per_update: int = param(1, "env steps per env collected per update (behaviour fixed within)", low=1)


class DynaQ(Agent):
    name = "dyna_q"
    Config = DynaQConfig
    action_spaces = (spaces.Discrete,)
    log_every = LOG_EVERY

    def build(self):
        S, A = table_shape(self.name, self.run.env_id, self.obs_space, self.act_space)
        self.Q = np.full((S, A), self.cfg.q_init)
        self.model = TabularModel(S, A)
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
            self.model.update(s, a, r, s_next, terminated)
            dyna_planning(self.Q, self.model, c.planning_steps, alpha, c.gamma, self.rng)
        return {"train/td_error_abs": self.td_error, "train/learning_rate": alpha, "train/epsilon": self.epsilon(),
                "train/model_pairs_seen": float(np.count_nonzero(self.model.visits))}

    def modules(self):
        return {}

    def extra_state(self):
        return {"Q": self.Q, "model_counts": self.model.counts, "model_reward_sum": self.model.reward_sum,
                "td_error": self.td_error}

    def load_extra_state(self, state):
        self.Q = np.array(state["Q"], dtype=np.float64)
        self.model.load(state["model_counts"], state["model_reward_sum"])
        self.td_error = float(state["td_error"])
