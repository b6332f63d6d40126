"""Model-based RL version 1.5 (CS285 lecture 11; HW4's MBRL): learn a dynamics ensemble, plan with MPC.

1. run a random policy to collect D = {(s, a, s')} (``initial_steps``);
2. fit the ensemble f_e(s, a) ~ s' - s on D (MSE, or the Gaussian NLL when ``probabilistic``;
   bootstrap resamples, a validation split, early stopping, elites: deeprl.models.training);
3. act with MPC on the learned model: each step, random shooting, CEM or MPPI over ``horizon``
   steps picks the sequence with the highest predicted return, sum_t gamma^t r(s_t, a_t) with
   the env's known reward r (deeprl.envs.rewards) or a learned one, averaged over ``particles``
   rollouts per sequence (``propagation``: tsinf, ts1 or mean; deeprl.models.model_env); execute
   its first action and replan at the next step;
4. append the new transitions to D, refit (step 2) every ``steps_per_iteration`` env steps, repeat.

One training iteration is one round of collection and one fit; the row logs the fit (per-member
training and validation losses), the prediction error of the model *before* it saw the new data
(one step and ``k`` steps open loop along the new trajectories), the predicted return of the
plans and the planning time per action. D is the algorithm's own aggregated dataset (as DAgger's),
saved with checkpoints together with the model, its optimiser and the plans.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from deeprl.agent import Agent
from deeprl.algos.model_based._common import (
    TransitionData,
    build_model,
    check_spaces,
    make_controller,
    make_model_env,
    prediction_errors,
)
from deeprl.algos.planning._common import ActionClock, PlannerPolicy
from deeprl.core.config import param
from deeprl.core.errors import ConfigError
from deeprl.models.model_env import PRECISIONS, PROPAGATIONS
from deeprl.models.training import fit_dynamics
from deeprl.nn.acting import RandomPolicy
from deeprl.planning.batched import BATCHED_METHODS

__all__ = ["MBRL", "MBRLConfig"]


@dataclass
class MBRLConfig:
    # data
    initial_steps: int = param(1000, "env steps of uniform random actions before the first fit", low=1)
    steps_per_iteration: int = param(200, "env steps collected with MPC between fits (all envs together)", low=1)
    dataset_size: int = param(1_000_000, "transitions kept in D (oldest dropped beyond)", low=1)
    # the model
    ensemble_size: int = param(5, "members of the dynamics ensemble", low=1)
    num_model_elites: int | None = param(None, "members the planner uses, lowest validation error (None: all)",
                                         low=1)
    model_hidden_sizes: tuple[int, ...] = param((200, 200, 200), "hidden layers of every member", low=1)
    model_activation: str = param("silu", "hidden activation of the model",
                                  choices=("tanh", "relu", "elu", "gelu", "silu"))
    probabilistic: bool = param(False, "Gaussian members trained by NLL (else deterministic, MSE)")
    learn_reward: bool = param(False, "learn the reward with the dynamics (else the env's known reward)")
    model_learning_rate: float = param(1e-3, "Adam learning rate of the model", low=0.0, low_open=True)
    model_weight_decay: float = param(5e-5, "L2 weight decay of the model", low=0.0)
    model_batch_size: int = param(256, "minibatch size of model fitting", low=1)
    model_max_epochs: int = param(50, "most epochs per fit", low=1)
    model_val_fraction: float = param(0.1, "fraction of D held out for validation and early stopping",
                                      low=0.0, high=0.9)
    model_patience: int = param(5, "epochs without a 1% validation improvement before stopping", low=1)
    bootstrap: bool = param(True, "each member trains on its own bootstrap resample of D")
    # planning
    planner: str = param("cem", "trajectory optimiser on the learned model", choices=BATCHED_METHODS)
    horizon: int = param(15, "planning horizon H (steps)", low=1)
    num_samples: int = param(500, "action sequences evaluated per planner iteration", low=2)
    num_elites: int = param(50, "CEM: elites the Gaussian is refit to", low=1)
    num_iterations: int = param(4, "CEM/MPPI iterations per step (random shooting: 1)", low=1)
    alpha: float = param(0.1, "CEM/MPPI smoothing of the mean (and CEM std) update", low=0.0, high=0.99)
    temperature: float = param(5.0, "MPPI temperature lambda (reward units)", low=0.0, low_open=True)
    noise_std: float = param(0.5, "MPPI noise std as a fraction of the half action range", low=0.0, low_open=True)
    gamma: float = param(1.0, "discount of rewards inside the horizon", low=0.0, high=1.0, aliases=("discount",))
    warm_start: bool = param(True, "start each plan from the previous plan shifted by one step")
    propagation: str = param("tsinf", "which member predicts each particle (trajectory sampling)",
                             choices=PROPAGATIONS)
    particles: int | None = param(None, "model rollouts per action sequence (None: one per model elite)", low=1)
    plan_precision: str = param("float32", "precision of the model's matmuls while planning (bfloat16: 2x "
                                "faster PETS planning on a 2-core CPU; fitting stays float32)", choices=PRECISIONS)

    def __post_init__(self):
        if self.num_elites > self.num_samples:
            raise ConfigError(f"num_elites: must be <= num_samples = {self.num_samples}, got {self.num_elites}")
        if self.num_model_elites is not None and self.num_model_elites > self.ensemble_size:
            raise ConfigError(f"num_model_elites: must be <= ensemble_size = {self.ensemble_size}, "
                              f"got {self.num_model_elites}")


class MBRL(Agent):
    name = "mbrl"
    Config = MBRLConfig
    action_spaces = (spaces.Box,)
    default_torch_threads = 2  # model fitting and planning are matmul-bound

    def build(self):
        check_spaces(self)
        c = self.cfg
        n_elites = c.num_model_elites or c.ensemble_size
        if c.particles is None:
            self.cfg = c = dataclasses.replace(c, particles=n_elites)
        self.model, self.model_opt = build_model(self)
        self.data = TransitionData(self.obs_space.shape[0], self.act_space.shape[0], c.dataset_size)
        self.elites = list(range(n_elites))
        # ConfigError: no known reward
        self.model_env = make_model_env(self, self.model, self.elites, precision=c.plan_precision)
        self.controller = make_controller(self, self.model_env)
        self.clock = ActionClock()
        self.acting = PlannerPolicy(self.controller, None, self.clock)
        self.fitted = False

    # -- acting ---------------------------------------------------------------------------
    def behaviour_policy(self):
        if not self.fitted:
            return RandomPolicy(self.act_space, self.rng)
        return self.acting

    def act(self, obs, deterministic: bool = False):
        return torch.as_tensor(self.acting(np.asarray(obs, np.float32))[0]), None

    def rollout_spec(self):
        n = self.cfg.steps_per_iteration if self.fitted else self.cfg.initial_steps
        return "steps", -(-n // self.run.num_envs)

    # -- learning -------------------------------------------------------------------------
    def update(self, batch, progress):
        c = self.cfg
        rows = TransitionData.rows_of(batch)
        metrics = {}
        if self.fitted:  # the model has not seen these transitions yet: held-out errors
            metrics.update(prediction_errors(self.model, rows, self.elites))
            metrics["time/per_action_s"] = self.clock.per_action
            if self.controller.last_info is not None:
                metrics["plan/predicted_return"] = self.controller.last_info.best_cost
        self.data.add(rows)
        d = self.data
        fit = fit_dynamics(self.model, self.model_opt, d.obs, d.actions, d.next_obs,
                           d.rewards if c.learn_reward else None, rng=self.rng, batch_size=c.model_batch_size,
                           max_epochs=c.model_max_epochs, val_fraction=c.model_val_fraction,
                           patience=c.model_patience, bootstrap=c.bootstrap,
                           num_elites=c.num_model_elites or c.ensemble_size, precision=self.run.matmul_precision)
        self.elites = fit.elites
        self.model_env.set_elites(self.elites)
        self.fitted = True
        metrics.update(fit.metrics())
        metrics["model/dataset_size"] = len(d)
        metrics["train/gradient_steps"] = fit.gradient_steps
        return metrics

    def summary(self) -> dict:
        return {"time_per_action_s": self.clock.per_action, "actions_planned": self.clock.actions,
                "dataset_size": len(self.data)}

    # -- checkpoints ----------------------------------------------------------------------
    def modules(self):
        return {"model": self.model, "model_optimizer": self.model_opt}

    def policy_modules(self):
        return ("model",)

    def extra_state(self):
        plans = self.controller.plans
        return {"data": self.data.state_dict(), "elites": np.asarray(self.elites), "fitted": self.fitted,
                "clock": self.clock.state(), "plans": np.zeros((0,)) if plans is None else plans,
                "planner_rng": self.controller.planner.generator.get_state(),
                "model_rng": self.model_env.generator.get_state()}

    def load_extra_state(self, state):
        self.data.load_state_dict(state["data"])
        self.elites = [int(e) for e in np.asarray(state["elites"])]
        self.model_env.set_elites(self.elites)
        self.fitted = bool(state["fitted"])
        self.clock.load(state["clock"])
        plans = np.asarray(state["plans"])
        self.controller.plans = plans if plans.size else None
        self.controller.planner.generator.set_state(torch.as_tensor(state["planner_rng"], dtype=torch.uint8))
        self.model_env.generator.set_state(torch.as_tensor(state["model_rng"], dtype=torch.uint8))

