"""deeprl/ContinuousCartPole-v0 (mbrl-lib's cartpole_continuous): Gymnasium's checker, and the
same transitions as Gymnasium's CartPole-v1 when the force is full left or right."""
from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import deeprl.envs  # noqa: F401  (registers the env)
from deeprl.envs.cartpole_continuous import CONTINUOUS_CARTPOLE_ID


def test_passes_gymnasiums_checker_and_renders():
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    check_env(gym.make(CONTINUOUS_CARTPOLE_ID).unwrapped, skip_render_check=True)
    env = gym.make(CONTINUOUS_CARTPOLE_ID, render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (400, 600, 3)
    env.close()


def test_full_force_matches_gymnasiums_cartpole():
    ours, ref = gym.make(CONTINUOUS_CARTPOLE_ID), gym.make("CartPole-v1")
    rng = np.random.default_rng(0)
    terminations = 0
    for episode in range(20):
        a, _ = ours.reset(seed=episode)
        b, _ = ref.reset(seed=episode)
        np.testing.assert_allclose(a, b, atol=1e-7)  # the same seeded start (float32 in CartPole-v1)
        ours.unwrapped.state = ref.unwrapped.state = np.asarray(b, np.float64)
        done, steps = False, 0
        while not done:
            push = int(rng.integers(2))
            a, ra, ta, tra, _ = ours.step(np.array([2.0 * push - 1.0], np.float32) * 1.5)  # clipped to +-1
            b, rb, tb, trb, _ = ref.step(push)
            assert a.dtype == np.float64
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
            assert (ra, ta, tra) == (rb, tb, trb) == (1.0, tb, tra)
            done, steps = ta or tra, steps + 1
        terminations += ta
        assert steps <= 200
    assert terminations == 20  # random pushes drop the pole well within 200 steps


def test_half_force_is_half_the_acceleration():
    env = gym.make(CONTINUOUS_CARTPOLE_ID).unwrapped
    dx = []
    for a in (0.5, 1.0):
        env.reset(seed=0)
        env.state = np.zeros(4)
        env.step(np.array([a], np.float32))
        dx.append(env.step(np.zeros(1, np.float32))[0][1])  # x_dot after one push from rest
    np.testing.assert_allclose(dx[0] * 2, dx[1], rtol=1e-12)
