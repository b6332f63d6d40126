"""Train an agent: check the run directory, prepare, then run the agent's loop.

Every loop is a few lines in its own file and shares :class:`~deeprl.runners.cadence.Cadence`
(logging, evaluation, checkpoints, the summary):

* ``collect`` (:mod:`deeprl.runners.collect_loop`): collect a rollout, update;
* ``replay`` (:mod:`deeprl.runners.replay_loop`): collect into a replay buffer the loop owns, sample, update;
* ``offline`` (:mod:`deeprl.runners.offline_loop`): minibatches of a fixed dataset, one gradient step each;
* ``solve`` (:mod:`deeprl.runners.solve_loop`): solve a known model, no collector.

``Agent.learn`` and the CLI both call :func:`train`.
"""
from __future__ import annotations

from pathlib import Path

from deeprl.core.errors import ConfigError
from deeprl.core.types import LOOPS
from deeprl.runners import collect_loop, offline_loop, replay_loop, solve_loop
from deeprl.runners.cadence import Cadence, write_config


def _collector(agent):
    """The agent's collector, created on the first ``learn`` (restoring a checkpoint's envs)."""
    if agent.collector is None:
        agent.collector = agent.make_collector()
        coll_state = agent._pending_collector_state
        if coll_state is not None:
            if not agent.collector.load_state_dict(coll_state):
                why = "subprocess (async) environments" if agent.run.vectorization == "async" else agent.run.env_id
                print(f"note: {why} cannot snapshot its state; resumed episodes start from a reset")
            agent._pending_collector_state = None
    return agent.collector


def train(agent, run_dir=None, progress=False, log_stdout=False) -> dict:
    if agent.loop not in LOOPS:
        raise ConfigError(f"{agent.name}: unknown loop {agent.loop!r}; valid: {', '.join(LOOPS)}")
    run_dir = Path(run_dir) if run_dir is not None else None
    resumed = agent.train_state["iterations"] > 0
    if run_dir is not None and not resumed and (run_dir / "metrics.csv").exists():
        raise ConfigError(f"run directory {run_dir} already holds a run; choose a new one or resume it "
                          f"(deeprl train --resume {run_dir})")
    agent.prepare()  # e.g. imitation: load the expert and demonstrations, before anything is written
    collector = _collector(agent) if agent.loop in ("collect", "replay") else None
    if agent.loop == "replay" and agent.replay is None:
        agent.replay = agent.make_replay()  # (a checkpoint's buffer was restored when it was loaded)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_config(agent, run_dir)
    cadence = Cadence(agent, collector, run_dir, progress, log_stdout)
    try:
        if agent.loop == "collect":
            collect_loop.run(agent, collector, cadence)
        elif agent.loop == "replay":
            replay_loop.run(agent, collector, agent.replay, cadence)
        elif agent.loop == "offline":
            offline_loop.run(agent, cadence)
        else:
            solve_loop.run(agent, cadence)
        return cadence.finish()
    finally:
        cadence.close()
