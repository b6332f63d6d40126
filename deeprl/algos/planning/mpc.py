"""MPC: replan every step with random shooting, CEM or MPPI on a known model; CS285 lecture 10.

At each step, from the state ``s`` behind the observation::

    A* = argmax_{a_0..a_{H-1}} sum_t gamma^t r(s_t, a_t),   (s_{t+1}, r_t) = model(s_t, a_t),  s_0 = s
    act a*_0; next step start from (a*_1, ..., a*_{H-1}, middle of the box)     (warm start)

``planner`` picks the optimiser of :mod:`deeprl.planning.shooting`: ``random`` (best of
``num_samples`` uniform sequences), ``cem`` (``num_iterations`` refits of a Gaussian to the
``num_elites`` best samples, smoothing ``alpha``), ``mppi`` (``num_iterations`` reward-weighted
averages with ``temperature`` and Gaussian noise of ``noise_std`` times the half action range).
The model is the env's analytic dynamics (:func:`deeprl.planning.models.known_dynamics`:
Pendulum-v1, CartPole-v1, deeprl/LinearQuadratic-v0), wrapped as the batched
``model(s, a) -> (s', r)`` that the controller (:class:`deeprl.planning.mpc.MPCController`)
accepts from any source. Nothing is learned: training only acts, ``steps_per_update`` real
steps per iteration, and logs the time per action.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deeprl.algos.planning._common import ActionClock, as_numpy, no_log_probs
from deeprl.core.agent import Agent
from deeprl.core.config import param
from deeprl.core.errors import ConfigError
from deeprl.planning.models import known_dynamics
from deeprl.planning.mpc import PLANNERS, MPCController, make_planner


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
    steps_per_update: int = param(200, "real environment steps per training iteration (one log row)", low=1)

    def __post_init__(self):
        if self.num_elites > self.num_samples:
            raise ConfigError(f"num_elites: must be <= num_samples = {self.num_samples}, got {self.num_elites}")


class MPC(Agent):
    name = "mpc"
    Config = MPCConfig

    def build(self):
        c = self.cfg
        self.dynamics = known_dynamics(self.run.env_id, self.name)  # ConfigError if unsupported
        d = self.dynamics
        planner = make_planner(c.planner, d.action_low, d.action_high, num_samples=c.num_samples,
                               num_elites=c.num_elites, num_iterations=c.num_iterations, alpha=c.alpha,
                               temperature=c.temperature, noise_std=c.noise_std, rng=self.rng)
        self.controller = MPCController(planner, d.model(), c.horizon, d.action_low, d.action_high, gamma=c.gamma,
                                        warm_start=c.warm_start)
        self.clock = ActionClock()

    @torch.no_grad()
    def act(self, obs, deterministic: bool = False):
        with self.clock.timing(len(obs)):
            states = self.dynamics.obs_to_state(as_numpy(obs))
            actions = self.dynamics.env_action(self.controller.act(states))
        return torch.as_tensor(actions), no_log_probs(len(actions))

    def rollout_spec(self):
        return "steps", self.cfg.steps_per_update

    def update(self, batch, progress):
        metrics = {"time/per_action_s": self.clock.per_action}
        info = self.controller.last_info
        if info is not None:
            metrics["plan/predicted_return"] = info.best_cost
        return metrics

    def summary_extra(self) -> dict:
        return {"time_per_action_s": self.clock.per_action, "actions_planned": self.clock.actions}

    def modules(self):
        return {}

    def extra_state(self):
        plans = self.controller.plans
        return {"clock": self.clock.state(), "plans": np.zeros((0,)) if plans is None else plans}

    def load_extra_state(self, state):
        if "clock" in state:
            self.clock.load(state["clock"])
            plans = np.asarray(state["plans"])
            self.controller.plans = plans if plans.size else None
