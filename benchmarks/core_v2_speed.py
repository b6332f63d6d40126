"""Speed a user sees, before and after a core change, in one alternating run on this machine.

Three measurements, each of whole ``deeprl train`` processes (one fresh process per run):

* ``whole``: ``deeprl train ppo --env CartPole-v1 --steps 100000 eval_every=0 eval_episodes=10``
  from start to exit, beside Stable-Baselines3's equivalent script (same hyperparameters: the
  rl-zoo preset deeprl uses; train, evaluate 10 episodes, save the model). Reports the total
  and the part outside training (total minus the run's own ``wall_time_s``; for SB3 minus
  ``learn()``).
* ``pair``: ``deeprl train sac --env Pendulum-v1 --steps 2000``: one run alone, then two started
  at once; the slowdown of the pair over the alone time.
* ``algos``: PPO CartPole-v1 100k, SAC Pendulum-v1 20k, DQN CartPole-v1 50k, seeds 0-2, training
  wall time and final eval return.

Each tree is a checkout put first on PYTHONPATH (e.g. ``--tree before=/tmp/base --tree after=.``),
so "before" is the code of another commit, run by the same interpreter and packages.

    python benchmarks/core_v2_speed.py whole pair algos --tree before=/tmp/base --tree after=. \
        --repeats 3 --out benchmarks/results/core_v2_speed.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine  # noqa: E402

SB3_PPO = """
import json, sys, time
t0 = time.perf_counter()
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
lin = lambda v: (lambda p: p * v)
env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, n_epochs=20, gae_lambda=0.8, gamma=0.98, ent_coef=0.0,
            learning_rate=lin(1e-3), clip_range=lin(0.2), seed=0, device="cpu", verbose=0)
t = time.perf_counter()
model.learn(100_000)
train = time.perf_counter() - t
mean, _ = evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=10_000), n_eval_episodes=10)
model.save(sys.argv[1])
print(json.dumps({"train_s": train, "eval": float(mean)}))
"""


def deeprl_run(tree: str, args: list[str], run_dir: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    cmd = [sys.executable, "-m", "deeprl", "train", *args, "--run-dir", run_dir, "--no-progress"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen, t0: float, run_dir: str) -> dict:
    _, err = p.communicate()
    total = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(p.args)} failed:\n{err[-2000:]}")
    s = json.load(open(os.path.join(run_dir, "summary.json")))
    return {"total_s": round(total, 2), "train_s": s["wall_time_s"], "outside_s": round(total - s["wall_time_s"], 2),
            "eval": s["eval_return_mean"], "env_steps": s["env_steps"]}


def one(tree, args, tmp) -> dict:
    run_dir = tempfile.mkdtemp(dir=tmp)
    shutil.rmtree(run_dir)
    return finish(deeprl_run(tree, args, run_dir), time.perf_counter(), run_dir)


def together(tree, args_list, tmp) -> list[dict]:
    dirs = [tempfile.mkdtemp(dir=tmp) for _ in args_list]
    for d in dirs:
        shutil.rmtree(d)
    t0 = time.perf_counter()
    procs = [deeprl_run(tree, a, d) for a, d in zip(args_list, dirs)]
    return [finish(p, t0, d) for p, d in zip(procs, dirs)]


def sb3_whole(tmp) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", SB3_PPO, os.path.join(tmp, "sb3_ppo")], capture_output=True,
                         text=True)
    total = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"SB3 script failed:\n{out.stderr[-2000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"total_s": round(total, 2), "train_s": round(r["train_s"], 2), "outside_s": round(total - r["train_s"], 2),
            "eval": r["eval"]}


WHOLE = ["ppo", "--env", "CartPole-v1", "--steps", "100000", "eval_every=0", "eval_episodes=10"]
PAIR = ["sac", "--env", "Pendulum-v1", "--steps", "2000"]
ALGOS = {"ppo": ["ppo", "--env", "CartPole-v1", "--steps", "100000"],
         "sac": ["sac", "--env", "Pendulum-v1", "--steps", "20000"],
         "dqn": ["dqn", "--env", "CartPole-v1", "--steps", "50000"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="+", choices=("whole", "pair", "algos"))
    ap.add_argument("--tree", action="append", required=True, help="NAME=PATH of a checkout (repeatable)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--algos", nargs="+", default=list(ALGOS), choices=list(ALGOS))
    ap.add_argument("--no-sb3", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    trees = dict(t.split("=", 1) for t in a.tree)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for what in a.what:
            for rep in range(a.repeats if what != "algos" else 1):
                if what == "whole":
                    for name, tree in trees.items():
                        rows.append({"what": what, "rep": rep, "tree": name, **one(tree, WHOLE, tmp)})
                        print(rows[-1], flush=True)
                    if not a.no_sb3:
                        rows.append({"what": what, "rep": rep, "tree": "sb3", **sb3_whole(tmp)})
                        print(rows[-1], flush=True)
                elif what == "pair":
                    for name, tree in trees.items():
                        alone = one(tree, PAIR + ["--seed", "0"], tmp)
                        pair = together(tree, [PAIR + ["--seed", "0"], PAIR + ["--seed", "1"]], tmp)
                        rows.append({"what": what, "rep": rep, "tree": name, "alone_s": alone["total_s"],
                                     "pair_s": [p["total_s"] for p in pair],
                                     "slowdown": round(max(p["total_s"] for p in pair) / alone["total_s"], 2)})
                        print(rows[-1], flush=True)
                else:
                    for algo in a.algos:
                        args = ALGOS[algo]
                        for seed in a.seeds:
                            for name, tree in trees.items():
                                r = one(tree, args + ["--seed", str(seed)], tmp)
                                rows.append({"what": what, "algo": algo, "seed": seed, "tree": name, **r})
                                print(rows[-1], flush=True)
    summary = {}
    for what in a.what:
        for name in list(trees) + ["sb3"]:
            sel = [r for r in rows if r["what"] == what and r["tree"] == name]
            if not sel:
                continue
            if what == "whole":
                summary[f"whole/{name}"] = {k: statistics.median(r[k] for r in sel)
                                            for k in ("total_s", "train_s", "outside_s")}
            elif what == "pair":
                summary[f"pair/{name}"] = {"alone_s": statistics.median(r["alone_s"] for r in sel),
                                           "slowdown": statistics.median(r["slowdown"] for r in sel)}
            else:
                for algo in a.algos:
                    s = [r for r in sel if r["algo"] == algo]
                    summary[f"algos/{algo}/{name}"] = {"train_s": statistics.median(r["train_s"] for r in s),
                                                       "evals": [r["eval"] for r in s]}
    print(json.dumps(summary, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"machine": machine(), "argv": sys.argv, "trees": trees, "rows": rows, "summary": summary}, f,
                      indent=1)


if __name__ == "__main__":
    main()
