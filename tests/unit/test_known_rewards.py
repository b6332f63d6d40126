"""Each known reward and termination function (deeprl.envs.rewards) equals the env's own on 1,000
real transitions (random actions, a little beyond the action box to exercise the clipping)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from deeprl.core.errors import ConfigError
from deeprl.envs.rewards import KNOWN_REWARD_ENVS, KNOWN_TERMINATION_ENVS, known_reward, known_termination

# episodes that start near the goal, every other reset, so that random actions also reach it
NEAR_GOAL = {"deeprl/Obstacles-v0": lambda rng: {"start": (0.7 + rng.uniform(-0.05, 0.05), -0.65)}}


def _transitions(env_id: str, n: int = 1000, seed: int = 0):
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    rows = {k: [] for k in ("obs", "action", "next_obs", "reward", "terminated")}
    obs, _ = env.reset(seed=seed)
    while len(rows["reward"]) < n:
        action = rng.uniform(low * 1.2, high * 1.2).astype(np.float32)
        nxt, r, term, trunc, _ = env.step(action)
        for k, v in zip(rows, (obs, action, nxt, r, term)):
            rows[k].append(v)
        obs = nxt
        if term or trunc:
            near = env_id in NEAR_GOAL and rng.random() < 0.5
            obs, _ = env.reset(seed=int(rng.integers(1 << 30)), options=NEAR_GOAL[env_id](rng) if near else None)
    env.close()
    return {k: np.asarray(v) for k, v in rows.items()}


@pytest.mark.parametrize("env_id", KNOWN_REWARD_ENVS)
def test_known_reward_and_termination_equal_the_envs(env_id):
    d = _transitions(env_id)
    known = known_reward(env_id)
    s, a, s2 = (torch.as_tensor(d[k], dtype=torch.float64) for k in ("obs", "action", "next_obs"))
    np.testing.assert_allclose(known.reward(s, a, s2).numpy(), d["reward"], rtol=1e-5, atol=1e-4)
    if known.terminated is None:
        assert not d["terminated"].any()
    else:
        np.testing.assert_array_equal(known.terminated(s, a, s2).numpy(), d["terminated"])
        assert d["terminated"].any() and not d["terminated"].all()  # both outcomes were exercised


@pytest.mark.parametrize("env_id", [e for e in KNOWN_TERMINATION_ENVS if e not in KNOWN_REWARD_ENVS])
def test_known_termination_equals_the_envs(env_id):
    d = _transitions(env_id, n=1000)
    fn = known_termination(env_id)
    s, a, s2 = (torch.as_tensor(d[k], dtype=torch.float64) for k in ("obs", "action", "next_obs"))
    if fn is None:
        assert not d["terminated"].any()
    else:
        np.testing.assert_array_equal(fn(s, a, s2).numpy(), d["terminated"])
        assert d["terminated"].sum() >= 5 and not d["terminated"].all()  # random actions fall often
    with pytest.raises(ConfigError, match="learn_reward=true"):
        known_reward(env_id, "mbpo")


def test_unknown_env_names_the_known_ones_and_the_switch():
    with pytest.raises(ConfigError, match=r"mbrl: no known reward function for 'Hopper-v5' \(known: Pendulum-v1.*"
                                          r"learn_reward=true"):
        known_reward("Hopper-v5", "mbrl")
    with pytest.raises(ConfigError, match=r"no known termination function for 'Ant-v5' \(known: .*Hopper-v5"):
        known_termination("Ant-v5", "mbpo")
