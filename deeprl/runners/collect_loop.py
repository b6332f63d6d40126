"""The collecting loop (on-policy RL, and algorithms that act in the env while they learn):

    repeat until env_steps >= budget:
        batch   <- collector.collect(behaviour policy, algorithm.rollout_spec())   (None: no collection)
        batch   <- agent.absorb(batch)   (the learner folds it into the normalisers; scales rewards)
        batch   <- reward_transform.relabel(batch)     (if the agent has one; it then learns from it)
        metrics <- algorithm.update(batch, progress)            # reads counters, never writes them
        env_steps <- collector.env_steps;  grad_steps += metrics["train/gradient_steps"];  iterations += 1
        cadence.after_iteration(metrics)                        # log / evaluate / checkpoint when due

Only the collector advances ``env_steps``: it counts real environment interactions.
"""
from __future__ import annotations


def run(agent, collector, cadence) -> None:
    ts, budget, transform = agent.train_state, agent.run.total_steps, agent.reward_transform
    while not cadence.done:
        spec = agent.rollout_spec()
        batch, extra = None, {}
        if spec is not None:
            kind, n = spec
            policy = agent.behaviour_policy()
            batch = collector.collect_steps(policy, n) if kind == "steps" else collector.collect_episodes(policy, n)
            ts["env_steps"] = collector.env_steps
            batch = agent.absorb(batch)
            if transform is not None:
                relabelled = transform.relabel(batch)
                extra = transform.update(batch, ts["env_steps"] / budget)
                batch = relabelled
        metrics = agent.update(batch, progress=ts["env_steps"] / budget)
        if extra:
            metrics = {**extra, **metrics}
        ts["grad_steps"] += int(metrics.get("train/gradient_steps", 0))
        ts["iterations"] += 1
        cadence.after_iteration(metrics)
