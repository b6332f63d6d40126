"""Every algorithm runs a few hundred steps on discrete, continuous, image and Dict envs."""
import numpy as np
import pytest
from gymnasium import spaces

from deeprl import ALGORITHMS
from deeprl.core.errors import SpaceError
from deeprl.runners.train import train

SMALL = {
    "reinforce": {"batch_size": 100},
    "actor_critic": {"n_steps": 50, "num_target_updates": 2, "num_grad_steps_per_target_update": 2},
    "a2c": {"n_steps": 5},
    "ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 2},
}
OFF_POLICY = {"hidden_sizes": (16,), "learning_starts": 50, "batch_size": 16, "buffer_size": 1000}
SMALL.update({name: OFF_POLICY for name in ("dqn", "soft_q", "sac", "td3", "ddpg", "naf")})
SMALL["fqi"] = {"hidden_sizes": (16,), "iterations": 2, "fit_steps": 3}
COMMON = {"preset": "none", "total_steps": 300, "num_envs": 2, "eval_every": 0, "eval_episodes": 2}
DEEP = sorted(a for a, cls in ALGORITHMS.items() if cls.__module__.startswith(("deeprl.algos.pg",
                                                                                 "deeprl.algos.offpolicy")))


def test_every_deep_rl_algorithm_is_smoke_tested():
    assert set(DEEP) == set(SMALL)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_algorithm_imports_by_class_name(algo):
    """``from deeprl import MBPO`` etc.: each registered algorithm is a top-level attribute."""
    import deeprl

    cls = ALGORITHMS[algo]
    assert getattr(deeprl, cls.__name__) is cls
    assert cls.__name__ in deeprl.__all__


@pytest.mark.parametrize("algo", DEEP)
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_runs_and_predicts(algo, env_id, tmp_path):
    cls = ALGORITHMS[algo]
    discrete = env_id == "CartPole-v1"
    if (spaces.Discrete if discrete else spaces.Box) not in cls.action_spaces:
        with pytest.raises(SpaceError, match=f"{algo} does not support action space"):
            cls(env_id, seed=1, **COMMON, **SMALL[algo])
        return
    agent = cls(env_id, seed=1, **COMMON, **SMALL[algo])
    summary = train(agent, run_dir=tmp_path)
    assert summary["env_steps"] >= 300
    assert np.isfinite(summary["eval_return_mean"])
    obs = agent.obs_space.sample()
    a = agent.predict(obs)
    assert agent.act_space.contains(np.asarray(a, dtype=agent.act_space.dtype))
    assert (tmp_path / "checkpoints" / "latest.pt").is_file()


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_image_observations_use_cnn(algo):
    from deeprl.nn.networks import NatureCNN

    agent = ALGORITHMS[algo]("ImageTarget-v0", seed=0, **{**COMMON, "total_steps": 64}, **SMALL[algo])
    assert isinstance(agent.actor.encoder, NatureCNN)
    train(agent)
    assert agent.predict(agent.obs_space.sample()) in (0, 1)


def test_dict_observations_flatten_and_encode():
    from deeprl import PPO
    from deeprl.nn.networks import DictEncoder, FlattenEncoder

    flat = PPO("DictPoint-v0", seed=0, **{**COMMON, "total_steps": 64}, **SMALL["ppo"])
    assert isinstance(flat.actor.encoder, FlattenEncoder)
    enc = PPO("DictPoint-v0", seed=0, dict_obs="encode", **{**COMMON, "total_steps": 64}, **SMALL["ppo"])
    assert isinstance(enc.actor.encoder, DictEncoder)
    train(enc)
    a = enc.predict({"pos": np.zeros(2, np.float32), "goal": np.ones(2, np.float32)})
    assert a.shape == (2,) and np.all(np.abs(a) <= 1)


def test_unsupported_action_space_is_named():
    from gymnasium import spaces

    from deeprl.algos.pg.ppo import PPO
    from deeprl.nn.policies import check_action_space

    with pytest.raises(SpaceError, match="MultiDiscrete.*supported: Discrete, Box"):
        check_action_space(spaces.MultiDiscrete([2, 3]), PPO.name)
