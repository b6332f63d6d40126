"""On-policy Monte Carlo control with an epsilon-soft policy; Sutton & Barto 5.4.

CS285 "Monte Carlo policy evaluation", used for control.

Each update collects one complete episode per env with the epsilon-greedy policy of Q, then
for every (first, or every) visit of a pair (s_t, a_t) moves Q towards the return

    G_t = r_t + gamma r_{t+1} + ... + gamma^{T-1-t} r_{T-1}
    Q(s_t, a_t) <- Q(s_t, a_t) + (G_t - Q(s_t, a_t)) / N(s_t, a_t)     (sample average)
                   or + alpha (G_t - Q(s_t, a_t))                       (learning_rate set)

Acting epsilon-greedily with respect to the new Q is the improvement step. Nothing is
bootstrapped: an episode cut by a time limit contributes its truncated return.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.tabular._common import LOG_EVERY, EpsilonGreedyTable, epsilon_at, table_act, table_shape
from deeprl.core.config import param
from deeprl.tabular.model_free import Episode, mc_control_update


@dataclass
class MCControlConfig:
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    first_visit: bool = param(True, "update only the first visit of a pair in an episode (false: every visit)")
    learning_rate: float | None = param(None, "constant step size alpha (None: sample averages 1/N(s, a))",
                                        low=0.0, high=1.0, low_open=True, aliases=("lr", "alpha"))
    epsilon: float = param(0.1, "probability of a uniformly random action (start value if decayed)", low=0.0,
                           high=1.0)
    epsilon_final: float | None = param(None, "decay epsilon linearly to this value (None: constant)", low=0.0,
                                        high=1.0)
    epsilon_decay: float = param(1.0, "fraction of training over which epsilon decays", low=0.0, high=1.0)
    q_init: float = param(0.0, "initial Q(s, a)")


class MCControl(Agent):
    name = "mc_control"
    Config = MCControlConfig
    action_spaces = (spaces.Discrete,)
    log_every = LOG_EVERY

    def build(self):
        S, A = table_shape(self.name, self.run.env_id, self.obs_space, self.act_space)
        self.Q = np.full((S, A), self.cfg.q_init)
        self.N = np.zeros((S, A), dtype=np.int64)  # returns averaged into each Q(s, a)

    def epsilon(self) -> float:
        return epsilon_at(self.cfg, self.train_state["env_steps"] / self.run.total_steps)

    def act(self, obs, deterministic: bool = False):
        return table_act(self.Q, obs, deterministic, self.epsilon(), self.rng)

    def behaviour_policy(self):
        return EpsilonGreedyTable(self.Q, self.epsilon(), self.rng)

    def rollout_spec(self):
        return "episodes", 1  # one complete episode from every env

    def update(self, batch, progress):
        c = self.cfg
        T, N = batch.rewards.shape
        obs, nxt = batch.obs.reshape(T, N), batch.next_obs.reshape(T, N)
        episodes = 0
        for i in range(N):
            start = 0
            for t in np.flatnonzero(batch.valid[:, i] & (batch.terminated[:, i] | batch.truncated[:, i])):
                steps = slice(start, t + 1)
                episode = Episode(np.r_[obs[steps, i], nxt[t, i]].astype(np.int64), batch.actions[steps, i],
                                  batch.rewards[steps, i].astype(np.float64), bool(batch.terminated[t, i]))
                mc_control_update(self.Q, self.N, episode, c.gamma, c.first_visit, c.learning_rate)
                episodes += 1
                start = t + 1
        return {"train/episodes_per_update": float(episodes), "train/epsilon": self.epsilon(),
                "train/pairs_visited": float(np.count_nonzero(self.N))}

    def modules(self):
        return {}

    def extra_state(self):
        return {"Q": self.Q, "N": self.N}

    def load_extra_state(self, state):
        self.Q = np.array(state["Q"], dtype=np.float64)
        self.N = np.array(state["N"], dtype=np.int64)
