"""The bimodal obstacle course and its scripted expert: Gymnasium's env checker, seeding, the
collision and goal flags, action clipping, and an expert that never collides and passes left on
about half of the episodes that start on the centre line."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import deeprl.envs  # noqa: F401  (registers the ids)
from deeprl.envs.obstacle import OBSTACLE_ID, ObstacleCourseEnv, ObstacleExpert


def rollout(env, policy, seed=None, options=None):
    """(observations, actions, rewards, infos, terminated, truncated) of one episode."""
    obs, info = env.reset(seed=seed, options=options)
    assert info == {"collided": False, "reached_goal": False}
    obs_list, acts, rews, infos = [obs], [], [], []
    while True:
        a = policy(obs)
        obs, r, term, trunc, info = env.step(a)
        obs_list.append(obs), acts.append(a), rews.append(r), infos.append(info)
        if term or trunc:
            return np.array(obs_list), np.array(acts), np.array(rews), infos, term, trunc


def test_passes_gymnasium_env_checker():
    check_env(gym.make(OBSTACLE_ID, render_mode="ansi").unwrapped, skip_render_check=False)
    env = gym.make(OBSTACLE_ID)
    check_env(env.unwrapped)
    assert "A" in ObstacleCourseEnv(render_mode="ansi").render()
    assert env.spec.max_episode_steps == 40
    assert env.observation_space.shape == (2,) and env.observation_space.dtype == np.float32
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


def test_same_seed_same_trajectory_with_jitter_and_expert():
    def run(seed):
        env = ObstacleCourseEnv(start_jitter=0.01)
        expert = ObstacleExpert(seed=seed)
        return rollout(env, expert.predict, seed=seed)[0]

    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)
    assert np.all(np.abs(a[0]) <= 0.01) and not np.array_equal(a[0], c[0])
    # without jitter every episode starts exactly at the origin
    obs, _ = ObstacleCourseEnv().reset(seed=5)
    np.testing.assert_array_equal(obs, [0.0, 0.0])


def test_expert_reaches_goal_without_collision_and_is_bimodal():
    env = gym.make(OBSTACLE_ID)
    expert = ObstacleExpert(seed=0)
    lefts = 0
    for ep in range(200):
        obs, _, rews, infos, term, trunc = rollout(env, expert.predict, seed=ep)
        assert term and not trunc
        assert not any(i["collided"] for i in infos)
        assert infos[-1]["reached_goal"] and not any(i["reached_goal"] for i in infos[:-1])
        assert obs[-1, 1] >= 8.0 and len(rews) == 16
        assert sum(rews) == pytest.approx(obs[-1, 1])  # progress rewards telescope
        side = np.sign(obs[:, 0].sum())
        assert np.all(obs[:, 0] * side >= 0)  # one side all the way
        lefts += side < 0
    assert 70 <= lefts <= 130  # between 35% and 65%


def test_expert_never_collides_from_random_states():
    env = ObstacleCourseEnv()
    expert = ObstacleExpert.for_env(env, seed=1)
    rng = np.random.default_rng(0)
    starts = []
    while len(starts) < 150:
        p = rng.uniform([-4.5, -1.5], [4.5, 7.5])
        if np.hypot(p[0], p[1] - 4.0) > 1.5 + 1e-3:
            starts.append(p)
    starts += [(0.0, 2.45), (0.3, 2.5), (-1.5, 3.9), (1.55, 4.0), (0.0, 5.55)]  # grazing the rim
    for p in starts:
        _, _, _, infos, term, _ = rollout(gym.make(OBSTACLE_ID), expert.predict, options={"start": p})
        assert term and infos[-1]["reached_goal"] and not any(i["collided"] for i in infos), p


def test_expert_labels_batches_and_ambiguous_states():
    expert = ObstacleExpert(seed=0)
    obs = np.array([[-1.0, 1.0], [1.0, 1.0], [0.3, 6.0], [-3.0, -1.0]], np.float32)
    a = expert.predict(obs)
    assert a.shape == (4, 2) and a.dtype == np.float32 and np.all(np.abs(a) <= 1)
    np.testing.assert_array_equal(a[2], [0.0, 1.0])  # past the obstacle: straight up
    assert a[0, 0] < 0 < a[1, 0]  # off the centre line the side is the sign of x
    np.testing.assert_array_equal(expert.predict(obs[0]), a[0])  # single observations work too
    np.testing.assert_array_equal(expert.predict(np.zeros((5, 2), np.float32)), np.tile([0.0, 1.0], (5, 1)))
    centre = expert.predict(np.tile(np.float32([0.0, 1.0]), (2000, 1)))  # where the paths split:
    np.testing.assert_array_equal(np.abs(centre), np.ones((2000, 2)))  # full-speed diagonal...
    assert 0.45 < (centre[:, 0] < 0).mean() < 0.55  # ...left or right at random
    # its own generator: same seed, same labels
    np.testing.assert_array_equal(ObstacleExpert(seed=7).predict(np.zeros((50, 2))),
                                  ObstacleExpert(seed=7).predict(np.zeros((50, 2))))


def test_driving_straight_up_collides_and_flags_are_set():
    env = gym.make(OBSTACLE_ID)
    obs, _, rews, infos, term, trunc = rollout(env, lambda o: np.array([0.0, 1.0], np.float32), seed=0)
    assert term and not trunc and len(rews) == 5
    assert infos[-1] == {"collided": True, "reached_goal": False}
    assert all(i == {"collided": False, "reached_goal": False} for i in infos[:-1])
    np.testing.assert_allclose(obs[-1], [0.0, 2.5])  # stops on the rim
    np.testing.assert_allclose(rews, [0.5, 0.5, 0.5, 0.5, 0.5 - 10.0])


def test_a_step_cannot_jump_across_the_rim():
    env = ObstacleCourseEnv()
    # both ends of the step (-0.25, 2.51) -> (0.25, 2.51) are outside the disc (distance 1.511), its
    # middle (0, 2.51) is inside (1.49): the point stops where the segment enters the disc
    env.reset(options={"start": (-0.25, 2.51)})
    obs, r, term, _, info = env.step([1.0, 0.0])
    assert term and info == {"collided": True, "reached_goal": False} and r == pytest.approx(-10.0)
    np.testing.assert_allclose(obs, [-np.sqrt(1.5**2 - 1.49**2), 2.51], rtol=1e-5)


def test_reaching_goal_flag_and_out_of_range_actions_are_clipped():
    env = ObstacleCourseEnv()
    env.reset(options={"start": (3.0, 7.6)})
    obs, r, term, trunc, info = env.step(np.array([5.0, 7.0]))  # clipped to (1, 1)
    np.testing.assert_allclose(obs, [3.5, 8.1], rtol=1e-6)
    assert r == pytest.approx(0.5) and term and not trunc
    assert info == {"collided": False, "reached_goal": True}
    env.reset(seed=0)
    obs, r, term, _, info = env.step(np.array([-3.0, -0.5]))  # clipped to (-1, -0.5)
    np.testing.assert_allclose(obs, [-0.5, -0.25])
    assert r == pytest.approx(-0.25) and not term and info == {"collided": False, "reached_goal": False}


def test_time_limit_truncates():
    env = gym.make(OBSTACLE_ID)
    _, acts, _, infos, term, trunc = rollout(env, lambda o: np.array([0.0, 0.0], np.float32), seed=0)
    assert trunc and not term and len(acts) == 40


def test_invalid_start_is_rejected():
    with pytest.raises(ValueError, match="inside the obstacle"):
        ObstacleCourseEnv().reset(options={"start": (0.0, 4.0)})
