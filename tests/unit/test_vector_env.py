"""deeprl's lean SyncVectorEnv behaves exactly like gymnasium's with same-step autoreset."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.vector import SyncVectorEnv as GymSync

from deeprl.envs.make import make_env
from deeprl.envs.vector import SyncVectorEnv


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "DictPoint-v0"])
def test_matches_gymnasium_same_step_autoreset(env_id):
    fns = [lambda: make_env(env_id, dict_obs="encode") for _ in range(3)]
    ours, ref = SyncVectorEnv(fns), GymSync(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    o1, _ = ours.reset(seed=[5, 6, 7])
    o2, _ = ref.reset(seed=[5, 6, 7])
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(600):
        a = np.stack([ref.single_action_space.sample() for _ in range(3)])
        if isinstance(ref.single_action_space, gym.spaces.Discrete):
            a = rng.integers(0, 2, 3)
        o1, r1, te1, tr1, i1 = ours.step(a)
        o2, r2, te2, tr2, i2 = ref.step(a)
        for x, y in ([(o1[k], o2[k]) for k in o1] if isinstance(o1, dict) else [(o1, o2)]):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(te1, te2)
        np.testing.assert_array_equal(tr1, tr2)
        done = te1 | tr1
        assert ("final_obs" in i1) == done.any()
        if done.any():
            ends += 1
            np.testing.assert_array_equal(i1["_final_obs"], i2["_final_obs"])
            for i in np.flatnonzero(done):
                f1, f2 = i1["final_obs"][i], i2["final_obs"][i]
                for x, y in ([(f1[k], f2[k]) for k in f1] if isinstance(f1, dict) else [(f1, f2)]):
                    np.testing.assert_array_equal(x, y)
    assert ends > 0
    assert ours.observation_space == ref.observation_space and ours.action_space == ref.action_space
    ours.close()
    ref.close()


def test_returned_observations_are_copies():
    envs = SyncVectorEnv([lambda: make_env("CartPole-v1") for _ in range(2)])
    o, _ = envs.reset(seed=0)
    keep = o.copy()
    envs.step(np.array([0, 1]))
    np.testing.assert_array_equal(o, keep)
