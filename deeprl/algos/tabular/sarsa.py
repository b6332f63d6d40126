"""SARSA: on-policy TD control with a table; CS285 "Value based methods", Sutton & Barto 6.4.

For every step (s, a, r, s', a') of the epsilon-greedy behaviour policy, a' being the action
it actually takes next in s',

    Q(s, a) <- Q(s, a) + alpha [r + gamma Q(s', a') - Q(s, a)]      (no bootstrap if s' is terminal)

so Q estimates the value of the exploring policy itself (on CliffWalking it learns the safe
path; Q-learning learns the cliff edge). The last step of a batch waits for the first action
of the next batch (kept per env, in the checkpoint too). A time-limit cut bootstraps with an
a' drawn from the epsilon-greedy policy in s', since the episode takes no next action.
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
from deeprl.tabular.model_free import epsilon_greedy_action, sarsa_update


@dataclass
class SarsaConfig:
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


class Sarsa(Agent):
    name = "sarsa"
    Config = SarsaConfig
    action_spaces = (spaces.Discrete,)
    log_every = LOG_EVERY

    def build(self):
        S, A = table_shape(self.name, self.run.env_id, self.obs_space, self.act_space)
        self.Q = np.full((S, A), self.cfg.q_init)
        N = self.run.num_envs
        self.pending = np.zeros((N, 3), dtype=np.int64)  # (s, a, s') of each env's last step, awaiting a'
        self.pending_reward = np.zeros(N)
        self.has_pending = np.zeros(N, dtype=bool)
        self.td_error = 0.0

    def epsilon(self) -> float:
        return epsilon_at(self.cfg, self.train_state["env_steps"] / self.run.total_steps)

    def act(self, obs, deterministic: bool = False):
        return table_act(self.Q, obs, deterministic, self.epsilon(), self.rng)

    def behaviour_policy(self):
        return EpsilonGreedyTable(self.Q, self.epsilon(), self.rng)

    def rollout_spec(self):
        return "steps", self.cfg.steps_per_update

    def _sarsa(self, s, a, r, s_next, a_next, terminal, alpha):
        delta = sarsa_update(self.Q, s, a, r, s_next, a_next, terminal, alpha, self.cfg.gamma)
        self.td_error = ema(self.td_error, delta)

    def update(self, batch, progress):
        alpha, eps = learning_rate_at(self.cfg, progress), self.epsilon()
        T = batch.rewards.shape[0]
        first_obs = batch.obs.reshape(T, -1)[0]
        # 1. each env's last step of the previous batch: a' is its first action in this one
        #    (or a fresh draw if the episode did not continue, e.g. after a resume without env state)
        for i in np.flatnonzero(self.has_pending):
            s, a, s_next = (int(x) for x in self.pending[i])
            a_next = (int(batch.actions[0, i]) if first_obs[i] == s_next
                      else epsilon_greedy_action(self.Q[s_next], eps, self.rng))
            self._sarsa(s, a, float(self.pending_reward[i]), s_next, a_next, False, alpha)
        self.has_pending[:] = False
        # 2. this batch, in time order
        for t, i, s, a, r, s_next, terminated, truncated in steps_of(batch):
            if terminated:
                self._sarsa(s, a, r, s_next, 0, True, alpha)
            elif truncated:
                self._sarsa(s, a, r, s_next, epsilon_greedy_action(self.Q[s_next], eps, self.rng), False, alpha)
            elif t + 1 < T:
                self._sarsa(s, a, r, s_next, int(batch.actions[t + 1, i]), False, alpha)
            else:
                self.pending[i], self.pending_reward[i], self.has_pending[i] = (s, a, s_next), r, True
        return {"train/td_error_abs": self.td_error, "train/learning_rate": alpha, "train/epsilon": eps}

    def modules(self):
        return {}

    def extra_state(self):
        return {"Q": self.Q, "pending": self.pending, "pending_reward": self.pending_reward,
                "has_pending": self.has_pending, "td_error": self.td_error}

    def load_extra_state(self, state):
        self.Q = np.array(state["Q"], dtype=np.float64)
        self.pending = np.array(state["pending"], dtype=np.int64)
        self.pending_reward = np.array(state["pending_reward"], dtype=np.float64)
        self.has_pending = np.array(state["has_pending"], dtype=bool)
        self.td_error = float(state["td_error"])
