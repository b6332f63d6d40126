"""iLQR: plan with the known dynamics, act with the plan's feedback controller; CS285 lecture 10.

(Tassa, Erez & Todorov 2012; Li & Todorov 2004.)

From the state ``x`` behind the observation, :func:`deeprl.planning.ilqr.ilqr` optimises the
controls ``U (T, m)`` of the ``horizon``-step problem ``min sum_t c(x_t, u_t) + c_T(x_T)`` (the
env's smooth cost, controls kept in the action box) by repeated LQR backward passes around the
current trajectory, with a Levenberg-Marquardt regulariser on ``Q_uu`` (start ``reg_init``;
times ``reg_factor`` after a failed step or a non-positive-definite ``Q_uu``, divided by it
after a success and set to 0 below ``reg_min``; the solve gives up beyond ``reg_max``) and a
line search. The agent then acts with the tracking controller

    u_t = U_t + K_t (x_t - X_t)                   (angle differences wrapped to [-pi, pi))

and replans (warm-started from the unused rest of the plan) when

- the plan runs out (``t = horizon``), or ``replan_every > 0`` steps have passed (receding
  horizon; ``replan_every = 1`` is iLQR-MPC), or
- the state is more than ``replan_tolerance`` (max-norm) away from the planned ``X_t``: a new
  episode started, or a disturbance the linear feedback cannot be trusted to absorb.

Batches of observations (parallel environments) keep one plan per row. A plan whose cost is
not finite raises ``NonFiniteError`` (never silent NaNs); an unconverged solve is still used
(its cost decreased monotonically) and counted in ``plan/unconverged``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deeprl.agent import Agent
from deeprl.algos.planning._common import ActionClock, PlannerPolicy
from deeprl.core.config import param
from deeprl.core.errors import NonFiniteError
from deeprl.planning.ilqr import ilqr
from deeprl.planning.models import known_dynamics


@dataclass
class ILQRConfig:
    horizon: int = param(30, "planning horizon T (steps)", low=1)
    replan_every: int = param(1, "replan every N steps (1: iLQR-MPC; 0: only when the plan runs out or the "
                                 "state deviates)", low=0)
    replan_tolerance: float = param(0.5, "replan when max |x - X_t| exceeds this (state units)", low=0.0,
                                    low_open=True)
    max_iter: int = param(20, "iLQR iterations per plan", low=1)
    init_controls: tuple[float, ...] = param((1.0,), "constant initial control guesses of a fresh plan (a "
                                             "new episode or a lost track); the lowest cost wins")
    restart_every_plan: bool = param(True, "routine replans also try the constant guesses (slower, escapes "
                                          "poor local optima of the warm start)")
    terminal_weight: float = param(10.0, "weight of the terminal cost (times the state cost)", low=0.0)
    reg_init: float = param(1.0, "initial Levenberg-Marquardt regulariser on Q_uu", low=0.0)
    reg_factor: float = param(4.0, "regulariser increase/decrease factor", low=1.0, low_open=True)
    reg_min: float = param(1e-6, "regulariser floor (below it: 0)", low=0.0, low_open=True)
    reg_max: float = param(1e10, "give up (keep the best trajectory) beyond this regulariser", low=0.0,
                           low_open=True)
    psd_cost: bool = param(True, "project cost Hessians onto the PSD cone (Gauss-Newton iLQR)")
    linearize: str = param("autograd", "derivatives of the model", choices=("autograd", "finite_differences"))
    steps_per_update: int = param(200, "real environment steps per training iteration (one log row)", low=1)


class _Plan:
    """One row's current plan: trajectory, gains and the time index into them."""

    __slots__ = ("X", "U", "K", "t")

    def __init__(self, X, U, K):
        self.X, self.U, self.K, self.t = X, U, K, 0


