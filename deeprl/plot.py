"""Learning curves from run directories: x = environment steps (gradient steps for a run that
takes none, e.g. behaviour cloning), mean +/- std across seeds."""
from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from deeprl.core.errors import CheckpointError

STEP = "time/env_steps"
X_LABELS = {"time/env_steps": "environment steps", "time/grad_steps": "gradient steps", "time/iterations": "iterations"}


def step_column(data: dict[str, np.ndarray]) -> str:
    """The column a run counts its progress in: env steps, unless it took none."""
    for key in X_LABELS:
        if key in data and np.nanmax(data[key], initial=0) > 0:
            return key
    return STEP


def read_run(run_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    cfg_path, csv_path = run_dir / "config.yaml", run_dir / "metrics.csv"
    if not cfg_path.is_file() or not csv_path.is_file():
        raise CheckpointError(f"{run_dir} is not a run directory (needs config.yaml and metrics.csv)")
    cfg = yaml.safe_load(cfg_path.read_text())
    cols: dict[str, list] = defaultdict(list)
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                cols[k].append(float(v) if v not in ("", None) else np.nan)
    return cfg, {k: np.asarray(v) for k, v in cols.items()}


def curve(data: dict[str, np.ndarray], metric: str):
    step = step_column(data)
    if metric not in data or step not in data:
        return None
    x, y = data[step], data[metric]
    ok = ~np.isnan(y)
    if not ok.any():
        return None
    x, y = x[ok], y[ok]
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def reference_lines(run_dir: Path, cfg: dict, data: dict[str, np.ndarray]) -> list[tuple[str, str, float]]:
    """Horizontal reference lines for a run's return plot, ``(label, linestyle, value)``: the
    expert's return where ``summary.json`` has one (imitation), and for DAgger the evaluation of
    iteration 0, which is behaviour cloning on the demonstrations."""
    out = []
    summary = run_dir / "summary.json"
    if summary.is_file():
        expert = json.loads(summary.read_text()).get("expert_return_mean")
        if expert is not None:
            out.append(("expert", "--", float(expert)))
    c = curve(data, "eval/return_mean")
    if cfg.get("algo") == "dagger" and c is not None and c[0][0] == 0:
        out.append(("BC (DAgger iteration 0)", ":", float(c[1][0])))
    return out


def _by_label(lines):
    grouped = defaultdict(list)
    for label, style, v in lines:
        grouped[(label, style)].append(v)
    return grouped


def plot_runs(run_dirs: list[str | Path], out: str | Path, metric: str | None = None, title: str | None = None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple[str, str], list] = defaultdict(list)
    refs: dict[tuple[str, str], list] = defaultdict(list)
    used_metric, x_label = None, None
    for rd in run_dirs:
        cfg, data = read_run(Path(rd))
        x_label = x_label or X_LABELS[step_column(data)]
        refs[(cfg["algo"], cfg["run"]["env_id"])].extend(reference_lines(Path(rd), cfg, data))
        m = metric or ("eval/return_mean" if curve(data, "eval/return_mean") is not None
                       else "train/episode_return_mean")
        c = curve(data, m)
        if c is None:
            continue
        used_metric = used_metric or m
        groups[(cfg["algo"], cfg["run"]["env_id"])].append(c)
    if not groups:
        raise CheckpointError(f"no {metric or 'return'} values to plot in {', '.join(map(str, run_dirs))}")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (algo, env), curves in sorted(groups.items()):
        label = f"{algo} {env}" + (f" ({len(curves)} seeds)" if len(curves) > 1 else "")
        if len(curves) == 1:
            ax.plot(*curves[0], label=label)
            continue
        lo = max(c[0][0] for c in curves)
        hi = min(c[0][-1] for c in curves)
        grid = np.linspace(lo, hi, 200) if hi > lo else np.array([lo])
        ys = np.stack([np.interp(grid, x, y) for x, y in curves])
        mean, std = ys.mean(0), ys.std(0)
        line, = ax.plot(grid, mean, label=label)
        ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.25)
    if used_metric == "eval/return_mean":
        for (algo, env), lines in sorted(refs.items()):
            for (label, style), values in sorted(_by_label(lines).items()):
                v = float(np.mean(values))
                ax.axhline(v, color="k" if style == "--" else "tab:red", ls=style, lw=1.2,
                           label=f"{label} {v:.0f}" + (f" ({algo} {env})" if len(refs) > 1 else ""))
    ax.set_xlabel(x_label)
    ax.set_ylabel(used_metric)
    ax.set_title(title or "learning curves (mean ± std across seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


class PlotWorker:
    """``plot_runs`` in a child process that imports matplotlib (about 1 s) when the run starts,
    on the core training leaves free, and draws when :meth:`plot` is called. If the child cannot
    start or fails, :meth:`plot` draws in this process instead."""

    def __init__(self):
        import subprocess
        import sys

        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "deeprl.plot", "--serve"], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        except OSError:
            self.proc = None

    def plot(self, run_dirs: list[str | Path], out: str | Path) -> Path:
        if self.proc is not None:
            request = json.dumps({"run_dirs": [str(d) for d in run_dirs], "out": str(out)})
            try:
                _, err = self.proc.communicate(request + "\n", timeout=300)
                if self.proc.returncode == 0:
                    return Path(out)
            except Exception:  # noqa: BLE001 - fall back to plotting here
                self.close()
        return plot_runs(run_dirs, out)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _serve() -> int:
    import sys

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401  (the slow import, done before the request arrives)

    line = sys.stdin.readline()
    if not line:
        return 1  # the parent went away
    request = json.loads(line)
    plot_runs(request["run_dirs"], request["out"])
    return 0


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--serve"]:
        raise SystemExit(_serve())
