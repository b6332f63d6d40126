"""The offline loop (learning from a fixed dataset: behaviour cloning, and later offline RL):

    dataset <- algorithm.dataset()                              (after algorithm.prepare())
    repeat until grad_steps >= budget:
        for each of n = min(steps_per_iteration, what is left) minibatches of batch_size indices:
            metrics <- algorithm.update(dataset[indices], progress)   # one gradient step
        grad_steps += n;  iterations += 1
        cadence.after_iteration(metrics)

No environment step is taken: ``env_steps`` stays 0 and the budget counts gradient steps.
The minibatch indices are drawn from the algorithm's generator (``agent.rng``), one
``(n, batch_size)`` block per iteration.
"""
from __future__ import annotations

import torch


def run(agent, cadence) -> None:
    ts, budget, c = agent.train_state, agent.run.total_steps, agent.cfg
    metrics: dict = {}
    while not cadence.done:
        dataset = agent.dataset()
        n = min(c.steps_per_iteration, budget - ts["grad_steps"])
        for idx in torch.from_numpy(agent.rng.integers(0, len(dataset), (n, c.batch_size))):
            metrics = agent.update(dataset[idx], progress=ts["grad_steps"] / budget)
        ts["grad_steps"] += n
        ts["iterations"] += 1
        cadence.after_iteration(metrics)
