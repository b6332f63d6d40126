"""The replay loop (off-policy RL: DQN, DDPG, TD3, SAC, NAF, soft Q):

    repeat until env_steps >= budget:
        rollout <- collector.collect(behaviour policy, algorithm.rollout_spec())
        buffer.add(rollout);  metrics <- algorithm.observe(rollout)    # the loop owns the buffer
        if env_steps > learning_starts:                                # see ReplaySpec
            for each of the gradient steps due, in blocks of minibatches_per_update:
                batch   <- buffer.sample(k * batch_size, beta(progress))
                batch   <- reward_transform.relabel(batch)   (if any; it then learns from it)
                metrics <- algorithm.update(batch, progress)         # k gradient steps
                buffer.update_priorities(batch.indices, metrics.pop(PRIORITIES))   (prioritized)
        grad_steps += steps taken;  iterations += 1;  cadence.after_iteration(metrics)

The buffer is built from ``algorithm.replay_spec()`` on the first ``learn`` (or restored from a
checkpoint), kept as ``agent.replay`` and saved with every checkpoint; its sampling draws
from the algorithm's generator (``agent.rng``), so a seeded run is one random stream.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from deeprl.core.types import PRIORITIES


def gradient_steps_due(spec, rollout) -> int:
    """``spec.gradient_steps``, or (-1) as many as env steps were collected."""
    return spec.gradient_steps if spec.gradient_steps > 0 else int(rollout.rewards.size)


def run(agent, collector, buffer, cadence) -> None:
    ts, budget, spec = agent.train_state, agent.run.total_steps, agent.replay_spec()
    transform = agent.reward_transform
    while not cadence.done:
        kind, n = agent.rollout_spec()
        policy = agent.behaviour_policy()
        rollout = collector.collect_steps(policy, n) if kind == "steps" else collector.collect_episodes(policy, n)
        ts["env_steps"] = collector.env_steps
        buffer.add(dataclasses.replace(rollout, rewards=np.sign(rollout.rewards)) if spec.sign_rewards else rollout)
        metrics = dict(agent.observe(rollout))
        steps = gradient_steps_due(spec, rollout) if ts["env_steps"] > spec.learning_starts else 0
        if steps and buffer.num_sampleable:
            progress = ts["env_steps"] / budget
            beta = spec.priority_beta + (1.0 - spec.priority_beta) * progress
            for start in range(0, steps, spec.minibatches_per_update):
                k = min(spec.minibatches_per_update, steps - start)
                batch = buffer.sample(k * spec.batch_size, beta, agent.device)
                if transform is not None:
                    relabelled = transform.relabel(batch)
                    metrics.update(transform.update(batch, progress))
                    batch = relabelled
                out = agent.update(batch, progress)
                if PRIORITIES in out:
                    out = dict(out)
                    buffer.update_priorities(batch.indices, out.pop(PRIORITIES))
                metrics.update(out)
            metrics["train/gradient_steps"] = steps
            ts["grad_steps"] += steps
        ts["iterations"] += 1
        cadence.after_iteration(metrics)