class ILQRController:
    """iLQR-MPC for a batch of states: ``act(states (B, n)) -> controls (B, m)`` tracks each row's
    plan with its feedback gains and replans a row when its state leaves the plan, the plan runs
    out, or every ``replan_every`` steps. Counts plans, unconverged plans and iterations."""

    def __init__(self, dynamics, cfg):
        self.dynamics, self.cfg = dynamics, cfg
        self.plans: list[_Plan | None] = []
        self.num_plans = self.unconverged = self.iterations = 0

    # -- planning ---------------------------------------------------------------------------
    def plan(self, x: np.ndarray, guesses: list[np.ndarray]):
        """Run iLQR from state ``x (n,)`` once per initial guess ``(T, m)``; keep the cheapest."""
        best = None
        for U_init in guesses:
            res = self._solve(x, U_init)
            if best is None or res.cost < best.cost:
                best = res
        self.num_plans += 1
        self.unconverged += int(not best.converged)
        return best

    def _solve(self, x: np.ndarray, U_init: np.ndarray):
        c, d = self.cfg, self.dynamics
        res = ilqr(d.smooth_step or d.step, d.smooth_cost, d.final_cost, x, U_init, max_iter=c.max_iter,
                   reg_init=c.reg_init, reg_min=c.reg_min, reg_max=c.reg_max, reg_factor=c.reg_factor,
                   linearize=c.linearize, u_bounds=(d.action_low, d.action_high), psd_cost=c.psd_cost)
        if not (np.isfinite(res.cost) and np.isfinite(res.U).all() and np.isfinite(res.K).all()):
            raise NonFiniteError(f"iLQR produced a non-finite plan from state {x.tolist()} ({res.message})")
        self.iterations += res.n_iter
        return res

    def _guesses(self, p: _Plan | None, fresh: bool) -> list[np.ndarray]:
        """A fresh plan starts from each constant guess, a routine replan from the unused rest of
        the current plan (padded with zeros; fresh plans try it too), and from the constant guesses too when
        ``restart_every_plan`` (iLQR is local: a fresh start often escapes a poor warm start)."""
        d, T = self.dynamics, self.cfg.horizon
        out = []
        if fresh or self.cfg.restart_every_plan:
            out = [np.broadcast_to(np.clip(u, d.action_low, d.action_high), (T, d.action_dim)).copy()
                   for u in self.cfg.init_controls]
        if p is not None and p.t < len(p.U):
            rest = p.U[p.t: p.t + T]
            out.append(np.concatenate([rest, np.zeros((T - len(rest), d.action_dim))]))
        return out

    def _plan_kind(self, p: _Plan | None, x: np.ndarray) -> str | None:
        """'fresh' (no plan, or the state left it), 'replan' (plan ran out or replan_every), or None."""
        if p is None or np.abs(self.dynamics.state_error(x, p.X[min(p.t, len(p.U))])).max() > self.cfg.replan_tolerance:
            return "fresh"
        if p.t >= len(p.U) or (self.cfg.replan_every and p.t % self.cfg.replan_every == 0):
            return "replan"
        return None

    def act(self, states: np.ndarray) -> np.ndarray:
        """Tracking controls ``(B, m)`` for states ``(B, n)``, replanning rows as needed."""
        if len(self.plans) != len(states):
            self.plans = [None] * len(states)
        out = np.empty((len(states), self.dynamics.action_dim))
        for i, x in enumerate(states):
            p = self.plans[i]
            kind = self._plan_kind(p, x)
            if kind is not None:
                res = self.plan(x, self._guesses(p, fresh=kind == "fresh"))
                p = self.plans[i] = _Plan(res.X, res.U, res.K)
            out[i] = p.U[p.t] + p.K[p.t] @ self.dynamics.state_error(x, p.X[p.t])
            p.t += 1
        return np.clip(out, self.dynamics.action_low, self.dynamics.action_high)


class ILQR(Agent):
    name = "ilqr"
    Config = ILQRConfig

    def build(self):
        self.dynamics = known_dynamics(self.run.env_id, self.name, differentiable=True,
                                       terminal_weight=self.cfg.terminal_weight)  # ConfigError if unsupported
        self.controller = ILQRController(self.dynamics, self.cfg)
        self.clock = ActionClock()
        self.acting = PlannerPolicy(self.controller, self.dynamics, self.clock, autograd=True)

    def plan(self, x: np.ndarray, guesses: list[np.ndarray]):
        return self.controller.plan(x, guesses)

    # -- Agent hooks --------------------------------------------------------------------------
    def act(self, obs, deterministic: bool = False):
        # (PlannerPolicy keeps autograd on under Agent.predict's inference mode: iLQR differentiates the model)
        return torch.as_tensor(self.acting(obs)[0]), None

    def behaviour_policy(self):
        return self.acting

    @property
    def num_plans(self) -> int:
        return self.controller.num_plans

    def rollout_spec(self):
        return "steps", self.cfg.steps_per_update

    def update(self, batch, progress):
        ctl = self.controller
        return {"time/per_action_s": self.clock.per_action, "plan/plans": float(ctl.num_plans),
                "plan/unconverged": float(ctl.unconverged),
                "plan/iterations_per_plan": ctl.iterations / max(ctl.num_plans, 1)}

    def summary(self) -> dict:
        return {"time_per_action_s": self.clock.per_action, "actions_planned": self.clock.actions,
                "plans": self.controller.num_plans}

    def modules(self):
        return {}

    def extra_state(self):
        ctl = self.controller
        return {"clock": self.clock.state(), "counts": np.array([ctl.num_plans, ctl.unconverged, ctl.iterations])}

    def load_extra_state(self, state):
        if "clock" in state:
            self.clock.load(state["clock"])
            ctl = self.controller
            ctl.num_plans, ctl.unconverged, ctl.iterations = (int(v) for v in state["counts"])
