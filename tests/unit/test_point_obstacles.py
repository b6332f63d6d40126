"""deeprl/Obstacles-v0 (CS285 HW4's point robot): Gymnasium's checker, moves of a/10 with the
action clipped to [-1, 1], refused moves into obstacles and walls, the reward and termination,
the time limit, seeded starts and rendering."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import deeprl.envs  # noqa: F401  (registers the env)
from deeprl.envs.point_obstacles import GOAL, OBSTACLES_ID, RECTANGLES, inside_obstacle, valid_position


def test_passes_gymnasiums_checker():
    check_env(gym.make(OBSTACLES_ID, render_mode="rgb_array").unwrapped, skip_render_check=False)


def test_moves_by_a_tenth_of_the_clipped_action():
    env = gym.make(OBSTACLES_ID)
    obs, _ = env.reset(seed=0, options={"start": (-0.8, 0.9)})
    np.testing.assert_allclose(obs, [-0.8, 0.9, *GOAL], rtol=0, atol=1e-7)
    obs, r, term, trunc, _ = env.step(np.array([0.5, -0.2], np.float32))
    np.testing.assert_allclose(obs[:2], [-0.75, 0.88], atol=1e-6)
    assert r == pytest.approx(-np.hypot(-0.75 - GOAL[0], 0.88 - GOAL[1]), abs=1e-6) and not term and not trunc
    obs, *_ = env.step(np.array([5.0, 0.0], np.float32))  # clipped to 1: a move of 0.1
    np.testing.assert_allclose(obs[:2], [-0.65, 0.88], atol=1e-6)


def test_moves_into_an_obstacle_or_through_the_wall_are_refused():
    left, top, w, h = RECTANGLES[0]  # (-0.4, 0.8, 0.4, 0.3)
    env = gym.make(OBSTACLES_ID)
    start = (left - 0.05, top - h / 2)
    assert valid_position(np.array(start)) and inside_obstacle(np.array([left + 0.05, top - h / 2]))
    env.reset(seed=0, options={"start": start})
    obs, *_ = env.step(np.array([1.0, 0.0], np.float32))  # would end inside the rectangle
    np.testing.assert_allclose(obs[:2], start, atol=1e-7)
    env.reset(seed=0, options={"start": (0.95, 0.95)})
    obs, *_ = env.step(np.array([0.9, 0.0], np.float32))  # would leave the square
    np.testing.assert_allclose(obs[:2], (0.95, 0.95), atol=1e-7)
    with pytest.raises(ValueError, match="outside the obstacles"):
        env.reset(options={"start": (left + 0.05, top - 0.05)})


def test_reaching_the_goal_terminates_and_the_time_limit_truncates():
    env = gym.make(OBSTACLES_ID)
    env.reset(seed=0, options={"start": (GOAL[0], GOAL[1] + 0.15)})
    obs, r, term, trunc, _ = env.step(np.array([0.0, -0.9], np.float32))
    assert term and not trunc and r == pytest.approx(-0.06, abs=1e-6)
    env.reset(seed=0, options={"start": (-0.8, 0.9)})
    steps = 0
    while True:
        _, _, term, trunc, _ = env.step(np.zeros(2, np.float32))
        steps += 1
        if term or trunc:
            break
    assert trunc and not term and steps == 100


def test_seeded_starts_are_valid_and_reproducible():
    env = gym.make(OBSTACLES_ID)
    starts = [env.reset(seed=s)[0][:2] for s in range(200)]
    assert all(valid_position(p.astype(np.float64)) for p in starts)
    s = np.asarray(starts)
    assert s[:, 0].min() >= -0.99 and s[:, 0].max() <= 0.59 and s[:, 1].min() >= 0.26
    np.testing.assert_array_equal(env.reset(seed=7)[0], env.reset(seed=7)[0])
    img = gym.make(OBSTACLES_ID, render_mode="rgb_array")
    img.reset(seed=0)
    frame = img.render()
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8 and (frame != 255).any()
