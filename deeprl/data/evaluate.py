"""Deterministic evaluation over N episodes, optionally recording video."""
from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np

from deeprl.envs.make import make_env, make_vec_env

MAX_PARALLEL = 16


def evaluate(agent, episodes: int, seed: int, env_id: str | None = None, video_dir: str | Path | None = None,
             deterministic: bool = True) -> dict:
    """Run ``episodes`` episodes with the agent's deterministic policy.

    Episodes run in parallel environments; each env plays a fixed share of the episodes
    (so short episodes are not over-represented). Returns ``eval/return_mean``,
    ``eval/return_std``, ``eval/length_mean`` and the list of returns.
    """
    env_id = env_id or agent.run.env_id
    if video_dir is not None:
        returns, lengths = _evaluate_with_video(agent, env_id, episodes, seed, Path(video_dir), deterministic)
    else:
        returns, lengths = _evaluate_vector(agent, env_id, episodes, seed, deterministic)
    return {"eval/return_mean": float(np.mean(returns)), "eval/return_std": float(np.std(returns)),
            "eval/length_mean": float(np.mean(lengths)), "returns": [float(r) for r in returns]}


def _evaluate_vector(agent, env_id, episodes, seed, deterministic):
    n = min(episodes, MAX_PARALLEL)
    targets = np.array([(episodes + i) // n for i in range(n)])  # shares summing to `episodes`
    envs = make_vec_env(env_id, n, dict_obs=agent.run.dict_obs, obs_history=agent.run.obs_history)
    try:
        obs, _ = envs.reset(seed=[seed + i for i in range(n)])
        counts = np.zeros(n, dtype=np.int64)
        ep_ret, ep_len = np.zeros(n), np.zeros(n, dtype=np.int64)
        returns, lengths = [], []
        while (counts < targets).any():
            actions = agent.predict(obs, deterministic=deterministic)
            obs, r, term, trunc, _ = envs.step(actions)
            ep_ret += r
            ep_len += 1
            for i in np.flatnonzero(term | trunc):
                if counts[i] < targets[i]:
                    returns.append(ep_ret[i])
                    lengths.append(ep_len[i])
                    counts[i] += 1
                ep_ret[i], ep_len[i] = 0.0, 0
        return returns, lengths
    finally:
        envs.close()


def _evaluate_with_video(agent, env_id, episodes, seed, video_dir, deterministic):
    for var in ("SDL_VIDEODRIVER", "SDL_AUDIODRIVER"):  # off-screen rendering, no sound device needed
        os.environ.setdefault(var, "dummy")
    if not os.environ.get("DISPLAY"):  # MuJoCo without a display: EGL (read when the renderer is made)
        os.environ.setdefault("MUJOCO_GL", "egl")
    env = make_env(env_id, dict_obs=agent.run.dict_obs, render_mode="rgb_array", obs_history=agent.run.obs_history)
    env = gym.wrappers.RecordVideo(env, str(video_dir), episode_trigger=lambda _: True, disable_logger=True)
    returns, lengths = [], []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            done, total, length = False, 0.0, 0
            while not done:
                obs, r, term, trunc, _ = env.step(agent.predict(obs, deterministic=deterministic))
                total, length, done = total + float(r), length + 1, term or trunc
            returns.append(total)
            lengths.append(length)
    finally:
        env.close()
    return returns, lengths
