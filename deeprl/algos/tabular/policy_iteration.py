"""Policy iteration with the environment's known model; CS285 "Value based methods".

The model is read from the environment's toy-text table (``TabularMDP.from_gym``). Starting
from pi(s) = 0 it alternates

    evaluation    V^pi = (I - gamma P_pi)^{-1} R_pi           (exact, a linear solve)
    improvement   pi'(s) = argmax_a [r(s, a) + gamma sum_s' p(s'|s, a) V^pi(s')]

until the greedy step changes no action; then pi is optimal. Nothing is sampled: the single
training iteration solves the MDP and marks the run's step budget as spent (no environment
steps are taken). Evaluation runs the policy in the real environment.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.tabular._common import states_of, table_shape, tabular_model
from deeprl.core.config import param
from deeprl.tabular.dp import policy_iteration


@dataclass
class PolicyIterationConfig:
    gamma: float = param(0.99, "discount factor (< 1 so that evaluation is a non-singular solve)", low=0.0,
                         high=0.999999, aliases=("discount",))
    max_iter: int = param(10_000, "maximum number of evaluation/improvement rounds", low=1)


class PolicyIteration(Agent):
    name = "policy_iteration"
    Config = PolicyIterationConfig
    action_spaces = (spaces.Discrete,)
    loop = "solve"

    def build(self):
        self.n_states, _ = table_shape(self.name, self.run.env_id, self.obs_space, self.act_space)
        self.mdp, self.start = tabular_model(self.name, self.run.env_id)
        self.V = np.zeros(self.mdp.n_states)
        self.policy = np.zeros(self.n_states, dtype=np.int64)
        self.rounds = 0

    def act(self, obs, deterministic: bool = False):
        a = self.policy[states_of(obs)]  # deterministic either way
        return torch.as_tensor(a), None

    def update(self, batch, progress):
        V, policy, self.rounds = policy_iteration(self.mdp, self.cfg.gamma, self.cfg.max_iter)
        self.V, self.policy = V, policy[: self.n_states]
        return {"dp/policy_evaluations": float(self.rounds), "dp/start_value": float(self.start @ V[: self.n_states])}

    def summary(self) -> dict:
        return {"policy_evaluations": self.rounds, "start_value": float(self.start @ self.V[: self.n_states])}

    def modules(self):
        return {}

    def extra_state(self):
        return {"V": self.V, "policy": self.policy, "rounds": self.rounds}

    def load_extra_state(self, state):
        self.V = np.array(state["V"], dtype=np.float64)
        self.policy = np.array(state["policy"], dtype=np.int64)
        self.rounds = int(state["rounds"])
