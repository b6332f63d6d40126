"""Expert policies for imitation learning: the small policy files shipped with deeprl, and
any policy a user saved with deeprl.

A *policy file* (``export_policy``) is a deeprl checkpoint that holds only what acting needs:
the algorithm name, its config, the spaces, the modules ``act`` uses (``Agent.policy_modules``)
and the observation normaliser, plus a ``meta`` dict (the env, the measured return and the
command that re-creates it). It loads, like every deeprl checkpoint, without executing
pickled code. A full training checkpoint (``checkpoints/latest.pt`` of a run) works as an
expert too.

Shipped experts live in ``deeprl/experts/files/NAME.pt``; NAME is the env id with ``/``
replaced by ``_`` (``Hopper-v5``). ``benchmarks/train_experts.py`` re-creates them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import random
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from gymnasium import spaces

from deeprl.core import checkpoint, config
from deeprl.core.errors import CheckpointError, ConfigError, SpaceError
from deeprl.envs.spaces import space_from_dict, space_to_dict

EXPERT_DIR = Path(__file__).parent / "files"
POLICY_KIND = "policy"


# Scripted controllers that act as experts: name -> (module, class with predict(obs) and a seed)
SCRIPTED = {"deeprl_ObstacleCourse-v0": ("deeprl.envs.obstacle", "ObstacleExpert")}


def shipped_experts() -> dict[str, Path | None]:
    """Names of the experts shipped with deeprl -> their files (None: a scripted controller)."""
    return {**{p.stem: p for p in sorted(EXPERT_DIR.glob("*.pt"))}, **{k: None for k in SCRIPTED}}


def expert_name_for(env_id: str) -> str:
    return env_id.replace("/", "_")


@dataclasses.dataclass
class Expert:
    """A policy that labels observations: ``predict(obs)`` gives its deterministic action for
    one observation or a batch. Either a deeprl agent (``agent``) or a scripted controller."""

    name: str
    policy: Callable[[np.ndarray], np.ndarray]
    observation_space: spaces.Space
    action_space: spaces.Space
    meta: dict
    agent: object | None = None
    rng: np.random.Generator | None = None  # a scripted expert's own randomness (checkpointed by DAgger)

    @property
    def run(self) -> config.RunConfig:
        """The settings evaluation needs (``dict_obs``, ``obs_history``)."""
        return self.agent.run if self.agent is not None else config.RunConfig()

    def predict(self, obs, deterministic: bool = True) -> np.ndarray:
        return self.policy(obs)

    def check_env(self, env_id: str, obs_space: spaces.Space, act_space: spaces.Space) -> None:
        """A clear error when this expert cannot act in ``env_id``."""
        for what, mine, theirs in (("observation", self.observation_space, obs_space),
                                   ("action", self.action_space, act_space)):
            if not _same_space(mine, theirs):
                raise SpaceError(f"expert {self.name!r} has {what} space {mine} but {env_id} has {theirs}; "
                                 f"use an expert trained on {env_id} (shipped: {', '.join(shipped_experts())})")


def _same_space(a: spaces.Space, b: spaces.Space) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.Discrete):
        return a.n == b.n and a.start == b.start
    if isinstance(a, spaces.Box):
        return a.shape == b.shape and np.allclose(a.low, b.low) and np.allclose(a.high, b.high)
    return a == b


def export_policy(agent, path: str | Path, meta: dict | None = None) -> Path:
    """Write the acting part of ``agent`` (see the module docstring) to ``path``."""
    names = agent.policy_modules()
    modules = agent.modules()
    payload = {"kind": POLICY_KIND, "algo": agent.name, "run_config": config.to_dict(agent.run),
               "config": config.to_dict(agent.cfg),
               "spaces": {"obs": space_to_dict(agent.obs_space), "act": space_to_dict(agent.act_space)},
               "modules": {k: modules[k].state_dict() for k in names},
               "normalizers": {"obs": agent.obs_normalizer.state_dict() if agent.obs_normalizer else None},
               "meta": dict(meta or {})}
    checkpoint.save(payload, path)
    return Path(path)


def load_policy(path: str | Path):
    """(agent, meta) from a policy file or a full deeprl checkpoint, acting only.

    The agent is built without touching global state: torch's RNG is restored afterwards and
    the thread count is left alone; a replay buffer in its config is shrunk to the minimum."""
    from deeprl.registry import ALGORITHMS

    d = checkpoint.load(path)
    algo = d.get("algo")
    if algo not in ALGORITHMS:
        raise CheckpointError(f"{path} holds an unknown algorithm {algo!r}; valid: {', '.join(sorted(ALGORITHMS))}")
    cls = ALGORITHMS[algo]
    if d.get("kind") != POLICY_KIND:  # a training checkpoint: keep what acting needs
        d = {**d, "meta": {"trained_env_steps": (d.get("train") or {}).get("env_steps")}}
    try:
        run = config.build(config.RunConfig, {**d["run_config"], "torch_threads": 0, "device": "cpu"})
        cfg = config.build(cls.Config, d["config"])
        if hasattr(cfg, "buffer_size"):
            cfg = dataclasses.replace(cfg, buffer_size=2 * run.num_envs)
        obs_space, act_space = space_from_dict(d["spaces"]["obs"]), space_from_dict(d["spaces"]["act"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path} is missing or has malformed field {e}") from None
    except ConfigError as e:
        raise CheckpointError(f"{path} has an invalid config: {e}") from None
    with _global_rng_preserved():
        agent = cls.from_config(run, cfg, obs_space, act_space)
    try:
        modules = agent.modules()
        for k in agent.policy_modules():
            modules[k].load_state_dict(d["modules"][k])
        if d.get("normalizers", {}).get("obs") is not None and agent.obs_normalizer is not None:
            agent.obs_normalizer.load_state_dict(d["normalizers"]["obs"])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path} does not match a {algo} policy ({str(e).splitlines()[0][:160]})") from None
    return agent, dict(d.get("meta") or {})


@contextlib.contextmanager
def _global_rng_preserved():
    """Building an agent seeds the global RNGs; loading an expert must not disturb a run's."""
    py, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


