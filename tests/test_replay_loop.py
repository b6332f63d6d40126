"""The replay loop owns the buffer (algorithms hold none), updates read counters and never
write them, prioritized replay's priorities travel through the loop, old checkpoints whose
algorithm held the buffer still load, and the reward-transform slot relabels every batch
before the update in both collecting loops."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from deeprl import DDPG, DQN, NAF, PPO, SAC, TD3, SoftQ
from deeprl.core import checkpoint
from deeprl.data.replay import ReplayBatch, ReplayBuffer
from deeprl.runners.train import train

SMALL = dict(eval_every=0, eval_episodes=1, checkpoint_every=0, torch_threads=1, hidden_sizes=(16,),
             learning_starts=32, batch_size=8, buffer_size=500, total_steps=120)
OFF_POLICY = {"dqn": (DQN, "CartPole-v1", dict(train_freq=4, target_update_interval=20)),
              "soft_q": (SoftQ, "CartPole-v1", dict(target_update_interval=20)),
              "sac": (SAC, "Pendulum-v1", {}), "td3": (TD3, "Pendulum-v1", {}),
              "ddpg": (DDPG, "Pendulum-v1", dict(noise_type="ou")), "naf": (NAF, "Pendulum-v1", {})}


def _make(name, **kw):
    cls, env, extra = OFF_POLICY[name]
    return cls(env, seed=0, preset="none", **{**SMALL, **extra, **kw})


@pytest.mark.parametrize("name", list(OFF_POLICY))
def test_the_loop_owns_the_buffer_and_updates_never_write_counters(name):
    agent = _make(name)
    assert agent.loop == "replay" and agent.replay is None
    assert not any(isinstance(v, ReplayBuffer) for v in vars(agent).values())
    orig, seen = agent.update, []

    def update(batch, progress):
        assert isinstance(batch, ReplayBatch) and len(batch.actions) % agent.cfg.batch_size == 0
        before = dict(agent.train_state)
        out = orig(batch, progress)
        assert agent.train_state == before, "update wrote the loop's counters"
        seen.append(len(batch.actions) // agent.cfg.batch_size)
        return out

    agent.update = update
    summary = train(agent)
    assert isinstance(agent.replay, ReplayBuffer) and len(agent.replay) == summary["env_steps"] == 120
    # one gradient step per train_freq env steps after learning_starts
    assert summary["grad_steps"] == sum(seen) == (120 - 32) // agent.cfg.train_freq


def test_dqn_draws_a_block_of_minibatches_when_sampling_is_uniform():
    agent = _make("dqn", train_freq=40, gradient_steps=8)
    sizes = []
    orig = agent.update
    agent.update = lambda b, p: (sizes.append(len(b.actions)), orig(b, p))[1]
    train(agent)
    assert sizes and set(sizes) == {8 * 8}  # 8 minibatches of 8 in one block per phase
    per = _make("dqn", train_freq=40, gradient_steps=8, prioritized=True)
    sizes.clear()
    orig = per.update
    per.update = lambda b, p: (sizes.append(len(b.actions)), orig(b, p))[1]
    train(per)
    assert set(sizes) == {8}  # priorities change after every step: one minibatch at a time


def test_prioritized_replay_priorities_come_back_through_the_loop(tmp_path):
    agent = _make("dqn", prioritized=True, priority_eps=0.5, priority_alpha=1.0, log_every=10)
    train(agent, run_dir=tmp_path)
    leaves = agent.replay.tree.leaves()[: len(agent.replay)]
    sampled = leaves[(leaves > 0) & (leaves != agent.replay.max_priority)]
    assert sampled.size > 0 and sampled.min() >= 0.5  # (|delta| + eps)^alpha with the config's eps
    header = next(csv.reader(open(tmp_path / "metrics.csv")))
    assert "replay/priorities" not in header and "loss/q" in header


def test_checkpoint_from_before_the_loop_owned_the_buffer_loads(tmp_path):
    """Checkpoints written before 2026-12-03 kept the buffer in the algorithm's extra state."""
    agent = _make("sac")
    train(agent, run_dir=tmp_path)
    d = checkpoint.load(tmp_path / "checkpoints" / "latest.pt")
    d["extra"]["replay"] = d.pop("replay")
    d.pop("reward_transform")
    checkpoint.save(d, tmp_path / "old.pt")
    old = SAC.load(tmp_path / "old.pt")
    new = SAC.load(tmp_path / "checkpoints" / "latest.pt")
    assert len(old.replay) == len(new.replay) == 120
    np.testing.assert_array_equal(old.replay.obs, agent.replay.obs)
    old.learn(160)
    assert old.train_state["env_steps"] == 160 and len(old.replay) == 160


class AddOne:
    """A reward transform for the test: r + 1, learning a running count of relabelled rewards."""

    def __init__(self):
        self.count, self.relabelled, self.learned_from = 0, [], []

    def relabel(self, batch):
        rewards = batch.rewards + 1
        self.relabelled.append(rewards)
        return batch._replace(rewards=rewards) if isinstance(batch, tuple) else \
            type(batch)(**{**vars(batch), "rewards": rewards})

    def update(self, batch, progress):
        self.learned_from.append(batch.rewards)
        self.count += int(np.asarray(batch.rewards).size)
        return {"reward_transform/count": float(self.count)}

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = int(state["count"])


@pytest.mark.parametrize("name", ["sac", "ppo"])
def test_reward_transform_relabels_every_batch_before_the_update(name, tmp_path):
    if name == "ppo":
        agent = PPO("CartPole-v1", seed=0, preset="none", total_steps=256, n_steps=64, num_envs=2, n_epochs=1,
                    batch_size=64, eval_every=0, eval_episodes=1, checkpoint_every=0, torch_threads=1, log_every=1)
    else:
        agent = _make("sac", log_every=1)
    agent.reward_transform = t = AddOne()
    orig, updated_with = agent.update, []

    def update(batch, progress):
        updated_with.append(batch.rewards)
        return orig(batch, progress)

    agent.update = update
    train(agent, run_dir=tmp_path)
    assert len(updated_with) == len(t.relabelled) == len(t.learned_from) > 0
    for seen, relabelled, raw in zip(updated_with, t.relabelled, t.learned_from):
        assert seen is relabelled
        np.testing.assert_array_equal(torch.as_tensor(relabelled), torch.as_tensor(raw) + 1)
    rows = [r for r in csv.DictReader(open(tmp_path / "metrics.csv")) if r["reward_transform/count"]]
    assert float(rows[-1]["reward_transform/count"]) == t.count  # its metrics join the row
    saved = checkpoint.load(tmp_path / "checkpoints" / "latest.pt")["reward_transform"]
    assert saved == {"count": t.count}
