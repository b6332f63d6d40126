"""Metrics to TensorBoard, ``metrics.csv`` and stdout under stable names
(``time/env_steps``, ``time/sps``, ``eval/return_mean``, ``train/...``, ``loss/...``), and every
finished training episode to ``episodes.csv`` (``env_step`` at its end, ``return``, ``length``)."""
from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

STEP_KEY = "time/env_steps"
EPISODE_FIELDS = ("env_step", "return", "length")


class Logger:
    def __init__(self, run_dir: str | Path | None, stdout: bool = True, tensorboard: bool = True,
                 resume_step: int | None = None, step_key: str = STEP_KEY):
        """``step_key``: the column that counts the run's progress (the TensorBoard step; rows
        after ``resume_step`` in it are dropped on resume)."""
        self.step_key = step_key
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.stdout = stdout
        self.header: list[str] | None = None
        self.tb = None
        if self.run_dir is not None:
            self.csv_path = self.run_dir / "metrics.csv"
            self.episodes_path = self.run_dir / "episodes.csv"
            if resume_step is not None and self.csv_path.exists():
                self._truncate_after(resume_step)
            elif self.csv_path.exists():
                self.csv_path.unlink()
            if resume_step is not None and self.episodes_path.exists():
                self._truncate_episodes_after(resume_step if step_key == STEP_KEY else None)
            elif self.episodes_path.exists():
                self.episodes_path.unlink()
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=resume_step)

    def _truncate_after(self, step: int) -> None:
        """On resume, drop rows logged after the checkpoint (they will be logged again)."""
        with open(self.csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
            header = list(rows[0].keys()) if rows else None
        # a run written before its step column existed counted its progress in time/env_steps
        key = self.step_key if header is None or self.step_key in header else STEP_KEY
        rows = [r for r in rows if r.get(key) and float(r[key]) <= step]
        self.header = header
        self._rewrite(rows)

    def _truncate_episodes_after(self, env_step: int | None) -> None:
        """On resume, drop the episodes that ended after the checkpoint's env step."""
        if env_step is None:
            return
        with open(self.episodes_path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("env_step") and int(float(r["env_step"])) <= env_step]
        with open(self.episodes_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=EPISODE_FIELDS)
            w.writeheader()
            w.writerows(rows)

    def log_episodes(self, episodes) -> None:
        """Append ``(return, length, env step at its end)`` rows to ``episodes.csv``."""
        if self.run_dir is None or not episodes:
            return
        new = not self.episodes_path.exists()
        with open(self.episodes_path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(EPISODE_FIELDS)
            w.writerows(("" if end is None else end, ret, length) for ret, length, end in episodes)

    def _rewrite(self, rows):
        with open(self.csv_path, "w", newline="") as f:
            if self.header:
                w = csv.DictWriter(f, fieldnames=self.header)
                w.writeheader()
                w.writerows(rows)

    def log(self, metrics: dict[str, float]) -> None:
        step = int(metrics[self.step_key])
        if self.tb is not None:
            for k, v in metrics.items():
                if k != self.step_key and v is not None and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, step)
        if self.run_dir is not None:
            self._write_csv(metrics)

    def _write_csv(self, metrics):
        keys = list(metrics)
        if self.header is None or any(k not in self.header for k in keys):
            old = []
            if self.header is not None and self.csv_path.exists():
                with open(self.csv_path, newline="") as f:
                    old = list(csv.DictReader(f))
            self.header = (self.header or []) + [k for k in keys if k not in (self.header or [])]
            self._rewrite(old)
        with open(self.csv_path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.header).writerow(metrics)

    def print(self, metrics: dict[str, float], keys=None) -> None:
        if not self.stdout:
            return
        keys = keys or list(metrics)
        parts = [f"{k}={_fmt(metrics[k])}" for k in keys if k in metrics and metrics[k] is not None]
        print(" | ".join(parts), file=sys.stderr, flush=True)

    def close(self):
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()


def _fmt(v):
    if isinstance(v, float):
        if math.isfinite(v) and v == int(v) and abs(v) < 1e9:
            return str(int(v))
        return f"{v:.4g}"
    return str(v)
