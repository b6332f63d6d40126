"""Figures for benchmarks/offpolicy_course.py: per group, the evaluation return of each setting
(mean ± std over seeds), and for ``divergence`` the Q estimates against the discounted return
the agent actually obtains.

CartPole gives reward 1 per step, so a state t steps into an episode of length L has discounted
return (1 - gamma^(L-t)) / (1 - gamma); averaged over the episode's states that is
(L - gamma (1 - gamma^L) / (1 - gamma)) / (L (1 - gamma)), computed from the logged mean
episode length and plotted beside ``train/q_mean`` (the mean Q(s, a) of the replayed batch).

    python benchmarks/plot_offpolicy_course.py [--root benchmarks/results/runs] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deeprl.plot import curve, read_run  # noqa: E402


def mean_std(curves):
    lo, hi = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
    grid = np.linspace(lo, hi, 100) if hi > lo else np.array([lo])
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    return grid, ys.mean(0), ys.std(0)


def group_figure(group_dir: Path, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for setting in sorted(p for p in group_dir.iterdir() if p.is_dir()):
        curves = [c for c in (curve(read_run(s)[1], "eval/return_mean") for s in sorted(setting.glob("seed*")))
                  if c is not None]
        if not curves:
            continue
        x, m, s = mean_std(curves)
        line, = ax.plot(x, m, label=f"{setting.name} ({len(curves)} seeds)")
        ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("eval return (deterministic)")
    ax.set_title(group_dir.name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def divergence_figure(group_dir: Path, out: Path, gamma: float = 0.99) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for setting in sorted(p for p in group_dir.iterdir() if p.is_dir()):
        for seed in sorted(setting.glob("seed*")):
            _, d = read_run(seed)
            q, ln = curve(d, "train/q_mean"), curve(d, "train/episode_length_mean")
            if q is None or ln is None:
                continue
            L = np.interp(q[0], *ln)
            true = (L - gamma * (1 - gamma ** L) / (1 - gamma)) / (L * (1 - gamma))
            ax = axes[0] if setting.name.endswith("0.0023") else axes[1]
            line, = ax.plot(q[0], q[1], label=f"Q estimate, seed {seed.name[4:]}")
            ax.plot(q[0], true, "--", color=line.get_color(), label=f"discounted return, seed {seed.name[4:]}")
            ax.set_title(f"DQN CartPole-v1, {setting.name.replace('lr', 'learning rate ')}")
    for ax in axes:
        ax.set_xlabel("environment steps")
        ax.set_ylabel("value")
        ax.set_yscale("symlog")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", default="benchmarks/results/runs")
    p.add_argument("--out", default="benchmarks/results")
    a = p.parse_args()
    root, out = Path(a.root), Path(a.out)
    for g in ("dqn_cartpole", "dqn_lunar", "rainbow", "sac_invpend", "sac_hopper"):
        if (root / g).is_dir():
            group_figure(root / g, out / f"offpolicy_{g}.png")
            print(out / f"offpolicy_{g}.png")
    if (root / "divergence").is_dir():
        divergence_figure(root / "divergence", out / "offpolicy_divergence.png")
        print(out / "offpolicy_divergence.png")


if __name__ == "__main__":
    main()
