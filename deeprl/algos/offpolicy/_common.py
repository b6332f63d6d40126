"""Small helpers shared by the off-policy algorithms (replay-based): a replay buffer built
from the run's settings, target-network copies on one flat tensor, the random policy used
before ``learning_starts``, and the number of gradient steps per iteration."""
from __future__ import annotations

import copy

import numpy as np
import torch
from gymnasium import spaces

from deeprl.core.errors import ConfigError
from deeprl.data.replay import ReplayBuffer
from deeprl.envs.make import frame_stack_of
from deeprl.nn.flat import FlatParams


def check_off_policy_run(agent) -> None:
    if agent.run.normalize_obs or agent.run.normalize_reward:
        raise ConfigError(f"{agent.name}: normalize_obs/normalize_reward are not supported with a replay buffer "
                          "(stored transitions would go stale); set them to false")


def make_replay(agent, n_step: int = 1, prioritized: bool = False, alpha: float = 0.6) -> ReplayBuffer:
    """The agent's replay buffer; frame stacks (Atari, ``obs_history``) are stored one frame per step."""
    c = agent.cfg
    return ReplayBuffer(c.buffer_size, agent.obs_space, agent.act_space, agent.run.num_envs, n_step=n_step,
                        gamma=agent.gamma, prioritized=prioritized, alpha=alpha, rng=agent.rng,
                        frame_stack=frame_stack_of(agent.run.env_id, agent.run.obs_history))


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


def random_policy(act_space: spaces.Space, rng: np.random.Generator):
    """Uniform random actions (NumPy behaviour policy), used before learning starts."""
    if isinstance(act_space, spaces.Discrete):
        def act(obs):
            n = len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)
            return rng.integers(0, act_space.n, n), np.zeros(n, np.float32)
    else:
        low, high = act_space.low.astype(np.float32), act_space.high.astype(np.float32)

        def act(obs):
            n = len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)
            return rng.uniform(low, high, (n,) + low.shape).astype(np.float32), np.zeros(n, np.float32)
    return act


def num_gradient_steps(gradient_steps: int, batch) -> int:
    """``gradient_steps`` per iteration, or (-1) as many as environment steps were collected."""
    return gradient_steps if gradient_steps > 0 else int(batch.rewards.size)


def take_gradient_steps(gradient_step, n: int, merge: bool = False) -> dict:
    """Run ``gradient_step()`` ``n`` times; the metrics of the last step (``merge``: of all steps,
    later ones overriding) plus ``train/gradient_steps = n`` (the loop's ``grad_steps`` counter)."""
    metrics: dict = {}
    for _ in range(n):
        if merge:
            metrics.update(gradient_step())
        else:
            metrics = gradient_step()
    return {**metrics, "train/gradient_steps": n}
