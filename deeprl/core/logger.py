"""Metrics to TensorBoard, ``metrics.csv`` and stdout under stable names
(``time/env_steps``, ``time/sps``, ``eval/return_mean``, ``train/...``, ``loss/...``)."""
from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

STEP_KEY = "time/env_steps"


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
            if resume_step is not None and self.csv_path.exists():
                self._truncate_after(resume_step)
            elif self.csv_path.exists():
                self.csv_path.unlink()
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
