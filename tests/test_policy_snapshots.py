"""Policy snapshots: each algorithm's ``policy_snapshot()`` (its behaviour policy, frozen, with
the observation normaliser's statistics) pickles without the learner, acts in a separate
process (multiprocessing spawn) on raw observations exactly as in this one, and stays frozen
when the learner's weights change afterwards.

(Value and policy iteration collect nothing: they have no behaviour policy.)"""
from __future__ import annotations

import multiprocessing as mp
import pickle

import numpy as np
import pytest
import torch

from deeprl.algos import ALGORITHMS
from deeprl.core.errors import ConfigError
from deeprl.envs.make import make_env

N_OBS, N_CALLS = 6, 3
PG = dict(n_steps=16, num_envs=2, hidden_sizes=(16,))
OFF = dict(learning_starts=0, batch_size=8, buffer_size=500, hidden_sizes=(16,), train_freq=4)
CASES = {
    "ppo": ("ppo", "CartPole-v1", dict(PG, n_epochs=1, batch_size=32)),
    "ppo-gaussian": ("ppo", "Pendulum-v1", dict(PG, n_epochs=1, batch_size=32)),
    "ppo-normalized": ("ppo", "Pendulum-v1", dict(PG, n_epochs=1, batch_size=32, normalize_obs=True)),
    "a2c": ("a2c", "CartPole-v1", PG),
    "reinforce": ("reinforce", "CartPole-v1", dict(hidden_sizes=(16,))),
    "actor_critic": ("actor_critic", "CartPole-v1", dict(hidden_sizes=(16,))),
    "dqn": ("dqn", "CartPole-v1", dict(OFF, target_update_interval=16)),
    "dqn-noisy-c51": ("dqn", "CartPole-v1", dict(OFF, target_update_interval=16, noisy=True, distributional=True,
                                                 n_atoms=11, v_min=0.0, v_max=20.0)),
    "dqn-epsilon": ("dqn", "CartPole-v1", dict(OFF, target_update_interval=16, exploration_final_eps=0.5)),
    "soft_q": ("soft_q", "CartPole-v1", dict(OFF, target_update_interval=16)),
    "fqi": ("fqi", "CartPole-v1", dict(hidden_sizes=(16,))),
    "sac": ("sac", "Pendulum-v1", dict(OFF, train_freq=1)),
    "td3": ("td3", "Pendulum-v1", dict(OFF, train_freq=1)),
    "ddpg-ou": ("ddpg", "Pendulum-v1", dict(OFF, train_freq=1, noise_type="ou", num_envs=N_OBS)),  # OU state per env
    "naf": ("naf", "Pendulum-v1", dict(OFF, train_freq=1)),
    **{name: (name, "FrozenLake-v1", {}) for name in
       ("q_learning", "sarsa", "expected_sarsa", "double_q_learning", "sarsa_lambda", "dyna_q", "mc_control")},
    **{name: (name, "deeprl/BernoulliBandit-v0", {}) for name in ("ucb", "epsilon_greedy", "thompson")},
    "bc": ("bc", "deeprl/ObstacleCourse-v0", dict(hidden_sizes=(16,))),
    "dagger": ("dagger", "deeprl/ObstacleCourse-v0", dict(hidden_sizes=(16,), beta=0.5, rollout_steps=32)),
    "lqr": ("lqr", "deeprl/LinearQuadratic-v0", {}),
    "ilqr": ("ilqr", "Pendulum-v1", dict(horizon=10, max_iter=5, steps_per_update=4)),
    "mpc-batched-cem": ("mpc", "Pendulum-v1", dict(horizon=8, num_samples=32, steps_per_update=4)),
    "mpc-rows-mppi": ("mpc", "Pendulum-v1", dict(planner="mppi", batched=False, horizon=8, num_samples=32,
                                                 steps_per_update=4)),
    "mpc-cartpole-random": ("mpc", "CartPole-v1", dict(planner="random", horizon=8, num_samples=32,
                                                       steps_per_update=4)),
    "mcts": ("mcts", "deeprl/DeterministicMaze-v0", dict(num_simulations=20, steps_per_update=4)),
    "mbpo": ("mbpo", "InvertedPendulum-v5", dict(learning_starts=32, batch_size=16, hidden_sizes=(16,),
                                                 model_train_freq=16, rollout_batch_size=32, ensemble_size=2,
                                                 num_model_elites=1, model_hidden_sizes=(16,), model_max_epochs=2)),
    "mve": ("mve", "InvertedPendulum-v5", dict(learning_starts=32, batch_size=16, hidden_sizes=(16,), horizon=2,
                                               model_train_freq=16, ensemble_size=2, num_model_elites=1,
                                               model_hidden_sizes=(16,), model_max_epochs=2)),
    "model_backprop": ("model_backprop", "Pendulum-v1", dict(initial_steps=32, steps_per_iteration=16, horizon=3,
                                                             policy_updates=2, batch_size=16, hidden_sizes=(16,),
                                                             ensemble_size=2, num_model_elites=2,
                                                             model_hidden_sizes=(16,), model_max_epochs=2)),
    "mbrl-cem-tsinf": ("mbrl", "Pendulum-v1", dict(initial_steps=32, steps_per_iteration=16, ensemble_size=2,
                                                   model_hidden_sizes=(16,), model_max_epochs=2, horizon=4,
                                                   num_samples=16, num_elites=4, num_iterations=2)),
    "mbrl-mppi-ts1-probabilistic": ("mbrl", "Pendulum-v1", dict(
        initial_steps=32, steps_per_iteration=16, ensemble_size=3, model_hidden_sizes=(16,), model_max_epochs=2,
        horizon=4, num_samples=16, num_elites=4, planner="mppi", num_iterations=2, propagation="ts1",
        probabilistic=True)),
}


