"""Short learning-threshold tests (the issue's targets)."""
import pytest

from deeprl import PPO, REINFORCE
from deeprl.runners.train import train

pytestmark = pytest.mark.learning


def test_ppo_solves_cartpole():
    # rl-baselines3-zoo preset (the default for CartPole-v1), 100k steps
    agent = PPO("CartPole-v1", seed=0, eval_every=0, eval_episodes=20)
    summary = train(agent)
    assert summary["eval_return_mean"] >= 475, summary


def test_reinforce_reward_to_go_baseline_cartpole():
    agent = REINFORCE("CartPole-v1", seed=0, batch_size=1000, reward_to_go=True, baseline=True,
                      normalize_advantages=True, learning_rate=0.01, total_steps=80_000,
                      eval_every=0, eval_episodes=20)
    summary = train(agent)
    assert summary["eval_return_mean"] >= 195, summary


def test_actor_critic_cartpole():
    from deeprl import ActorCritic

    agent = ActorCritic("CartPole-v1", seed=0, n_steps=1000, gamma=0.99, total_steps=30_000,
                        eval_every=0, eval_episodes=20)
    summary = train(agent)
    assert summary["eval_return_mean"] >= 195, summary


def test_a2c_cartpole():
    from deeprl import A2C

    agent = A2C("CartPole-v1", seed=0, num_envs=8, total_steps=100_000, eval_every=0, eval_episodes=20)
    summary = train(agent)
    assert summary["eval_return_mean"] >= 195, summary


def test_dqn_solves_cartpole():
    from deeprl import DQN

    # rl-baselines3-zoo preset (the default for CartPole-v1), 50k steps
    agent = DQN("CartPole-v1", seed=0, eval_every=0, eval_episodes=20)
    summary = train(agent)
    assert summary["eval_return_mean"] >= 475, summary


def test_sac_pendulum_within_15k_steps():
    from deeprl import SAC

    # zoo preset (lr 1e-3) with 64-unit layers to keep the suite fast
    agent = SAC("Pendulum-v1", seed=0, total_steps=15_000, hidden_sizes=(64, 64), eval_every=0, eval_episodes=20)
    summary = train(agent)
    assert summary["eval_return_mean"] >= -250, summary
