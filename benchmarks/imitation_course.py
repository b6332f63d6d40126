"""The course's imitation-learning experiments (CS285 HW1), 3 seeds each, through the CLI.

For each env with a shipped expert: behaviour cloning on 5 expert episodes (10k gradient steps)
and DAgger from the same demonstrations (10 iterations of 1000 learner steps, evaluated after
every iteration, iteration 0 being plain BC), with the env's presets where there are any
(``deeprl/configs/{bc,dagger}/HalfCheetah-v5.yaml``: MSE, 5000 gradient steps per DAgger
iteration; elsewhere the defaults: likelihood, 1000 steps). ``summary.json`` of every run holds
the expert's return beside the learner's.

Groups (``--groups``): lunar, hopper, halfcheetah, walker, ant (each: bc and dagger). The
multimodal experiment is ``benchmarks/imitation_multimodal.py``.

    python benchmarks/imitation_course.py --groups lunar hopper halfcheetah
    python benchmarks/plot_imitation.py
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import course_main  # noqa: E402

SEEDS = (0, 1, 2)
RF = ["eval_episodes=10", "checkpoint_every=0", "torch_threads=1", "--preset", "auto"]
ENVS = {"lunar": "LunarLander-v3", "hopper": "Hopper-v5", "halfcheetah": "HalfCheetah-v5", "walker": "Walker2d-v5",
        "ant": "Ant-v5"}


def bc_and_dagger(env):
    def jobs():
        yield "bc", "bc", env, 10_000, ["demo_episodes=5", "eval_every=2000", *RF]
        yield "dagger", "dagger", env, 10_000, ["demo_episodes=5", "rollout_steps=1000", "eval_every=1000", *RF]
    return jobs


GROUPS = {g: bc_and_dagger(env) for g, env in ENVS.items()}

if __name__ == "__main__":
    raise SystemExit(course_main(GROUPS, SEEDS, "benchmarks/results/imitation_course.json",
                                 "benchmarks/results/runs/imitation"))