def act_repeatedly(payload: bytes, obs, torch_seed: int) -> list:
    """Unpickle a policy snapshot and act ``N_CALLS`` times (runs in the spawned worker too). The
    process's torch seed must not matter: a snapshot samples from its own stream."""
    torch.manual_seed(torch_seed)
    policy = pickle.loads(payload)
    return [policy(obs) for _ in range(N_CALLS)]


@pytest.fixture(scope="module")
def worker():
    with mp.get_context("spawn").Pool(1) as pool:
        yield pool


def _trained(case):
    name, env, kw = CASES[case]
    agent = ALGORITHMS[name](env, seed=0, preset="none", torch_threads=1, eval_episodes=0, eval_every=0,
                             checkpoint_every=0, **kw)
    agent.learn(64)  # weights, tables and counters away from their initial values
    return agent


def _observations(agent):
    """Raw observations, as the environment returns them (after resets and a few random steps)."""
    env = make_env(agent.run.env_id)
    env.action_space.seed(0)
    out = []
    for i in range(N_OBS):
        obs, _ = env.reset(seed=i)
        for _ in range(i):
            obs, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                obs, _ = env.reset(seed=100 + i)
        out.append(np.asarray(obs))
    env.close()
    return np.stack(out)


def _perturb(agent):
    """Change every weight and table of the learner in place."""
    with torch.no_grad():
        for m in agent.modules().values():
            if isinstance(m, torch.nn.Module):
                for p in m.parameters():
                    p.add_(0.5)
    for v in vars(agent).values():
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            v += 0.5


def _assert_same(a, b, exact=True):
    """Equal actions and log-probs (``exact=False``: floats to 1e-6, for copies of float32 weights
    whose memory layout differs, which can move a matmul by an ulp)."""
    same = np.testing.assert_array_equal if exact else \
        (lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6))
    assert len(a) == len(b)
    for (acts_a, logp_a), (acts_b, logp_b) in zip(a, b):
        same(acts_a, acts_b)
        assert (logp_a is None) == (logp_b is None)
        if logp_a is not None:
            same(logp_a, logp_b)


@pytest.mark.parametrize("case", list(CASES))
def test_snapshot_acts_identically_in_a_spawned_process(case, worker, monkeypatch):
    agent = _trained(case)
    obs = _observations(agent)

    def refuse(self, protocol):
        raise TypeError("the learner was pickled with its policy")

    monkeypatch.setattr(type(agent), "__reduce_ex__", refuse)
    snapshot = agent.policy_snapshot()  # raw observations in: it carries the normaliser's statistics
    payload = pickle.dumps(snapshot)  # would raise if the snapshot referenced the agent
    monkeypatch.undo()

    # the learner's own policy, from the generators' states at the snapshot, acts the same on its
    # network inputs (it advances the learner's generators; the snapshot holds copies)
    live_policy = agent.behaviour_policy()
    live = [live_policy(agent.preprocess(obs)) for _ in range(N_CALLS)]
    here = act_repeatedly(payload, obs, torch_seed=7)
    there = worker.apply(act_repeatedly, (payload, obs, 8))  # another torch seed: no effect
    _assert_same(here, there)
    _assert_same(live, here, exact=False)

    # frozen: the learner's later updates do not reach a snapshot taken before them
    _perturb(agent)
    torch.manual_seed(9)
    _assert_same([snapshot(obs) for _ in range(N_CALLS)], here)


def test_a_closure_policy_is_refused_with_one_clear_line():
    from deeprl import PPO

    class ClosurePPO(PPO):  # a user's algorithm whose behaviour policy is a plain function
        def behaviour_policy(self):
            return lambda obs: (np.zeros(len(obs), np.int64), None)

    agent = ClosurePPO("CartPole-v1", seed=0, preset="none")
    with pytest.raises(ConfigError, match="ppo acts through the agent.*cannot be snapshotted"):
        agent.policy_snapshot()
