"""Pieces the model-based agents share (plain functions and one small dataset class, no base
class): the aggregated dataset D of real transitions, building the ensemble and its optimiser,
the MPC controller on the learned model, and prediction errors on held-out real data."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from deeprl.core.config import param
from deeprl.core.errors import ConfigError
from deeprl.data.replay import available_memory
from deeprl.envs.rewards import known_reward, known_termination
from deeprl.models.ensemble import DynamicsEnsemble
from deeprl.models.model_env import LearnedModelEnv
from deeprl.models.training import fit_dynamics
from deeprl.nn.optim import Adam
from deeprl.planning.batched import BatchedPlanner


def check_spaces(agent) -> None:
    """Vector observations and a box of actions; the model normalises its own inputs."""
    if not isinstance(agent.obs_space, spaces.Box) or len(agent.obs_space.shape) != 1:
        raise ConfigError(f"{agent.name}: needs vector observations (a 1-D Box), got {agent.obs_space}")
    if agent.run.normalize_obs or agent.run.normalize_reward:
        raise ConfigError(f"{agent.name}: normalize_obs/normalize_reward are not supported (the dynamics model "
                          "standardises its own inputs and targets); set them to false")


class TransitionData:
    """D = {(s, a, s', r, terminated)}: every real transition collected, oldest dropped beyond
    ``capacity``. Rows are float32 tensors; ``add(rollout)`` appends a rollout's valid steps."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        need = capacity * (2 * obs_dim + act_dim + 2) * 4
        avail = available_memory()
        if avail is not None and need > 0.9 * avail:
            raise ConfigError(f"dataset_size={capacity} needs {need / 2**30:.2f} GiB but only "
                              f"{avail / 2**30:.2f} GiB of memory is available; lower dataset_size")
        self.capacity = int(capacity)
        self.obs = torch.zeros((0, obs_dim))
        self.actions = torch.zeros((0, act_dim))
        self.next_obs = torch.zeros((0, obs_dim))
        self.rewards = torch.zeros(0)
        self.terminated = torch.zeros(0, dtype=torch.bool)

    def __len__(self) -> int:
        return self.rewards.shape[0]

    @staticmethod
    def rows_of(rollout) -> dict:
        """A rollout's valid steps as rows, env by env (each env's steps consecutive, in time order)."""
        env_major = lambda x: np.swapaxes(np.asarray(x), 0, 1)  # noqa: E731  (T, N, ...) -> (N, T, ...)
        valid = env_major(rollout.valid).reshape(-1)
        flat = lambda x: torch.as_tensor(env_major(x).reshape((valid.shape[0],) + np.shape(x)[2:])[valid])  # noqa: E731
        n = int(valid.sum())
        return {"obs": flat(rollout.obs).float(), "actions": flat(rollout.actions).float().reshape(n, -1),
                "next_obs": flat(rollout.next_obs).float(), "rewards": flat(rollout.rewards).float(),
                "terminated": flat(rollout.terminated).bool()}

    def add(self, rows: dict) -> None:
        for k, v in rows.items():
            setattr(self, k, torch.cat([getattr(self, k), v])[-self.capacity:])

    def state_dict(self) -> dict:
        return {k: getattr(self, k).clone() for k in ("obs", "actions", "next_obs", "rewards", "terminated")}

    def load_state_dict(self, d: dict) -> None:
        for k, v in d.items():
            setattr(self, k, torch.as_tensor(v))


def build_model(agent) -> tuple[DynamicsEnsemble, Adam]:
    c = agent.cfg
    model = DynamicsEnsemble(agent.obs_space.shape[0], agent.act_space.shape[0], members=c.ensemble_size,
                             hidden=tuple(c.model_hidden_sizes), activation=c.model_activation,
                             probabilistic=c.probabilistic, learn_reward=c.learn_reward)
    return model, Adam(model.parameters(), lr=c.model_learning_rate, weight_decay=c.model_weight_decay)


def reward_functions(agent):
    """(reward_fn, terminated_fn): the env's known ones; with ``learn_reward`` no reward function
    (the model predicts it) and the env's known termination function, which must exist."""
    if agent.cfg.learn_reward:
        return None, known_termination(agent.run.env_id, agent.name)
    known = known_reward(agent.run.env_id, agent.name)
    return known.reward, known.terminated


def make_controller(agent, model_env):
    """Batched MPC (random shooting, CEM or MPPI) on the learned model, float32."""
    from deeprl.algos.planning.mpc import BatchedMPCController

    c = agent.cfg
    low, high = agent.act_space.low.astype(np.float64), agent.act_space.high.astype(np.float64)
    generator = torch.Generator().manual_seed(int(agent.rng.integers(2**63)))
    planner = BatchedPlanner(c.planner, low, high, c.num_samples, c.num_elites,
                             1 if c.planner == "random" else c.num_iterations, c.alpha, c.temperature,
                             c.noise_std * (high - low) / 2.0, generator=generator)
    return BatchedMPCController(planner, model_env, c.horizon, low, high, gamma=c.gamma, warm_start=c.warm_start,
                                particles=c.particles, dtype=torch.float32)


def make_model_env(agent, model, elites=None, propagation: str | None = None,
                   precision: str = "float32") -> LearnedModelEnv:
    reward_fn, terminated_fn = reward_functions(agent)
    generator = torch.Generator().manual_seed(int(agent.rng.integers(2**63)))
    return LearnedModelEnv(model, reward_fn, terminated_fn, propagation or agent.cfg.propagation, elites, generator,
                           precision)


@torch.no_grad()
def prediction_errors(model: DynamicsEnsemble, rows: dict, elites, horizons=(1, 5)) -> dict:
    """Mean squared error (env units, mean over dimensions) of the elites' mean prediction of
    real transitions the model has not been trained on: one step, and ``k`` steps open loop
    along the rollout (consecutive rows of one env that do not cross an episode end)."""
    s, a, s2 = rows["obs"], rows["actions"], rows["next_obs"]
    if len(s) == 0:
        return {}
    idx = torch.as_tensor(sorted(elites), dtype=torch.long)

    def mean_step(x, u):
        mean, _ = model(model.normalize_inputs(x, u), idx)
        return x + model.denormalize_targets(mean.mean(0))[:, :model.obs_dim]

    out = {"model/one_step_mse": float((mean_step(s, a) - s2).pow(2).mean())}
    # consecutive rows continue each other where next_obs[t] == obs[t+1] (one env's trajectory)
    cont = torch.cat([(s2[:-1] == s[1:]).all(-1), torch.zeros(1, dtype=torch.bool)])
    for k in horizons:
        if k < 2 or len(s) <= k:
            continue
        starts = [t for t in range(len(s) - k + 1) if bool(cont[t:t + k - 1].all())]
        if not starts:
            continue
        st = torch.as_tensor(starts)
        x = s[st]
        for j in range(k):
            x = mean_step(x, a[st + j])
        out[f"model/{k}_step_mse"] = float((x - s2[st + k - 1]).pow(2).mean())
    return out


def observe_real_steps(agent, rollout) -> dict | None:
    """The replay-loop agents' (MBPO, MVE) model schedule, called from ``observe``: append the
    rollout to D; once ``learning_starts`` env steps are in and then every ``model_train_freq``
    steps, report the model's error on the real steps it has not been fit on, refit it on D
    and return the metrics (None when no fit was due)."""
    c, steps = agent.cfg, agent.train_state["env_steps"]
    rows = TransitionData.rows_of(rollout)
    agent.data.add(rows)
    agent.fresh.append(rows)
    if steps < c.learning_starts or (agent.fits and steps - agent.last_fit_step < c.model_train_freq):
        return None
    metrics = {}
    if agent.fits:  # held-out: collected since the last fit
        fresh = {k: torch.cat([r[k] for r in agent.fresh]) for k in agent.fresh[0]}
        metrics.update(prediction_errors(agent.model, fresh, agent.elites))
    agent.fresh = []
    d = agent.data
    fit = fit_dynamics(agent.model, agent.model_opt, d.obs, d.actions, d.next_obs,
                       d.rewards if c.learn_reward else None, rng=agent.rng, batch_size=c.model_batch_size,
                       max_epochs=c.model_max_epochs, val_fraction=c.model_val_fraction,
                       patience=c.model_patience, bootstrap=c.bootstrap, num_elites=c.num_model_elites,
                       keep_prefit=True,  # refits every few hundred steps: never hand back a worse member
                       precision=agent.run.matmul_precision)
    agent.elites = fit.elites
    agent.model_env.set_elites(agent.elites)
    agent.fits += 1
    agent.last_fit_step = steps
    metrics.update(fit.metrics())
    return metrics


def model_schedule_state(agent) -> dict:
    fresh = {k: torch.cat([r[k] for r in agent.fresh]) for k in agent.fresh[0]} if agent.fresh else {}
    return {"data": agent.data.state_dict(), "elites": np.asarray(agent.elites), "fits": agent.fits,
            "last_fit_step": agent.last_fit_step, "fresh": fresh, "model_rng": agent.model_env.generator.get_state()}


def load_model_schedule_state(agent, state: dict) -> None:
    agent.data.load_state_dict(state["data"])
    agent.elites = [int(e) for e in np.asarray(state["elites"])]
    agent.model_env.set_elites(agent.elites)
    agent.fits, agent.last_fit_step = int(state["fits"]), int(state["last_fit_step"])
    agent.fresh = [state["fresh"]] if state["fresh"] else []
    agent.model_env.generator.set_state(torch.as_tensor(state["model_rng"], dtype=torch.uint8))


@dataclass
class SACWithModelConfig:
    """The settings MBPO and MVE share: the SAC learner on real data, and the dynamics ensemble
    refit on D every ``model_train_freq`` env steps."""

    # real data and the SAC learner
    buffer_size: int = param(1_000_000, "real replay buffer capacity (transitions)", low=2)
    learning_starts: int = param(1000, "env steps of uniform random actions before the first fit", low=1)
    batch_size: int = param(256, "SAC minibatch size", low=1)
    gradient_steps: int = param(10, "SAC gradient steps per env step (the update-to-data ratio)", low=1)
    learning_rate: float = param(3e-4, "SAC Adam learning rate", low=0.0, low_open=True, aliases=("lr",))
    gamma: float = param(0.99, "discount factor", low=0.0, high=1.0, aliases=("discount",))
    tau: float = param(0.005, "Polyak rate of the target critics", low=0.0, high=1.0, low_open=True)
    alpha: float = param(1.0, "entropy temperature (initial value when autotuned)", low=0.0, low_open=True)
    autotune_alpha: bool = param(True, "tune alpha towards the target entropy")
    target_entropy: float | None = param(None, "target entropy (None: -dim(A))")
    num_critics: int = param(2, "SAC critics (2: clipped double Q)", low=1)
    hidden_sizes: tuple[int, ...] = param((256, 256), "hidden layers of SAC's actor and critics", low=1)
    # the model
    ensemble_size: int = param(7, "members of the dynamics ensemble", low=1)
    num_model_elites: int = param(5, "members the rollouts use, lowest validation error", low=1)
    model_hidden_sizes: tuple[int, ...] = param((200, 200, 200, 200), "hidden layers of every member", low=1)
    model_activation: str = param("silu", "hidden activation of the model",
                                  choices=("tanh", "relu", "elu", "gelu", "silu"))
    probabilistic: bool = param(True, "Gaussian members trained by NLL (else deterministic, MSE)")
    learn_reward: bool = param(False, "learn the reward with the dynamics (else the env's known reward)")
    model_learning_rate: float = param(1e-3, "Adam learning rate of the model", low=0.0, low_open=True)
    model_weight_decay: float = param(5e-5, "L2 weight decay of the model", low=0.0)
    model_batch_size: int = param(256, "minibatch size of model fitting", low=1)
    model_max_epochs: int = param(20, "most epochs per fit", low=1)
    model_val_fraction: float = param(0.1, "fraction of D held out for validation", low=0.0, high=0.9)
    model_patience: int = param(5, "epochs without a 1% validation improvement before stopping", low=1)
    bootstrap: bool = param(True, "each member trains on its own bootstrap resample of D")
    model_train_freq: int = param(250, "env steps between model fits", low=1)
    dataset_size: int = param(1_000_000, "real transitions the model is fit on (oldest dropped beyond)", low=1)

    def __post_init__(self):
        if self.num_model_elites > self.ensemble_size:
            raise ConfigError(f"num_model_elites: must be <= ensemble_size = {self.ensemble_size}, "
                              f"got {self.num_model_elites}")


def make_sac(agent):
    """The SAC learner of a :class:`SACWithModelConfig` agent (deeprl.algos.offpolicy.sac, unchanged)."""
    from deeprl.algos.offpolicy.sac import SAC, SACConfig

    c = agent.cfg
    cfg = SACConfig(buffer_size=c.buffer_size, learning_starts=c.learning_starts, batch_size=c.batch_size,
                    learning_rate=c.learning_rate, gamma=c.gamma, tau=c.tau, alpha=c.alpha,
                    autotune_alpha=c.autotune_alpha, target_entropy=c.target_entropy, num_critics=c.num_critics,
                    hidden_sizes=c.hidden_sizes)
    return SAC.from_config(agent.run, cfg, agent.obs_space, agent.act_space)
