"""LQR: the optimal controller of a linear-quadratic env by dynamic programming; CS285 lecture 10.

The environment (``deeprl/LinearQuadratic-v0`` or any env whose unwrapped object has
``A, B, Q, R, Q_final, Sigma, horizon``, read by :func:`deeprl.planning.lqr.lqr_problem_of`)
states its problem ``x' = A x + B u (+ w)``, cost
``1/2 x^T Q x + 1/2 u^T R u`` and terminal cost; :func:`deeprl.planning.lqr.lqr_backward` solves
it once (``reg`` adds ``reg I`` to ``Q_uu``; a problem whose ``Q_uu`` is not positive definite is
refused with a one-line error instead of returning NaNs), and the agent acts with

    u_t = K_t x_t + k_t        (time_varying: t counts the steps of each parallel env modulo
                                 the horizon, exact because LQ episodes last exactly T steps)
    u   = K_0 x + k_0          (time_varying=false: receding horizon, the same gain every step)

With ``time_varying`` and ``horizon = 0`` (the env's own horizon) the expected return is exactly
``-V_0(x_0)`` (certainty equivalence: Gaussian noise does not change the gains).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deeprl.agent import Agent
from deeprl.algos.planning._common import ActionClock, PlannerPolicy
from deeprl.core.config import param
from deeprl.core.errors import ConfigError
from deeprl.envs.make import make_env
from deeprl.planning.lqr import lqr_backward, lqr_problem_of


@dataclass
class LQRConfig:
    horizon: int = param(0, "planning horizon T (0: the environment's horizon)", low=0)
    time_varying: bool = param(True, "act with K_t, k_t (t counted per env); false: always K_0, k_0 (receding)")
    reg: float = param(0.0, "Levenberg-Marquardt term added to Q_uu before solving for the gains", low=0.0)
    steps_per_update: int = param(100, "real environment steps per training iteration (one log row)", low=1)


class LQRTracker:
    """``act(x (B, n)) -> u_t = K_t x + k_t`` with ``t`` the steps each row has taken (mod T;
    always 0 for a time-invariant controller); a new batch size restarts the counters."""

    def __init__(self, K, k, T: int, time_varying: bool):
        self.K, self.k, self.T, self.time_varying = K, k, T, time_varying
        self.steps = np.zeros(0, dtype=np.int64)

    def act(self, x):
        x = np.asarray(x, dtype=np.float64)
        if len(self.steps) != len(x):
            self.steps = np.zeros(len(x), dtype=np.int64)
        t = self.steps % self.T if self.time_varying else np.zeros(len(x), dtype=np.int64)
        self.steps = self.steps + 1
        return np.einsum("bij,bj->bi", self.K[t], x) + self.k[t]


class LQR(Agent):
    name = "lqr"
    Config = LQRConfig

    def build(self):
        env = make_env(self.run.env_id)
        try:
            self.problem = lqr_problem_of(env, self.cfg.horizon or None)
            if self.problem is None:
                raise ConfigError(f"lqr needs a linear-quadratic environment that states its problem "
                                  f"(A, B, Q, R, Q_final, Sigma, horizon); {self.run.env_id!r} does not (supported: "
                                  f"deeprl/LinearQuadratic-v0)")
        finally:
            env.close()
        sol = lqr_backward(self.problem, reg=self.cfg.reg)  # NotPositiveDefiniteError is a ConfigError
        self.K, self.k, self.V0, self.v0, self.c0 = sol.K, sol.k, sol.V[0], sol.v[0], sol.const[0]
        self.clock = ActionClock()
        # training and evaluation envs count their steps separately (for K_t)
        self.training = PlannerPolicy(LQRTracker(sol.K, sol.k, self.problem.T, self.cfg.time_varying), None, self.clock)
        self.evaluating = PlannerPolicy(LQRTracker(sol.K, sol.k, self.problem.T, self.cfg.time_varying), None,
                                        self.clock)

    def predicted_cost(self, x) -> float:
        """Expected cost-to-go ``1/2 x^T V_0 x + x^T v_0 + const_0`` from ``x`` at ``t = 0``."""
        x = np.asarray(x, dtype=np.float64)
        return float(0.5 * x @ self.V0 @ x + x @ self.v0 + self.c0)

    def act(self, obs, deterministic: bool = False):
        """Evaluation (``predict``): counts the steps of the evaluation envs."""
        return torch.as_tensor(self.evaluating(obs)[0]), None

    def behaviour_policy(self):
        """Training: counts the steps of the training envs (separately from evaluation)."""
        return self.training

    def rollout_spec(self):
        return "steps", self.cfg.steps_per_update

    def update(self, batch, progress):
        return {"time/per_action_s": self.clock.per_action}

    def summary(self) -> dict:
        return {"time_per_action_s": self.clock.per_action, "actions_planned": self.clock.actions}

    def modules(self):
        return {}

    def extra_state(self):
        return {"clock": self.clock.state(), "train_steps": self.training.controller.steps}

    def load_extra_state(self, state):
        if "clock" in state:
            self.clock.load(state["clock"])
            self.training.controller.steps = np.asarray(state["train_steps"], dtype=np.int64)
