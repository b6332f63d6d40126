"""MPC: replan every step with random shooting, CEM or MPPI on a known model; CS285 lecture 10.

At each step, from the state ``s`` behind the observation::

    A* = argmax_{a_0..a_{H-1}} sum_t gamma^t r(s_t, a_t),   (s_{t+1}, r_t) = model(s_t, a_t),  s_0 = s
    act a*_0; next step start from (a*_1, ..., a*_{H-1}, middle of the box)     (warm start)

``planner`` picks the optimiser of :mod:`deeprl.planning.shooting`: ``random`` (best of
``num_samples`` uniform sequences), ``cem`` (``num_iterations`` refits of a Gaussian to the
``num_elites`` best samples, smoothing ``alpha``), ``mppi`` (``num_iterations`` reward-weighted
averages with ``temperature`` and Gaussian noise of ``noise_std`` times the half action range).
The model is the env's analytic dynamics (:func:`deeprl.planning.models.known_dynamics`:
Pendulum-v1, CartPole-v1, deeprl/LinearQuadratic-v0). By default (``batched``) it is a
:class:`~deeprl.planning.model_env.ModelEnv` and :class:`BatchedMPCController` plans every
parallel env in one torch batch (population x particles, :mod:`deeprl.planning.batched`);
``batched=false`` plans row by row with the NumPy planners on the ``model(s, a) -> (s', r)``
that :class:`MPCController` accepts. A learned model plugs in either way. Both controllers keep
one plan per env, so parallel environments each warm-start from their own plan.
Nothing is learned: training only acts, ``steps_per_update`` real
steps per iteration, and logs the time per action.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from deeprl.agent import Agent
from deeprl.algos.planning._common import ActionClock, PlannerPolicy
from deeprl.core.config import param
from deeprl.core.errors import ConfigError
from deeprl.planning.batched import BatchedPlanner
from deeprl.planning.model_env import AnalyticModelEnv, model_returns
from deeprl.planning.models import known_dynamics
from deeprl.planning.shooting import CEM, MPPI, RandomShooting

__all__ = ["MPC", "MPCConfig", "PLANNERS", "BatchedMPCController", "MPCController", "make_planner",
           "model_objective", "shift_plan"]

PLANNERS = ("random", "cem", "mppi")


def model_objective(model: Callable, s0, gamma: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    """``objective(actions (N, H, m)) -> (N,)`` discounted model return from state ``s0 (n,)``."""
    s0 = np.asarray(s0, dtype=np.float64)

    def objective(actions: np.ndarray) -> np.ndarray:
        N, H, _ = actions.shape
        s = np.broadcast_to(s0, (N, s0.shape[0]))
        total, discount = np.zeros(N), 1.0
        for t in range(H):
            s, r = model(s, actions[:, t])
            total += discount * np.asarray(r, dtype=np.float64).reshape(N)
            discount *= gamma
        return total

    return objective


def shift_plan(plan: np.ndarray, fill) -> np.ndarray:
    """``(a_1, ..., a_{H-1}, fill)`` from a plan ``(H, m)``."""
    return np.concatenate([plan[1:], np.broadcast_to(fill, (1, plan.shape[1]))], axis=0)


def make_planner(name: str, low, high, *, num_samples: int, num_elites: int, num_iterations: int,
                 alpha: float, temperature: float, noise_std: float, rng):
    """A maximising planner of :mod:`deeprl.planning.shooting` over the box ``[low, high]``.
    ``noise_std`` (MPPI) is a fraction of the half-width of the box."""
    if name == "random":
        return RandomShooting(num_samples=num_samples, lower=low, upper=high, rng=rng, maximize=True)
    if name == "cem":
        return CEM(num_samples=num_samples, num_elites=num_elites, num_iterations=num_iterations, lower=low,
                   upper=high, alpha=alpha, rng=rng, maximize=True)
    if name == "mppi":
        std = noise_std * (np.asarray(high) - np.asarray(low)) / 2.0
        return MPPI(num_samples=num_samples, num_iterations=num_iterations, temperature=temperature, noise_std=std,
                    lower=low, upper=high, alpha=alpha, rng=rng, maximize=True)
    raise ConfigError(f"planner: {name!r} is not one of {', '.join(PLANNERS)}")


class MPCController:
    """Receding-horizon control of a batch of states with one planner and one model.

    ``act(states (B, n)) -> controls (B, m)``: plans each row (warm-started from that row's
    shifted previous plan when ``warm_start``) and returns the first action of each plan.
    ``reset()`` forgets the plans.
    """

    def __init__(self, planner, model: Callable, horizon: int, low, high, gamma: float = 1.0,
                 warm_start: bool = True):
        if int(horizon) != horizon or horizon < 1:
            raise ConfigError(f"horizon must be an integer >= 1, got {horizon}")
        self.planner, self.model, self.horizon, self.gamma = planner, model, int(horizon), float(gamma)
        self.low, self.high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        self.fill = (self.low + self.high) / 2.0
        self.warm_start = warm_start
        self.plans: np.ndarray | None = None  # (B, H, m)
        self.last_info = None

    def reset(self) -> None:
        self.plans = None

    def act(self, states: np.ndarray) -> np.ndarray:
        states = np.asarray(states, dtype=np.float64)
        B, m = states.shape[0], self.low.shape[0]
        if self.plans is None or self.plans.shape[0] != B or not self.warm_start:
            self.plans = np.broadcast_to(self.fill, (B, self.horizon, m)).copy()
        out = np.empty((B, m))
        for i in range(B):
            plan = self.planner.optimize(model_objective(self.model, states[i], self.gamma), self.plans[i])
            out[i] = plan[0]
            self.plans[i] = shift_plan(plan, self.fill)
            self.last_info = self.planner.info
        return out


class BatchedMPCController:
    """Receding-horizon control of a batch of states planned together in torch: one
    :class:`~deeprl.planning.batched.BatchedPlanner` call per step plans every row, on a
    :class:`~deeprl.planning.model_env.ModelEnv` (B * N * ``particles`` rollouts per model call).
    Same interface as :class:`MPCController`: ``act(states (B, n)) -> controls (B, m)``, ``plans``
    (B, H, m) as NumPy, ``reset()``; ``last_info.best_cost`` is the mean over rows of the best
    predicted return. ``dtype``: of the plans and states handed to the model (float64 for the
    analytic models, float32 for a learned one)."""

    def __init__(self, planner: BatchedPlanner, model_env, horizon: int, low, high, gamma: float = 1.0,
                 warm_start: bool = True, particles: int = 1, dtype: torch.dtype = torch.float64):
        if int(horizon) != horizon or horizon < 1:
            raise ConfigError(f"horizon must be an integer >= 1, got {horizon}")
        self.planner, self.model_env, self.horizon, self.gamma = planner, model_env, int(horizon), float(gamma)
        self.fill = (np.asarray(low, dtype=np.float64) + np.asarray(high, dtype=np.float64)) / 2.0
        self.warm_start, self.particles, self.dtype = warm_start, int(particles), dtype
        self.plans: np.ndarray | None = None
        self.last_info = None

    def reset(self) -> None:
        self.plans = None

    def act(self, states: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(states, dtype=np.float64)).to(self.dtype)
        B, m = x.shape[0], self.fill.shape[0]
        if self.plans is None or self.plans.shape[0] != B or not self.warm_start:
            self.plans = np.broadcast_to(self.fill, (B, self.horizon, m)).copy()
        plan = self.planner.plan(lambda A: model_returns(self.model_env, x, A, self.gamma, self.particles),
                                 torch.from_numpy(self.plans).to(self.dtype))
        plan = plan.double().numpy()
        self.plans = np.concatenate([plan[:, 1:], np.broadcast_to(self.fill, (B, 1, m))], axis=1)
        self.last_info = _Predicted(float(self.planner.info.best_return.mean()))
        return plan[:, 0]


@dataclass(frozen=True)
class _Predicted:
    best_cost: float  # (the name MPCController's planners use; here: the best predicted return)


@dataclass
class MPCConfig:
    planner: str = param("cem", "trajectory optimiser", choices=PLANNERS)
    horizon: int = param(30, "planning horizon H (steps)", low=1)
    num_samples: int = param(200, "action sequences evaluated per planner iteration", low=2)
    num_elites: int = param(20, "CEM: elites the Gaussian is refit to", low=1)
    num_iterations: int = param(4, "CEM/MPPI iterations per step (random shooting: 1)", low=1)
    alpha: float = param(0.1, "CEM/MPPI smoothing of the mean (and CEM std) update", low=0.0, high=0.99)
    temperature: float = param(5.0, "MPPI temperature lambda (reward units)", low=0.0, low_open=True)
    noise_std: float = param(0.5, "MPPI noise std as a fraction of the half action range", low=0.0, low_open=True)
    gamma: float = param(1.0, "discount of rewards inside the horizon", low=0.0, high=1.0, aliases=("discount",))
    warm_start: bool = param(True, "start each plan from the previous plan shifted by one step")
    batched: bool = param(True, "plan every parallel env in one torch batch (deeprl.planning.batched); "
                                "false: row by row with the NumPy planners of deeprl.planning.shooting")
    steps_per_update: int = param(200, "real environment steps per training iteration (one log row)", low=1)

    def __post_init__(self):
        if self.num_elites > self.num_samples:
            raise ConfigError(f"num_elites: must be <= num_samples = {self.num_samples}, got {self.num_elites}")


class MPC(Agent):
    name = "mpc"
    Config = MPCConfig

    def build(self):
        self.dynamics = known_dynamics(self.run.env_id, self.name)  # ConfigError if unsupported
        self.controller = self._batched_controller() if self.cfg.batched else self._row_controller()
        self.clock = ActionClock()
        self.acting = PlannerPolicy(self.controller, self.dynamics, self.clock)  # training and predict share plans

    def _batched_controller(self) -> BatchedMPCController:
        c, d = self.cfg, self.dynamics
        generator = torch.Generator().manual_seed(int(self.rng.integers(2**63)))
        std = c.noise_std * (d.action_high - d.action_low) / 2.0
        planner = BatchedPlanner(c.planner, d.action_low, d.action_high, c.num_samples, c.num_elites,
                                 1 if c.planner == "random" else c.num_iterations, c.alpha, c.temperature, std,
                                 generator=generator)
        return BatchedMPCController(planner, AnalyticModelEnv(d), c.horizon, d.action_low, d.action_high,
                                    gamma=c.gamma, warm_start=c.warm_start)

    def _row_controller(self) -> MPCController:
        c, d = self.cfg, self.dynamics
        planner = make_planner(c.planner, d.action_low, d.action_high, num_samples=c.num_samples,
                               num_elites=c.num_elites, num_iterations=c.num_iterations, alpha=c.alpha,
                               temperature=c.temperature, noise_std=c.noise_std, rng=self.rng)
        return MPCController(planner, d.model(), c.horizon, d.action_low, d.action_high, gamma=c.gamma,
                             warm_start=c.warm_start)

    def act(self, obs, deterministic: bool = False):
        return torch.as_tensor(self.acting(obs)[0]), None

    def behaviour_policy(self):
        return self.acting

    def rollout_spec(self):
        return "steps", self.cfg.steps_per_update

    def update(self, batch, progress):
        metrics = {"time/per_action_s": self.clock.per_action}
        info = self.controller.last_info
        if info is not None:
            metrics["plan/predicted_return"] = info.best_cost
        return metrics

    def summary(self) -> dict:
        return {"time_per_action_s": self.clock.per_action, "actions_planned": self.clock.actions}

    def modules(self):
        return {}

    def extra_state(self):
        plans = self.controller.plans
        state = {"clock": self.clock.state(), "plans": np.zeros((0,)) if plans is None else plans}
        if self.cfg.batched:
            state["planner_rng"] = self.controller.planner.generator.get_state()
        return state

    def load_extra_state(self, state):
        if "clock" in state:
            self.clock.load(state["clock"])
            plans = np.asarray(state["plans"])
            self.controller.plans = plans if plans.size else None
        if self.cfg.batched and "planner_rng" in state:
            self.controller.planner.generator.set_state(torch.as_tensor(state["planner_rng"], dtype=torch.uint8))
