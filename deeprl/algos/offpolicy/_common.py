"""Small helpers shared by the off-policy algorithms (replay-based): the replay loop's spec from
a config's fields, target-network copies on one flat tensor, and target updates counted in
env steps. (The replay loop, deeprl/runners/replay_loop.py, owns the buffer.)"""
from __future__ import annotations

import copy

import torch

from deeprl.core.errors import ConfigError
from deeprl.core.types import ReplaySpec
from deeprl.nn.flat import FlatParams


def check_off_policy_run(agent) -> None:
    if agent.run.normalize_obs or agent.run.normalize_reward:
        raise ConfigError(f"{agent.name}: normalize_obs/normalize_reward are not supported with a replay buffer "
                          "(stored transitions would go stale); set them to false")


def replay_spec_of(c, **fields) -> ReplaySpec:
    """The replay spec from a config's ``buffer_size``, ``batch_size``, ``learning_starts``,
    ``gradient_steps`` and ``n_step``; ``fields`` set the others (prioritized replay...)."""
    return ReplaySpec(capacity=c.buffer_size, batch_size=c.batch_size, learning_starts=c.learning_starts,
                      gradient_steps=c.gradient_steps, n_step=c.n_step, **fields)


def target_copy(module: torch.nn.Module) -> tuple[torch.nn.Module, FlatParams]:
    """A frozen copy of ``module`` whose parameters live in one flat tensor (call before
    flattening ``module``'s own parameters so both have the same order)."""
    target = copy.deepcopy(module)
    flat = FlatParams(target)
    target.requires_grad_(False)
    flat.param.requires_grad_(False)
    return target, flat


@torch.no_grad()
def polyak_(target: FlatParams, online: FlatParams, tau: float) -> None:
    """theta' <- tau theta + (1 - tau) theta' (tau = 1: copy)."""
    if tau >= 1.0:
        target.param.copy_(online.param)
    else:
        target.param.lerp_(online.param, tau)


def sync_target_per_env_steps(target: FlatParams, online: FlatParams, env_steps: int, collected: int,
                              interval: int, tau: float) -> None:
    """Target updates due after ``collected`` more env steps (one every ``interval`` env steps):
    one copy for a hard update (``tau = 1``; several due at once are one copy), else one Polyak
    step per interval crossed."""
    syncs = env_steps // interval - (env_steps - collected) // interval
    for _ in range(min(syncs, 1) if tau >= 1 else syncs):
        polyak_(target, online, tau)
