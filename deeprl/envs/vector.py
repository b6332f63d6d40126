"""A lean synchronous vector environment (gymnasium ``VectorEnv`` API, same-step autoreset).

Gymnasium's ``SyncVectorEnv`` merges every env's info dict on every step; for cheap
environments like CartPole that bookkeeping costs about as much as the physics. This one
keeps only what training needs: when an episode ends, ``step`` returns the first observation
of the next episode, and ``info['final_obs']`` / ``info['_final_obs']`` carry the true final
observations (the same convention as ``gymnasium.vector.AutoresetMode.SAME_STEP``).
"""
from __future__ import annotations

import numpy as np
from gymnasium.spaces import Discrete
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array


class SyncVectorEnv(VectorEnv):
    def __init__(self, env_fns):
        self.envs = [fn() for fn in env_fns]
        self.num_envs = len(self.envs)
        first = self.envs[0]
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {**first.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        self.render_mode = first.render_mode
        self.spec = first.spec
        self._obs = create_empty_array(self.single_observation_space, self.num_envs)
        # Python ints take Discrete.contains' fast path (the env's own action check)
        self._int_actions = isinstance(self.single_action_space, Discrete)

    def reset(self, *, seed=None, options=None):
        if seed is None or isinstance(seed, int):
            seed = [None if seed is None else seed + i for i in range(self.num_envs)]
        obs = [env.reset(seed=s, options=options)[0] for env, s in zip(self.envs, seed)]
        self._obs = concatenate(self.single_observation_space, obs, self._obs)
        return _copy(self._obs), {}

    def step(self, actions):
        n = self.num_envs
        rewards = np.zeros(n)
        terminated = np.zeros(n, bool)
        truncated = np.zeros(n, bool)
        obs, final = [None] * n, {}
        if self._int_actions:
            actions = np.asarray(actions).tolist()
        for i, env in enumerate(self.envs):
            o, rewards[i], terminated[i], truncated[i], _ = env.step(actions[i])
            if terminated[i] or truncated[i]:
                final[i] = o
                o, _ = env.reset()
            obs[i] = o
        self._obs = concatenate(self.single_observation_space, obs, self._obs)
        info = {}
        if final:
            final_obs = np.empty(n, dtype=object)
            mask = np.zeros(n, bool)
            for i, o in final.items():
                final_obs[i], mask[i] = o, True
            info = {"final_obs": final_obs, "_final_obs": mask}
        return _copy(self._obs), rewards, terminated, truncated, info

    def close_extras(self, **kwargs):
        for env in self.envs:
            env.close()


def _copy(x):
    return {k: _copy(v) for k, v in x.items()} if isinstance(x, dict) else x.copy()
