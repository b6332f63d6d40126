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

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine  # noqa: E402

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


def train_returns(run_dir):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        vals = [float(r["train/episode_return_mean"]) for r in csv.DictReader(f)
                if r.get("train/episode_return_mean") not in (None, "")]
    return vals


def run_one(job):
    group, name, algo, env, steps, args, seed, root = job
    run_dir = os.path.join(root, group, name, f"seed{seed}")
    if os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    cmd = [sys.executable, "-m", "deeprl", "train", algo, "--env", env, "--seed", str(seed), "--steps", str(steps),
           "--run-dir", run_dir, "--preset", "none", "--no-progress", *args]
    t = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"group": group, "name": name, "seed": seed, "error": out.stderr.strip().splitlines()[-1:]}
    s = json.load(open(os.path.join(run_dir, "summary.json")))
    tr = train_returns(run_dir)
    return {"group": group, "name": name, "algo": algo, "env": env, "seed": seed, "steps": s["env_steps"],
            "iterations": s["iterations"], "eval_return_mean": s["eval_return_mean"],
            "train_return_best": max(tr) if tr else None, "train_return_last": tr[-1] if tr else None,
            "wall_s": round(time.time() - t, 1), "command": " ".join(cmd[1:])}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--groups", nargs="+", default=list(GROUPS), choices=list(GROUPS))
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--root", default="benchmarks/results/runs")
    p.add_argument("--out", default="benchmarks/results/pg_course.json")
    a = p.parse_args()
    jobs = [(g, name, algo, env, steps, args, s, a.root)
            for g in a.groups for name, algo, env, steps, args in GROUPS[g]() for s in SEEDS]
    results = []
    with ThreadPoolExecutor(a.workers) as pool:
        for r in pool.map(run_one, jobs):
            results.append(r)
            print(json.dumps(r), flush=True)
    prev = json.load(open(a.out)) if os.path.exists(a.out) else {"results": []}
    keep = [r for r in prev["results"] if r["group"] not in a.groups]
    out = {"machine": machine(), "command": "python " + " ".join(sys.argv), "results": keep + results}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    json.dump(out, open(a.out, "w"), indent=2)
    for g in a.groups:
        names = sorted({r["name"] for r in results if r["group"] == g})
        for n in names:
            rs = [r for r in results if r["group"] == g and r["name"] == n and "error" not in r]
            if rs:
                ev = [r["eval_return_mean"] for r in rs]
                best = [r["train_return_best"] for r in rs]
                m = lambda x: sum(x) / len(x)  # noqa: E731
                print(f"{g:12s} {n:28s} eval {m(ev):8.1f} (seeds {', '.join(f'{v:.0f}' for v in ev)})  "
                      f"best train avg {m(best):8.1f}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
