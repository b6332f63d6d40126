"""Figures for benchmarks/imitation_course.py: per env, DAgger's evaluation return after each
iteration (iteration 0 is plain behaviour cloning; mean and per-seed values over seeds) with
the expert's return and behaviour cloning's final return as reference lines; and the table.

    python benchmarks/plot_imitation.py [--root benchmarks/results/runs/imitation] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deeprl.plot import curve, read_run  # noqa: E402


def summaries(setting: Path) -> list[dict]:
    return [json.loads((s / "summary.json").read_text()) for s in sorted(setting.glob("seed*"))
            if (s / "summary.json").exists()]


def env_figure(group_dir: Path, out: Path) -> dict:
    dagger = [curve(read_run(s)[1], "eval/return_mean") for s in sorted((group_dir / "dagger").glob("seed*"))]
    dagger = [c for c in dagger if c is not None]
    bc, dg = summaries(group_dir / "bc"), summaries(group_dir / "dagger")
    expert = float(np.mean([s["expert_return_mean"] for s in bc + dg]))
    bc_final = float(np.mean([s["eval_return_mean"] for s in bc])) if bc else None
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    if dagger:
        # one point per iteration: the evaluation rows by env step (the final evaluation repeats the last)
        dagger = [(np.unique(x), np.array([y[np.flatnonzero(x == u)[-1]] for u in np.unique(x)])) for x, y in dagger]
        n = min(len(x) for x, _ in dagger)
        ys = np.stack([y[:n] for _, y in dagger])
        for y in ys:
            ax.plot(np.arange(n), y, color="C0", alpha=0.25, lw=1)
        ax.plot(np.arange(n), ys.mean(0), color="C0", lw=2, marker="o", label=f"DAgger ({len(ys)} seeds)")
    ax.axhline(expert, color="k", ls="--", label=f"expert {expert:.0f}")
    if bc_final is not None:
        ax.axhline(bc_final, color="C3", ls=":", label=f"BC {bc_final:.0f}")
    ax.set_xlabel("DAgger iteration (1000 learner steps each; 0 = BC on the demonstrations)")
    ax.set_ylabel("eval return")
    env = (bc + dg)[0]["env"]
    ax.set_title(env)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    final = [s["eval_return_mean"] for s in dg]
    return {"env": env, "expert": expert, "bc": [s["eval_return_mean"] for s in bc], "dagger": final,
            "dagger_best_iteration": [float(max(y)) for _, y in dagger]}


def percents(xs, expert: float) -> str:
    return ", ".join(f"{x:.0f} ({100 * x / expert:.0f}%)" for x in xs)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--root", default="benchmarks/results/runs/imitation")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--groups", nargs="+", default=["lunar", "hopper", "halfcheetah", "walker", "ant"])
    a = p.parse_args()
    for g in a.groups:
        d = Path(a.root) / g
        if not (d / "bc").is_dir() and not (d / "dagger").is_dir():
            continue
        r = env_figure(d, Path(a.out) / f"imitation_{g}.png")
        print(f"| {r['env']} | {r['expert']:.0f} | {percents(r['bc'], r['expert'])} | "
              f"{percents(r['dagger'], r['expert'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
