"""The course's model-based experiments (CS285 HW4), 3 seeds each, through the CLI.

Groups (``--groups``):
  pendulum        mbrl (deterministic ensemble) and pets (probabilistic, TS-inf) with CEM-MPC on
                  Pendulum-v1, 2000 env steps, their presets
  obstacles_one   mbrl on deeprl/Obstacles-v0: one iteration (plan on a model of 5000 random steps)
  obstacles_iter  mbrl on deeprl/Obstacles-v0: 12 iterations (5000 random + 11 x 1000 MPC steps)
  cheetah_rs      mbrl on deeprl/Cheetah-v0 (HW4's cheetah), random shooting: 5000 random steps,
                  then 5000 MPC steps per iteration, 5 iterations (HW4's q5 budget, 25k steps)
  cheetah_cem     the same with CEM (4 iterations of 1000 samples, 5 elites): HW4's q5 "cem_4"
  mbpo_hw4        mbpo on deeprl/Cheetah-v0 with HW4's MBPO setting (10 iterations of 5000 steps, SAC with
                  3 x 128 layers, batch 1500, fixed temperature 0.05, one update per env step), model
                  rollout lengths 10, 0 (SAC alone) and 1; the real fraction of SAC's batches is
                  1 / (1 + k), HW4's share of real rows in its one mixed buffer
  invpend         the replay-loop model-based agents beside SAC on InvertedPendulum-v5, 6000 env steps,
                  their presets (500 random steps, a model fit every 250): sac (1 update per env step),
                  mbpo with rollout_length=0 (SAC at MBPO's 10 updates per env step), mbpo (1-step
                  rollouts, half real data), dyna (one model step from visited (s, a), 2 updates),
                  mve (3-step model-expanded critic targets, 1 update)
  pendulum_dyna   sac, dyna and mve on Pendulum-v1's known reward, 5000 env steps, SAC's learning rate
                  1e-3 (rl-zoo's for Pendulum), 500 random steps, a model fit every 250
  reacher         mbrl on Pusher-v5 (a 7-DoF arm, as the course's reacher) with HW4's reacher config
                  (horizon 10, 5000 random + 5000 MPC steps per iteration), 15 iterations
The cheetah and reacher groups plan with bfloat16 matmuls (``plan_precision=bfloat16``: 2x per
action on this CPU); they are hours per seed on 2 cores.
``--resume`` continues interrupted runs (a checkpoint and no ``summary.json``) from their last checkpoint.
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


def cheetah_rs():
    yield "random_shooting", "mbrl", "deeprl/Cheetah-v0", 25000, ["--preset", "auto", "planner=random",
                                                                  "plan_precision=bfloat16", *RF]


def cheetah_cem():
    # hours per seed: a checkpoint every 2500 steps, so `--resume` goes on in a later session
    yield "cem_4", "mbrl", "deeprl/Cheetah-v0", 25000, ["--preset", "auto", "planner=cem", "num_iterations=4",
                                                        "plan_precision=bfloat16", *RF, "checkpoint_every=2500"]


def mbpo_hw4():
    # HW4 (fall 2023) halfcheetah_mbpo.yaml + sac/halfcheetah_clipq.yaml: 5000 random steps, then 9 x
    # 5000 with the SAC policy; a 3-member deterministic ensemble of 2 x 250 refit every 5000 steps;
    # 5000 one-start rollouts of length k per iteration, kept for the whole run (one buffer in HW4);
    # SAC: clipped double Q, 3 x 128, batch 1500, temperature 0.05, Polyak 0.005; 10 eval episodes.
    base = ["--preset", "none", "learning_starts=5000", "gradient_steps=1", "batch_size=1500",
            "hidden_sizes=[128,128,128]", "alpha=0.05", "autotune_alpha=false", "tau=0.005", "gamma=0.99",
            "ensemble_size=3", "num_model_elites=3", "probabilistic=false", "model_hidden_sizes=[250,250]",
            "model_max_epochs=50", "model_train_freq=5000", "rollout_batch_size=5000", "model_retain_steps=50000",
            "eval_every=5000", "eval_episodes=10", *RF]
    for k in (10, 0, 1):
        yield f"rollout_length_{k}", "mbpo", "deeprl/Cheetah-v0", 50000, [*base, f"rollout_length={k}",
                                                                             f"real_ratio={1 / (1 + k):.4f}"]


def invpend():
    ev = ["eval_every=500", "eval_episodes=5", *RF]
    yield "sac", "sac", "InvertedPendulum-v5", 6000, ["--preset", "none", "learning_starts=500", *ev]
    yield "sac_utd10", "mbpo", "InvertedPendulum-v5", 6000, ["--preset", "auto", "rollout_length=0", *ev]
    for algo in ("mbpo", "dyna", "mve"):
        yield algo, algo, "InvertedPendulum-v5", 6000, ["--preset", "auto", *ev]


def pendulum_dyna():
    args = ["--preset", "none", "learning_starts=500", "learning_rate=0.001", "eval_every=500", "eval_episodes=5", *RF]
    for algo in ("sac", "dyna", "mve"):
        yield algo, algo, "Pendulum-v1", 5000, args


def reacher():
    # HW4: --mpc_horizon 10 --batch_size_initial 5000 --batch_size 5000 --n_iter 15 (2 x 250 members, 3 of them)
    yield "15_iterations", "mbrl", "Pusher-v5", 75000, [
        "--preset", "none", "initial_steps=5000", "steps_per_iteration=5000", "ensemble_size=3",
        "model_hidden_sizes=[250,250]", "model_max_epochs=30", "planner=random", "horizon=10", "num_samples=1000",
        "eval_every=5000", "eval_episodes=5", "plan_precision=bfloat16", *RF]


GROUPS = {"pendulum": pendulum, "obstacles_one": obstacles_one, "obstacles_iter": obstacles_iter,
          "cheetah_rs": cheetah_rs, "cheetah_cem": cheetah_cem, "mbpo_hw4": mbpo_hw4, "invpend": invpend,
          "pendulum_dyna": pendulum_dyna, "reacher": reacher}


if __name__ == "__main__":
    raise SystemExit(course_main(GROUPS, SEEDS, "benchmarks/results/mbrl_course.json"))
