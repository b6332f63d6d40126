"""The training loop: collect -> update -> metrics -> logger, with periodic evaluation and
atomic checkpoints. Used by ``Agent.learn`` and the CLI alike."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import yaml

from deeprl.core import checkpoint, config
from deeprl.core.errors import ConfigError, NonFiniteError
from deeprl.core.logger import Logger
from deeprl.data.evaluate import evaluate

LATEST = "latest.pt"


def write_config(agent, run_dir: Path) -> None:
    resolved = {"algo": agent.name, "preset": agent.preset_source, "run": config.to_dict(agent.run),
                "config": config.to_dict(agent.cfg)}
    tmp = run_dir / ".config.yaml.tmp"
    tmp.write_text(yaml.safe_dump(resolved, sort_keys=False))
    tmp.replace(run_dir / "config.yaml")


def _eval_seed(agent, k: int) -> int:
    return agent.run.seed + 1_000_000 + 1000 * k


def _checkpoint(agent, run_dir: Path | None) -> None:
    if run_dir is None:
        return
    ckpt_dir = run_dir / "checkpoints"
    state = agent.state_dict()
    steps = agent.train_state["env_steps"]
    checkpoint.save(state, ckpt_dir / f"step_{steps:010d}.pt")
    checkpoint.save(state, ckpt_dir / LATEST)
    numbered = sorted(ckpt_dir.glob("step_*.pt"))
    for old in numbered[: -agent.run.keep_checkpoints]:
        old.unlink()


def _as_floats(metrics: dict) -> dict:
    """Metrics may be 0-d tensors (off-policy updates avoid a device sync per step); they
    become floats only when a row is written."""
    return {k: float(v) for k, v in metrics.items()}


def _check_finite(metrics: dict, step: int) -> None:
    for k, v in metrics.items():  # losses diverging; diagnostics (explained variance...) may be NaN
        if k.startswith("loss/") and not math.isfinite(v):
            raise NonFiniteError(f"non-finite {k} = {v} in the update after env step {step}; "
                                 "the last good checkpoint is kept")


def train(agent, run_dir=None, progress=False, log_stdout=False) -> dict:
    run = agent.run
    run_dir = Path(run_dir) if run_dir is not None else None
    ts = agent.train_state
    resumed = ts["env_steps"] > 0
    if run_dir is not None and not resumed and (run_dir / "metrics.csv").exists():
        raise ConfigError(f"run directory {run_dir} already holds a run; choose a new one or resume it "
                          f"(deeprl train --resume {run_dir})")
    prepare = getattr(agent, "prepare", None)  # e.g. imitation: load the expert and demonstrations
    if prepare is not None:
        prepare()  # before anything is written, so bad input leaves no run directory behind
    if agent.collector is None:
        agent.collector = agent.make_collector()
        pending = agent._pending_collector_state
        if pending is not None:
            coll_state, reward_state = pending
            if coll_state is not None and not agent.collector.load_state_dict(coll_state):
                why = "subprocess (async) environments" if run.vectorization == "async" else run.env_id
                print(f"note: {why} cannot snapshot its state; resumed episodes start from a reset")
            if reward_state is not None and agent.reward_scaler is not None:
                agent.reward_scaler.load_state_dict(reward_state)
            agent._pending_collector_state = None
    collector = agent.collector
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_config(agent, run_dir)
    logger = Logger(run_dir, stdout=log_stdout, resume_step=ts["env_steps"] if resumed else None)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=run.total_steps, initial=ts["env_steps"], unit="step", dynamic_ncols=True,
                   desc=f"{agent.name} {run.env_id}")
    start, start_steps = time.perf_counter(), ts["env_steps"]
    wall_before = ts["wall_time_s"]
    ts.setdefault("next_log", 0)
    try:
        while ts["env_steps"] < run.total_steps:
            kind, n = agent.rollout_spec()
            if kind == "none":  # planners/solvers that do their own interaction and count it
                metrics = agent.update(None, progress=ts["env_steps"] / run.total_steps)
            else:
                policy = agent.behaviour_policy()
                batch = (collector.collect_steps(policy, n) if kind == "steps"
                         else collector.collect_episodes(policy, n))
                ts["env_steps"] = collector.env_steps
                metrics = agent.update(batch, progress=ts["env_steps"] / run.total_steps)
            ts["iterations"] += 1
            due_eval = ts["next_eval"] is not None and ts["env_steps"] >= ts["next_eval"] and run.eval_episodes
            due_ckpt = ts["next_checkpoint"] is not None and ts["env_steps"] >= ts["next_checkpoint"]
            done = ts["env_steps"] >= run.total_steps
            if not (due_eval or due_ckpt or done or ts["env_steps"] >= ts["next_log"]):
                continue  # cheap iterations (one off-policy step) skip the bookkeeping below
            ts["next_log"] = ts["env_steps"] + (run.log_every or agent.log_every)
            metrics = _as_floats(metrics)
            _check_finite(metrics, ts["env_steps"])
            elapsed = time.perf_counter() - start
            ts["wall_time_s"] = wall_before + elapsed
            row = {"time/env_steps": ts["env_steps"], "time/iterations": ts["iterations"],
                   "time/sps": (ts["env_steps"] - start_steps) / max(elapsed, 1e-9),
                   "time/wall_s": ts["wall_time_s"], "train/episodes": collector.episodes}
            if collector.completed:
                rets, lens = zip(*collector.completed)
                row["train/episode_return_mean"] = float(np.mean(rets[-20:]))
                row["train/episode_length_mean"] = float(np.mean(lens[-20:]))
            row.update(metrics)
            if due_eval:
                ev = evaluate(agent, run.eval_episodes, _eval_seed(agent, ts["num_evals"]))
                ts["num_evals"] += 1
                ts["last_eval"] = ev
                row.update({k: v for k, v in ev.items() if k != "returns"})
                while ts["next_eval"] <= ts["env_steps"]:
                    ts["next_eval"] += run.eval_every
            logger.log(row)
            if bar is not None:
                bar.update(min(ts["env_steps"], run.total_steps) - bar.n)
                post = {name: f"{row[k]:.1f}" for name, k in
                        (("train_return", "train/episode_return_mean"), ("eval_return", "eval/return_mean"))
                        if k in row}
                bar.set_postfix(post, refresh=False)
            elif log_stdout:
                logger.print(row, ["time/env_steps", "train/episode_return_mean", "eval/return_mean", "time/sps"])
            if due_ckpt:
                while ts["next_checkpoint"] <= ts["env_steps"]:
                    ts["next_checkpoint"] += run.checkpoint_every
                _checkpoint(agent, run_dir)
        summary = _finish(agent, run_dir, logger, start, start_steps)
    finally:
        if bar is not None:
            bar.close()
        logger.close()
    return summary


def _finish(agent, run_dir, logger, start, start_steps) -> dict:
    run, ts = agent.run, agent.train_state
    final = None
    if run.eval_episodes:
        final = evaluate(agent, run.eval_episodes, _eval_seed(agent, ts["num_evals"]))
        ts["num_evals"] += 1
        ts["last_eval"] = final
        logger.log({"time/env_steps": ts["env_steps"], **{k: v for k, v in final.items() if k != "returns"}})
    elapsed = time.perf_counter() - start
    summary = {"algo": agent.name, "env": run.env_id, "seed": run.seed, "env_steps": ts["env_steps"],
               "iterations": ts["iterations"], "wall_time_s": round(ts["wall_time_s"], 3),
               "sps": round((ts["env_steps"] - start_steps) / max(elapsed, 1e-9), 1),
               "eval_return_mean": final["eval/return_mean"] if final else None,
               "eval_return_std": final["eval/return_std"] if final else None,
               "eval_episodes": run.eval_episodes if final else 0,
               "eval_returns": final["returns"] if final else [],
               "train_return_mean": (float(np.mean([r for r, _ in agent.collector.completed]))
                                     if agent.collector.completed else None)}
    extra = getattr(agent, "summary_extra", None)  # e.g. a bandit's regret, a planner's time per action
    if extra is not None:
        summary.update(extra())
    if run_dir is not None:
        _checkpoint(agent, run_dir)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
