"""Figures for benchmarks/mbrl_course.py: per group, the evaluation return of each setting against
env steps (mean ± std over the seeds that have run), as ``benchmarks/results/mbrl_GROUP.png``.

    python benchmarks/plot_mbrl_course.py [--groups cheetah_rs mbpo_hw4 ...] [--root benchmarks/results/runs]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mbrl_course import GROUPS  # noqa: E402
from plot_offpolicy_course import group_figure  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--groups", nargs="+", default=list(GROUPS), choices=list(GROUPS))
    p.add_argument("--root", default="benchmarks/results/runs")
    p.add_argument("--out", default="benchmarks/results")
    a = p.parse_args()
    for g in a.groups:
        if (Path(a.root) / g).is_dir():
            out = Path(a.out) / f"mbrl_{g}.png"
            group_figure(Path(a.root) / g, out)
            print(out)


if __name__ == "__main__":
    main()