def load_expert(name_or_path: str | Path, env_id: str | None = None, seed: int = 0) -> Expert:
    """A shipped expert by name (``Hopper-v5``), or any policy file / checkpoint by path;
    ``"auto"`` picks the shipped expert of ``env_id``. With ``env_id``, the expert's spaces are
    checked against that env's. ``seed`` seeds a scripted expert's own random choices."""
    name = str(name_or_path)
    shipped = shipped_experts()
    if name == "auto":
        if env_id is None or expert_name_for(env_id) not in shipped:
            raise ConfigError(f"no shipped expert for {env_id}; shipped experts: {', '.join(shipped) or '(none)'}; "
                              "pass expert=PATH to a saved deeprl policy or checkpoint")
        name = expert_name_for(env_id)
    if name in SCRIPTED:
        return _scripted(name, env_id, seed)
    if name in shipped:
        path = shipped[name]
    else:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"unknown expert {name!r}: not a shipped expert ({', '.join(shipped) or 'none'}) "
                              "and no such policy file")
    agent, meta = load_policy(path)
    expert = Expert(name if name in shipped else str(path), lambda obs: agent.predict(obs, deterministic=True),
                    agent.obs_space, agent.act_space, meta, agent)
    if env_id is not None:
        from deeprl.envs.make import check_env_id, obs_space_of

        check_env_id(env_id)
        expert.check_env(env_id, *obs_space_of(env_id))
    return expert


def _scripted(name: str, env_id: str | None, seed: int) -> Expert:
    import importlib

    from deeprl.envs.make import obs_space_of

    module, cls = SCRIPTED[name]
    own_env = name.replace("_", "/", 1)
    controller = getattr(importlib.import_module(module), cls)(seed=seed)
    obs_space, act_space = obs_space_of(own_env)
    expert = Expert(name, controller.predict, obs_space, act_space, {"scripted": f"{module}.{cls}"},
                    rng=getattr(controller, "rng", None))
    if env_id is not None:
        from deeprl.envs.make import check_env_id

        check_env_id(env_id)
        expert.check_env(env_id, *obs_space_of(env_id))
    return expert


def rollout_expert(expert: Expert, env_id: str, episodes: int, seed: int) -> list[dict]:
    """``episodes`` episodes of the expert's deterministic policy in ``env_id`` (seeds
    ``seed, seed + 1, ...``), as dicts of arrays in the Minari episode layout."""
    from deeprl.envs.make import make_env

    env = make_env(env_id)
    out = []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            O, A, R, TE, TR = [obs], [], [], [], []
            done = False
            while not done:
                a = expert.predict(obs)
                obs, r, term, trunc, _ = env.step(a)
                O.append(obs)
                A.append(a)
                R.append(float(r))
                TE.append(bool(term))
                TR.append(bool(trunc))
                done = term or trunc
            out.append({"observations": np.asarray(O), "actions": np.asarray(A), "rewards": np.asarray(R),
                        "terminations": np.asarray(TE), "truncations": np.asarray(TR)})
    finally:
        env.close()
    return out
