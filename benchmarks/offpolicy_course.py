"""The course's off-policy experiments (CS285 HW3), 3 seeds each, through the CLI.

Groups (``--groups``):
  dqn_cartpole    DQN on CartPole-v1 with the zoo preset (50k steps)
  dqn_lunar       DQN vs double DQN on LunarLander-v3, zoo preset, 300k steps
  rainbow         Rainbow ablation on LunarLander-v3 (zoo preset, 100k steps): DQN, each switch
                  alone, and all of them (the rainbow preset)
  divergence      DQN on CartPole-v1 with learning rate 0.05 beside the preset's 2.3e-3:
                  Q estimates (train/q_mean) against the returns actually obtained
  sac_invpend     SAC on InvertedPendulum-v5 with the reparameterised and the REINFORCE actor
                  gradient (30k steps)
  sac_hopper      SAC on Hopper-v5, clipped double Q, 100k steps
Runs go to ``benchmarks/results/runs/GROUP/NAME/seedS`` (two in parallel); the summary goes to
``benchmarks/results/offpolicy_course.json``.

    python benchmarks/offpolicy_course.py --groups dqn_cartpole dqn_lunar
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import course_main  # noqa: E402

SEEDS = (0, 1, 2)
RF = ["eval_episodes=20", "checkpoint_every=0", "torch_threads=1"]  # two runs share the 2 cores
ZOO = ["--preset", "auto"]


def dqn_cartpole():
    yield "dqn_zoo", "dqn", "CartPole-v1", 50_000, [*ZOO, "eval_every=5000", *RF]


def dqn_lunar():
    for name, extra in (("dqn", []), ("double_dqn", ["double_q=true"])):
        yield name, "dqn", "LunarLander-v3", 300_000, [*ZOO, "eval_every=25000", *extra, *RF]


def rainbow():
    switches = {"dqn": [], "double": ["double_q=true"], "dueling": ["dueling=true"], "n_step3": ["n_step=3"],
                "prioritized": ["prioritized=true"], "noisy": ["noisy=true"], "c51": ["distributional=true"]}
    for name, extra in switches.items():
        yield name, "dqn", "LunarLander-v3", 100_000, [*ZOO, "eval_every=10000", *extra, *RF]
    yield "rainbow", "dqn", "LunarLander-v3", 100_000, ["--preset", "rainbow", "eval_every=10000", *RF]


def divergence():
    for lr in ("0.0023", "0.05"):
        yield f"lr{lr}", "dqn", "CartPole-v1", 50_000, [*ZOO, f"learning_rate={lr}", "log_every=256",
                                                         "eval_every=5000", *RF]


def sac_invpend():
    for grad in ("reparam", "reinforce"):
        yield grad, "sac", "InvertedPendulum-v5", 30_000, [f"actor_gradient={grad}", "learning_starts=1000",
                                                           "eval_every=5000", *RF]


def sac_hopper():
    yield "clipped_double_q", "sac", "Hopper-v5", 100_000, ["backup=min", "learning_starts=5000",
                                                            "eval_every=10000", *RF]


GROUPS = {"dqn_cartpole": dqn_cartpole, "dqn_lunar": dqn_lunar, "rainbow": rainbow, "divergence": divergence,
          "sac_invpend": sac_invpend, "sac_hopper": sac_hopper}


if __name__ == "__main__":
    raise SystemExit(course_main(GROUPS, SEEDS, "benchmarks/results/offpolicy_course.json"))
