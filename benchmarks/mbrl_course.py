"""The course's model-based experiments (CS285 HW4), 3 seeds each, through the CLI.

Groups (``--groups``):
  pendulum        mbrl (deterministic ensemble) and pets (probabilistic, TS-inf) with CEM-MPC on
                  Pendulum-v1, 2000 env steps, their presets
  obstacles_one   mbrl on deeprl/Obstacles-v0: one iteration (plan on a model of 5000 random steps)
  obstacles_iter  mbrl on deeprl/Obstacles-v0: 12 iterations (5000 random + 11 x 1000 MPC steps)
Runs go to ``benchmarks/results/runs/GROUP/NAME/seedS``; the summary to
``benchmarks/results/mbrl_course.json``. Planning is matmul-bound: by default one run at a time
with 2 torch threads.

    python benchmarks/mbrl_course.py --groups pendulum obstacles_one --workers 1
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import course_main  # noqa: E402

SEEDS = (0, 1, 2)
RF = ["checkpoint_every=0", "torch_threads=2"]


def pendulum():
    for algo in ("mbrl", "pets"):
        yield algo, algo, "Pendulum-v1", 2000, ["--preset", "auto", "eval_every=400", "eval_episodes=5", *RF]


def obstacles_one():
    yield "one_iteration", "mbrl", "deeprl/Obstacles-v0", 5000, ["--preset", "auto", "eval_every=5000", *RF]


def obstacles_iter():
    args = ["--preset", "auto", "eval_every=3000", "eval_episodes=5", *RF]
    yield "12_iterations", "mbrl", "deeprl/Obstacles-v0", 16000, args


GROUPS = {"pendulum": pendulum, "obstacles_one": obstacles_one, "obstacles_iter": obstacles_iter}


if __name__ == "__main__":
    raise SystemExit(course_main(GROUPS, SEEDS, "benchmarks/results/mbrl_course.json"))
