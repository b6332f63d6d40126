"""An Atari run within this machine's budget: DQN (Nature CNN, ``--preset atari100k``) for
100k agent steps (400k frames), evaluated every 25k steps, beside a uniformly random policy
scored by the same evaluator.

    python benchmarks/atari_dqn.py --env ALE/RoadRunner-v5 [--seed 0] [--precision bfloat16]

Writes ``benchmarks/results/atari_<game>.json`` (the run goes to benchmarks/results/runs/atari).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine  # noqa: E402


def epsilon_greedy_returns(agent, env_id: str, episodes: int, seed: int, eps: float) -> list[float]:
    """Returns of the agent acting epsilon-greedily (``agent=None``: uniformly at random), the
    Atari evaluation protocol of Mnih et al. (2015) with eps = 0.05: a deterministic greedy policy
    can stall forever in some games (RoadRunner does), which the small eps breaks."""
    from deeprl.envs.make import make_env

    env = make_env(env_id)
    rng = np.random.default_rng(seed)
    out = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, total = False, 0.0
        while not done:
            greedy = agent is not None and rng.random() >= eps
            a = int(agent.predict(obs)) if greedy else int(rng.integers(env.action_space.n))
            obs, r, term, trunc, _ = env.step(a)
            total += float(r)
            done = term or trunc
        out.append(total)
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="ALE/RoadRunner-v5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--precision", default="bfloat16", choices=("float32", "bfloat16"))
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--report-only", action="store_true", help="score the run's latest checkpoint without training")
    a = p.parse_args()
    game = a.env.split("/")[-1]
    run_dir = f"benchmarks/results/runs/atari/{game}-seed{a.seed}"
    cmd = [sys.executable, "-m", "deeprl", "train", "dqn", "--env", a.env, "--preset", "atari100k", "--seed",
           str(a.seed), "--steps", str(a.steps), "--run-dir", run_dir, "--no-progress", "eval_every=25000",
           f"eval_episodes={a.eval_episodes}", "checkpoint_every=25000", f"matmul_precision={a.precision}"]
    t = time.time()
    if not a.report_only:
        subprocess.run(cmd, check=True)
    wall = time.time() - t
    rows = list(csv.DictReader(open(os.path.join(run_dir, "metrics.csv"))))
    evals = [(int(float(r["time/env_steps"])), float(r["eval/return_mean"])) for r in rows if r.get("eval/return_mean")]
    train = [(int(float(r["time/env_steps"])), float(r["train/episode_return_mean"])) for r in rows
             if r.get("train/episode_return_mean")]
    from deeprl import DQN

    agent = DQN.load(os.path.join(run_dir, "checkpoints", "latest.pt"), torch_threads=2)
    greedy05 = epsilon_greedy_returns(agent, a.env, 10, 2_000_000, eps=0.05)
    rand = epsilon_greedy_returns(None, a.env, 10, 2_000_000, eps=1.0)
    summary_path = os.path.join(run_dir, "summary.json")
    out = {"machine": machine(), "command": "python " + " ".join(sys.argv), "train_command": " ".join(cmd[1:]),
           "env": a.env, "seed": a.seed, "agent_steps": a.steps, "frames": 4 * a.steps,
           "checkpoint_env_steps": agent.train_state["env_steps"], "wall_s": None if a.report_only else round(wall, 1),
           "evals_deterministic": evals, "train_curve": train[:: max(1, len(train) // 50)],
           "final_eval_deterministic": json.load(open(summary_path))["eval_returns"]
           if os.path.exists(summary_path) else None,
           "eps005_returns": greedy05, "random_policy_returns": rand}
    path = f"benchmarks/results/atari_{game}.json"
    json.dump(out, open(path, "w"), indent=2)
    print(json.dumps({k: out[k] for k in ("env", "checkpoint_env_steps", "evals_deterministic", "eps005_returns",
                                          "random_policy_returns")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
