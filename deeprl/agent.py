"""The machinery every algorithm shares: construction from a config, acting, saving,
loading and ``learn``. An algorithm file subclasses :class:`Agent` once and supplies

- ``name`` and ``Config`` (a dataclass of its hyperparameters),
- ``build()``: networks and optimisers from ``self.obs_space``, ``self.act_space``, ``self.cfg``,
- ``act(obs, deterministic=False) -> (actions, log_probs or None)`` on a batch of tensors (the default
  samples ``self.actor(obs)``, a distribution),
- ``loop``: which training loop runs it (deeprl/runners): ``collect`` (the default: collect a
  rollout, update), ``replay`` (collect into a replay buffer the loop owns, sample, update:
  off-policy algorithms declare it with ``replay_spec()``), ``offline`` (minibatches of
  ``dataset()``, one gradient step each) or ``solve`` (one ``update`` that solves a known
  model, no collector),
- ``rollout_spec() -> ("steps", n) | ("episodes", n) | None``: the data one update consumes
  (collecting loop; ``None``: this iteration collects nothing),
- ``update(batch, progress) -> dict`` of float metrics; it reads ``train_state`` (the loop's
  counters) and never writes it, and reports the gradient steps it took as
  ``train/gradient_steps`` (the replay loop counts them itself),
- replay loop only: ``replay_spec()`` (a :class:`~deeprl.core.types.ReplaySpec`) and optionally
  ``observe(rollout) -> dict`` (sees each collected rollout: exploration state, target syncs),
- ``modules()`` (nn.Modules/optimisers to checkpoint) and optionally ``extra_state()``,
  ``prepare()`` (load data before the loop starts) and ``summary()`` (extra summary fields).

There is no deeper hierarchy: algorithms never inherit from each other.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces

from deeprl.core import checkpoint, config
from deeprl.core.errors import CheckpointError, ConfigError
from deeprl.core.seeding import rng_state, seed_everything, set_rng_state
from deeprl.core.types import BUDGET_COUNTER, ReplaySpec, Rollout
from deeprl.data.collect import Collector, map_obs, to_tensor
from deeprl.data.replay import ReplayBuffer, check_fits
from deeprl.envs.make import check_env_id, frame_stack_of, make_vec_env, obs_space_of
from deeprl.envs.spaces import space_from_dict, space_to_dict
from deeprl.nn.acting import ActorPolicy, RawObsPolicy
from deeprl.nn.networks import is_image_space
from deeprl.nn.normalize import ObsNormalizer, RewardScaler
from deeprl.nn.numpy_actor import numpy_actor
from deeprl.nn.policies import check_action_space


class Agent:
    name: str = ""
    Config: type = object
    action_spaces: tuple = (spaces.Discrete, spaces.Box)
    loop: str = "collect"  # a key of deeprl.core.types.BUDGET_COUNTER
    evaluate_first_iteration: bool = False  # evaluate after iteration 0 too (DAgger: the BC policy)
    log_every: int = 0  # budget-counter units between metrics rows (0: every iteration); RunConfig.log_every overrides
    # Small on-policy updates are dispatch-bound (1 thread is fastest); replay-based updates on
    # 256-wide layers are matmul-bound and gain ~1.3-1.8x from a second thread.
    default_torch_threads: int = 1

    def __init__(self, env: str = "CartPole-v1", seed: int | None = None, *, preset: str | None = "auto",
                 **hyperparameters):
        run, cfg, source = config.resolve(self.name, self.Config, env, seed=seed, preset=preset,
                                          overrides=hyperparameters)
        self._setup(run, cfg, preset_source=source)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_config(cls, run: config.RunConfig, cfg, obs_space=None, act_space=None, preset_source=None):
        agent = cls.__new__(cls)
        agent._setup(run, cfg, obs_space, act_space, preset_source)
        return agent

    def _setup(self, run, cfg, obs_space=None, act_space=None, preset_source=None):
        self.run, self.cfg, self.preset_source = run, cfg, preset_source
        threads = run.torch_threads if run.torch_threads is not None else \
            min(self.default_torch_threads, os.cpu_count() or 1)
        if threads:
            torch.set_num_threads(threads)
        if run.device != "cpu" and not _device_available(run.device):
            raise ConfigError(f"device: {run.device!r} is not available on this machine; valid: cpu")
        self.device = torch.device(run.device)
        if obs_space is None:
            check_env_id(run.env_id)
            obs_space, act_space = obs_space_of(run.env_id, run.dict_obs, run.obs_history)
        check_action_space(act_space, self.name, self.action_spaces)
        self.obs_space, self.act_space = obs_space, act_space
        self.rng = seed_everything(run.seed)
        self.obs_normalizer = None
        if run.normalize_obs:
            if not isinstance(obs_space, spaces.Box) or is_image_space(obs_space):
                raise ConfigError("normalize_obs: only vector (Box) observations can be normalised; "
                                  "set normalize_obs=false")
            self.obs_normalizer = ObsNormalizer(obs_space.shape, clip=run.clip_obs)
        self.reward_scaler = RewardScaler(run.num_envs, self.gamma) if run.normalize_reward else None
        self.collector = None  # created by the runner on the first learn()
        self._pending_collector_state = None  # the collector's state from a checkpoint
        self.replay = None  # the replay loop's buffer: built on the first learn(), or restored from a checkpoint
        self.reward_transform = None  # a deeprl.core.types.RewardTransform the loops apply, or None
        self.train_state = {"env_steps": 0, "grad_steps": 0, "iterations": 0, "wall_time_s": 0.0, "num_evals": 0,
                            "next_eval": run.eval_every or None, "next_checkpoint": run.checkpoint_every or None,
                            "last_eval": None, "next_log": 0}
        self.build()
        if self.loop == "replay":  # refuse a buffer that cannot fit before anything is allocated
            spec = self.replay_spec()
            check_fits(spec.capacity, obs_space, act_space, spec.prioritized, self._frame_stack())

    # -- hooks an algorithm provides --------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def act(self, obs, deterministic: bool = False):
        """(actions, log-probs or None) for a batch of network inputs (tensors); by default from
        the stochastic policy ``self.actor(obs) -> distribution`` (its mode when ``deterministic``)."""
        dist = self.actor(obs)
        a = dist.mode() if deterministic else dist.sample()
        return a, dist.log_prob(a)

    def behaviour_policy(self):
        """The policy that collects experience (deeprl.nn.acting): NumPy in and out,
        ``obs -> (actions, log_probs or None)``, picklable through ``snapshot()``. The default
        samples ``self.actor(obs)`` with its log-probs: as NumPy for an MLP actor on CPU (see
        deeprl.nn.numpy_actor: several times cheaper at a few envs), else through torch.
        Algorithms that override ``act`` and not this method act through the agent (planners)."""
        if type(self).act is Agent.act:
            fast = numpy_actor(getattr(self, "actor", None), self.rng) if self.device.type == "cpu" else None
            return fast if fast is not None else ActorPolicy(self.actor, self.device)

        def act(obs):
            with torch.inference_mode():
                a, logp = self.act(to_tensor(obs, self.device))
            return a.cpu().numpy(), None if logp is None else logp.cpu().numpy()

        return act

    def policy_snapshot(self) -> RawObsPolicy:
        """A frozen, picklable copy of the behaviour policy that takes raw observations: the
        weights, exploration state and a copy of the generator as of now, and the observation
        normaliser's statistics. A worker process can act with it without the agent."""
        normalizer = copy.deepcopy(self.obs_normalizer) if self.obs_normalizer is not None else None
        policy = self.behaviour_policy()
        if not hasattr(policy, "snapshot"):
            raise ConfigError(f"{self.name} acts through the agent (its behaviour_policy() has no snapshot()); "
                              "its policy cannot be snapshotted yet")
        return RawObsPolicy(policy.snapshot(), normalizer)

    def rollout_spec(self) -> tuple[str, int] | None:
        raise NotImplementedError

    def replay_spec(self) -> ReplaySpec:
        """The replay loop's buffer and gradient-step schedule (off-policy algorithms)."""
        raise NotImplementedError

    def observe(self, rollout) -> dict:
        """Replay loop: called with each collected rollout once it is stored (before any gradient
        step); for exploration state and env-step schedules. Returns metrics for the row."""
        return {}

    def prepare(self) -> None:
        """Load what training needs (e.g. demonstrations) before the loop writes anything."""

    def dataset(self):
        """The fixed dataset of the offline loop: indexable by a tensor of indices, with ``len``."""
        raise NotImplementedError

    def summary(self) -> dict:
        """Extra fields for ``summary.json`` (e.g. a bandit's regret)."""
        return {}

    def update(self, batch, progress: float) -> dict:
        raise NotImplementedError

    def modules(self) -> dict:
        raise NotImplementedError

    def policy_modules(self) -> tuple[str, ...]:
        """The names in ``modules()`` that ``act`` uses: what a policy file keeps
        (deeprl.experts.export_policy). By default the ``actor``, else the ``q_net``."""
        names = [k for k in ("actor", "q_net") if k in self.modules()]
        if not names:
            raise ConfigError(f"{self.name}: no actor or q_net module; this agent cannot be exported as a policy")
        return names[:1]

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def autocast(self):
        """Context for an update's forward passes: bfloat16 autocast when the run asks for it."""
        if self.run.matmul_precision == "bfloat16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def gamma(self) -> float:
        return float(getattr(self.cfg, "gamma", 0.99))

    # -- using a policy ---------------------------------------------------------------------
    def preprocess(self, obs):
        """Raw observations -> network inputs (normalised when ``normalize_obs``, with the
        statistics as they are; only ``absorb`` changes them)."""
        if self.obs_normalizer is not None:
            return self.obs_normalizer(obs)
        if isinstance(obs, dict):
            return obs
        return obs.astype(np.float32) if obs.dtype == np.float64 else obs

    def predict(self, obs, deterministic: bool = True) -> np.ndarray:
        """Actions for a single observation or a batch (NumPy in, NumPy out)."""
        single = _is_single(obs, self.obs_space)
        if single:
            obs = map_obs(lambda x: np.asarray(x)[None], obs)
        x = to_tensor(self.preprocess(map_obs(np.asarray, obs)), self.device)
        with torch.inference_mode():
            actions, _ = self.act(x, deterministic=deterministic)
        actions = actions.cpu().numpy()
        if isinstance(self.act_space, spaces.Box):
            actions = np.clip(actions, self.act_space.low, self.act_space.high)
        return actions[0] if single else actions

    # -- training -----------------------------------------------------------------------------
    def make_collector(self) -> Collector:
        envs = make_vec_env(self.run.env_id, self.run.num_envs, dict_obs=self.run.dict_obs,
                            vectorization=self.run.vectorization, obs_history=self.run.obs_history)
        box = isinstance(self.act_space, spaces.Box)
        return Collector(envs, self.run.seed, preprocess=self.preprocess, keep_raw_obs=self.obs_normalizer is not None,
                         action_low=self.act_space.low if box else None,
                         action_high=self.act_space.high if box else None)

    def absorb(self, rollout: Rollout) -> Rollout:
        """The learner's side of the normalisers, called by the collecting loop on every collected
        batch before ``update``: fold the batch's raw observations into the observation statistics
        and its returns into the reward scaler's, then return the batch with scaled rewards. The
        batch's observations stay as the policy saw them (normalised with the statistics it acted
        with), so log-probabilities and values computed from them remain consistent."""
        if self.obs_normalizer is not None:
            raw = rollout.raw_obs
            if raw is None:
                raise ConfigError(f"{self.name}: normalize_obs needs the batch's raw observations; "
                                  "collect with Collector(keep_raw_obs=True)")
            self.obs_normalizer.update(raw[rollout.valid])
        if self.reward_scaler is None:
            return rollout
        self.reward_scaler.update(rollout.rewards, rollout.terminated | rollout.truncated, rollout.valid)
        scaled = self.reward_scaler.scale(rollout.rewards).astype(np.float32)
        return dataclasses.replace(rollout, rewards=scaled)

    def _frame_stack(self) -> int:
        return frame_stack_of(self.run.env_id, self.run.obs_history)

    def make_replay(self) -> ReplayBuffer:
        """The replay loop's buffer from ``replay_spec()``; frame stacks (Atari, ``obs_history``) are
        stored one frame per step; sampling draws from ``self.rng``."""
        s = self.replay_spec()
        return ReplayBuffer(s.capacity, self.obs_space, self.act_space, self.run.num_envs, n_step=s.n_step,
                            gamma=self.gamma, prioritized=s.prioritized, alpha=s.priority_alpha,
                            priority_eps=s.priority_eps, rng=self.rng, frame_stack=self._frame_stack())

    def set_budget(self, total_steps: int) -> None:
        """Change the run's budget (environment steps; gradient steps for an offline loop), e.g. to
        train a finished run on. Schedules defined as fractions of the budget (DQN's epsilon,
        tabular epsilon) follow the new budget from the current step on."""
        counter = BUDGET_COUNTER[self.loop]
        done = self.train_state[counter] if counter != "iterations" else 0
        if int(total_steps) < max(done, 1):
            what = counter.replace("_", " ")
            raise ConfigError(f"total_steps={total_steps} is below the {done} {what} this run has already taken"
                              if done else f"total_steps must be at least 1, got {total_steps}")
        self.run = dataclasses.replace(self.run, total_steps=int(total_steps))

    def learn(self, total_steps: int | None = None, run_dir: str | Path | None = None,
              progress: bool = False, log_stdout: bool = False):
        """Train until ``total_steps`` in all (default: the config's): environment steps, or
        gradient steps for an offline algorithm (BC)."""
        from deeprl.runners.train import train

        if total_steps is not None:
            self.set_budget(total_steps)
        train(self, run_dir=run_dir, progress=progress, log_stdout=log_stdout)
        return self

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "algo": self.name,
            "run_config": config.to_dict(self.run),
            "config": config.to_dict(self.cfg),
            "spaces": {"obs": space_to_dict(self.obs_space), "act": space_to_dict(self.act_space)},
            "modules": {k: m.state_dict() for k, m in self.modules().items()},
            "extra": self.extra_state(),
            "normalizers": {"obs": self.obs_normalizer.state_dict() if self.obs_normalizer else None,
                            "reward": self.reward_scaler.state_dict() if self.reward_scaler else None},
            "train": dict(self.train_state),
            "rng": rng_state(self.rng),
            "collector": self.collector.state_dict() if self.collector is not None else None,
            "replay": self.replay.state_dict() if self.replay is not None else None,
            "reward_transform": self.reward_transform.state_dict() if self.reward_transform is not None else None,
        }

    def save(self, path: str | Path) -> None:
        checkpoint.save(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | Path, **run_overrides):
        """Rebuild an agent (networks, optimisers, normalisers, counters, RNG) from a file."""
        return cls.from_state_dict(checkpoint.load(path), source=str(path), **run_overrides)

    @classmethod
    def from_state_dict(cls, d: dict, source: str = "checkpoint", **run_overrides):
        if cls.name and d.get("algo") != cls.name:
            raise CheckpointError(f"{source} holds a {d.get('algo')!r} agent, not {cls.name!r}")
        try:
            run = config.build(config.RunConfig, {**d["run_config"], **run_overrides})
            cfg = config.build(cls.Config, d["config"])
            obs_space, act_space = space_from_dict(d["spaces"]["obs"]), space_from_dict(d["spaces"]["act"])
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"{source} is missing or has malformed field {e}") from None
        except ConfigError as e:
            raise CheckpointError(f"{source} has an invalid config: {e}") from None
        agent = cls.from_config(run, cfg, obs_space, act_space)
        try:
            for k, m in agent.modules().items():
                m.load_state_dict(d["modules"][k])
            extra = dict(d.get("extra", {}))
            replay_state = d.get("replay", extra.pop("replay", None))  # before 2026-12-03: the algorithm's
            agent.load_extra_state(extra)
            if replay_state is not None and agent.loop == "replay":
                agent.replay = agent.make_replay()
                agent.replay.load_state_dict(replay_state)
            if d.get("reward_transform") is not None and agent.reward_transform is not None:
                agent.reward_transform.load_state_dict(d["reward_transform"])
            if d["normalizers"]["obs"] is not None and agent.obs_normalizer is not None:
                agent.obs_normalizer.load_state_dict(d["normalizers"]["obs"])
            if d["normalizers"].get("reward") is not None and agent.reward_scaler is not None:
                agent.reward_scaler.load_state_dict(d["normalizers"]["reward"])
            agent.train_state.update(_counters_of(d["train"], cls.loop))
            set_rng_state(agent.rng, d["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise CheckpointError(f"{source} does not match a {cls.name} agent "
                                  f"({str(e).splitlines()[0][:160]})") from None
        agent._pending_collector_state = d.get("collector")
        return agent


def _counters_of(train: dict, loop: str) -> dict:
    """A checkpoint's counters. Checkpoints written before ``grad_steps`` existed (2026-12-03)
    counted an offline algorithm's (BC's) gradient steps as ``env_steps``."""
    train = dict(train)
    if "grad_steps" not in train:
        offline = loop == "offline"
        train["grad_steps"] = train.get("env_steps", 0) if offline else 0
        if offline:
            train["env_steps"] = 0
    return train


def _is_single(obs, space) -> bool:
    if isinstance(space, spaces.Dict):
        k = next(iter(space.spaces))
        return np.asarray(obs[k]).shape == space[k].shape
    return np.asarray(obs).shape == space.shape


def _device_available(device: str) -> bool:
    if device == "cuda":
        return torch.cuda.is_available()
    if device == "mps":
        return torch.backends.mps.is_available()
    return True
