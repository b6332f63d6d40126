"""Helpers shared by the benchmark scripts: machine description and a library-neutral evaluator."""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym


def machine() -> dict:
    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d"), "platform": platform.platform()}


def evaluate_policy_fn(predict, env_id: str, episodes: int, seed: int) -> list[float]:
    """Deterministic returns of ``predict(obs) -> action`` over ``episodes`` seeded episodes."""
    env = gym.make(env_id)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, total = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(predict(obs))
            total += float(r)
            done = term or trunc
        returns.append(total)
    env.close()
    return returns


def run_child(script: str, args: list[str]) -> dict:
    """Run one measurement in a fresh interpreter (so thread settings and caches don't leak)."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def train_returns(run_dir):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        vals = [float(r["train/episode_return_mean"]) for r in csv.DictReader(f)
                if r.get("train/episode_return_mean") not in (None, "")]
    return vals


def run_one(job):
    group, name, algo, env, steps, args, seed, root, resume = job
    run_dir = os.path.join(root, group, name, f"seed{seed}")
    if resume and os.path.exists(os.path.join(run_dir, "checkpoints", "latest.pt")) \
            and not os.path.exists(os.path.join(run_dir, "summary.json")):
        # an interrupted run (a session ended): go on from its last checkpoint with its saved config
        cmd = [sys.executable, "-m", "deeprl", "train", "--resume", run_dir, "--no-progress"]
    else:
        if os.path.exists(run_dir):
            shutil.rmtree(run_dir)
        cmd = [sys.executable, "-m", "deeprl", "train", algo, "--env", env, "--seed", str(seed), "--steps",
               str(steps), "--run-dir", run_dir, "--no-progress",
               *(() if "--preset" in args else ("--preset", "none")), *args]
    t = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"group": group, "name": name, "seed": seed, "error": out.stderr.strip().splitlines()[-1:]}
    return result_of(group, name, algo, env, seed, run_dir, round(time.time() - t, 1), " ".join(cmd[1:]))


def result_of(group, name, algo, env, seed, run_dir, wall_s=None, command=None) -> dict:
    """One finished run's entry in a course summary, from its ``summary.json`` and ``metrics.csv``."""
    s = json.load(open(os.path.join(run_dir, "summary.json")))
    tr = train_returns(run_dir)
    return {"group": group, "name": name, "algo": algo, "env": env, "seed": seed, "steps": s["env_steps"],
            "iterations": s["iterations"], "eval_return_mean": s["eval_return_mean"],
            "train_return_best": max(tr) if tr else None, "train_return_last": tr[-1] if tr else None,
            "wall_s": wall_s, "train_wall_s": s.get("wall_time_s"), "command": command,
            **{k: s[k] for k in ("expert_return_mean", "demo_return_mean") if k in s}}


def merge_results(path: str, results: list[dict], stale) -> None:
    """Write ``results`` into the summary at ``path``: re-read it now (another course run may have
    written since), replace the entries with the same (group, name, seed), drop those ``stale(r)``
    says to, and write it through a temporary file."""
    prev = json.load(open(path)) if os.path.exists(path) else {"results": []}
    new = {(r["group"], r["name"], r["seed"]) for r in results}
    keep = [r for r in prev["results"] if (r["group"], r["name"], r["seed"]) not in new and not stale(r)]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"machine": machine(), "command": "python " + " ".join(sys.argv), "results": keep + results}, f,
                  indent=2)
    os.replace(tmp, path)


def course_main(GROUPS: dict, SEEDS, default_out: str, default_root: str = "benchmarks/results/runs") -> int:
    """Run ``GROUPS[g]()`` jobs ``(name, algo, env, steps, cli_args)`` for every seed through the
    CLI, two at a time, and merge the summaries into ``default_out`` (JSON)."""
    p = argparse.ArgumentParser()
    p.add_argument("--groups", nargs="+", default=list(GROUPS), choices=list(GROUPS))
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--names", nargs="+", help="run only these settings of the groups (the others' results are "
                   "kept)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--root", default=default_root)
    p.add_argument("--out", default=default_out)
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="overrides appended to every run's command line (e.g. torch_threads=1)")
    p.add_argument("--resume", action="store_true",
                   help="a run directory with a checkpoint and no summary.json (interrupted) goes on from its "
                        "checkpoint instead of starting over")
    p.add_argument("--collect", action="store_true",
                   help="run nothing: gather the finished runs (summary.json) of the selected jobs into --out")
    a = p.parse_args()
    jobs = [(g, name, algo, env, steps, [*args, *a.set], s, a.root, a.resume)
            for g in a.groups for name, algo, env, steps, args in GROUPS[g]() for s in a.seeds
            if a.names is None or name in a.names]
    if not jobs:
        p.error(f"no setting of {a.groups} is named {a.names}")
    settings = {(g, name) for g in a.groups for name, *_ in GROUPS[g]()}

    def stale(r):  # a setting its group no longer has
        return r["group"] in a.groups and (r["group"], r["name"]) not in settings

    results = []
    if a.collect:
        for g, name, algo, env, _, _, seed, root, _ in jobs:
            run_dir = os.path.join(root, g, name, f"seed{seed}")
            if os.path.exists(os.path.join(run_dir, "summary.json")):
                results.append(result_of(g, name, algo, env, seed, run_dir))
        merge_results(a.out, results, stale)
        print(f"collected {len(results)} finished runs into {a.out}")
        return 0
    with ThreadPoolExecutor(a.workers) as pool:
        for r in pool.map(run_one, jobs):
            results.append(r)
            print(json.dumps(r), flush=True)
            merge_results(a.out, results, stale)  # after every run, so an interrupted sweep keeps what finished
    for g in a.groups:
        names = sorted({r["name"] for r in results if r["group"] == g})
        for n in names:
            rs = [r for r in results if r["group"] == g and r["name"] == n and "error" not in r]
            if rs:
                ev = [r["eval_return_mean"] for r in rs]
                best = [r["train_return_best"] for r in rs if r["train_return_best"] is not None]
                m = lambda x: sum(x) / len(x) if x else float("nan")  # noqa: E731
                print(f"{g:12s} {n:28s} eval {m(ev):8.1f} (seeds {', '.join(f'{v:.0f}' for v in ev)})  "
                      f"best train avg {m(best):8.1f}")
    return 0 if all("error" not in r for r in results) else 1
