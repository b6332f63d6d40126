"""deeprl/Cheetah-v0 (CS285 HW4's cheetah): Gymnasium's checker, the observation layout, the
course's reward, and the time limit."""
from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import deeprl.envs  # noqa: F401  (registers the env)
from deeprl.envs.cheetah import CHEETAH_ID


def test_passes_gymnasiums_checker_and_renders_off_screen():
    check_env(gym.make(CHEETAH_ID).unwrapped, skip_render_check=True)  # (its render check would open a "human" window)
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")  # as deeprl eval --video does
    env = gym.make(CHEETAH_ID, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8 and frame.std() > 0


def test_observation_and_reward_are_the_courses():
    env = gym.make(CHEETAH_ID)
    obs, _ = env.reset(seed=3)
    sim = env.unwrapped
    assert obs.shape == (21,) and obs.dtype == np.float64 and sim.dt == 0.01
    rng = np.random.default_rng(0)
    penalties = 0
    for t in range(500):
        x_before = sim.data.qpos[0]
        obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, 6))
        np.testing.assert_allclose(obs[:9], sim.data.qpos)
        np.testing.assert_allclose(obs[18:], sim.data.body("torso").xpos)
        # obs[9] is the root's forward velocity: close to the change of x over the step
        assert abs(obs[9] - (sim.data.qpos[0] - x_before) / sim.dt) < 0.05 * (1 + abs(obs[9]))
        bent = int(obs[6] > 0.2) + int(obs[7] > 0) + int(obs[8] > 0)
        penalties += bent > 0
        assert r == obs[9] - 10 * bent and not term
        assert trunc == (t == 499)
    assert penalties > 0  # random actions bend the front leg past its range


def test_resets_are_seeded_and_near_the_models_pose():
    env = gym.make(CHEETAH_ID)
    a, _ = env.reset(seed=7)
    b, _ = env.reset(seed=7)
    np.testing.assert_array_equal(a, b)
    init = env.unwrapped.init_qpos
    assert np.all(np.abs(a[:9] - init) <= 0.1)
