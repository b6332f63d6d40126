"""The course's policy-gradient experiments (CS285 HW2/HW3), 3 seeds each, through the CLI.

Groups (``--groups``):
  cartpole      CartPole-v0 (200-step episodes), 100 iterations, batch 1000 and 4000,
                +- reward-to-go, +- advantage normalisation (REINFORCE, discount 1, lr 5e-3)
  invpend       InvertedPendulum-v5, reward-to-go + baseline
  halfcheetah   HalfCheetah-v5, reward-to-go + baseline, 100 iterations, batch 5000,
                discount 0.95, lr 0.01
  lunar         LunarLander-v3, GAE lambda in {0, 0.95, 0.98, 0.99, 1}, discount 0.99,
                300 iterations, batch 2000, 3x128 network, lr 1e-3
  ac            course actor-critic on CartPole-v0 (10 target updates x 10 grad steps) and
                A2C on CartPole-v1
Each run is ``deeprl train ...`` into ``benchmarks/results/runs/GROUP/NAME/seedS``; two runs in
parallel (one per core). The summary (final deterministic eval over 10 episodes, best and
last training-average return) goes to ``benchmarks/results/pg_course.json``.

    python benchmarks/pg_course.py --groups cartpole invpend halfcheetah lunar ac
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import course_main  # noqa: E402

SEEDS = (0, 1, 2)
RF = ["eval_every=0", "eval_episodes=10", "checkpoint_every=0"]


def cartpole():
    for b in (1000, 4000):
        for rtg in (False, True):
            for na in (False, True):
                name = f"b{b}{'_rtg' if rtg else ''}{'_na' if na else ''}"
                yield name, "reinforce", "CartPole-v0", 100 * b, [
                    f"batch_size={b}", f"reward_to_go={str(rtg).lower()}", f"normalize_advantages={str(na).lower()}",
                    "gamma=1.0", "learning_rate=0.005", *RF]


def invpend():
    yield "b5000_lr0.01_rtg_baseline", "reinforce", "InvertedPendulum-v5", 500_000, [
        "batch_size=5000", "reward_to_go=true", "baseline=true", "normalize_advantages=true", "gamma=0.92",
        "learning_rate=0.01", "baseline_learning_rate=0.01", *RF]


def halfcheetah():
    yield "b5000_rtg_baseline", "reinforce", "HalfCheetah-v5", 500_000, [
        "batch_size=5000", "reward_to_go=true", "baseline=true", "normalize_advantages=true", "gamma=0.95",
        "learning_rate=0.01", "baseline_learning_rate=0.01", "baseline_gradient_steps=5", *RF]


def lunar():
    for lam in (0.0, 0.95, 0.98, 0.99, 1.0):
        yield f"gae{lam}", "reinforce", "LunarLander-v3", 600_000, [
            "batch_size=2000", "reward_to_go=true", "baseline=true", f"gae_lambda={lam}",
            "normalize_advantages=true", "gamma=0.99", "learning_rate=0.001", "baseline_learning_rate=0.001",
            "hidden_sizes=[128,128,128]", *RF]


def ac():
    yield "ac_ntu10_ngsptu10", "actor_critic", "CartPole-v0", 100_000, [
        "n_steps=1000", "num_target_updates=10", "num_grad_steps_per_target_update=10", "gamma=1.0",
        "actor_learning_rate=0.005", "critic_learning_rate=0.005", *RF]
    yield "a2c_8envs", "a2c", "CartPole-v1", 200_000, ["num_envs=8", *RF]


GROUPS = {"cartpole": cartpole, "invpend": invpend, "halfcheetah": halfcheetah, "lunar": lunar, "ac": ac}


def main():
    return course_main(GROUPS, SEEDS, "benchmarks/results/pg_course.json")


if __name__ == "__main__":
    raise SystemExit(main())
