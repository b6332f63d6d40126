"""What every training loop shares: when to log, evaluate and checkpoint, and the run directory.

A loop advances the counters in ``agent.train_state`` (``env_steps``: real environment steps;
``grad_steps``: gradient steps; ``iterations``: rounds of the loop) and calls
:meth:`Cadence.after_iteration` with the update's metrics. The cadence compares the loop's
*budget counter* (``env_steps`` for the collecting loops, ``grad_steps`` offline, ``iterations``
for solvers; see :data:`deeprl.core.types.BUDGET_COUNTER`) with the next log, evaluation and
checkpoint points, and when one is due writes a metrics row (CSV, TensorBoard, stdout or a
progress bar), evaluates, and saves ``checkpoints/step_N.pt`` and ``latest.pt`` atomically.
:meth:`Cadence.finish` evaluates the final policy and writes ``summary.json``.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import yaml

from deeprl.core import checkpoint, config
from deeprl.core.errors import NonFiniteError
from deeprl.core.logger import Logger
from deeprl.core.types import BUDGET_COUNTER
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


def save_checkpoint(agent, run_dir: Path | None) -> None:
    if run_dir is None:
        return
    ckpt_dir = run_dir / "checkpoints"
    state = agent.state_dict()
    step = agent.train_state[BUDGET_COUNTER[agent.loop]]
    checkpoint.save(state, ckpt_dir / f"step_{step:010d}.pt")
    checkpoint.save(state, ckpt_dir / LATEST)
    numbered = sorted(ckpt_dir.glob("step_*.pt"))
    for old in numbered[: -agent.run.keep_checkpoints]:
        old.unlink()


def _as_floats(metrics: dict) -> dict:
    """Metrics may be 0-d tensors (off-policy updates avoid a device sync per step); they
    become floats only when a row is written."""
    return {k: float(v) for k, v in metrics.items()}


def _check_finite(metrics: dict, where: str) -> None:
    for k, v in metrics.items():  # losses diverging; diagnostics (explained variance...) may be NaN
        if k.startswith("loss/") and not math.isfinite(v):
            raise NonFiniteError(f"non-finite {k} = {v} in the update after {where}; "
                                 "the last good checkpoint is kept")


def budget(agent) -> int:
    """The run's budget in its loop's counter: ``total_steps``, except one iteration for a solver."""
    return 1 if agent.loop == "solve" else agent.run.total_steps


def finished(agent) -> bool:
    return agent.train_state.get(BUDGET_COUNTER[agent.loop], 0) >= budget(agent)


class Cadence:
    def __init__(self, agent, collector, run_dir: Path | None, progress: bool, log_stdout: bool):
        self.agent, self.collector, self.run_dir, self.log_stdout = agent, collector, run_dir, log_stdout
        self.counter = BUDGET_COUNTER[agent.loop]
        ts, run = agent.train_state, agent.run
        resumed = ts["iterations"] > 0
        for k in ("env_steps", "grad_steps", "iterations"):
            ts.setdefault(k, 0)
        ts.setdefault("next_log", 0)
        if not resumed and agent.evaluate_first_iteration and run.eval_every:
            ts["next_eval"] = 0
        self.logger = Logger(run_dir, stdout=log_stdout, resume_step=ts[self.counter] if resumed else None,
                             step_key=f"time/{self.counter}")
        self.bar = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=budget(agent), initial=ts[self.counter], unit="step", dynamic_ncols=True,
                            desc=f"{agent.name} {run.env_id}")
        self.start, self.start_count, self.wall_before = time.perf_counter(), ts[self.counter], ts["wall_time_s"]

    @property
    def done(self) -> bool:
        return finished(self.agent)

    def after_iteration(self, metrics: dict) -> None:
        agent, run, ts = self.agent, self.agent.run, self.agent.train_state
        count = ts[self.counter]
        due_eval = ts["next_eval"] is not None and count >= ts["next_eval"] and run.eval_episodes
        due_ckpt = ts["next_checkpoint"] is not None and count >= ts["next_checkpoint"]
        if not (due_eval or due_ckpt or self.done or count >= ts["next_log"]):
            return  # cheap iterations (one off-policy step) skip the bookkeeping below
        ts["next_log"] = count + (run.log_every or agent.log_every)
        metrics = _as_floats(metrics)
        _check_finite(metrics, f"{self.counter.replace('_', ' ')[:-1]} {count}")
        elapsed = time.perf_counter() - self.start
        ts["wall_time_s"] = self.wall_before + elapsed
        row = {"time/env_steps": ts["env_steps"], "time/grad_steps": ts["grad_steps"],
               "time/iterations": ts["iterations"], "time/sps": (count - self.start_count) / max(elapsed, 1e-9),
               "time/wall_s": ts["wall_time_s"]}
        c = self.collector
        if c is not None:
            row["train/episodes"] = c.episodes
            if c.completed:
                rets, lens = [e[0] for e in c.completed], [e[1] for e in c.completed]
                row["train/episode_return_mean"] = float(np.mean(rets[-20:]))
                row["train/episode_length_mean"] = float(np.mean(lens[-20:]))
        row.update(metrics)
        if c is not None:
            self.logger.log_episodes(c.drain_finished())
        if due_eval:
            row.update(self._evaluate())
            while ts["next_eval"] <= count:
                ts["next_eval"] += run.eval_every
        self.logger.log(row)
        if self.bar is not None:
            self.bar.update(min(count, budget(agent)) - self.bar.n)
            post = {name: f"{row[k]:.1f}" for name, k in
                    (("train_return", "train/episode_return_mean"), ("eval_return", "eval/return_mean")) if k in row}
            self.bar.set_postfix(post, refresh=False)
        elif self.log_stdout:
            self.logger.print(row, [f"time/{self.counter}", "train/episode_return_mean", "eval/return_mean",
                                    "time/sps"])
        if due_ckpt:
            while ts["next_checkpoint"] <= count:
                ts["next_checkpoint"] += run.checkpoint_every
            save_checkpoint(agent, self.run_dir)

    def _evaluate(self) -> dict:
        agent, ts = self.agent, self.agent.train_state
        ev = evaluate(agent, agent.run.eval_episodes, _eval_seed(agent, ts["num_evals"]))
        ts["num_evals"] += 1
        ts["last_eval"] = ev
        return {k: v for k, v in ev.items() if k != "returns"}

    def finish(self) -> dict:
        agent, run, ts = self.agent, self.agent.run, self.agent.train_state
        final = None
        if self.collector is not None:
            self.logger.log_episodes(self.collector.drain_finished())
        if run.eval_episodes:
            row = self._evaluate()
            final = ts["last_eval"]
            self.logger.log({"time/env_steps": ts["env_steps"], "time/grad_steps": ts["grad_steps"],
                             "time/iterations": ts["iterations"], **row})
        elapsed = time.perf_counter() - self.start
        completed = self.collector.completed if self.collector is not None else []
        summary = {"algo": agent.name, "env": run.env_id, "seed": run.seed, "env_steps": ts["env_steps"],
                   "grad_steps": ts["grad_steps"], "iterations": ts["iterations"],
                   "wall_time_s": round(ts["wall_time_s"], 3),
                   "sps": round((ts[self.counter] - self.start_count) / max(elapsed, 1e-9), 1),
                   "eval_return_mean": final["eval/return_mean"] if final else None,
                   "eval_return_std": final["eval/return_std"] if final else None,
                   "eval_episodes": run.eval_episodes if final else 0,
                   "eval_returns": final["returns"] if final else [],
                   "train_return_mean": float(np.mean([e[0] for e in completed])) if completed else None}
        summary.update(agent.summary())  # e.g. a bandit's regret, a planner's time per action
        if self.run_dir is not None:
            save_checkpoint(agent, self.run_dir)
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.logger.close()
