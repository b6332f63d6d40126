"""The solve loop (dynamic programming on a known model: value and policy iteration):

    metrics <- algorithm.update(None, progress=0)   # solves to the algorithm's tolerance
    iterations = 1;  cadence.after_iteration(metrics)

No environment step and no gradient step is taken; the budget is one iteration whatever
``total_steps`` says. (Planners that act in the real env use the collecting loop.)
"""
from __future__ import annotations


def run(agent, cadence) -> None:
    ts = agent.train_state
    while not cadence.done:
        metrics = agent.update(None, progress=0.0)
        ts["iterations"] += 1
        cadence.after_iteration(metrics)
