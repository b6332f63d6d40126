"""Value iteration with the environment's known model; CS285 "Value based methods".

The model is read from the environment's toy-text table (``TabularMDP.from_gym``: FrozenLake,
CliffWalking, Taxi, deeprl/GridWorld-v0, ...). Starting from V_0 = 0, each sweep applies the
Bellman optimality backup

    Q_k(s, a) = r(s, a) + gamma sum_s' p(s'|s, a) V_k(s'),      V_{k+1}(s) = max_a Q_k(s, a)

until max|V_{k+1} - V_k| <= tol (1 - gamma) / gamma, i.e. |V - V*| <= tol; the policy is
greedy in Q. Nothing is sampled: the single training iteration solves the MDP and marks the
run's step budget as spent (no environment steps are taken). Evaluation runs the policy in
the real environment.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.tabular._common import states_of, table_shape, tabular_model
from deeprl.core.config import param
from deeprl.tabular.dp import q_from_v, value_iteration


@dataclass
class ValueIterationConfig:
    gamma: float = param(0.99, "discount factor (< 1 so that the backups contract)", low=0.0, high=0.999999,
                         aliases=("discount",))
    tol: float = param(1e-10, "stop when the values are within tol of V*", low=0.0, low_open=True)
    max_iter: int = param(100_000, "maximum number of sweeps", low=1)


class ValueIteration(Agent):
    name = "value_iteration"
    Config = ValueIterationConfig
    action_spaces = (spaces.Discrete,)
    loop = "solve"

    def build(self):
        self.n_states, _ = table_shape(self.name, self.run.env_id, self.obs_space, self.act_space)
        self.mdp, self.start = tabular_model(self.name, self.run.env_id)
        self.V = np.zeros(self.mdp.n_states)
        self.policy = np.zeros(self.n_states, dtype=np.int64)
        self.sweeps = 0

    def act(self, obs, deterministic: bool = False):
        a = self.policy[states_of(obs)]  # deterministic either way
        return torch.as_tensor(a), None

    def update(self, batch, progress):
        c = self.cfg
        V, policy, self.sweeps = value_iteration(self.mdp, c.gamma, c.tol, c.max_iter)
        self.V, self.policy = V, policy[: self.n_states]
        residual = np.max(np.abs(q_from_v(self.mdp, V, c.gamma).max(axis=1) - V))
        return {"dp/sweeps": float(self.sweeps), "dp/bellman_residual": float(residual),
                "dp/start_value": float(self.start @ V[: self.n_states])}

    def summary(self) -> dict:
        return {"sweeps": self.sweeps, "start_value": float(self.start @ self.V[: self.n_states])}

    def modules(self):
        return {}

    def extra_state(self):
        return {"V": self.V, "policy": self.policy, "sweeps": self.sweeps}

    def load_extra_state(self, state):
        self.V = np.array(state["V"], dtype=np.float64)
        self.policy = np.array(state["policy"], dtype=np.int64)
        self.sweeps = int(state["sweeps"])
